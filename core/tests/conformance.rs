//! Every vector file, on every backend pair this machine offers.

mod support;

use lupa_core::conformance::{ConfigBackend, Report, load_dirs, run};

async fn run_pair(store: &str, cache: &str) -> Report {
    let files = load_dirs(&[support::vectors_dir()]).expect("vector files");
    let report = run(&files, &ConfigBackend::new(store, cache)).await;
    println!("{}", report.summary());
    for f in &report.failures {
        println!("  FAILED {f}");
    }
    report
}

fn assert_clean(report: &Report) {
    assert!(report.passed > 0, "{}: no scenario ran", report.label);
    assert!(report.failures.is_empty(), "{}: {} scenario(s) failed", report.label, report.failures.len());
}

#[tokio::test]
async fn memory_memory() {
    let r = run_pair("memory://", "memory://").await;
    assert_clean(&r);
    assert_eq!(r.skipped, 0);
}

#[tokio::test]
async fn sqlite_memory() {
    let r = run_pair("sqlite::memory:", "memory://").await;
    assert_clean(&r);
    assert_eq!(r.skipped, 0);
}

#[tokio::test]
async fn sqlite_none() {
    let r = run_pair("sqlite::memory:", "none").await;
    assert_clean(&r);
    assert!(r.skipped > 0, "cache scenarios are skipped without a cache");
}

#[tokio::test]
async fn postgres_redis() {
    let (Some(db), Some(redis)) = (support::postgres(), support::redis()) else { return };
    let r = run_pair(&db, &redis).await;
    assert_clean(&r);
    assert_eq!(r.skipped, 0);
}

#[tokio::test]
async fn postgres_none() {
    let Some(db) = support::postgres() else { return };
    let r = run_pair(&db, "none").await;
    assert_clean(&r);
}
