//! The cache lies, lags or disappears; answers stay right.
//!
//! - Redis at a closed port, silent (black-holed), or stopped mid-test:
//!   every resolve answers from the store, each call pays at most one cache
//!   timeout, and once the breaker is open calls pay none.
//! - The stale-write race, reproduced deterministically: a reader paused
//!   between its store read and its cache write while a promotion completes
//!   leaves no old answer in Redis.
//! - Durable invalidation: a process promotes while Redis is unreachable
//!   from it, reports the cache update pending and is killed; another
//!   process serves the new production within about a second.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lupa_core::cache::Cache;
use lupa_core::cache::redis::RedisCache;
use lupa_core::store::postgres::PostgresStore;
use lupa_core::store::{DeploymentLookup, EnvironmentLookup, ListCursor, PendingInvalidation, ProjectTx, Store};
use lupa_core::{
    BreakerState, Caller, Config, CreateDeployment, DeploymentId, Environment, FinalStatus, HistoryEntry,
    KeyEnvironment, Lupa, NewProject, Options, Project, ProjectId, ResolveRequest, Source,
};
use support::proxy::{Mode, Proxy};
use tokio::sync::{Mutex, oneshot};

const CACHE_TIMEOUT: Duration = Duration::from_millis(50);

fn live(project: &str) -> ResolveRequest {
    ResolveRequest::new(project, Caller::KeyEnvironment(KeyEnvironment::Live))
}

async fn deployment(lupa: &Lupa, project: &str, id: &str, minute: u32) {
    lupa.create_deployment(CreateDeployment {
        project: project.into(),
        id: Some(id.into()),
        snapshot: "snp".into(),
        environment: Environment::Staging,
        created_at: Some(format!("2025-10-28T10:{minute:02}:00Z")),
    })
    .await
    .unwrap();
    lupa.set_status(id, FinalStatus::Ready, None).await.unwrap();
}

/// A project `p1` with `d1` in production and `d2` ready in staging.
async fn seed(lupa: &Lupa) {
    lupa.create_project(NewProject { id: Some("p1".into()), org_id: "org".into(), name: "P".into() }).await.unwrap();
    deployment(lupa, "p1", "d1", 1).await;
    lupa.promote("p1", "d1").await.unwrap();
    deployment(lupa, "p1", "d2", 2).await;
}

fn config(store: &str, cache: &str) -> Config {
    let mut c = Config::new(store, cache);
    c.cache_timeout = CACHE_TIMEOUT;
    c.breaker_threshold = 3;
    c.breaker_cooldown = Duration::from_secs(2);
    c.key_prefix = format!("{}:", support::unique("lupa_faults"));
    // These tests are about the shared cache; the in-process tier in front
    // of it has tests of its own (local_tier.rs).
    c.local_cache = false;
    c
}

/// Median latency of `n` live resolves, all answering `want`.
async fn timed_resolves(lupa: &Lupa, n: usize, want: &str) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = lupa.resolve(&live("p1")).await.expect("resolve must succeed whatever the cache does");
        out.push(t.elapsed());
        assert_eq!(r.deployment.unwrap().as_str(), want);
    }
    out
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

