//! The in-process tier: answers from memory that never outlive a change
//! longer than the rules allow.
//!
//! - Another process's promotion reaches this process's memory through the
//!   channel (Redis pub/sub; PostgreSQL LISTEN/NOTIFY without Redis) within
//!   milliseconds, and no old answer follows the first new one.
//! - With the channel cut, answers live at most the configured bound.
//! - Handles of one process share the tier: a change through one is seen
//!   through the other at once.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lupa_core::{
    Caller, Config, CreateDeployment, Environment, FinalStatus, KeyEnvironment, Lupa, NewProject, ResolveRequest,
    Source,
};
use support::proxy::{Mode, Proxy};
use tokio::io::AsyncBufReadExt;

const ROLE: &str = "LUPA_TEST_LOCAL_ROLE";

fn live() -> ResolveRequest {
    ResolveRequest::new("p1", Caller::KeyEnvironment(KeyEnvironment::Live))
}

async fn seed(lupa: &Lupa) {
    lupa.create_project(NewProject { id: Some("p1".into()), org_id: "o".into(), name: "P".into() }).await.unwrap();
    for (id, minute) in [("d1", 1), ("d2", 2)] {
        lupa.create_deployment(CreateDeployment {
            project: "p1".into(),
            id: Some(id.into()),
            snapshot: "s".into(),
            environment: Environment::Staging,
            created_at: Some(format!("2025-10-28T10:0{minute}:00Z")),
        })
        .await
        .unwrap();
        lupa.set_status(id, FinalStatus::Ready, None).await.unwrap();
    }
    lupa.promote("p1", "d1").await.unwrap();
}

fn unix_micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros()
}

/// The other process: promotes d2 and says when the call returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_promoter() {
    let Ok(store) = std::env::var(ROLE) else { return };
    let mut config = Config::new(store, std::env::var("LUPA_TEST_LOCAL_CACHE").unwrap());
    config.schema = std::env::var("LUPA_TEST_LOCAL_SCHEMA").unwrap();
    config.key_prefix = std::env::var("LUPA_TEST_LOCAL_PREFIX").unwrap();
    let lupa = Lupa::open(config).await.unwrap();
    let target = std::env::var("LUPA_TEST_LOCAL_TARGET").unwrap();
    lupa.promote("p1", &target).await.unwrap();
    println!("PROMOTED_AT {}", unix_micros());
    lupa.close().await;
}

