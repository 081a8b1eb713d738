//! PostgreSQL out of reach (through a proxy the test cuts, never stopping the
//! machine's server): calls fail with STORAGE_UNAVAILABLE within the store
//! timeout, nothing panics, and the same handle recovers by itself.

mod support;

use std::time::{Duration, Instant};

use lupa_core::{
    Caller, Config, CreateDeployment, Environment, ErrorCode, FinalStatus, KeyEnvironment, Lupa, NewProject,
    ResolveRequest,
};
use support::proxy::{Mode, Proxy};

const STORE_TIMEOUT: Duration = Duration::from_millis(800);

fn live() -> ResolveRequest {
    ResolveRequest::new("p1", Caller::KeyEnvironment(KeyEnvironment::Live))
}

async fn expect_unavailable(lupa: &Lupa, what: &str) {
    let t = Instant::now();
    let err = lupa.resolve(&live()).await.expect_err("the store is out of reach");
    let took = t.elapsed();
    assert_eq!(err.code(), ErrorCode::StorageUnavailable, "{what}: {err}");
    assert_eq!(err.http_status(), 503);
    assert!(took <= STORE_TIMEOUT + Duration::from_millis(300), "{what}: took {took:?}");
    let err = lupa.promote("p1", "d1").await.expect_err("changes fail too");
    assert_eq!(err.code(), ErrorCode::StorageUnavailable, "{what}: {err}");
    println!("{what}: STORAGE_UNAVAILABLE after {took:?} (store timeout {STORE_TIMEOUT:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_out_of_reach_and_back() {
    let Some(db) = support::postgres() else { return };
    let proxy = Proxy::start(support::host_port(&db, 5432)).await;
    let mut config = Config::new(proxy.url_for(&db), "none");
    config.schema = support::unique("lupa_pgfault").to_lowercase();
    config.store_timeout = STORE_TIMEOUT;
    // About the store: no answers from process memory.
    config.local_cache = false;
    let lupa = Lupa::open(config).await.unwrap();
    lupa.create_project(NewProject { id: Some("p1".into()), org_id: "o".into(), name: "P".into() }).await.unwrap();
    lupa.create_deployment(CreateDeployment {
        project: "p1".into(),
        id: Some("d1".into()),
        snapshot: "s".into(),
        environment: Environment::Production,
        created_at: None,
    })
    .await
    .unwrap();
    lupa.set_status("d1", FinalStatus::Ready, None).await.unwrap();
    assert_eq!(lupa.resolve(&live()).await.unwrap().deployment.unwrap().as_str(), "d1");

    proxy.set(Mode::Blackhole);
    expect_unavailable(&lupa, "silent PostgreSQL").await;
    proxy.set(Mode::Refuse);
    expect_unavailable(&lupa, "refusing PostgreSQL").await;
    let s = lupa.stats();
    assert_eq!(s.resolutions.errors_with(ErrorCode::StorageUnavailable), 2);
    assert!(s.store.unavailable >= 4, "two resolves and two promotions failed: {:?}", s.store);

    proxy.set(Mode::Pass);
    let t = Instant::now();
    let mut failures = 0;
    let answer = loop {
        match lupa.resolve(&live()).await {
            Ok(r) => break r,
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::StorageUnavailable);
                failures += 1;
                assert!(failures < 3, "the handle did not recover: {e}");
            }
        }
    };
    assert_eq!(answer.deployment.unwrap().as_str(), "d1");
    println!("recovered {:?} after the store came back, {failures} failed calls first", t.elapsed());
    let h = lupa.health().await;
    assert_eq!(h.store, lupa_core::ComponentHealth::Ok);
    lupa.drop_storage().await.unwrap();
    lupa.close().await;
}

#[tokio::test]
async fn a_closed_handle_says_so() {
    let lupa = Lupa::open(Config::new("sqlite::memory:", "memory://")).await.unwrap();
    lupa.create_project(NewProject { id: Some("p1".into()), org_id: "o".into(), name: "P".into() }).await.unwrap();
    // Held in memory and in the cache: a closed handle still answers nothing.
    let _ = lupa.resolve(&live()).await;
    let _ = lupa.resolve(&live()).await;
    lupa.close().await;
    assert!(matches!(lupa.resolve_cached(&live()), Some(Err(e)) if e.code() == ErrorCode::StorageUnavailable));
    lupa.close().await;
    let err = lupa.resolve(&live()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StorageUnavailable);
}
