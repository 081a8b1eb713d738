//! `lupa-bench`: the Rust side of the benchmarks (see `bench/README.md`).
//!
//! ```text
//! lupa-bench seed --store URL --schema S --projects N
//! lupa-bench run --store URL --cache URL --schema S --prefix P --case CASE --ops N [--local on|off] [--seconds S]
//! lupa-bench warm-loop --ops N          # for callgrind: N warm in-process resolves
//! lupa-bench memory --projects N        # resident bytes per in-process entry
//! lupa-bench staleness --store URL --cache URL --schema S [--rounds N] [--child-cache URL]
//! lupa-bench faults [--seconds 32] [--database URL] [--out bench/reliability.jsonl]   # see faults.rs
//! ```
//!
//! `run` prints one JSON line: {"impl","case","ops","ops_per_s","p50_us","p99_us"}.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lupa_core::store::{
    DeploymentLookup, EnvironmentLookup, ListCursor, PendingInvalidation, ProjectInfo, ProjectTx, Store,
};
use lupa_core::{
    Caller, Config, Deployment, DeploymentId, Environment, HistoryEntry, KeyEnvironment, Lupa, Options, OrgId, Project,
    ProjectId, ResolveRequest,
};
use serde_json::json;

mod faults;

type Failure = Box<dyn std::error::Error + Send + Sync>;

struct Args(HashMap<String, String>);

impl Args {
    fn parse(rest: &[String]) -> Result<Args, Failure> {
        let mut map = HashMap::new();
        let mut it = rest.iter();
        while let Some(flag) = it.next() {
            let name = flag.strip_prefix("--").ok_or_else(|| format!("unexpected argument {flag}"))?;
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            map.insert(name.to_string(), value.clone());
        }
        Ok(Args(map))
    }
    fn get(&self, name: &str) -> Result<String, Failure> {
        self.0.get(name).cloned().ok_or_else(|| format!("--{name} is required").into())
    }
    fn or(&self, name: &str, default: &str) -> String {
        self.0.get(name).cloned().unwrap_or_else(|| default.to_string())
    }
    fn number(&self, name: &str, default: usize) -> Result<usize, Failure> {
        Ok(self.or(name, &default.to_string()).parse()?)
    }
}

fn main() -> Result<(), Failure> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        return Err("usage: lupa-bench seed|run|warm-loop|memory|staleness|staleness-child|faults|faults-child [--flag value]...".into());
    };
    let args = Args::parse(rest)?;
    match command.as_str() {
        // One thread: the instruction count is of the resolve, not of wake-ups.
        "warm-loop" => tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(warm_loop(args)),
        other => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            match other {
                "seed" => rt.block_on(seed(args)),
                "run" => rt.block_on(run(args)),
                "memory" => rt.block_on(memory(args)),
                "staleness" => rt.block_on(staleness(args)),
                "staleness-child" => rt.block_on(staleness_child(args)),
                "faults" => rt.block_on(faults::faults(args)),
                "faults-child" => rt.block_on(faults::faults_child(args)),
                _ => Err(format!("unknown command {other}").into()),
            }
        }
    }
}

fn project_id(i: usize) -> String {
    format!("bp{i:05}")
}