/// With a dead cache: the first calls each pay at most one cache timeout;
/// after `threshold` failures the breaker opens and calls pay none.
async fn dead_cache_costs_at_most_one_timeout(cache_url: &str, label: &str) {
    let file = std::env::temp_dir().join(support::unique("lupa_faults") + ".db");
    let store = format!("sqlite://{}", file.display());
    let baseline = Lupa::open(config(&store, "none")).await.unwrap();
    seed(&baseline).await;
    let base = median(&timed_resolves(&baseline, 30, "d1").await);

    let lupa = Lupa::open(config(&store, cache_url)).await.unwrap();
    let first = timed_resolves(&lupa, 3, "d1").await;
    for (i, t) in first.iter().enumerate() {
        assert!(
            *t <= base + CACHE_TIMEOUT + Duration::from_millis(40),
            "{label}: call {i} took {t:?}; the store alone takes {base:?}, the cache timeout is {CACHE_TIMEOUT:?}"
        );
    }
    assert_eq!(lupa.health().await.breaker, BreakerState::Open, "{label}: three failures open the breaker");
    let open = timed_resolves(&lupa, 50, "d1").await;
    let worst = *open.iter().max().unwrap();
    assert!(
        worst < CACHE_TIMEOUT / 2 && median(&open) <= base * 3 + Duration::from_millis(2),
        "{label}: with the breaker open calls must not wait for the cache (worst {worst:?}, store alone {base:?})"
    );
    println!(
        "{label}: store alone {base:?}; first calls {first:?}; breaker open: median {:?}, worst {worst:?}",
        median(&open)
    );
    lupa.close().await;
    baseline.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_at_a_closed_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    dead_cache_costs_at_most_one_timeout(&format!("redis://127.0.0.1:{port}"), "closed port").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_that_never_answers() {
    let redis = support::PrivateRedis::start();
    let proxy = Proxy::start(format!("127.0.0.1:{}", redis.port)).await;
    proxy.set(Mode::Blackhole);
    dead_cache_costs_at_most_one_timeout(&format!("redis://127.0.0.1:{}", proxy.port), "silent redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_that_stops_mid_test_and_comes_back() {
    let mut redis = support::PrivateRedis::start();
    let port = redis.port;
    let lupa = Lupa::open(config("sqlite::memory:", &redis.url())).await.unwrap();
    seed(&lupa).await;
    assert_eq!(lupa.resolve(&live("p1")).await.unwrap().source, Source::Store);
    assert_eq!(lupa.resolve(&live("p1")).await.unwrap().source, Source::Cache, "the miss filled the cache");

    redis.stop();
    let during = timed_resolves(&lupa, 20, "d1").await;
    assert!(during.iter().all(|t| *t <= CACHE_TIMEOUT + Duration::from_millis(40)), "{during:?}");
    assert_eq!(lupa.health().await.breaker, BreakerState::Open);
    // A change while the cache is down still succeeds, and says so.
    let promoted = lupa.promote("p1", "d2").await.unwrap();
    assert!(promoted.cache_pending, "the cache update must be reported pending");
    assert_eq!(lupa.resolve(&live("p1")).await.unwrap().deployment.unwrap().as_str(), "d2");

    // Back on the same port: an empty Redis; the pending update is applied
    // and answers come from the cache again after the cool-down.
    let _back = support::PrivateRedis::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = lupa.resolve(&live("p1")).await.unwrap();
        assert_eq!(r.deployment.unwrap().as_str(), "d2");
        if r.source == Source::Cache && lupa.health().await.pending_cache_updates == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "the cache never came back into use");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lupa.health().await.breaker, BreakerState::Closed);
    lupa.close().await;
}

