//! Model-based test: random operation sequences over a few projects and
//! deployment ids, run against the real `Lupa` and against the pure model of
//! `semantics.md` in `model/mod.rs`; every result (the fields a conformance
//! step compares, or the exact error code and HTTP status) must agree.
//!
//! A sequence is a conformance scenario whose expectations come from the
//! model, run by the conformance runner on a fresh, isolated store and cache
//! (memory+memory, sqlite+memory, postgres+redis; the in-process tier on).
//! When one fails, proptest shrinks it and the shrunk scenario is written to
//! `tests/regressions/` as a vector file, which the conformance test runs
//! from then on.
//!
//! Bounded for CI (well under a minute in a debug build). Longer runs:
//!
//! ```text
//! LUPA_MODEL_CASES=10000 LUPA_MODEL_PG_CASES=300 LUPA_MODEL_OPS=80 \
//!     cargo test -p lupa-core --test model_based -- --nocapture
//! ```
//!
//! (`LUPA_MODEL_LOCAL=0` as well: the same without the in-process tier.)

mod model;
mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use lupa_core::conformance::{ConfigBackend, Scenario, VectorFile, run};
use model::{Caller, FAILED, Model, PROCESSING, PRODUCTION, READY, STAGING};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestError, TestRunner};
use serde_json::{Value, json};

const PROJECTS: &[&str] = &["p0", "p1", "p2"];
/// Ids whose byte order differs from a case-insensitive or locale order
/// ('-' < digits < upper case < '_' < lower case), so tie-breaks show it.
const DEPLOYMENTS: &[&str] = &["d0", "D0", "d_0", "d-0", "d00"];

/// Whole API keys: valid of every form, and malformed ones.
const KEYS: &[&str] = &[
    "lupa_sk_live_7x9Kp2mN4qR8tV3wY6zB1cD5fG0hJ",
    "lupa_pk_live_Aa9Bb8Cc7Dd6Ee5Ff4Gg3Hh2Ii1Jj",
    "lupa_sk_test_7x9Kp2mN4qR8tV3wY6zB1cD5fG0hJ",
    "lupa_pk_test_Aa9Bb8Cc7Dd6Ee5Ff4Gg3Hh2Ii1Jj",
    "lupa_sk_7x9Kp2mN4qR8tV3wY6zB1cD5fG0hJabc",
    "lupa_sk_short",
    "lupa_xk_live_abc",
    "Lupa_sk_live_abc",
    "lupa_sk_live_abc\n",
    "",
];

/// Values that parse as none of the seed's values: not JSON, JSON of the
/// wrong shape, an environment or status that does not exist, an id with a
/// character ids cannot have, nothing at all.
const CORRUPT: &[&str] = &[
    "{not json #",
    "",
    "[1, 2]",
    "null",
    "{\"projectId\": 42}",
    "{\"projectId\": \"p0\", \"environment\": \"prod\", \"status\": \"ready\"}",
    "{\"projectId\": \"p0\", \"environment\": \"production\", \"status\": \"done\"}",
    "d0 d1",
    "p0\n",
];

#[derive(Debug, Clone)]
enum Header {
    None,
    Empty,
    Malformed,
    Id(usize),
    /// The id of a deployment that exists now (of any project).
    Existing(usize),
}

/// A deployment (with a project) an operation acts on: any id with any
/// project, or one that exists now in the model with its own project
/// (picked by index when the scenario is built, so a shrunk sequence still
/// means something), which reaches the success paths far more often.
#[derive(Debug, Clone)]
enum Target {
    Raw(usize, usize),
    Existing(usize),
    /// A malformed project id (true) or deployment id (false).
    Malformed(bool),
}