/// Projects bp00000.. with a ready production, a ready staging and a
/// processing deployment each, written in bulk.
async fn seed(args: Args) -> Result<(), Failure> {
    let store = args.get("store")?;
    let schema = args.get("schema")?;
    let projects = args.number("projects", 10_000)?;
    let mut config = Config::new(store.clone(), "none");
    config.schema = schema.clone();
    Lupa::open(config).await?.close().await; // migrations
    let options: sqlx::postgres::PgConnectOptions = store.parse()?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await?;
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    sqlx::query("TRUNCATE project, deployment, lupa_deployment_history, lupa_cache_outbox").execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO project (id, org_id, name, created_at, updated_at, lupa_version) \
         SELECT 'bp' || lpad(i::text, 5, '0'), 'org_bench', 'Bench ' || i, now(), now(), nextval('lupa_version_seq') \
         FROM generate_series(0, $1 - 1) AS i",
    )
    .bind(projects as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO deployment (id, project_id, snapshot_id, environment, status, created_at, updated_at) \
         SELECT id || '_prod', id, 'snp_bench', 'production', 'ready', now() - interval '3 hours', now() FROM project \
         UNION ALL SELECT id || '_stg', id, 'snp_bench', 'staging', 'ready', now() - interval '2 hours', now() FROM project \
         UNION ALL SELECT id || '_proc', id, 'snp_bench', 'staging', 'processing', now() - interval '1 hour', now() FROM project",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(&pool).await?;
    eprintln!("seeded {projects} projects with 3 deployments each in {:?}", started.elapsed());
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Counts the commands a Redis server has run (`INFO commandstats`), so a
/// case can report the calls its timed region made.
struct CommandCounter {
    conn: Option<redis::aio::MultiplexedConnection>,
}

impl CommandCounter {
    async fn new(cache: &str) -> CommandCounter {
        let conn = if cache.starts_with("redis") {
            match redis::Client::open(cache) {
                Ok(c) => c.get_multiplexed_async_connection().await.ok(),
                Err(_) => None,
            }
        } else {
            None
        };
        CommandCounter { conn }
    }

    async fn calls(&mut self) -> Option<u64> {
        let conn = self.conn.as_mut()?;
        let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await.ok()?;
        Some(
            info.lines()
                .filter_map(|l| {
                    l.split_once("calls=").and_then(|(_, rest)| rest.split(',').next()?.parse::<u64>().ok())
                })
                .sum(),
        )
    }
}

fn report(implementation: &str, case: &str, mut latencies: Vec<Duration>, wall: Duration, redis_calls: Option<u64>) {
    latencies.sort();
    let ops = latencies.len();
    let mut line = json!({
        "impl": implementation,
        "case": case,
        "ops": ops,
        "ops_per_s": (ops as f64 / wall.as_secs_f64()).round(),
        "p50_us": (percentile(&latencies, 0.50) * 10.0).round() / 10.0,
        "p99_us": (percentile(&latencies, 0.99) * 10.0).round() / 10.0,
    });
    if let Some(calls) = redis_calls {
        line["redis_calls_timed"] = json!(calls);
    }
    println!("{line}");
}

fn live(project: &str) -> ResolveRequest {
    ResolveRequest::new(project, Caller::KeyEnvironment(KeyEnvironment::Live))
}

/// A fixed pseudo-random order of project indexes (splitmix64).
fn order(n: usize, projects: usize, seed: u64) -> Vec<usize> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) % projects as u64) as usize
        })
        .collect()
}

