//! Tenant isolation, as a property: with many projects and Deployment-Id
//! values that exist in other projects, were deleted, were recreated under
//! another project, or sit in the caches for their owner, no resolve ever
//! answers with another project's deployment, and another project's id is
//! exactly `DEPLOYMENT_NOT_FOUND`.
//!
//! On memory+memory and on postgres+redis, the in-process tier on. On
//! PostgreSQL a second handle without an in-process tier resolves too, so
//! answers that come from Redis are checked as well as those from process
//! memory. Bounded for CI; longer runs:
//!
//! ```text
//! LUPA_TENANT_CASES=2000 LUPA_TENANT_PG_CASES=200 LUPA_TENANT_OPS=200 \
//!     cargo test -p lupa-core --test tenant_isolation -- --nocapture
//! ```

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use lupa_core::{
    Caller, Config, CreateDeployment, Environment, Error, FinalStatus, KeyEnvironment, Lupa, NewProject, ResolveRequest,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestError, TestRunner};

const PROJECTS: usize = 20;
const IDS: usize = 30;

fn project(i: usize) -> String {
    format!("tenant{i:02}")
}

fn deployment(i: usize) -> String {
    format!("dep{i:02}")
}

#[derive(Debug, Clone)]
enum Op {
    /// Create the id in the project (when free), ready or not, promoted or not.
    Create(usize, usize, bool, bool),
    /// Delete the id through its owner.
    Delete(usize),
    /// Delete the id and create it again under another project, ready.
    Recreate(usize, usize),
    /// Resolve the id through its owner, so ownership and info are cached,
    /// and the owner's production and staging too.
    Warm(usize),
    /// Delete a project and create it again, empty.
    ResetProject(usize),
    /// Clear the shared cache and the in-process tier.
    ClearCache,
    /// Resolve for a project: with the id or none, requiring a deployment
    /// or not, as a live or a test key.
    Resolve(usize, Option<usize>, bool, bool),
    /// Resolve the id from every project.
    ResolveEverywhere(usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let p = || 0..PROJECTS;
    let d = || 0..IDS;
    prop_oneof![
        6 => (p(), d(), prop::bool::weighted(0.7), any::<bool>()).prop_map(|(p, d, r, pr)| Op::Create(p, d, r, pr)),
        2 => d().prop_map(Op::Delete),
        2 => (d(), p()).prop_map(|(d, p)| Op::Recreate(d, p)),
        4 => d().prop_map(Op::Warm),
        1 => p().prop_map(Op::ResetProject),
        1 => Just(Op::ClearCache),
        8 => (p(), proptest::option::weighted(0.8, d()), prop::bool::weighted(0.8), any::<bool>())
            .prop_map(|(p, d, r, live)| Op::Resolve(p, d, r, live)),
        2 => d().prop_map(Op::ResolveEverywhere),
    ]
}

/// What the test knows: who owns each id, and whether it is ready.
#[derive(Default)]
struct Owners {
    owner: BTreeMap<usize, (usize, bool)>,
}

struct Handles {
    /// The in-process tier on.
    main: Lupa,
    /// Same store and cache, no in-process tier (PostgreSQL only).
    shared_only: Option<Lupa>,
}

impl Handles {
    fn all(&self) -> impl Iterator<Item = &Lupa> {
        std::iter::once(&self.main).chain(self.shared_only.as_ref())
    }
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

fn code(e: &Error) -> &'static str {
    e.code().as_str()
}

async fn resolve(
    lupa: &Lupa,
    owners: &Owners,
    p: usize,
    d: Option<usize>,
    requires: bool,
    live: bool,
) -> Result<(), TestCaseError> {
    let env = if live { KeyEnvironment::Live } else { KeyEnvironment::Test };
    let request = ResolveRequest {
        project: project(p),
        deployment_id: d.map(deployment),
        requires_deployment: requires,
        caller: Caller::KeyEnvironment(env),
    };
    let what = format!("resolve {} with {:?} (requires {requires}, live {live})", project(p), d.map(deployment));
    let result = lupa.resolve(&request).await;
    // Whatever the question, an answer is one of the project's deployments.
    if let Ok(r) = &result
        && let Some(got) = &r.deployment
    {
        let owned = owners.owner.iter().any(|(id, (owner, _))| deployment(*id) == got.as_str() && *owner == p);
        if !owned {
            return Err(fail(format!("{what}: answered {got} from {:?}, not a deployment of this project", r.source)));
        }
    }
    match d {
        Some(id) => match (owners.owner.get(&id), &result) {
            // Another project's, deleted, or never created: exactly not found.
            (owner, Err(e)) if owner.is_none_or(|(o, _)| *o != p) => {
                if code(e) != "DEPLOYMENT_NOT_FOUND" {
                    return Err(fail(format!("{what}: {} instead of DEPLOYMENT_NOT_FOUND", code(e))));
                }
            }
            (owner, Ok(r)) if owner.is_none_or(|(o, _)| *o != p) => {
                return Err(fail(format!("{what}: answered {:?} for an id not of this project", r.deployment)));
            }
            (Some((_, ready)), Ok(r)) => {
                if r.deployment.as_ref().map(|x| x.as_str()) != Some(deployment(id).as_str()) || (requires && !ready) {
                    return Err(fail(format!("{what}: answered {:?} (ready {ready})", r.deployment)));
                }
            }
            (Some((_, ready)), Err(e)) => {
                if !(requires && !ready && code(e) == "DEPLOYMENT_NOT_READY") {
                    return Err(fail(format!("{what}: {} for its own deployment (ready {ready})", code(e))));
                }
            }
            (None, _) => unreachable!("handled above"),
        },
        None => match &result {
            Ok(r) if !requires && r.deployment.is_some() => {
                return Err(fail(format!("{what}: answered {:?} for a route without deployment", r.deployment)));
            }
            Ok(r) if requires && r.deployment.is_none() => return Err(fail(format!("{what}: answered none"))),
            Ok(_) => {}
            Err(e) if requires && matches!(code(e), "NO_PRODUCTION_DEPLOYMENT" | "NO_STAGING_DEPLOYMENT") => {}
            Err(e) => return Err(fail(format!("{what}: {}", code(e)))),
        },
    }
    Ok(())
}

async fn create(lupa: &Lupa, owners: &mut Owners, p: usize, d: usize, ready: bool, promote: bool) {
    if owners.owner.contains_key(&d) {
        return;
    }
    let new = CreateDeployment {
        project: project(p),
        id: Some(deployment(d)),
        snapshot: "snp_tenant".into(),
        environment: Environment::Staging,
        created_at: None,
    };
    lupa.create_deployment(new).await.expect("create a deployment");
    if ready {
        lupa.set_status(&deployment(d), FinalStatus::Ready, None).await.expect("set ready");
        if promote {
            lupa.promote(&project(p), &deployment(d)).await.expect("promote");
        }
    }
    owners.owner.insert(d, (p, ready));
}

async fn delete(lupa: &Lupa, owners: &mut Owners, d: usize) {
    if let Some((p, _)) = owners.owner.remove(&d) {
        lupa.delete_deployment(&project(p), &deployment(d)).await.expect("delete a deployment");
    }
}

async fn run_case(h: &Handles, ops: &[Op], resolves: &AtomicUsize) -> Result<(), TestCaseError> {
    let lupa = &h.main;
    let mut owners = Owners::default();
    for p in 0..PROJECTS {
        let new = NewProject { id: Some(project(p)), org_id: format!("org{p}"), name: format!("Tenant {p}") };
        lupa.create_project(new).await.expect("create a project");
    }
    for op in ops {
        match op {
            Op::Create(p, d, ready, promote) => create(lupa, &mut owners, *p, *d, *ready, *promote).await,
            Op::Delete(d) => delete(lupa, &mut owners, *d).await,
            Op::Recreate(d, p) => {
                delete(lupa, &mut owners, *d).await;
                create(lupa, &mut owners, *p, *d, true, false).await;
            }
            Op::Warm(d) => {
                if let Some(&(p, _)) = owners.owner.get(d) {
                    for handle in h.all() {
                        for (id, live) in [(Some(*d), true), (None, true), (None, false)] {
                            resolves.fetch_add(1, Ordering::Relaxed);
                            resolve(handle, &owners, p, id, true, live).await?;
                        }
                    }
                }
            }
            Op::ResetProject(p) => {
                lupa.delete_project(&project(*p)).await.expect("delete a project");
                owners.owner.retain(|_, (o, _)| o != p);
                let new = NewProject { id: Some(project(*p)), org_id: format!("org{p}"), name: "Again".into() };
                lupa.create_project(new).await.expect("create the project again");
            }
            Op::ClearCache => {
                if let Some(probe) = lupa.cache_probe() {
                    probe.clear().await.expect("clear the cache");
                }
            }
            Op::Resolve(p, d, requires, live) => {
                for handle in h.all() {
                    resolves.fetch_add(1, Ordering::Relaxed);
                    resolve(handle, &owners, *p, *d, *requires, *live).await?;
                }
            }
            Op::ResolveEverywhere(d) => {
                for p in 0..PROJECTS {
                    for handle in h.all() {
                        resolves.fetch_add(1, Ordering::Relaxed);
                        resolve(handle, &owners, p, Some(*d), true, true).await?;
                    }
                }
            }
        }
    }
    Ok(())
}

async fn open(store: &str, cache: &str) -> Handles {
    let mut config = Config::new(store, cache);
    config.local_cache = true;
    config.key_prefix = format!("{}:", support::unique("lupa_tenant"));
    if store.starts_with("postgres") {
        config.schema = support::unique("lupa_tenant");
        let main = Lupa::open(config.clone()).await.expect("open postgres+redis");
        let mut plain = config;
        plain.local_cache = false;
        let shared_only = Some(Lupa::open(plain).await.expect("open a second handle"));
        Handles { main, shared_only }
    } else {
        Handles { main: Lupa::open(config).await.expect("open"), shared_only: None }
    }
}

async fn close(h: Handles) {
    if let Some(cache) = h.main.cache_backend() {
        let _ = cache.clear(h.main.cache_keys().prefix()).await;
    }
    let _ = h.main.drop_storage().await;
    for l in h.all() {
        l.close().await;
    }
}

fn check(rt: &tokio::runtime::Runtime, store: &str, cache: &str, cases: usize, max_ops: usize) -> Option<String> {
    let label = format!("{}+{}", store.split(':').next().unwrap_or(store), cache.split(':').next().unwrap_or(cache));
    // A PostgreSQL case costs a schema; shrinking there is kept shorter.
    let max_shrink_iters = if store.starts_with("postgres") { 100 } else { 500 };
    let config = PtConfig { cases: cases as u32, failure_persistence: None, max_shrink_iters, ..PtConfig::default() };
    let (ran_cases, ran_ops, resolves) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(op_strategy(), 1..=max_ops), |ops| {
        ran_cases.fetch_add(1, Ordering::Relaxed);
        ran_ops.fetch_add(ops.len(), Ordering::Relaxed);
        rt.block_on(async {
            let h = open(store, cache).await;
            let outcome = run_case(&h, &ops, &resolves).await;
            close(h).await;
            outcome
        })
    });
    println!(
        "tenant_isolation {label}: {} cases, {} operations, {} resolves (shrinking included), {:.1} s",
        ran_cases.load(Ordering::Relaxed),
        ran_ops.load(Ordering::Relaxed),
        resolves.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    match result {
        Ok(()) => None,
        Err(TestError::Abort(why)) => Some(format!("{label}: aborted: {why}")),
        Err(TestError::Fail(why, ops)) => Some(format!("{label}: {why}\n  shrunk to {ops:?}")),
    }
}

#[test]
fn no_resolve_answers_with_another_projects_deployment() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let cases = std::env::var("LUPA_TENANT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let pg_cases = std::env::var("LUPA_TENANT_PG_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let max_ops = std::env::var("LUPA_TENANT_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(80);
    let mut pairs = vec![("memory://".to_string(), "memory://".to_string(), cases)];
    if let Some(db) = support::postgres()
        && let Some(redis) = support::redis()
    {
        pairs.push((db, redis, pg_cases));
    }
    let failures: Vec<String> =
        pairs.iter().filter_map(|(store, cache, n)| check(&rt, store, cache, *n, max_ops)).collect();
    assert!(failures.is_empty(), "tenant isolation broken:\n{}", failures.join("\n"));
}
