//! `lupa-bench faults`: resolves and promotions from two processes while
//! the harness cuts Redis and PostgreSQL under them, and a checker that
//! compares every answer with the model of committed changes.
//!
//! The harness (this process) starts a private `redis-server` on a free
//! port, a TCP proxy in front of it and one in front of PostgreSQL, seeds
//! its own schema, and starts two child processes (`faults-child`), each with
//! its own `Lupa` handle through the proxies, the in-process tier on. Each
//! child resolves every project (live and test keys, one task each, 1 ms
//! apart), reads every project through a second handle without cache or
//! in-process tier (one task each, 5 ms apart), and
//! promotes the projects it owns (child `i` owns the projects `k` with
//! `k % 2 == i`) about every `--promote-ms` (uniform in half to one and a
//! half times it) to one of `{p}_a`, `{p}_b`, `{p}_c` other than the last
//! target, at random, so a stale answer rarely equals the current one. The
//! harness cuts the proxies on its schedule; the children never restart.
//! Each child writes one line per call (start and end in Unix microseconds,
//! the answer or error code, the tier that answered); the harness reads
//! them and checks them.
//!
//! # The staleness rule (what the checker calls a wrong answer)
//!
//! Promotions of one project come from one task of one process, one at a
//! time, so they form a sequence `P1, P2, ...`; `P0` is the seed's
//! production `{p}_a`. Each `Pk` has a start `s_k`, an end `e_k`, a target
//! and an outcome: `ok`, `pending` (succeeded with `cache_pending`) or an
//! error. An error may still have committed (the reply may have been lost),
//! so it is neither trusted nor excluded.
//!
//! For a successful promotion `Pk` and a reading process `X`, the deadline
//! `D_k(X)` after which `X` must no longer answer the production before it:
//!
//! - disturbed: `Pk` returned `pending`, or `[s_k, e_k]` meets a Redis
//!   fault window widened to `[cut - lag, restore + bound + slack]`: then
//!   `D_k = max(e_k, restore) + bound + slack` (restore of the latest such
//!   window; invariant 3: the outage plus about a second, and an in-process
//!   tier whose channel was down may keep an answer for `bound`);
//! - otherwise `D_k = e_k` when `X` is the promoting process (its own tier
//!   is never stale) and `e_k + lag` for the other process (the channel's
//!   delay).
//!
//! A database reader (each child's second handle, no cache and no
//! in-process tier) gets no allowance at all: `D_k = e_k` whatever Redis
//! does, since what a returned change committed is in the database.
//!
//! A live resolve by `X` that started at `t_s` and ended at `t_e` may answer
//! only the target of `P_m`, where `m` is the greatest successful `k` with
//! `D_k(X) <= t_s` (0 when none), or the target of any later `P_j` (any
//! outcome) that started before `t_e` (it may have committed while the
//! resolve ran). A test-key resolve must answer the staging deployment one
//! of those leaves (the newest ready one not in production). An error is
//! allowed only as `STORAGE_UNAVAILABLE`; any other code (say
//! `NO_PRODUCTION_DEPLOYMENT`: the project always has one) is a wrong
//! answer too.
//!
//! `lag` is `--channel-lag-ms` (default 100: the channel's delay is
//! milliseconds, this leaves room for a loaded two-core machine), `bound`
//! the children's `local_bound` as the checker assumes it
//! (`--assume-bound-ms`, default 1000) and `slack` `--slack-ms` (1000).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use lupa_core::{Caller, Config, CreateDeployment, Environment, FinalStatus, KeyEnvironment, Lupa, NewProject};
use lupa_core::{ResolveRequest, Source};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::{Args, Failure, unix_micros};

fn now_us() -> i64 {
    unix_micros() as i64
}

// ---------------------------------------------------------------- proxies

// A TCP proxy the harness cuts and a private redis-server: the same ones
// the core's fault tests use.
use lupa_test_support::proxy::{Mode, Proxy};
use lupa_test_support::{PrivateRedis, host_port, replace_port};

// ---------------------------------------------------------------- records

/// The answer of one call: a deployment (0 = `{p}_a`, 1 = `{p}_b`, 2 =
/// `{p}_c`) or an error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Deployment(u8),
    Error(String),
}

#[derive(Debug, Clone)]
pub(crate) struct ResolveRec {
    pub process: u8,
    pub start: i64,
    pub end: i64,
    pub project: usize,
    /// Resolved with a test key (staging) rather than a live one.
    pub test: bool,
    pub answer: Answer,
    pub source: String,
    /// Made through the process's second handle, which has no cache and no
    /// in-process tier: a database reader.
    pub db: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Pending,
    Error(String),
}

#[derive(Debug, Clone)]
pub(crate) struct PromoteRec {
    pub process: u8,
    pub start: i64,
    pub end: i64,
    pub project: usize,
    pub target: u8,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub what: String,
    pub cut: i64,
    pub restore: i64,
}

/// The deployments of each project, oldest first: `{p}_a`, `{p}_b`, `{p}_c`.
const DEPLOYMENTS: [&str; 3] = ["a", "b", "c"];