/// A store that can pause a reader right after its snapshot was read.
struct PausingStore {
    inner: Arc<dyn Store>,
    gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

#[async_trait]
impl Store for PausingStore {
    async fn insert_project(&self, p: &Project) -> lupa_core::Result<i64> {
        self.inner.insert_project(p).await
    }
    async fn get_project(&self, id: &ProjectId) -> lupa_core::Result<Option<Project>> {
        self.inner.get_project(id).await
    }
    async fn list_projects(&self, after: Option<&ProjectId>, limit: u32) -> lupa_core::Result<Vec<Project>> {
        self.inner.list_projects(after, limit).await
    }
    async fn get_deployment(&self, id: &DeploymentId) -> lupa_core::Result<Option<lupa_core::Deployment>> {
        self.inner.get_deployment(id).await
    }
    async fn list_deployments(
        &self,
        p: &ProjectId,
        after: Option<&ListCursor>,
        limit: u32,
    ) -> lupa_core::Result<Vec<lupa_core::Deployment>> {
        self.inner.list_deployments(p, after, limit).await
    }
    async fn history(&self, p: &ProjectId, before: Option<i64>, limit: u32) -> lupa_core::Result<Vec<HistoryEntry>> {
        self.inner.history(p, before, limit).await
    }
    async fn lookup_environment(&self, p: &ProjectId, env: Environment) -> lupa_core::Result<EnvironmentLookup> {
        let read = self.inner.lookup_environment(p, env).await;
        let gate = self.gate.lock().await.take();
        if let Some((read_done, release)) = gate {
            let _ = read_done.send(());
            let _ = release.await;
        }
        read
    }
    async fn lookup_deployment(&self, p: &ProjectId, d: &DeploymentId) -> lupa_core::Result<DeploymentLookup> {
        self.inner.lookup_deployment(p, d).await
    }
    async fn begin(&self, p: &ProjectId) -> lupa_core::Result<Option<Box<dyn ProjectTx>>> {
        self.inner.begin(p).await
    }
    async fn pending_invalidations(&self, limit: u32) -> lupa_core::Result<Vec<PendingInvalidation>> {
        self.inner.pending_invalidations(limit).await
    }
    async fn clear_invalidations(&self, ids: &[i64]) -> lupa_core::Result<()> {
        self.inner.clear_invalidations(ids).await
    }
    async fn ping(&self) -> lupa_core::Result<()> {
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
    async fn drop_storage(&self) -> lupa_core::Result<()> {
        self.inner.drop_storage().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_raced_a_promotion_cannot_write_its_old_answer() {
    let (Some(db), Some(redis_url)) = (support::postgres(), support::redis()) else { return };
    let mut cfg = config(&db, &redis_url);
    cfg.schema = support::unique("lupa_race").to_lowercase();
    let pg: Arc<dyn Store> = Arc::new(PostgresStore::open(&db, &cfg).await.unwrap());
    let store = Arc::new(PausingStore { inner: pg, gate: Mutex::new(None) });
    let redis: Arc<dyn Cache> = Arc::new(RedisCache::new(&redis_url, CACHE_TIMEOUT).unwrap());
    let lupa = Lupa::with_backends(store.clone(), Some(redis.clone()), Options::from(&cfg));
    seed(&lupa).await;
    let probe = lupa.cache_probe().unwrap();
    probe.clear().await.unwrap();

    // The reader misses the cache, reads d1 from the store, and stops there.
    let (read_done_tx, read_done) = oneshot::channel();
    let (release, release_rx) = oneshot::channel();
    *store.gate.lock().await = Some((read_done_tx, release_rx));
    let reader = {
        let lupa = lupa.clone();
        tokio::spawn(async move { lupa.resolve(&live("p1")).await })
    };
    read_done.await.unwrap();

    // The promotion completes, cache update included, while the reader waits.
    let promoted = lupa.promote("p1", "d2").await.unwrap();
    assert!(!promoted.cache_pending);

    // The reader goes on: it answers what it read, and tries to fill.
    release.send(()).unwrap();
    let stale = reader.await.unwrap().unwrap();
    assert_eq!(stale.deployment.unwrap().as_str(), "d1", "the reader read before the change");
    let pointer = probe.get("project:p1:production_deployment").await.unwrap();
    assert_ne!(pointer.as_deref(), Some("d1"), "the old answer was written back to Redis");
    println!("after the raced fill the production pointer is {pointer:?}");
    // Every later reader sees the new production, from the store and then the cache.
    assert_eq!(lupa.resolve(&live("p1")).await.unwrap().deployment.unwrap().as_str(), "d2");
    let again = lupa.resolve(&live("p1")).await.unwrap();
    assert_eq!((again.deployment.unwrap().as_str(), again.source), ("d2", Source::Cache));

    probe.clear().await.unwrap();
    lupa.drop_storage().await.unwrap();
    lupa.close().await;
}

const CHILD_ROLE: &str = "LUPA_TEST_FAULTS_ROLE";

/// Process A: promotes with its cache cut off, says the update is pending,
/// then waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_promoter() {
    let Ok(role) = std::env::var(CHILD_ROLE) else { return };
    assert_eq!(role, "promote-while-cut");
    let var = |n: &str| std::env::var(n).unwrap();
    let mut cfg = config(&var("LUPA_TEST_FAULTS_STORE"), &var("LUPA_TEST_FAULTS_CACHE"));
    cfg.schema = var("LUPA_TEST_FAULTS_SCHEMA");
    cfg.key_prefix = var("LUPA_TEST_FAULTS_PREFIX");
    let lupa = Lupa::open(cfg).await.unwrap();
    let promoted = lupa.promote("p1", "d2").await.unwrap();
    println!("PROMOTED cache_pending={}", promoted.cache_pending);
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_redis_was_unreachable_reaches_every_process() {
    use tokio::io::AsyncBufReadExt;
    let (Some(db), Some(redis_url)) = (support::postgres(), support::redis()) else { return };
    let mut cfg = config(&db, &redis_url);
    cfg.schema = support::unique("lupa_outbox").to_lowercase();
    cfg.outbox_interval = Duration::from_millis(250);

    // Process B (this one) serves d1 from Redis, and from its own memory:
    // both must learn of A's change.
    cfg.local_cache = true;
    let b = Lupa::open(cfg.clone()).await.unwrap();
    seed(&b).await;
    b.resolve(&live("p1")).await.unwrap();
    assert_eq!(b.resolve(&live("p1")).await.unwrap().source, Source::Local);

    // Process A reaches Redis only through a proxy, cut before it starts.
    let proxy = Proxy::start(support::host_port(&redis_url, 6379)).await;
    proxy.set(Mode::Refuse);
    let mut a = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_promoter", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, "promote-while-cut")
        .env("LUPA_TEST_FAULTS_STORE", &db)
        .env("LUPA_TEST_FAULTS_CACHE", proxy.url_for(&redis_url))
        .env("LUPA_TEST_FAULTS_SCHEMA", &cfg.schema)
        .env("LUPA_TEST_FAULTS_PREFIX", &cfg.key_prefix)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(a.stdout.take().unwrap()).lines();
    let said = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some((_, rest)) = line.split_once("PROMOTED ") {
                return rest.to_string();
            }
        }
        panic!("process A ended without promoting");
    })
    .await
    .expect("process A did not promote in time");
    assert_eq!(said, "cache_pending=true", "A must report the cache update pending");
    a.kill().await.unwrap();
    let killed_at = Instant::now();

