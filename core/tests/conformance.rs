//! Every vector file (tests/conformance/vectors, the shrunk failures of the
//! model-based test in tests/regressions, plus LUPA_CONFORMANCE_DIR when
//! set) on every backend pair: memory+memory, sqlite+memory,
//! sqlite+none, postgres+redis, postgres+none. One line per pair; any failed
//! scenario fails the run. A plain program rather than libtest, so the lines
//! always show.

mod support;

use lupa_core::conformance::{ConfigBackend, Report, load_dirs, run};

async fn run_pair(files: &[lupa_core::conformance::VectorFile], store: &str, cache: &str) -> Report {
    let report = run(files, &ConfigBackend::new(store, cache)).await;
    println!("{}", report.summary());
    for f in &report.failures {
        println!("  FAILED {f}");
    }
    report
}

#[tokio::main]
async fn main() {
    let mut dirs = vec![support::vectors_dir()];
    // Regression vectors are kept only once a failure was found; an absent or
    // empty directory is no error (load_dirs refuses those).
    let regressions = support::regressions_dir();
    let has_regressions = std::fs::read_dir(&regressions)
        .is_ok_and(|d| d.filter_map(Result::ok).any(|e| e.path().extension().is_some_and(|x| x == "json")));
    if has_regressions {
        dirs.push(regressions);
    }
    let files = match load_dirs(&dirs) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("conformance: {e}");
            std::process::exit(1);
        }
    };
    let scenarios: usize = files.iter().map(|f| f.scenarios.len()).sum();
    println!("conformance: {} vector files, {scenarios} scenarios", files.len());
    let mut pairs = vec![
        ("memory://".to_string(), "memory://".to_string()),
        ("sqlite::memory:".to_string(), "memory://".to_string()),
        ("sqlite::memory:".to_string(), "none".to_string()),
    ];
    if let Some(db) = support::postgres() {
        if let Some(redis) = support::redis() {
            pairs.push((db.clone(), redis));
        }
        pairs.push((db, "none".to_string()));
    }
    let mut failed = false;
    for (store, cache) in &pairs {
        let report = run_pair(&files, store, cache).await;
        let with_cache = cache != "none";
        // Without a cache only the cache scenarios may be skipped; with one, none.
        let clean = report.failures.is_empty() && report.passed > 0 && (!with_cache || report.skipped == 0);
        failed |= !clean;
    }
    if failed {
        eprintln!("conformance: FAILED");
        std::process::exit(1);
    }
    println!("conformance: {} backend pairs passed", pairs.len());
}