async fn run(args: Args) -> Result<(), Failure> {
    let case = args.get("case")?;
    let ops = args.number("ops", 10_000)?;
    let projects = args.number("projects", 10_000)?;
    let seconds = args.number("seconds", 60)?;
    let local = args.or("local", "on") == "on";
    let mut config = Config::new(args.get("store")?, args.or("cache", "none"));
    config.schema = args.or("schema", "public");
    config.key_prefix = args.or("prefix", "");
    config.local_cache = local;
    config.pool_size = 16;
    let implementation = if local { "rust-core" } else { "rust-core-redis-only" };
    let mut counter = CommandCounter::new(&config.cache).await;
    let lupa = Lupa::open(config).await?;
    let deadline = Instant::now() + Duration::from_secs(seconds as u64);
    let mut latencies = Vec::with_capacity(ops);
    match case.as_str() {
        "warm_seq" | "explicit_seq" => {
            let picks = order(ops, projects, 42);
            let request = |i: usize| {
                let p = project_id(i);
                if case == "explicit_seq" { live(&p).deployment_id(format!("{p}_stg")) } else { live(&p) }
            };
            for &i in &picks {
                lupa.resolve(&request(i)).await?;
            }
            let before = counter.calls().await;
            let wall = Instant::now();
            for &i in &picks {
                if Instant::now() > deadline {
                    break;
                }
                let r = request(i);
                let t = Instant::now();
                lupa.resolve(&r).await?;
                latencies.push(t.elapsed());
            }
            let wall = wall.elapsed();
            let calls = timed_calls(before, counter.calls().await, 0);
            report(implementation, &case, latencies, wall, calls);
        }
        "warm_c64" => {
            let picks = Arc::new(order(ops, projects, 42));
            for &i in picks.iter() {
                lupa.resolve(&live(&project_id(i))).await?;
            }
            let next = Arc::new(AtomicUsize::new(0));
            let before = counter.calls().await;
            let wall = Instant::now();
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let (lupa, picks, next) = (lupa.clone(), picks.clone(), next.clone());
                    tokio::spawn(async move {
                        let mut mine = Vec::new();
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k >= picks.len() || Instant::now() > deadline {
                                return Ok::<_, lupa_core::Error>(mine);
                            }
                            let r = live(&project_id(picks[k]));
                            let t = Instant::now();
                            lupa.resolve(&r).await?;
                            mine.push(t.elapsed());
                        }
                    })
                })
                .collect();
            for t in tasks {
                latencies.extend(t.await??);
            }
            let wall = wall.elapsed();
            let calls = timed_calls(before, counter.calls().await, 0);
            report(implementation, &case, latencies, wall, calls);
        }
        "cold_seq" => {
            let probe = lupa.cache_probe();
            let before = counter.calls().await;
            let mut resets = 0u64;
            let mut wall = Duration::ZERO;
            for i in 0..ops.min(projects) {
                if Instant::now() > deadline {
                    break;
                }
                let p = project_id(i);
                if let Some(probe) = &probe {
                    for key in [format!("project:{p}:exists"), format!("project:{p}:production_deployment")] {
                        probe.set(&key, "", Duration::from_millis(1)).await?;
                        resets += 1;
                    }
                }
                let r = live(&p);
                tokio::time::sleep(Duration::from_millis(2)).await; // the 1 ms entries are gone
                let t = Instant::now();
                lupa.resolve(&r).await?;
                let took = t.elapsed();
                wall += took;
                latencies.push(took);
            }
            let calls = timed_calls(before, counter.calls().await, resets);
            report(implementation, &case, latencies, wall, calls);
        }
        "promote_seq" => {
            let n = projects.min(ops).max(1);
            let before = counter.calls().await;
            let wall = Instant::now();
            for k in 0..ops {
                if Instant::now() > deadline {
                    break;
                }
                let p = project_id(k % n);
                let target = if (k / n) % 2 == 0 { format!("{p}_stg") } else { format!("{p}_prod") };
                let t = Instant::now();
                lupa.promote(&p, &target).await?;
                latencies.push(t.elapsed());
            }
            let wall = wall.elapsed();
            let calls = timed_calls(before, counter.calls().await, 0);
            // Put production back where the seed had it.
            if (ops / n) % 2 == 1 {
                for k in 0..n {
                    let p = project_id(k);
                    lupa.promote(&p, &format!("{p}_prod")).await?;
                }
            }
            report(implementation, &case, latencies, wall, calls);
        }
        other => return Err(format!("unknown case {other}").into()),
    }
    lupa.close().await;
    Ok(())
}

/// Commands between two counts, less the second INFO itself and the
/// commands the case made outside its timed region.
fn timed_calls(before: Option<u64>, after: Option<u64>, outside: u64) -> Option<u64> {
    Some(after?.saturating_sub(before?).saturating_sub(1 + outside))
}