    // Redis still holds the old pointer: nobody has told it yet.
    let raw = RedisCache::new(&redis_url, Duration::from_secs(1)).unwrap();
    let pointer_key = format!("{}project:p1:production_deployment", cfg.key_prefix);
    let before = raw.get_many(std::slice::from_ref(&pointer_key)).await.unwrap().pop().flatten();
    println!("pointer in Redis right after A was killed: {before:?}");

    // B applies A's durable record and serves d2 within about a second.
    let mut old_answers = 0;
    let elapsed = loop {
        let r = b.resolve(&live("p1")).await.unwrap();
        if r.deployment.unwrap().as_str() == "d2" {
            break killed_at.elapsed();
        }
        old_answers += 1;
        assert!(killed_at.elapsed() < Duration::from_secs(3), "B still serves the old production");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    println!("B served the new production {elapsed:?} after A was killed ({old_answers} old answers before)");
    assert!(elapsed <= Duration::from_millis(1500), "took {elapsed:?}");
    let after = raw.get_many(std::slice::from_ref(&pointer_key)).await.unwrap().pop().flatten();
    assert_ne!(after.as_deref(), Some("d1"));
    assert_eq!(b.health().await.pending_cache_updates, Some(0));

    b.cache_probe().unwrap().clear().await.unwrap();
    b.drop_storage().await.unwrap();
    b.close().await;
}