#[derive(Debug, Clone)]
enum Op {
    CreateProject(usize),
    DeleteProject(usize),
    /// Project, deployment, created for production, how `created_at`
    /// advances and is written (see `advance`).
    CreateDeployment(usize, usize, bool, u8),
    /// The same, then `ready`, then (when the flag says) promote: a
    /// burst that gives rollback and resolution something to choose from.
    CreateReady(usize, usize, bool, u8, bool),
    /// To `ready`, `failed`, or `processing` (not a target).
    SetStatus(Target, &'static str),
    Promote(Target),
    SetEnvironment(Target, bool),
    DeleteDeployment(Target),
    Rollback(usize),
    History(usize),
    GetDeployment(usize),
    ListDeployments(usize),
    /// Resolve for the project of the target (a raw target's own project),
    /// with a Deployment-Id header.
    Resolve(Target, Header, bool, CallerPick),
    CacheClear,
    /// A value that does not parse (CORRUPT), under one of the seed's keys.
    CacheCorrupt(u8, usize, usize, usize),
}

#[derive(Debug, Clone)]
enum CallerPick {
    Env(bool),
    Key(usize),
    Internal(Option<bool>),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    // Mostly the first project, rarely the one that starts absent.
    let p = || prop_oneof![5 => Just(0usize), 4 => Just(1usize), 1 => Just(2usize)];
    let d = || 0..DEPLOYMENTS.len();
    let target = move || {
        prop_oneof![
            1 => (p(), d()).prop_map(|(p, d)| Target::Raw(p, d)),
            3 => (0usize..8).prop_map(Target::Existing),
            1 => prop::bool::weighted(0.1).prop_map(Target::Malformed),
        ]
    };
    let header = prop_oneof![
        4 => Just(Header::None),
        1 => Just(Header::Empty),
        1 => Just(Header::Malformed),
        2 => d().prop_map(Header::Id),
        3 => (0usize..8).prop_map(Header::Existing),
    ];
    let caller = prop_oneof![
        4 => any::<bool>().prop_map(CallerPick::Env),
        2 => (0..KEYS.len()).prop_map(CallerPick::Key),
        2 => proptest::option::of(any::<bool>()).prop_map(CallerPick::Internal),
    ];
    prop_oneof![
        3 => p().prop_map(Op::CreateProject),
        1 => p().prop_map(Op::DeleteProject),
        8 => (p(), d(), prop::bool::weighted(0.3), 0u8..6).prop_map(|(p, d, prod, t)| Op::CreateDeployment(p, d, prod, t)),
        5 => (p(), d(), prop::bool::weighted(0.3), 0u8..6, any::<bool>())
            .prop_map(|(p, d, prod, t, promote)| Op::CreateReady(p, d, prod, t, promote)),
        8 => (target(), prop_oneof![8 => Just(READY), 2 => Just(FAILED), 1 => Just(PROCESSING)])
            .prop_map(|(t, s)| Op::SetStatus(t, s)),
        5 => target().prop_map(Op::Promote),
        3 => (target(), any::<bool>()).prop_map(|(t, e)| Op::SetEnvironment(t, e)),
        2 => target().prop_map(Op::DeleteDeployment),
        5 => p().prop_map(Op::Rollback),
        1 => p().prop_map(Op::History),
        1 => d().prop_map(Op::GetDeployment),
        2 => p().prop_map(Op::ListDeployments),
        12 => (target(), header, prop::bool::weighted(0.8), caller).prop_map(|(t, h, r, c)| Op::Resolve(t, h, r, c)),
        1 => Just(Op::CacheClear),
        2 => (0u8..5, p(), d(), 0..CORRUPT.len()).prop_map(|(k, p, d, v)| Op::CacheCorrupt(k, p, d, v)),
    ]
}

/// `created_at` for a clock in microseconds: `step` picks the advance
/// (none: a tie; a microsecond; a second), and whether the text is in UTC or
/// at +01:00 (the same instant).
fn advance(clock: &mut i64, step: u8) -> String {
    *clock += [0, 1, 1_000_000][usize::from(step % 3)];
    let (offset, suffix) = if step >= 3 { (3600, "+01:00") } else { (0, "Z") };
    let secs = *clock / 1_000_000 + offset;
    let micros = *clock % 1_000_000;
    format!("2025-01-01T{:02}:{:02}:{:02}.{micros:06}{suffix}", secs / 3600, (secs / 60) % 60, secs % 60)
}

/// The scenario of `ops`, after the creation of two of the three projects
/// (so that most operations reach a project): each step with the model's
/// expectation.
fn scenario(ops: &[Op]) -> Scenario {
    let ops: Vec<Op> = [Op::CreateProject(0), Op::CreateProject(1)].into_iter().chain(ops.iter().cloned()).collect();
    let mut m = Model::default();
    let mut clock = 0i64;
    let mut steps = Vec::new();
    let mut cache = false;
    for op in &ops {
        let existing = |i: usize| {
            let all: Vec<(&String, &model::Deployment)> = m.deployments.iter().collect();
            all.get(i % all.len().max(1)).map(|(d, dep)| ((*d).clone(), dep.project.clone()))
        };
        let target = |t: &Target| -> (String, String) {
            match t {
                Target::Raw(p, d) => (PROJECTS[*p].to_owned(), DEPLOYMENTS[*d].to_owned()),
                Target::Malformed(true) => ("not a project!".to_owned(), DEPLOYMENTS[0].to_owned()),
                Target::Malformed(false) => (PROJECTS[0].to_owned(), "not/an/id".to_owned()),
                Target::Existing(i) => match existing(*i) {
                    Some((d, p)) => (p, d),
                    None => (PROJECTS[0].to_owned(), DEPLOYMENTS[i % DEPLOYMENTS.len()].to_owned()),
                },
            }
        };
        if let Op::CreateReady(p, d, prod, dt, promote) = op {
            let (p, d) = (PROJECTS[*p], DEPLOYMENTS[*d]);
            let created_at = advance(&mut clock, *dt);
            let env = if *prod { PRODUCTION } else { STAGING };
            let mut burst = vec![
                (
                    json!({"op": "create_deployment", "project": p, "deployment": d,
                        "environment": env, "created_at": created_at}),
                    m.create_deployment(p, d, *prod, clock),
                ),
                (json!({"op": "set_status", "deployment": d, "status": READY}), m.set_status(d, READY)),
            ];
            if *promote {
                burst.push((json!({"op": "promote", "project": p, "deployment": d}), m.promote(p, d)));
            }
            steps.extend(burst.into_iter().map(|(step, outcome)| with_expect(step, outcome)));
            continue;
        }
        let (step, outcome) = match op {
            Op::CreateReady(..) => unreachable!("handled above"),
            Op::CreateProject(p) => {
                let p = PROJECTS[*p];
                (json!({"op": "create_project", "project": p}), m.create_project(p))
            }
            Op::DeleteProject(p) => {
                let p = PROJECTS[*p];
                (json!({"op": "delete_project", "project": p}), m.delete_project(p))
            }
            Op::CreateDeployment(p, d, prod, dt) => {
                let (p, d) = (PROJECTS[*p], DEPLOYMENTS[*d]);
                let created_at = advance(&mut clock, *dt);
                let env = if *prod { PRODUCTION } else { STAGING };
                let step = json!({"op": "create_deployment", "project": p, "deployment": d,
                    "environment": env, "created_at": created_at});
                (step, m.create_deployment(p, d, *prod, clock))
            }
            Op::SetStatus(t, s) => {
                let (_, d) = target(t);
                (json!({"op": "set_status", "deployment": d, "status": s}), m.set_status(&d, s))
            }
            Op::Promote(t) => {
                let (p, d) = target(t);
                (json!({"op": "promote", "project": p, "deployment": d}), m.promote(&p, &d))
            }
            Op::SetEnvironment(t, prod) => {
                let (p, d) = target(t);
                let env = if *prod { PRODUCTION } else { STAGING };
                let step = json!({"op": "set_environment", "project": p, "deployment": d, "environment": env});
                (step, m.set_environment(&p, &d, env))
            }
            Op::DeleteDeployment(t) => {
                let (p, d) = target(t);
                (json!({"op": "delete_deployment", "project": p, "deployment": d}), m.delete_deployment(&p, &d))
            }
            Op::Rollback(p) => {
                let p = PROJECTS[*p];
                (json!({"op": "rollback", "project": p}), m.rollback(p))
            }
            Op::History(p) => {
                let p = PROJECTS[*p];
                (json!({"op": "history", "project": p}), m.history(p))
            }
            Op::GetDeployment(d) => {
                let d = DEPLOYMENTS[*d];
                (json!({"op": "get_deployment", "deployment": d}), m.get_deployment(d))
            }
            Op::ListDeployments(p) => {
                let p = PROJECTS[*p];
                (json!({"op": "list_deployments", "project": p}), m.list_deployments(p))
            }
            Op::Resolve(t, header, requires, caller) => {
                let (p, _) = target(t);
                let p = p.as_str();
                let existing_id = match header {
                    Header::Existing(i) => Some(existing(*i).map_or_else(|| DEPLOYMENTS[0].to_owned(), |(d, _)| d)),
                    _ => None,
                };
                let header = match header {
                    Header::None => None,
                    Header::Empty => Some(""),
                    Header::Malformed => Some("not an id!"),
                    Header::Id(d) => Some(DEPLOYMENTS[*d]),
                    Header::Existing(_) => existing_id.as_deref(),
                };
                let mut step = json!({"op": "resolve", "project": p, "requires_deployment": requires});
                if let Some(h) = header {
                    step["deployment_id"] = json!(h);
                }
                let caller = match caller {
                    CallerPick::Env(live) => {
                        let env = if *live { "live" } else { "test" };
                        step["api_key_environment"] = json!(env);
                        Caller::KeyEnvironment(env)
                    }
                    CallerPick::Key(k) => {
                        step["api_key"] = json!(KEYS[*k]);
                        Caller::ApiKey(KEYS[*k].to_owned())
                    }
                    CallerPick::Internal(target) => {
                        step["internal"] = json!(true);
                        let target = target.map(|prod| if prod { PRODUCTION } else { STAGING });
                        if let Some(t) = target {
                            step["target_environment"] = json!(t);
                        }
                        Caller::Internal(target)
                    }
                };
                let outcome = m.resolve(p, header, *requires, &caller);
                (step, outcome)
            }
            Op::CacheClear => {
                cache = true;
                (json!({"op": "cache_clear"}), Ok(json!({})))
            }
            Op::CacheCorrupt(k, p, d, v) => {
                cache = true;
                let (p, d) = (PROJECTS[*p], DEPLOYMENTS[*d]);
                let key = match k {
                    0 => format!("project:{p}:exists"),
                    1 => format!("project:{p}:production_deployment"),
                    2 => format!("project:{p}:staging_deployment"),
                    3 => format!("deployment:{d}:project"),
                    _ => format!("deployment:{d}:info"),
                };
                // A plain id value (pointers, ownership) that is a well-formed
                // id ("null") parses: semantics.md promises a fallback to the
                // store only for values that do not parse, so such a value
                // is not sent to an id key (a dangling pointer is trusted,
                // as the seed's middleware trusts it).
                let value = match CORRUPT[*v] {
                    v if (1..=3).contains(k) && model::valid_id(v) => CORRUPT[0],
                    v => v,
                };
                (json!({"op": "cache_set", "key": key, "value": value, "ttl": 600}), Ok(json!({})))
            }
        };
        steps.push(with_expect(step, outcome));
    }
    Scenario {
        name: "model-based sequence".into(),
        requires: if cache { vec!["cache".into()] } else { Vec::new() },
        steps,
    }
}

/// The step with the model's outcome as its expectation.
fn with_expect(mut step: Value, outcome: model::Outcome) -> Value {
    step["expect"] = match outcome {
        Ok(fields) => fields,
        Err(code) => json!({"error": code, "http_status": model::http_status(code)}),
    };
    step
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `cases` random sequences on `store`+`cache`; a failure is shrunk,
/// written as a regression vector, and fails the test.
fn check(rt: &tokio::runtime::Runtime, store: &str, cache: &str, cases: usize, max_ops: usize) -> Option<String> {
    let mut backend = ConfigBackend::new(store, cache);
    // The in-process tier is on, as in production; LUPA_MODEL_LOCAL=0 turns
    // it off for a hand run that sends every question to the shared cache.
    backend.config.local_cache = std::env::var("LUPA_MODEL_LOCAL").map_or(true, |v| v != "0");
    let label = format!("{}+{}", store.split(':').next().unwrap_or(store), cache.split(':').next().unwrap_or(cache));
    // A PostgreSQL case costs a schema; shrinking there is kept shorter.
    let max_shrink_iters = if store.starts_with("postgres") { 400 } else { 2000 };
    let config = PtConfig { cases: cases as u32, failure_persistence: None, max_shrink_iters, ..PtConfig::default() };
    let ran_cases = AtomicUsize::new(0);
    let ran_ops = AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(op_strategy(), 1..=max_ops), |ops| {
        ran_cases.fetch_add(1, Ordering::Relaxed);
        let sc = scenario(&ops);
        ran_ops.fetch_add(sc.steps.len(), Ordering::Relaxed);
        let file = VectorFile { path: PathBuf::from("model_based"), scenarios: vec![sc] };
        let report = rt.block_on(run(std::slice::from_ref(&file), &backend));
        match report.failures.first() {
            None if report.passed == 1 => Ok(()),
            None => Err(TestCaseError::fail(format!("not run: {}", report.summary()))),
            Some(f) => Err(TestCaseError::fail(f.to_string())),
        }
    });
    println!(
        "model_based {label}: {} cases, {} operations (shrinking included), {:.1} s",
        ran_cases.load(Ordering::Relaxed),
        ran_ops.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    match result {
        Ok(()) => None,
        Err(TestError::Abort(why)) => Some(format!("{label}: aborted: {why}")),
        Err(TestError::Fail(why, ops)) => {
            let dir = support::regressions_dir();
            std::fs::create_dir_all(&dir).expect("create tests/regressions");
            let name = support::unique(&format!("model_{}", label.replace('+', "_")));
            let path = dir.join(format!("{name}.json"));
            let mut sc = scenario(&ops);
            sc.name = format!("shrunk on {label}: {why}");
            let doc = json!({
                "description": format!("A model-based sequence that failed on {label}, shrunk; the expectations are the model's (semantics.md)."),
                "scenarios": [{
                    "name": sc.name,
                    "requires": sc.requires,
                    "steps": Value::Array(sc.steps),
                }],
            });
            std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").expect("write the regression");
            Some(format!("{label}: {why}\n  shrunk to {} operations, written to {}", ops.len(), path.display()))
        }
    }
}

#[test]
fn the_implementation_answers_as_the_model() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let cases = env_usize("LUPA_MODEL_CASES", 1000);
    let pg_cases = env_usize("LUPA_MODEL_PG_CASES", 40);
    let max_ops = env_usize("LUPA_MODEL_OPS", 50);
    let mut pairs = vec![
        ("memory://".to_string(), "memory://".to_string(), cases),
        ("sqlite::memory:".to_string(), "memory://".to_string(), cases / 4),
    ];
    if let Some(db) = support::postgres()
        && let Some(redis) = support::redis()
    {
        pairs.push((db, redis, pg_cases));
    }
    let failures: Vec<String> =
        pairs.iter().filter_map(|(store, cache, n)| check(&rt, store, cache, *n, max_ops)).collect();
    assert!(failures.is_empty(), "the implementation and the model disagree:\n{}", failures.join("\n"));
}