fn deployment_name(project: usize, which: u8) -> String {
    format!("{}_{}", project_name(project), DEPLOYMENTS[usize::from(which)])
}

/// What a test key resolves while `production` is production: the newest
/// ready staging deployment.
fn staging_of(production: u8) -> u8 {
    if production == 2 { 1 } else { 2 }
}

fn project_name(k: usize) -> String {
    format!("fp{k:02}")
}

fn parse_answer(s: &str) -> Answer {
    match s {
        "a" => Answer::Deployment(0),
        "b" => Answer::Deployment(1),
        "c" => Answer::Deployment(2),
        other => Answer::Error(other.trim_start_matches("E:").to_string()),
    }
}

fn parse_lines(text: &str, resolves: &mut Vec<ResolveRec>, promotes: &mut Vec<PromoteRec>) -> Result<(), Failure> {
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f.first().copied() {
            Some("R") if f.len() == 9 => resolves.push(ResolveRec {
                process: f[1].parse()?,
                start: f[2].parse()?,
                end: f[3].parse()?,
                project: f[4].parse()?,
                test: f[5] == "test",
                answer: parse_answer(f[6]),
                source: f[7].to_string(),
                db: f[8] == "db",
            }),
            Some("P") if f.len() == 7 => promotes.push(PromoteRec {
                process: f[1].parse()?,
                start: f[2].parse()?,
                end: f[3].parse()?,
                project: f[4].parse()?,
                target: DEPLOYMENTS.iter().position(|d| *d == f[5]).ok_or("a target")? as u8,
                outcome: match f[6] {
                    "ok" => Outcome::Ok,
                    "pending" => Outcome::Pending,
                    e => Outcome::Error(e.trim_start_matches("E:").to_string()),
                },
            }),
            _ => return Err(format!("a record line the checker does not know: {line:?}").into()),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- checker

#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    pub lag_us: i64,
    pub bound_us: i64,
    pub slack_us: i64,
}

/// One answer the model forbids.
#[derive(Debug, Clone)]
pub(crate) struct Wrong {
    pub resolve: ResolveRec,
    pub allowed: Vec<u8>,
    pub why: String,
}

impl Rule {
    /// Whether a successful promotion was disturbed by a Redis fault, and
    /// the restore the old answer may outlive (see the module comment).
    fn disturbance(&self, p: &PromoteRec, redis_windows: &[&Window]) -> Option<i64> {
        let met = redis_windows
            .iter()
            .filter(|w| p.start <= w.restore + self.bound_us + self.slack_us && p.end >= w.cut - self.lag_us)
            .map(|w| w.restore)
            .max();
        match (met, &p.outcome) {
            (Some(restore), _) => Some(restore),
            (None, Outcome::Pending) => {
                Some(redis_windows.iter().filter(|w| w.cut <= p.end).map(|w| w.restore).max().unwrap_or(p.end))
            }
            (None, _) => None,
        }
    }

    /// `D_k(X)` of the module comment, for a successful promotion.
    fn deadline(&self, p: &PromoteRec, reader: u8, db: bool, redis_windows: &[&Window]) -> i64 {
        if db {
            return p.end;
        }
        match self.disturbance(p, redis_windows) {
            Some(restore) => p.end.max(restore) + self.bound_us + self.slack_us,
            None if reader == p.process => p.end,
            None => p.end + self.lag_us,
        }
    }
}

/// The answers of a resolve that the model allows, as production
/// deployments (0 or 1): see the module comment.
fn allowed_production(rule: &Rule, r: &ResolveRec, history: &[PromoteRec], redis_windows: &[&Window]) -> Vec<u8> {
    let mut m: Option<usize> = None;
    for (k, p) in history.iter().enumerate() {
        if matches!(p.outcome, Outcome::Ok | Outcome::Pending)
            && rule.deadline(p, r.process, r.db, redis_windows) <= r.start
        {
            m = Some(k);
        }
    }
    let mut allowed = vec![m.map_or(0, |k| history[k].target)];
    let later = m.map_or(0, |k| k + 1);
    for p in &history[later..] {
        if p.start <= r.end && !allowed.contains(&p.target) {
            allowed.push(p.target);
        }
    }
    allowed
}

/// Every wrong answer among `resolves`. `promotes` must be in start order
/// per project (one task per project makes them sequential).
pub(crate) fn check(rule: &Rule, resolves: &[ResolveRec], promotes: &[PromoteRec], windows: &[Window]) -> Vec<Wrong> {
    let redis_windows: Vec<&Window> = windows.iter().filter(|w| w.what == "redis").collect();
    let mut by_project: BTreeMap<usize, Vec<PromoteRec>> = BTreeMap::new();
    for p in promotes {
        by_project.entry(p.project).or_default().push(p.clone());
    }
    for h in by_project.values_mut() {
        h.sort_by_key(|p| p.start);
    }
    let mut wrong = Vec::new();
    for r in resolves {
        let history = by_project.get(&r.project).map_or(&[][..], |h| &h[..]);
        match &r.answer {
            Answer::Error(code) if code == "STORAGE_UNAVAILABLE" => {}
            Answer::Error(code) => wrong.push(Wrong {
                resolve: r.clone(),
                allowed: Vec::new(),
                why: format!("error {code}: only STORAGE_UNAVAILABLE is allowed"),
            }),
            Answer::Deployment(d) => {
                let production = allowed_production(rule, r, history, &redis_windows);
                let allowed: Vec<u8> =
                    if r.test { production.iter().map(|x| staging_of(*x)).collect() } else { production.clone() };
                if !allowed.contains(d) {
                    wrong.push(Wrong {
                        resolve: r.clone(),
                        allowed,
                        why: "an answer the committed changes forbid".into(),
                    });
                }
            }
        }
    }
    wrong
}

/// How long a live resolve's answer had been replaced when it was given
/// (none when it was current, or when a promotion was in flight), and
/// whether the replacing promotion was disturbed by a Redis fault: the
/// answer stopped being production at the end of the first promotion after
/// the last one that made it production.
fn observed_lag(rule: &Rule, r: &ResolveRec, history: &[PromoteRec], redis_windows: &[&Window]) -> Option<(i64, bool)> {
    let Answer::Deployment(d) = r.answer else { return None };
    if r.test {
        return None;
    }
    let done = |p: &PromoteRec| matches!(p.outcome, Outcome::Ok | Outcome::Pending);
    let k = history.iter().rposition(|p| done(p) && p.end <= r.start)?;
    if d == history[k].target || history[k + 1..].iter().any(|q| q.start <= r.end) {
        return None;
    }
    let since = history[..=k].iter().rposition(|p| p.target == d).map_or(0, |j| j + 1);
    let replaced = history[since..=k].iter().find(|p| done(p) && p.target != d)?;
    Some((r.start - replaced.end, rule.disturbance(replaced, redis_windows).is_some()))
}

// ---------------------------------------------------------------- child

fn request(project: &str, test: bool) -> ResolveRequest {
    let env = if test { KeyEnvironment::Test } else { KeyEnvironment::Live };
    ResolveRequest::new(project, Caller::KeyEnvironment(env))
}

fn answer_text(project: usize, r: &lupa_core::Result<lupa_core::Resolution>) -> (String, &'static str) {
    match r {
        Ok(res) => {
            let d = res.deployment.as_ref().map(|d| d.as_str().to_string()).unwrap_or_default();
            let which = (0..3u8)
                .find(|w| d == deployment_name(project, *w))
                .map_or_else(|| format!("E:UNEXPECTED_{d}"), |w| DEPLOYMENTS[usize::from(w)].to_string());
            let source = match res.source {
                Source::Local => "local",
                Source::Cache => "cache",
                Source::Store => "store",
            };
            (which, source)
        }
        Err(e) => (format!("E:{}", e.code().as_str()), "-"),
    }
}

/// One child process: resolves and promotes until `--seconds` after the
/// start time the harness sends, then writes its records to `--out`.
pub(crate) async fn faults_child(args: Args) -> Result<(), Failure> {
    let me: u8 = args.get("process")?.parse()?;
    let projects = args.number("projects", 4)?;
    let seconds = args.number("seconds", 32)? as i64;
    let promote_every = Duration::from_millis(args.number("promote-ms", 100)? as u64);
    // A deliberately broken host for proving the checker: answers held in
    // the host's own memory for this long, whatever the library says.
    let hack_stale_us = args.number("hack-stale-ms", 0)? as i64 * 1000;
    let mut config = Config::new(args.get("store")?, args.get("cache")?);
    config.schema = args.get("schema")?;
    config.key_prefix = args.or("prefix", "");
    config.store_timeout = Duration::from_millis(args.number("store-timeout-ms", 1000)? as u64);
    config.local_bound = Duration::from_millis(args.number("local-bound-ms", 1000)? as u64);
    config.local_cache = true;
    // The database reader: the same store, no cache, no in-process tier.
    let mut direct = config.clone();
    direct.cache = "none".into();
    direct.local_cache = false;
    direct.pool_size = 2;
    let lupa = Lupa::open(config).await?;
    let db = Lupa::open(direct).await?;
    for k in 0..projects {
        for test in [false, true] {
            lupa.resolve(&request(&project_name(k), test)).await?;
        }
    }
    println!("READY");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let go = lines.next_line().await?.ok_or("no start line")?;
    let t0: i64 = go.strip_prefix("GO ").ok_or("GO t0")?.parse()?;
    let stop = t0 + seconds * 1_000_000;
    while now_us() < t0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // One task per project and key, so that a resolve waiting for the
    // store holds up no other project's.
    let mut tasks = Vec::new();
    for (k, test) in (0..projects).flat_map(|k| [(k, false), (k, true)]) {
        let lupa = lupa.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(1 << 16);
            let mut held: Option<(i64, String)> = None;
            let name = project_name(k);
            let req = request(&name, test);
            let env = if test { "test" } else { "live" };
            while now_us() < stop {
                let start = now_us();
                let r = lupa.resolve(&req).await;
                let end = now_us();
                let (mut which, source) = answer_text(k, &r);
                let mut source = source.to_string();
                if hack_stale_us > 0 {
                    match &held {
                        Some((at, old)) if start - *at < hack_stale_us => {
                            which = old.clone();
                            source = "hack".into();
                        }
                        _ => held = Some((start, which.clone())),
                    }
                }
                out.push(format!("R {me} {start} {end} {k} {env} {which} {source} tiered"));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            out
        }));
    }
    let db_readers: Vec<_> = (0..projects)
        .map(|k| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                let req = request(&project_name(k), false);
                while now_us() < stop {
                    let start = now_us();
                    let r = db.resolve(&req).await;
                    let end = now_us();
                    let (which, source) = answer_text(k, &r);
                    out.push(format!("R {me} {start} {end} {k} live {which} {source} db"));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                out
            })
        })
        .collect();
    let promoter = {
        let lupa = lupa.clone();
        tokio::spawn(async move {
            let mine: Vec<usize> = (0..projects).filter(|k| k % 2 == usize::from(me)).collect();
            // The last target asked for, per project (the seed's is `_a`).
            let mut current = vec![0u8; projects];
            let mut out = Vec::new();
            let mut i = 0usize;
            // Irregular intervals and targets, so that an answer held too
            // long rarely equals the current one by chance.
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (u64::from(me) << 32) ^ now_us() as u64;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let every = promote_every.as_micros() as u64;
            while now_us() < stop && !mine.is_empty() {
                tokio::time::sleep(Duration::from_micros(every / 2 + next() % every.max(1))).await;
                let k = mine[i % mine.len()];
                i += 1;
                let target = ((u64::from(current[k]) + 1 + next() % 2) % 3) as u8;
                current[k] = target;
                let start = now_us();
                let r = lupa.promote(&project_name(k), &deployment_name(k, target)).await;
                let end = now_us();
                let outcome = match r {
                    Ok(c) if c.cache_pending => "pending".to_string(),
                    Ok(_) => "ok".to_string(),
                    Err(e) => format!("E:{}", e.code().as_str()),
                };
                let t = DEPLOYMENTS[usize::from(target)];
                out.push(format!("P {me} {start} {end} {k} {t} {outcome}"));
            }
            out
        })
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(args.get("out")?)?);
    for t in tasks {
        for line in t.await? {
            writeln!(file, "{line}")?;
        }
    }
    for t in db_readers {
        for line in t.await? {
            writeln!(file, "{line}")?;
        }
    }
    for line in promoter.await? {
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    lupa.close().await;
    db.close().await;
    println!("DONE");
    Ok(())
}

