//! Many writers at once, as tasks and as OS processes, on PostgreSQL and on
//! SQLite: the invariants hold at every moment (checked with raw SQL on a
//! separate connection), and the history shows production intervals that
//! never overlap. The database itself refuses a raw UPDATE that would break
//! an invariant.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use lupa_core::{Config, CreateDeployment, Environment, ErrorCode, FinalStatus, Lupa, NewProject};
use sqlx::{AssertSqlSafe, Row};

const PROJECTS: [&str; 3] = ["cc_p0", "cc_p1", "cc_p2"];
const ROLE_ENV: &str = "LUPA_TEST_CONCURRENCY_ROLE";

/// splitmix64: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Default, Debug)]
struct Stats {
    ops: AtomicUsize,
    promotions: AtomicUsize,
    errors: std::sync::Mutex<HashMap<String, usize>>,
}

impl Stats {
    fn error(&self, code: ErrorCode) {
        *self.errors.lock().unwrap().entry(code.as_str().to_string()).or_default() += 1;
    }
}

/// One writer: `ops` random operations on the shared projects.
async fn writer(lupa: Lupa, seed: u64, ops: usize, tag: String, stats: Arc<Stats>) {
    let mut rng = Rng(seed);
    let mut made = 0usize;
    for _ in 0..ops {
        let project = PROJECTS[rng.below(PROJECTS.len())];
        let ids: Vec<String> = match lupa.list_deployments(project, Some(50), None).await {
            Ok(page) => page.items.into_iter().map(|d| d.id.to_string()).collect(),
            Err(e) => panic!("listing failed: {e}"),
        };
        let pick = |rng: &mut Rng| (!ids.is_empty()).then(|| ids[rng.below(ids.len())].clone());
        let roll = rng.below(100);
        let result: Result<bool, lupa_core::Error> = if roll < 18 || ids.len() < 3 {
            made += 1;
            let environment = if rng.below(10) == 0 { Environment::Production } else { Environment::Staging };
            lupa.create_deployment(CreateDeployment {
                project: project.into(),
                id: Some(format!("{tag}_{made}")),
                snapshot: "snp".into(),
                environment,
                created_at: None,
            })
            .await
            .map(|_| false)
        } else if roll < 40 {
            let Some(id) = pick(&mut rng) else { continue };
            let status = if rng.below(8) == 0 { FinalStatus::Failed } else { FinalStatus::Ready };
            lupa.set_status(&id, status, None).await.map(|_| false)
        } else if roll < 82 {
            let Some(id) = pick(&mut rng) else { continue };
            lupa.promote(project, &id).await.map(|_| true)
        } else if roll < 89 {
            let Some(id) = pick(&mut rng) else { continue };
            let env = if rng.below(2) == 0 { Environment::Production } else { Environment::Staging };
            lupa.set_environment(project, &id, env).await.map(|_| false)
        } else if roll < 95 {
            let Some(id) = pick(&mut rng) else { continue };
            lupa.delete_deployment(project, &id).await.map(|_| false)
        } else {
            lupa.rollback(project).await.map(|_| true)
        };
        stats.ops.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(true) => {
                stats.promotions.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {}
            Err(e) => {
                // Races between writers legitimately produce these; anything
                // else (a 500 or 503) is a failure.
                assert!(
                    matches!(
                        e.code(),
                        ErrorCode::DeploymentNotFound
                            | ErrorCode::DeploymentNotReady
                            | ErrorCode::InvalidStatusTransition
                            | ErrorCode::ProductionConflict
                            | ErrorCode::NoRollbackTarget
                    ),
                    "unexpected error under concurrency: {e}"
                );
                stats.error(e.code());
            }
        }
    }
}

/// The raw-SQL view of the invariants, from a connection of its own.
enum Checker {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

const BAD_PRODUCTION_SQL: &str = "SELECT \
    (SELECT COUNT(*) FROM (SELECT project_id FROM deployment WHERE environment = 'production' \
        GROUP BY project_id HAVING COUNT(*) > 1) AS doubles) AS doubles, \
    (SELECT COUNT(*) FROM deployment WHERE environment = 'production' AND status <> 'ready') AS unready";

impl Checker {
    async fn violations(&self) -> (i64, i64) {
        match self {
            Checker::Postgres(p) => {
                let r = sqlx::query(BAD_PRODUCTION_SQL).fetch_one(p).await.unwrap();
                (r.get::<i64, _>(0), r.get::<i64, _>(1))
            }
            Checker::Sqlite(p) => {
                let r = sqlx::query(BAD_PRODUCTION_SQL).fetch_one(p).await.unwrap();
                (r.get::<i64, _>(0), r.get::<i64, _>(1))
            }
        }
    }