/// N warm resolves answered from process memory, on memory backends.
async fn warm_loop(args: Args) -> Result<(), Failure> {
    let ops = args.number("ops", 100_000)?;
    let mut config = Config::new("memory://", "memory://");
    config.metrics = match args.or("metrics", "on").as_str() {
        "on" => true,
        "off" => false,
        other => return Err(format!("--metrics is on or off, not {other}").into()),
    };
    let lupa = Lupa::open(config).await?;
    lupa.create_project(lupa_core::NewProject { id: Some("p".into()), org_id: "o".into(), name: "p".into() }).await?;
    lupa.create_deployment(lupa_core::CreateDeployment {
        project: "p".into(),
        id: Some("d".into()),
        snapshot: "s".into(),
        environment: Environment::Production,
        created_at: None,
    })
    .await?;
    lupa.set_status("d", lupa_core::FinalStatus::Ready, None).await?;
    let request = live("p");
    lupa.resolve(&request).await?;
    let mut found = 0usize;
    for _ in 0..ops {
        found += usize::from(lupa.resolve(&request).await?.deployment.is_some());
    }
    assert_eq!(found, ops);
    eprintln!("{ops} warm resolves");
    Ok(())
}

/// A store that knows every project: each has production `{id}_prod`. It
/// lets `memory` measure the in-process tier alone.
struct EveryProject;

#[lupa_core::async_trait]
impl Store for EveryProject {
    async fn insert_project(&self, _: &Project) -> lupa_core::Result<i64> {
        Ok(1)
    }
    async fn get_project(&self, _: &ProjectId) -> lupa_core::Result<Option<Project>> {
        Ok(None)
    }
    async fn list_projects(&self, _: Option<&ProjectId>, _: u32) -> lupa_core::Result<Vec<Project>> {
        Ok(Vec::new())
    }
    async fn get_deployment(&self, _: &DeploymentId) -> lupa_core::Result<Option<Deployment>> {
        Ok(None)
    }
    async fn list_deployments(
        &self,
        _: &ProjectId,
        _: Option<&ListCursor>,
        _: u32,
    ) -> lupa_core::Result<Vec<Deployment>> {
        Ok(Vec::new())
    }
    async fn history(&self, _: &ProjectId, _: Option<i64>, _: u32) -> lupa_core::Result<Vec<HistoryEntry>> {
        Ok(Vec::new())
    }
    async fn lookup_environment(&self, p: &ProjectId, _: Environment) -> lupa_core::Result<EnvironmentLookup> {
        Ok(EnvironmentLookup {
            project: Some(ProjectInfo { org_id: OrgId::new("o")?, name: "p".into(), version: 1 }),
            deployment: Some(DeploymentId::new(format!("{p}_prod"))?),
        })
    }
    async fn lookup_deployment(&self, _: &ProjectId, _: &DeploymentId) -> lupa_core::Result<DeploymentLookup> {
        Ok(DeploymentLookup { project: None, deployment: None })
    }
    async fn begin(&self, _: &ProjectId) -> lupa_core::Result<Option<Box<dyn ProjectTx>>> {
        Ok(None)
    }
    async fn pending_invalidations(&self, _: u32) -> lupa_core::Result<Vec<PendingInvalidation>> {
        Ok(Vec::new())
    }
    async fn clear_invalidations(&self, _: &[i64]) -> lupa_core::Result<()> {
        Ok(())
    }
    async fn ping(&self) -> lupa_core::Result<()> {
        Ok(())
    }
    async fn close(&self) {}
}

fn resident_bytes() -> Result<u64, Failure> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).ok_or("statm")?.parse()?;
    Ok(pages * 4096)
}

/// Resident memory the in-process tier adds per project it holds.
async fn memory(args: Args) -> Result<(), Failure> {
    let projects = args.number("projects", 1_000_000)?;
    let options = Options { local_capacity: projects, ..Options::default() };
    let lupa = Lupa::with_backends(Arc::new(EveryProject), None, options);
    let requests: Vec<ResolveRequest> = (0..projects).map(|i| live(&format!("mp{i:07}"))).collect();
    let before = resident_bytes()?;
    for r in &requests {
        lupa.resolve(r).await?;
    }
    let after = resident_bytes()?;
    let held = lupa.health().await.local_projects.unwrap_or(0);
    let per_entry = (after.saturating_sub(before)) as f64 / held.max(1) as f64;
    println!(
        "{}",
        json!({"case": "local_tier_memory", "projects": held, "resident_bytes_added": after - before, "bytes_per_entry": per_entry.round()})
    );
    Ok(())
}