/// Resolves from memory in a loop while another process promotes; returns
/// how long after the promotion returned the new answer was first seen.
async fn other_process_promotes(cache: &str, label: &str) -> Duration {
    let db = support::postgres().expect("checked by the caller");
    let mut config = Config::new(db.clone(), cache);
    config.schema = support::unique("lupa_local").to_lowercase();
    config.key_prefix = format!("{}:", config.schema);
    let lupa = Lupa::open(config.clone()).await.unwrap();
    seed(&lupa).await;
    lupa.resolve(&live()).await.unwrap();
    assert_eq!(lupa.resolve(&live()).await.unwrap().source, Source::Local, "{label}: warm in memory");

    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_promoter", "--nocapture", "--test-threads=1"])
        .env(ROLE, &db)
        .env("LUPA_TEST_LOCAL_CACHE", cache)
        .env("LUPA_TEST_LOCAL_SCHEMA", &config.schema)
        .env("LUPA_TEST_LOCAL_PREFIX", &config.key_prefix)
        .env("LUPA_TEST_LOCAL_TARGET", "d2")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let promoted_at = tokio::spawn(async move {
        let mut at = None;
        // Read to the end: closing the pipe early would fail the child.
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some((_, t)) = line.split_once("PROMOTED_AT ") {
                at = Some(t.trim().parse::<u128>().unwrap());
            }
        }
        at.expect("the other process did not promote")
    });

    // Loop on memory answers until the new one shows; then no old one may follow.
    let started = Instant::now();
    let seen_at = loop {
        let r = lupa.resolve(&live()).await.unwrap();
        if r.deployment.unwrap().as_str() == "d2" {
            break unix_micros();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{label}: the change never arrived");
        tokio::task::yield_now().await;
    };
    for _ in 0..2000 {
        assert_eq!(
            lupa.resolve(&live()).await.unwrap().deployment.unwrap().as_str(),
            "d2",
            "{label}: an old answer after the new one"
        );
    }
    let promoted_at = tokio::time::timeout(Duration::from_secs(20), promoted_at).await.unwrap().unwrap();
    assert!(child.wait().await.unwrap().success());
    let lag = Duration::from_micros(seen_at.saturating_sub(promoted_at) as u64);
    println!(
        "{label}: the new production reached this process's memory {lag:?} after the other process's promote returned"
    );
    if let Some(p) = lupa.cache_probe() {
        p.clear().await.unwrap();
    }
    lupa.drop_storage().await.unwrap();
    lupa.close().await;
    lag
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_promotes_redis_channel() {
    let (Some(_), Some(redis)) = (support::postgres(), support::redis()) else { return };
    let lag = other_process_promotes(&redis, "redis pub/sub").await;
    assert!(lag < Duration::from_millis(500), "{lag:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_promotes_postgres_channel() {
    let Some(_) = support::postgres() else { return };
    let lag = other_process_promotes("none", "postgres LISTEN/NOTIFY").await;
    assert!(lag < Duration::from_millis(500), "{lag:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_channel_cut_answers_live_at_most_the_bound() {
    let (Some(db), Some(_)) = (support::postgres(), support::redis()) else { return };
    let redis = support::PrivateRedis::start();
    let proxy = Proxy::start(format!("127.0.0.1:{}", redis.port)).await;
    let bound = Duration::from_millis(400);
    let schema = support::unique("lupa_bound").to_lowercase();
    // A reaches Redis (cache and channel) through the proxy; B directly, and
    // with a store URL of its own so that it does not share A's tier.
    let mut a_config = Config::new(db.clone(), proxy.url_for(&redis.url()));
    a_config.schema = schema.clone();
    a_config.local_bound = bound;
    let a = Lupa::open(a_config).await.unwrap();
    let sep = if db.contains('?') { '&' } else { '?' };
    let mut b_config = Config::new(format!("{db}{sep}application_name=lupa-b"), redis.url());
    b_config.schema = schema;
    let b = Lupa::open(b_config).await.unwrap();
    seed(&b).await;
    // B's seeding changes reach A's memory on the channel a moment later:
    // resolve until A answers from memory.
    let warm = Instant::now();
    while a.resolve(&live()).await.unwrap().source != Source::Local {
        assert!(warm.elapsed() < Duration::from_secs(5), "A never answered from memory");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    proxy.set(Mode::Blackhole);
    b.promote("p1", "d2").await.unwrap();
    let promoted = Instant::now();
    let mut old = 0;
    let took = loop {
        let r = a.resolve(&live()).await.unwrap();
        if r.deployment.unwrap().as_str() == "d2" {
            break promoted.elapsed();
        }
        old += 1;
        assert!(promoted.elapsed() < Duration::from_secs(5), "A kept its old answer");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    println!(
        "channel cut: A served the old production {old} times, for {took:?} (bound {bound:?}, plus detecting the cut)"
    );
    // The cut is noticed within about 0.75 s; from then on nothing older
    // than the bound is served.
    assert!(took <= bound + Duration::from_millis(1200), "{took:?}");
    a.drop_storage().await.unwrap();
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_of_one_process_share_the_tier() {
    let (Some(db), Some(redis)) = (support::postgres(), support::redis()) else { return };
    let mut config = Config::new(db, redis);
    config.schema = support::unique("lupa_shared").to_lowercase();
    config.key_prefix = format!("{}:", config.schema);
    let a = Lupa::open(config.clone()).await.unwrap();
    let b = Lupa::open(config).await.unwrap();
    seed(&a).await;
    a.resolve(&live()).await.unwrap();
    assert_eq!(a.resolve(&live()).await.unwrap().source, Source::Local);
    b.promote("p1", "d2").await.unwrap();
    let r = a.resolve(&live()).await.unwrap();
    assert_eq!(r.deployment.unwrap().as_str(), "d2", "a change through one handle is seen at once through the other");
    a.cache_probe().unwrap().clear().await.unwrap();
    a.drop_storage().await.unwrap();
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_started_after_a_promotion_returned_sees_the_old_answer() {
    for (store, cache) in [("memory://", "memory://"), ("sqlite::memory:", "none")] {
        let lupa = Lupa::open(Config::new(store, cache)).await.unwrap();
        seed(&lupa).await;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let promoted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (lupa, stop, promoted) = (lupa.clone(), stop.clone(), promoted.clone());
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Acquire) {
                        let after = promoted.load(std::sync::atomic::Ordering::Acquire);
                        let d = lupa.resolve(&live()).await.unwrap().deployment.unwrap();
                        assert!(d.as_str() == "d1" || d.as_str() == "d2");
                        if after {
                            assert_eq!(
                                d.as_str(),
                                "d2",
                                "{store}: started after the promotion returned, got the old answer"
                            );
                        }
                        n += 1;
                        tokio::task::yield_now().await;
                    }
                    n
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        lupa.promote("p1", "d2").await.unwrap();
        promoted.store(true, std::sync::atomic::Ordering::Release);
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.store(true, std::sync::atomic::Ordering::Release);
        let mut total = 0;
        for r in readers {
            total += r.await.unwrap();
        }
        assert!(total > 100, "{store}: only {total} resolves");
        lupa.close().await;
    }
}