// ---------------------------------------------------------------- harness

fn parse_schedule(text: &str, scale: f64) -> Result<Vec<(String, f64, f64)>, Failure> {
    text.split(',')
        .map(|item| {
            let f: Vec<&str> = item.split(':').collect();
            if f.len() != 3 || !(f[0] == "redis" || f[0] == "postgres") {
                return Err(format!("a schedule item is redis|postgres:AT_S:FOR_S, not {item}").into());
            }
            Ok((f[0].to_string(), f[1].parse::<f64>()? * scale, f[2].parse::<f64>()? * scale))
        })
        .collect()
}

fn p99(mut v: Vec<Duration>) -> (usize, f64, f64) {
    v.sort();
    (v.len(), crate::percentile(&v, 0.5).round(), crate::percentile(&v, 0.99).round())
}

/// The harness: see the module comment.
pub(crate) async fn faults(args: Args) -> Result<(), Failure> {
    let database = args.or("database", "postgres://postgres@127.0.0.1:5432/postgres");
    let seconds = args.number("seconds", 32)?;
    let projects = args.number("projects", 4)?;
    let mode = match args.or("mode", "blackhole").as_str() {
        "blackhole" => Mode::Blackhole,
        "refuse" => Mode::Refuse,
        other => return Err(format!("--mode is blackhole or refuse, not {other}").into()),
    };
    // The default schedule is for 32 s; a shorter smoke run scales it.
    let scale = (seconds as f64 / 32.0).min(1.0);
    let schedule = parse_schedule(&args.or("schedule", "redis:5:4,redis:15:4,postgres:23:3"), scale)?;
    let rule = Rule {
        lag_us: args.number("channel-lag-ms", 100)? as i64 * 1000,
        bound_us: args.number("assume-bound-ms", 1000)? as i64 * 1000,
        slack_us: args.number("slack-ms", 1000)? as i64 * 1000,
    };
    let out_path = args.or("out", "bench/reliability.jsonl");
    let schema = format!("lupa_faults_{}", std::process::id());
    let prefix = format!("{schema}:");

    let redis = PrivateRedis::start();
    let redis_url = format!("redis://127.0.0.1:{}", redis.port);
    let redis_proxy = Proxy::start(format!("127.0.0.1:{}", redis.port)).await;
    let pg_proxy = Proxy::start(host_port(&database, 5432)).await;
    let store_via = replace_port(&database, pg_proxy.port);
    let cache_via = format!("redis://127.0.0.1:{}", redis_proxy.port);

    // Seed directly (not through the proxies): {p}_a production, {p}_b and {p}_c ready staging.
    let mut config = Config::new(database.clone(), redis_url.clone());
    config.schema = schema.clone();
    config.key_prefix = prefix.clone();
    let seeder = Lupa::open(config).await?;
    for k in 0..projects {
        let p = project_name(k);
        seeder.create_project(NewProject { id: Some(p.clone()), org_id: "org_faults".into(), name: p.clone() }).await?;
        for (which, minute) in [(0u8, 1), (1u8, 2), (2u8, 3)] {
            let d = deployment_name(k, which);
            seeder
                .create_deployment(CreateDeployment {
                    project: p.clone(),
                    id: Some(d.clone()),
                    snapshot: "snp_faults".into(),
                    environment: Environment::Staging,
                    created_at: Some(format!("2026-01-01T10:{minute:02}:00Z")),
                })
                .await?;
            seeder.set_status(&d, FinalStatus::Ready, None).await?;
        }
        seeder.promote(&p, &deployment_name(k, 0)).await?;
    }
    let result = drive(
        &args,
        &schedule,
        rule,
        seconds,
        projects,
        &store_via,
        &cache_via,
        &schema,
        &prefix,
        &redis_proxy,
        &pg_proxy,
        mode,
        &out_path,
    )
    .await;
    if let Err(e) = seeder.drop_storage().await {
        eprintln!("could not drop schema {schema}: {e}");
    }
    seeder.close().await;
    drop(redis);
    result
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    args: &Args,
    schedule: &[(String, f64, f64)],
    rule: Rule,
    seconds: usize,
    projects: usize,
    store_via: &str,
    cache_via: &str,
    schema: &str,
    prefix: &str,
    redis_proxy: &Proxy,
    pg_proxy: &Proxy,
    mode: Mode,
    out_path: &str,
) -> Result<(), Failure> {
    let dir = std::env::temp_dir().join(format!("lupa_faults_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut children = Vec::new();
    for i in 0..2u8 {
        let out = dir.join(format!("child{i}.txt"));
        let hack = if i == 1 { args.or("hack-stale-ms", "0") } else { "0".into() };
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("faults-child")
            .args(["--process", &i.to_string(), "--projects", &projects.to_string()])
            .args(["--seconds", &seconds.to_string(), "--store", store_via, "--cache", cache_via])
            .args(["--schema", schema, "--prefix", prefix, "--out"])
            .arg(&out)
            .args(["--promote-ms", &args.or("promote-ms", "100"), "--hack-stale-ms", &hack])
            .args(["--store-timeout-ms", &args.or("store-timeout-ms", "1000")])
            .args(["--local-bound-ms", &args.or("local-bound-ms", "1000")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().ok_or("stdin")?;
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().ok_or("stdout")?).lines();
        while stdout.next_line().await?.ok_or("a child ended before it was ready")? != "READY" {}
        children.push((child, stdin, stdout, out));
    }
    let t0 = now_us() + 300_000;
    for (_, stdin, _, _) in &mut children {
        stdin.write_all(format!("GO {t0}\n").as_bytes()).await?;
        stdin.flush().await?;
    }
    // The schedule, in order of cut time.
    let mut events: Vec<(f64, usize, bool)> = Vec::new();
    for (i, (_, at, dur)) in schedule.iter().enumerate() {
        events.push((*at, i, true));
        events.push((at + dur, i, false));
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut windows: Vec<Window> =
        schedule.iter().map(|(w, _, _)| Window { what: w.clone(), cut: 0, restore: 0 }).collect();
    for (at, i, cut) in events {
        let when = t0 + (at * 1e6) as i64;
        while now_us() < when {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let proxy = if schedule[i].0 == "redis" { redis_proxy } else { pg_proxy };
        proxy.set(if cut { mode } else { Mode::Pass });
        let t = now_us();
        if cut {
            windows[i].cut = t;
        } else {
            windows[i].restore = t;
        }
        eprintln!("{:>6.2} s {} {}", (t - t0) as f64 / 1e6, schedule[i].0, if cut { "cut" } else { "restored" });
    }
    let mut crashes = Vec::new();
    let (mut resolves, mut promotes) = (Vec::new(), Vec::new());
    for (i, (mut child, stdin, mut stdout, out)) in children.into_iter().enumerate() {
        drop(stdin);
        let mut done = false;
        while let Ok(Some(line)) = stdout.next_line().await {
            done |= line == "DONE";
        }
        let status = child.wait().await?;
        if !status.success() || !done {
            crashes.push(format!("process {i}: {status}"));
            continue;
        }
        parse_lines(&std::fs::read_to_string(&out)?, &mut resolves, &mut promotes)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    report(rule, t0, seconds, &resolves, &promotes, &windows, &crashes, out_path, mode)
}

#[allow(clippy::too_many_arguments)]
fn report(
    rule: Rule,
    t0: i64,
    seconds: usize,
    resolves: &[ResolveRec],
    promotes: &[PromoteRec],
    windows: &[Window],
    crashes: &[String],
    out_path: &str,
    mode: Mode,
) -> Result<(), Failure> {
    let rel = |t: i64| (t - t0) as f64 / 1e6;
    let mut lines = Vec::new();
    let wrong = check(&rule, resolves, promotes, windows);
    let redis_windows: Vec<&Window> = windows.iter().filter(|w| w.what == "redis").collect();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for r in resolves {
        if let Answer::Error(c) = &r.answer {
            *errors.entry(format!("resolve {c}")).or_default() += 1;
        }
    }
    for p in promotes {
        match &p.outcome {
            Outcome::Error(c) => *errors.entry(format!("promote {c}")).or_default() += 1,
            Outcome::Pending => *errors.entry("promote ok, cache_pending".into()).or_default() += 1,
            Outcome::Ok => {}
        }
    }
    let mut by_project: BTreeMap<usize, Vec<PromoteRec>> = BTreeMap::new();
    for p in promotes {
        by_project.entry(p.project).or_default().push(p.clone());
    }
    for h in by_project.values_mut() {
        h.sort_by_key(|p| p.start);
    }
    let (mut lag_quiet, mut lag_disturbed, mut late_quiet, mut late_disturbed) = (0i64, 0i64, 0usize, 0usize);
    let (mut lag_db, mut late_db) = (0i64, 0usize);
    // Per Redis window: the start of the last old answer near it that only
    // the outage allowance permits (older than the channel's lag), from its
    // restore: when answers were all fresh again.
    let mut stale_until: Vec<Option<i64>> = vec![None; windows.len()];
    // And the oldest such answer: how long after the change it missed, that
    // change's end from the restore, the process and the tier that answered.
    let mut stale_detail: Vec<serde_json::Value> = vec![serde_json::Value::Null; windows.len()];
    for r in resolves {
        let history = by_project.get(&r.project).map_or(&[][..], |h| &h[..]);
        if let Some((lag, disturbed)) = observed_lag(&rule, r, history, &redis_windows) {
            if r.db {
                lag_db = lag_db.max(lag);
                late_db += 1;
                continue;
            }
            for (i, w) in windows.iter().enumerate() {
                // Only the old answers the channel's delay alone would not allow.
                let near = r.start >= w.cut && r.start <= w.restore + rule.bound_us + 2 * rule.slack_us;
                if disturbed && near && lag > rule.lag_us && w.what == "redis" {
                    if stale_until[i].is_none_or(|u| r.start - w.restore > u) {
                        stale_until[i] = Some(r.start - w.restore);
                    }
                    if stale_detail[i]["lag_ms"].as_f64().is_none_or(|l| l < lag as f64 / 1000.0) {
                        stale_detail[i] = json!({
                            "lag_ms": lag as f64 / 1000.0,
                            "change_end_from_restore_ms": (r.start - lag - w.restore) as f64 / 1000.0,
                            "process": r.process,
                            "source": r.source,
                        });
                    }
                }
            }
            if disturbed {
                lag_disturbed = lag_disturbed.max(lag);
                late_disturbed += 1;
            } else {
                lag_quiet = lag_quiet.max(lag);
                late_quiet += 1;
            }
        }
    }
    let summary = json!({
        "case": "faults_summary",
        "seconds": seconds,
        "mode": format!("{mode:?}").to_lowercase(),
        "processes": 2,
        "resolves": resolves.len(),
        "promotions": promotes.len(),
        "errors": errors,
        "wrong_answers": wrong.len(),
        "crashes": crashes,
        "rule": {"channel_lag_ms": rule.lag_us / 1000, "bound_ms": rule.bound_us / 1000, "slack_ms": rule.slack_us / 1000},
        "database_reader_resolves": resolves.iter().filter(|r| r.db).count(),
        "max_old_answer_after_change_us": {"redis_up": lag_quiet, "around_redis_faults": lag_disturbed, "database_reader": lag_db},
        "old_answers_after_change": {"redis_up": late_quiet, "around_redis_faults": late_disturbed, "database_reader": late_db},
    });
    lines.push(summary);

    // Latency inside each window and outside every window.
    let inside = |t: i64| windows.iter().position(|w| t >= w.cut && t < w.restore);
    let mut per_window: Vec<(Vec<Duration>, Vec<Duration>, usize)> = vec![(Vec::new(), Vec::new(), 0); windows.len()];
    let (mut outside_r, mut outside_p, mut outside_err) = (Vec::new(), Vec::new(), 0usize);
    for r in resolves {
        let d = Duration::from_micros((r.end - r.start).max(0) as u64);
        let err = matches!(r.answer, Answer::Error(_));
        match inside(r.start) {
            Some(i) => {
                per_window[i].0.push(d);
                per_window[i].2 += usize::from(err);
            }
            None => {
                outside_r.push(d);
                outside_err += usize::from(err);
            }
        }
    }
    for p in promotes {
        let d = Duration::from_micros((p.end - p.start).max(0) as u64);
        match inside(p.start) {
            Some(i) => per_window[i].1.push(d),
            None => outside_p.push(d),
        }
    }
    for (i, w) in windows.iter().enumerate() {
        let (r, p, err) = per_window[i].clone();
        let (rn, rp50, rp99) = p99(r);
        let (pn, pp50, pp99) = p99(p);
        // Recovery: first success of each kind that started after the restore.
        let after = |f: &dyn Fn(&ResolveRec) -> bool| {
            resolves.iter().filter(|r| r.start >= w.restore && f(r)).map(|r| r.end - w.restore).min()
        };
        let first_store = after(&|r| r.source == "store");
        let first_cache = after(&|r| r.source == "cache");
        let first_ok_resolve = after(&|r| !matches!(r.answer, Answer::Error(_)));
        let first_promote = promotes
            .iter()
            .filter(|p| p.start >= w.restore && p.outcome == Outcome::Ok)
            .map(|p| p.end - w.restore)
            .min();
        lines.push(json!({
            "case": "faults_window",
            "fault": w.what,
            "cut_s": (rel(w.cut) * 100.0).round() / 100.0,
            "restore_s": (rel(w.restore) * 100.0).round() / 100.0,
            "resolves": rn, "resolve_errors": err, "resolve_p50_us": rp50, "resolve_p99_us": rp99,
            "promotions": pn, "promote_p50_us": pp50, "promote_p99_us": pp99,
            "recover_first_ok_resolve_ms": first_ok_resolve.map(|u| u as f64 / 1000.0),
            "recover_first_store_answer_ms": first_store.map(|u| u as f64 / 1000.0),
            "recover_first_cache_answer_ms": first_cache.map(|u| u as f64 / 1000.0),
            "recover_first_fresh_promotion_ms": first_promote.map(|u| u as f64 / 1000.0),
            "last_old_answer_from_restore_ms": stale_until[i].map(|u| u as f64 / 1000.0),
            "oldest_old_answer": stale_detail[i],
        }));
    }
    let (rn, rp50, rp99) = p99(outside_r);
    let (pn, pp50, pp99) = p99(outside_p);
    lines.push(json!({
        "case": "faults_outside",
        "resolves": rn, "resolve_errors": outside_err, "resolve_p50_us": rp50, "resolve_p99_us": rp99,
        "promotions": pn, "promote_p50_us": pp50, "promote_p99_us": pp99,
    }));
    for w in wrong.iter().take(20) {
        lines.push(json!({
            "case": "faults_wrong_answer",
            "process": w.resolve.process,
            "project": project_name(w.resolve.project),
            "key": if w.resolve.test { "test" } else { "live" },
            "start_s": rel(w.resolve.start),
            "answer": match &w.resolve.answer {
                Answer::Deployment(d) => deployment_name(w.resolve.project, *d),
                Answer::Error(code) => code.clone(),
            },
            "source": w.resolve.source,
            "allowed": w.allowed.iter().map(|d| deployment_name(w.resolve.project, *d)).collect::<Vec<_>>(),
            "why": w.why,
        }));
    }

    // The table.
    println!(
        "\nfault injection: {} s, 2 processes, {} resolves, {} promotions",
        seconds,
        resolves.len(),
        promotes.len()
    );
    println!(
        "{:<9} {:>8} {:>8} {:>9} {:>8} {:>10} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "window",
        "from_s",
        "to_s",
        "resolves",
        "errors",
        "p99_us",
        "promotes",
        "p99_us",
        "store_ms",
        "cache_ms",
        "fresh_ms",
        "old_ms"
    );
    for l in &lines[1..] {
        let f = |k: &str| l.get(k).cloned().unwrap_or(serde_json::Value::Null);
        let s = |v: serde_json::Value| match v {
            serde_json::Value::Null => "-".to_string(),
            v => v.to_string(),
        };
        match l["case"].as_str() {
            Some("faults_window") => println!(
                "{:<9} {:>8} {:>8} {:>9} {:>8} {:>10} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
                s(f("fault")).trim_matches('"'),
                s(f("cut_s")),
                s(f("restore_s")),
                s(f("resolves")),
                s(f("resolve_errors")),
                s(f("resolve_p99_us")),
                s(f("promotions")),
                s(f("promote_p99_us")),
                s(f("recover_first_store_answer_ms")),
                s(f("recover_first_cache_answer_ms")),
                s(f("recover_first_fresh_promotion_ms")),
                s(f("last_old_answer_from_restore_ms"))
            ),
            Some("faults_outside") => println!(
                "{:<9} {:>8} {:>8} {:>9} {:>8} {:>10} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10}",
                "outside",
                "-",
                "-",
                s(f("resolves")),
                s(f("resolve_errors")),
                s(f("resolve_p99_us")),
                s(f("promotions")),
                s(f("promote_p99_us")),
                "-",
                "-",
                "-",
                "-"
            ),
            _ => {}
        }
    }
    println!("errors: {}", serde_json::to_string(&errors)?);
    println!("wrong answers: {}   crashes: {:?}", wrong.len(), crashes);
    let mut file = std::io::BufWriter::new(std::fs::File::create(out_path)?);
    for l in &lines {
        writeln!(file, "{l}")?;
        println!("{l}");
    }
    file.flush()?;
    if !wrong.is_empty() || !crashes.is_empty() {
        return Err(format!("{} wrong answers, {} crashed processes", wrong.len(), crashes.len()).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = Rule { lag_us: 100_000, bound_us: 1_000_000, slack_us: 1_000_000 };

    fn promote(process: u8, start: i64, end: i64, target: u8, outcome: Outcome) -> PromoteRec {
        PromoteRec { process, start, end, project: 0, target, outcome }
    }

    fn resolve(process: u8, start: i64, test: bool, d: u8) -> ResolveRec {
        ResolveRec {
            process,
            start,
            end: start + 50,
            project: 0,
            test,
            answer: Answer::Deployment(d),
            source: "local".into(),
            db: false,
        }
    }

    #[test]
    fn an_old_answer_after_the_channel_delay_is_wrong() {
        let p = [promote(0, 1_000_000, 1_010_000, 1, Outcome::Ok)];
        // The other process, 50 ms after the return: within the lag.
        assert!(check(&RULE, &[resolve(1, 1_060_000, false, 0)], &p, &[]).is_empty());
        // 200 ms after: a stale answer, caught.
        assert_eq!(check(&RULE, &[resolve(1, 1_210_000, false, 0)], &p, &[]).len(), 1);
        // The promoting process itself: never stale, even 1 µs after.
        assert_eq!(check(&RULE, &[resolve(0, 1_010_001, false, 0)], &p, &[]).len(), 1);
        // A test key: staging is the newest non-production, `_c` with `_b` in production.
        assert!(check(&RULE, &[resolve(1, 1_210_000, true, 2)], &p, &[]).is_empty());
        assert_eq!(check(&RULE, &[resolve(1, 1_210_000, true, 1)], &p, &[]).len(), 1);
        // Production `_c`: staging is `_b`.
        let p = [promote(0, 1_000_000, 1_010_000, 2, Outcome::Ok)];
        assert!(check(&RULE, &[resolve(1, 1_210_000, true, 1)], &p, &[]).is_empty());
        assert_eq!(check(&RULE, &[resolve(1, 1_210_000, true, 2)], &p, &[]).len(), 1);
    }

    #[test]
    fn around_a_redis_outage_the_old_answer_may_last_the_outage_plus_bound_and_slack() {
        let w = [Window { what: "redis".into(), cut: 1_000_000, restore: 5_000_000 }];
        let p = [promote(0, 2_000_000, 2_100_000, 1, Outcome::Pending)];
        assert!(check(&RULE, &[resolve(1, 6_900_000, false, 0)], &p, &w).is_empty());
        assert_eq!(check(&RULE, &[resolve(1, 7_100_000, false, 0)], &p, &w).len(), 1);
    }

    #[test]
    fn an_overlapping_or_failed_promotion_allows_both() {
        let p = [promote(0, 1_000_000, 1_500_000, 1, Outcome::Error("STORAGE_UNAVAILABLE".into()))];
        assert!(check(&RULE, &[resolve(1, 3_000_000, false, 0)], &p, &[]).is_empty());
        assert!(check(&RULE, &[resolve(1, 3_000_000, false, 1)], &p, &[]).is_empty());
        let p = [promote(0, 1_000_000, 1_500_000, 1, Outcome::Ok)];
        assert!(check(&RULE, &[resolve(0, 1_200_000, false, 0)], &p, &[]).is_empty());
    }

    #[test]
    fn a_database_reader_gets_no_allowance_even_in_an_outage() {
        let w = [Window { what: "redis".into(), cut: 1_000_000, restore: 5_000_000 }];
        let p = [promote(0, 2_000_000, 2_100_000, 1, Outcome::Pending)];
        let mut r = resolve(1, 2_100_001, false, 0);
        r.db = true;
        assert_eq!(check(&RULE, &[r.clone()], &p, &w).len(), 1);
        r.answer = Answer::Deployment(1);
        assert!(check(&RULE, &[r], &p, &w).is_empty());
    }

    #[test]
    fn only_storage_unavailable_is_an_allowed_error() {
        let mut r = resolve(1, 10, false, 0);
        r.answer = Answer::Error("STORAGE_UNAVAILABLE".into());
        assert!(check(&RULE, &[r.clone()], &[], &[]).is_empty());
        r.answer = Answer::Error("NO_PRODUCTION_DEPLOYMENT".into());
        assert_eq!(check(&RULE, &[r], &[], &[]).len(), 1);
    }
}