    async fn exec(&self, sql: &str) -> Result<u64, sqlx::Error> {
        match self {
            Checker::Postgres(p) => {
                sqlx::query(AssertSqlSafe(sql.to_string())).execute(p).await.map(|r| r.rows_affected())
            }
            Checker::Sqlite(p) => {
                sqlx::query(AssertSqlSafe(sql.to_string())).execute(p).await.map(|r| r.rows_affected())
            }
        }
    }
}

struct Target {
    config: Config,
    checker: Checker,
    _dir: Option<TempDir>,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn postgres_target() -> Option<Target> {
    let db = support::postgres()?;
    let redis = support::redis()?;
    let mut config = Config::new(db.clone(), redis);
    config.schema = support::unique("lupa_cc").to_lowercase();
    config.key_prefix = format!("{}:", config.schema);
    config.pool_size = 10;
    // Migrate, then check from a pool of the checker's own.
    Lupa::open(config.clone()).await.unwrap().close().await;
    let checker = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(
            db.parse::<sqlx::postgres::PgConnectOptions>().unwrap().options([("search_path", config.schema.as_str())]),
        )
        .await
        .unwrap();
    Some(Target { config, checker: Checker::Postgres(checker), _dir: None })
}

async fn sqlite_target() -> Target {
    let dir = std::env::temp_dir().join(support::unique("lupa_cc"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("lupa.db").display());
    let mut config = Config::new(url.clone(), "memory://");
    config.pool_size = 8;
    Lupa::open(config.clone()).await.unwrap().close().await;
    let checker = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    Target { config, checker: Checker::Sqlite(checker), _dir: Some(TempDir(dir)) }
}

async fn seed_projects(lupa: &Lupa) {
    for p in PROJECTS {
        lupa.create_project(NewProject { id: Some(p.into()), org_id: "org".into(), name: p.into() }).await.unwrap();
    }
}

/// Polls the invariants until `done`, failing on the first violation.
fn spawn_checker(checker: Arc<Checker>, done: Arc<AtomicBool>) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut checks = 0;
        while !done.load(Ordering::Acquire) {
            let (doubles, unready) = checker.violations().await;
            assert_eq!((doubles, unready), (0, 0), "invariant broken during the run");
            checks += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        checks
    })
}

/// Replays each project's history: a deployment becomes production only
/// when the previous production has been demoted, or no longer exists.
/// Returns how many promotions the history holds.
async fn check_history(lupa: &Lupa) -> usize {
    let mut promotions = 0;
    for p in PROJECTS {
        let existing: HashSet<String> = {
            let mut ids = HashSet::new();
            let mut cursor = None;
            loop {
                let page = lupa.list_deployments(p, Some(1000), cursor.as_deref()).await.unwrap();
                ids.extend(page.items.iter().map(|d| d.id.to_string()));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            ids
        };
        let mut history = Vec::new();
        let mut cursor = None;
        loop {
            let page = lupa.history(p, Some(1000), cursor.as_deref()).await.unwrap();
            history.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        history.reverse();
        for pair in history.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1, "history sequence has a gap in {p}");
        }
        let mut current: Option<String> = None;
        for e in &history {
            let id = e.deployment_id.to_string();
            match (e.from, e.to) {
                (Environment::Production, Environment::Staging) => {
                    assert_eq!(current.as_deref(), Some(id.as_str()), "{p} seq {}: demoted a non-production", e.seq);
                    current = None;
                }
                (_, Environment::Production) => {
                    if let Some(c) = &current {
                        assert!(
                            !existing.contains(c),
                            "{p} seq {}: {id} became production while {c} still was (overlap)",
                            e.seq
                        );
                    }
                    current = Some(id);
                    promotions += 1;
                }
                _ => {}
            }
        }
    }
    promotions
}

async fn raw_updates_are_refused(lupa: &Lupa, checker: &Checker) {
    let project = "cc_raw";
    lupa.create_project(NewProject { id: Some(project.into()), org_id: "org".into(), name: "raw".into() })
        .await
        .unwrap();
    for id in ["raw_a", "raw_b", "raw_c"] {
        lupa.create_deployment(CreateDeployment {
            project: project.into(),
            id: Some(id.into()),
            snapshot: "snp".into(),
            environment: Environment::Staging,
            created_at: None,
        })
        .await
        .unwrap();
    }
    lupa.set_status("raw_a", FinalStatus::Ready, None).await.unwrap();
    lupa.set_status("raw_b", FinalStatus::Ready, None).await.unwrap();
    lupa.promote(project, "raw_a").await.unwrap();
    let second = checker.exec("UPDATE deployment SET environment = 'production' WHERE id = 'raw_b'").await;
    assert!(second.is_err(), "a second production must be refused by the database");
    let unready = checker.exec("UPDATE deployment SET environment = 'production' WHERE id = 'raw_c'").await;
    assert!(unready.is_err(), "a processing production must be refused by the database");
    let demote_status = checker.exec("UPDATE deployment SET status = 'failed' WHERE id = 'raw_a'").await;
    assert!(demote_status.is_err(), "production cannot become failed");
    assert_eq!(checker.violations().await, (0, 0));
}

/// Prints the figures; `promotions` counts the history's changes of
/// production (a no-op promote succeeds but is not counted).
fn report(label: &str, stats: &Stats, checks: usize, promotions: usize) {
    let errors = stats.errors.lock().unwrap().clone();
    println!(
        "{label}: {} operations, {} successful promote/rollback calls, {promotions} changes of production in the history, \
         {checks} invariant checks during the run, expected errors in this process {errors:?}",
        stats.ops.load(Ordering::Relaxed),
        stats.promotions.load(Ordering::Relaxed),
    );
}

async fn run_tasks(target: Target, label: &str) {
    let lupa = Lupa::open(target.config.clone()).await.unwrap();
    seed_projects(&lupa).await;
    let checker = Arc::new(target.checker);
    let done = Arc::new(AtomicBool::new(false));
    let check_task = spawn_checker(checker.clone(), done.clone());
    let stats = Arc::new(Stats::default());
    let writers: Vec<_> =
        (0..8).map(|i| tokio::spawn(writer(lupa.clone(), 1000 + i, 160, format!("t{i}"), stats.clone()))).collect();
    for w in writers {
        w.await.expect("a writer panicked");
    }
    done.store(true, Ordering::Release);
    let checks = check_task.await.expect("the checker found a violation");
    assert_eq!(checker.violations().await, (0, 0));
    let promotions = check_history(&lupa).await;
    report(label, &stats, checks, promotions);
    assert!(stats.ops.load(Ordering::Relaxed) >= 1000);
    assert!(promotions >= 200, "too few promotions to mean anything");
    raw_updates_are_refused(&lupa, &checker).await;
    let _ = lupa.drop_storage().await;
    lupa.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_postgres() {
    let Some(target) = postgres_target().await else { return };
    run_tasks(target, "postgres, 8 tasks").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_sqlite() {
    run_tasks(sqlite_target().await, "sqlite, 8 tasks").await;
}

/// Runs the writers in two child processes of this same test binary.
async fn run_processes(target: Target, label: &str) {
    let lupa = Lupa::open(target.config.clone()).await.unwrap();
    seed_projects(&lupa).await;
    let checker = Arc::new(target.checker);
    let done = Arc::new(AtomicBool::new(false));
    let check_task = spawn_checker(checker.clone(), done.clone());
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|i| {
            tokio::process::Command::new(&exe)
                .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
                .env(ROLE_ENV, format!("{i}"))
                .env("LUPA_TEST_CC_STORE", &target.config.store)
                .env("LUPA_TEST_CC_CACHE", &target.config.cache)
                .env("LUPA_TEST_CC_SCHEMA", &target.config.schema)
                .env("LUPA_TEST_CC_PREFIX", &target.config.key_prefix)
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn a child writer")
        })
        .collect();
    let (mut ops, mut promotions) = (0usize, 0usize);
    for child in children {
        let out = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
            .await
            .expect("a child writer hung")
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "a child writer failed:\n{text}");
        let line = text
            .lines()
            .find_map(|l| l.split_once("CHILD_STATS ").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no stats line from a child writer:\n{text}"));
        let (o, p) = line.split_once(' ').unwrap();
        ops += o.parse::<usize>().unwrap();
        promotions += p.parse::<usize>().unwrap();
    }
    done.store(true, Ordering::Release);
    let checks = check_task.await.expect("the checker found a violation");
    assert_eq!(checker.violations().await, (0, 0));
    let changes = check_history(&lupa).await;
    let stats = Stats::default();
    stats.ops.store(ops, Ordering::Relaxed);
    stats.promotions.store(promotions, Ordering::Relaxed);
    report(label, &stats, checks, changes);
    assert!(ops >= 1000);
    assert!(changes >= 200, "too few promotions to mean anything");
    let _ = lupa.drop_storage().await;
    lupa.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_postgres() {
    let Some(target) = postgres_target().await else { return };
    run_processes(target, "postgres, 2 processes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sqlite() {
    run_processes(sqlite_target().await, "sqlite, 2 processes").await;
}

/// The child side of the process tests; does nothing when run normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writer() {
    let Ok(role) = std::env::var(ROLE_ENV) else { return };
    let var = |n: &str| std::env::var(n).unwrap();
    let mut config = Config::new(var("LUPA_TEST_CC_STORE"), var("LUPA_TEST_CC_CACHE"));
    config.schema = var("LUPA_TEST_CC_SCHEMA");
    config.key_prefix = var("LUPA_TEST_CC_PREFIX");
    let lupa = Lupa::open(config).await.unwrap();
    let stats = Arc::new(Stats::default());
    let seed: u64 = 7000 + role.parse::<u64>().unwrap() * 100;
    let writers: Vec<_> = (0..4)
        .map(|i| tokio::spawn(writer(lupa.clone(), seed + i, 170, format!("c{role}w{i}"), stats.clone())))
        .collect();
    for w in writers {
        w.await.expect("a writer panicked");
    }
    println!("CHILD_STATS {} {}", stats.ops.load(Ordering::Relaxed), stats.promotions.load(Ordering::Relaxed));
    lupa.close().await;
}