fn unix_micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

/// Process A of `staleness`: on each line of standard input, promotes the
/// other deployment of bp00000 and prints when the call returned.
async fn staleness_child(args: Args) -> Result<(), Failure> {
    use tokio::io::AsyncBufReadExt;
    let mut config = Config::new(args.get("store")?, args.get("cache")?);
    config.schema = args.get("schema")?;
    config.key_prefix = args.or("prefix", "");
    let lupa = Lupa::open(config).await?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    println!("READY");
    let mut round = 0usize;
    while let Some(_go) = lines.next_line().await? {
        let target = if round % 2 == 0 { "bp00000_stg" } else { "bp00000_prod" };
        lupa.promote("bp00000", target).await?;
        println!("PROMOTED {target} {}", unix_micros());
        round += 1;
    }
    if round % 2 == 1 {
        lupa.promote("bp00000", "bp00000_prod").await?;
    }
    Ok(())
}

/// Process B resolves bp00000 in a loop from its in-process tier while
/// process A promotes; reports how long after each promote returned B first
/// answered the new deployment, and how many old answers followed it.
async fn staleness(args: Args) -> Result<(), Failure> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let store = args.get("store")?;
    let cache = args.get("cache")?;
    let schema = args.get("schema")?;
    let prefix = args.or("prefix", "");
    let rounds = args.number("rounds", 200)?;
    let mut config = Config::new(store.clone(), args.or("reader-cache", &cache));
    config.schema = schema.clone();
    config.key_prefix = prefix.clone();
    if let Some(bound) = args.0.get("bound-ms") {
        config.local_bound = Duration::from_millis(bound.parse()?);
    }
    let bound = config.local_bound;
    let b = Lupa::open(config).await?;
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["staleness-child", "--store", &store, "--cache", &cache, "--schema", &schema, "--prefix", &prefix])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut to_a = child.stdin.take().ok_or("stdin")?;
    let mut from_a = tokio::io::BufReader::new(child.stdout.take().ok_or("stdout")?).lines();
    while from_a.next_line().await?.as_deref() != Some("READY") {}
    let mut lags = Vec::new();
    let mut old_after_new = 0usize;
    for _ in 0..rounds {
        // Warm B's memory with the current answer.
        let before = b.resolve(&live("bp00000")).await?.deployment.ok_or("no deployment")?;
        b.resolve(&live("bp00000")).await?;
        to_a.write_all(b"go\n").await?;
        let line = from_a.next_line().await?.ok_or("process A ended")?;
        let mut parts = line.split_whitespace().skip(1);
        let target = parts.next().ok_or("target")?.to_string();
        let promoted_at: u128 = parts.next().ok_or("time")?.parse()?;
        let started = Instant::now();
        let seen_at = loop {
            let d = b.resolve(&live("bp00000")).await?.deployment.ok_or("no deployment")?;
            if d.as_str() == target {
                break unix_micros();
            }
            if d != before {
                return Err(format!("unexpected answer {d}").into());
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err("the change never arrived".into());
            }
            tokio::task::yield_now().await;
        };
        for _ in 0..200 {
            if b.resolve(&live("bp00000")).await?.deployment.ok_or("none")?.as_str() != target {
                old_after_new += 1;
            }
        }
        lags.push(Duration::from_micros(seen_at.saturating_sub(promoted_at) as u64));
    }
    drop(to_a);
    child.wait().await?;
    lags.sort();
    println!(
        "{}",
        json!({
            "case": "cross_process_staleness",
            "reader_cache": args.or("reader-cache", &cache),
            "rounds": lags.len(),
            "p50_us": (percentile(&lags, 0.5)).round(),
            "p99_us": (percentile(&lags, 0.99)).round(),
            "max_us": lags.last().map_or(0.0, |d| d.as_secs_f64() * 1e6).round(),
            "old_answers_after_first_new": old_after_new,
            "bound_ms": bound.as_millis(),
        })
    );
    b.close().await;
    Ok(())
}
