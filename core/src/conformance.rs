//! The conformance runner: runs the JSON vectors of `tests/conformance` (the
//! semantics as data) against any store and cache, through the public API.
//!
//! Besides the shared table of ops it knows `delete_project` (`project`) and
//! `history` (`project`; expect `entries`: every entry, newest first, as
//! `{seq, deployment, from, to}`), which the model-based test's regression
//! vectors use.
//!
//! ```no_run
//! # async fn demo() {
//! use lupa_core::conformance::{ConfigBackend, load_dirs, run};
//! let files = load_dirs(&["tests/conformance/vectors".into()]).unwrap();
//! let report = run(&files, &ConfigBackend::new("sqlite::memory:", "memory://")).await;
//! println!("{}", report.summary());
//! assert!(report.failures.is_empty());
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::apikey::parse_api_key;
use crate::config::Config;
use crate::error::Error;
use crate::lupa::{CreateDeployment, Lupa, NewProject};
use crate::model::{Environment, FinalStatus};
use crate::resolve::{Caller, ResolveRequest};

/// The environment variable naming an extra directory of vector files.
pub const DIR_ENV: &str = "LUPA_CONFORMANCE_DIR";

/// One vector file.
#[derive(Debug, Clone)]
pub struct VectorFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its scenarios.
    pub scenarios: Vec<Scenario>,
}

/// One scenario: steps from an empty store and cache.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Unique within its file.
    pub name: String,
    /// `"cache"`: skipped when no cache is configured.
    pub requires: Vec<String>,
    /// The steps, each a JSON object with `op`, its arguments and `expect`.
    pub steps: Vec<Value>,
}

/// Reads every `*.json` file of each directory, plus those of the directory
/// in `LUPA_CONFORMANCE_DIR` when it is set. A directory that is missing or
/// holds no vector file is an error, never an empty run.
pub fn load_dirs(dirs: &[PathBuf]) -> Result<Vec<VectorFile>, String> {
    let mut dirs = dirs.to_vec();
    if let Some(extra) = std::env::var_os(DIR_ENV) {
        dirs.push(PathBuf::from(extra));
    }
    let mut files = Vec::new();
    for dir in &dirs {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("vector directory {}: {e}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        if paths.is_empty() {
            return Err(format!("vector directory {} holds no *.json file", dir.display()));
        }
        paths.sort();
        for path in paths {
            files.push(load_file(&path)?);
        }
    }
    Ok(files)
}

/// Reads one vector file.
pub fn load_file(path: &Path) -> Result<VectorFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let scenarios = doc
        .get("scenarios")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: no \"scenarios\" list", path.display()))?;
    let mut out = Vec::new();
    for s in scenarios {
        let name = s
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{}: a scenario has no name", path.display()))?;
        let requires = match s.get("requires") {
            None => Vec::new(),
            Some(r) => r
                .as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
                .ok_or_else(|| format!("{}: {name}: \"requires\" must be a list of strings", path.display()))?,
        };
        let steps = s
            .get("steps")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{}: {name}: no \"steps\" list", path.display()))?
            .clone();
        out.push(Scenario { name: name.to_owned(), requires, steps });
    }
    Ok(VectorFile { path: path.to_owned(), scenarios: out })
}

/// Opens a fresh, isolated handle for each scenario.
#[async_trait]
pub trait ScenarioBackend: Send + Sync {
    /// A short label for reports, such as `postgres+redis`.
    fn label(&self) -> String;
    /// A handle on an empty store and an empty cache, isolated from every
    /// other scenario.
    async fn open(&self) -> Result<Lupa, String>;
    /// Removes what `open` made (a schema, say).
    async fn cleanup(&self, lupa: Lupa) {
        lupa.close().await;
    }
}

/// A backend from store and cache URLs: each scenario gets its own cache
/// key prefix and, on PostgreSQL, its own schema (dropped afterwards).
#[derive(Debug, Clone)]
pub struct ConfigBackend {
    /// The base configuration; `schema` and `key_prefix` are replaced.
    pub config: Config,
}

impl ConfigBackend {
    /// A backend on `store` and `cache` URLs.
    pub fn new(store: &str, cache: &str) -> ConfigBackend {
        ConfigBackend { config: Config::new(store, cache) }
    }

    fn is_postgres(&self) -> bool {
        self.config.store.starts_with("postgres")
    }
}

fn kind(url: &str) -> &str {
    url.split(':').next().unwrap_or(url)
}

#[async_trait]
impl ScenarioBackend for ConfigBackend {
    fn label(&self) -> String {
        let cache = if self.config.cache.is_empty() { "none" } else { kind(&self.config.cache) };
        format!("{}+{}", kind(&self.config.store), cache)
    }

    async fn open(&self) -> Result<Lupa, String> {
        let tag = crate::ids::generate_id().map_err(|e| e.to_string())?;
        let mut config = self.config.clone();
        config.key_prefix = format!("{}lupa-conformance-{tag}:", self.config.key_prefix);
        if self.is_postgres() {
            config.schema = format!("lupa_conformance_{tag}");
        }
        Lupa::open(config).await.map_err(|e| e.to_string())
    }

    async fn cleanup(&self, lupa: Lupa) {
        if let Some(cache) = lupa.cache_backend() {
            let _ = cache.clear(lupa.cache_keys().prefix()).await;
        }
        let _ = lupa.drop_storage().await;
        lupa.close().await;
    }
}

/// One failed scenario.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The vector file.
    pub file: String,
    /// The scenario.
    pub scenario: String,
    /// The failed step's index (from 0); none when opening failed.
    pub step: Option<usize>,
    /// What differed.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.step {
            Some(i) => write!(f, "{} / {} / step {i}: {}", self.file, self.scenario, self.message),
            None => write!(f, "{} / {}: {}", self.file, self.scenario, self.message),
        }
    }
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The backend label.
    pub label: String,
    /// Scenarios that passed.
    pub passed: usize,
    /// Scenarios skipped because they require a cache and there is none.
    pub skipped: usize,
    /// Scenarios that failed.
    pub failures: Vec<Failure>,
}

impl Report {
    /// One line: label, passed, failed, skipped.
    pub fn summary(&self) -> String {
        format!(
            "conformance {}: {} passed, {} failed, {} skipped",
            self.label,
            self.passed,
            self.failures.len(),
            self.skipped
        )
    }
}

/// Runs every scenario of `files` on `backend`.
pub async fn run(files: &[VectorFile], backend: &dyn ScenarioBackend) -> Report {
    let mut report = Report { label: backend.label(), ..Report::default() };
    for file in files {
        let file_name =
            file.path.file_name().map_or_else(|| file.path.display().to_string(), |n| n.to_string_lossy().into_owned());
        for scenario in &file.scenarios {
            let fail =
                |step, message| Failure { file: file_name.clone(), scenario: scenario.name.clone(), step, message };
            if let Some(unknown) = scenario.requires.iter().find(|r| r.as_str() != "cache") {
                report.failures.push(fail(None, format!("unknown requirement {unknown:?}")));
                continue;
            }
            let lupa = match backend.open().await {
                Ok(l) => l,
                Err(e) => {
                    report.failures.push(fail(None, format!("could not open: {e}")));
                    continue;
                }
            };
            if scenario.requires.iter().any(|r| r == "cache") && lupa.cache_backend().is_none() {
                report.skipped += 1;
                backend.cleanup(lupa).await;
                continue;
            }
            let mut outcome = Ok(());
            for (i, step) in scenario.steps.iter().enumerate() {
                if let Err(message) = run_step(&lupa, step).await {
                    outcome = Err(fail(Some(i), message));
                    break;
                }
            }
            backend.cleanup(lupa).await;
            match outcome {
                Ok(()) => report.passed += 1,
                Err(f) => report.failures.push(f),
            }
        }
    }
    report
}

/// The arguments of one step, each taken at most once; what is left over
/// is an unknown argument.
struct Args {
    map: Map<String, Value>,
}

impl Args {
    fn opt_str(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("argument {name} must be a string, not {other}")),
        }
    }

    fn str(&mut self, name: &str) -> Result<String, String> {
        self.opt_str(name)?.ok_or_else(|| format!("argument {name} is required"))
    }

    fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, String> {
        match self.map.remove(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(format!("argument {name} must be a boolean, not {other}")),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    fn finish(self) -> Result<(), String> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(format!("unknown argument {k:?}")),
        }
    }
}

fn err_json(e: &Error) -> Value {
    json!({ "error": e.code().as_str(), "http_status": e.http_status() })
}

type StepResult = Result<Value, Error>;

async fn run_step(lupa: &Lupa, step: &Value) -> Result<(), String> {
    let mut map = step.as_object().cloned().ok_or("a step must be an object")?;
    let op = match map.remove("op") {
        Some(Value::String(op)) => op,
        _ => return Err("a step needs an \"op\" string".into()),
    };
    let expect = match map.remove("expect") {
        None => None,
        Some(Value::Object(e)) => Some(e),
        Some(_) => return Err("\"expect\" must be an object".into()),
    };
    let mut args = Args { map };
    let (result, fields): (StepResult, &[&str]) = match op.as_str() {
        "cache_get" | "cache_ttl" | "cache_set" | "cache_clear" => {
            return cache_step(lupa, &op, args, expect).await;
        }
        "create_project" => {
            let id = args.str("project")?;
            let org_id = args.opt_str("org_id")?.unwrap_or_else(|| "org_conformance".into());
            let name = args.opt_str("name")?.unwrap_or_else(|| "Conformance".into());
            args.finish()?;
            let r = lupa.create_project(NewProject { id: Some(id), org_id, name }).await;
            (r.map(|p| json!({ "project": p.id, "org_id": p.org_id, "name": p.name })), &[])
        }
        "create_deployment" => {
            let project = args.str("project")?;
            let id = args.str("deployment")?;
            let snapshot = args.opt_str("snapshot")?.unwrap_or_else(|| "snp_conformance".into());
            let environment = args.opt_str("environment")?;
            let created_at = args.opt_str("created_at")?;
            args.finish()?;
            let r = async {
                let environment = environment.as_deref().map(str::parse).transpose()?.unwrap_or(Environment::Staging);
                lupa.create_deployment(CreateDeployment { project, id: Some(id), snapshot, environment, created_at })
                    .await
            }
            .await;
            (r.map(|d| json!({ "environment": d.environment, "status": d.status })), &["environment", "status"])
        }
        "set_status" => {
            let id = args.str("deployment")?;
            let status = args.str("status")?;
            let message = args.opt_str("message")?;
            args.finish()?;
            let r = async { lupa.set_status(&id, status.parse::<FinalStatus>()?, message).await }.await;
            (r.map(|d| json!({ "status": d.status })), &["status"])
        }
        "promote" | "rollback" => {
            let project = args.str("project")?;
            let deployment = if op == "promote" { Some(args.str("deployment")?) } else { None };
            args.finish()?;
            let r = match deployment {
                Some(d) => lupa.promote(&project, &d).await,
                None => lupa.rollback(&project).await,
            };
            (r.map(|p| json!({ "deployment": p.deployment })), &["deployment"])
        }
        "set_environment" => {
            let project = args.str("project")?;
            let id = args.str("deployment")?;
            let environment = args.str("environment")?;
            args.finish()?;
            let r = async { lupa.set_environment(&project, &id, environment.parse()?).await }.await;
            (r.map(|d| json!({ "environment": d.environment })), &["environment"])
        }
        "delete_deployment" => {
            let project = args.str("project")?;
            let id = args.str("deployment")?;
            args.finish()?;
            (lupa.delete_deployment(&project, &id).await.map(|_| json!({})), &[])
        }
        "resolve" => {
            let project = args.str("project")?;
            let deployment_id = args.opt_str("deployment_id")?;
            let requires = args.opt_bool("requires_deployment")?.unwrap_or(true);
            let key_env = args.opt_str("api_key_environment")?;
            let key = args.opt_str("api_key")?;
            let internal = args.opt_bool("internal")?.unwrap_or(false);
            let has_target = args.has("target_environment");
            let target = args.opt_str("target_environment")?;
            args.finish()?;
            if has_target && !internal {
                return Err("target_environment without internal".into());
            }
            let r = async {
                let caller = Caller::from_parts(key_env.as_deref(), key.as_deref(), internal, target.as_deref())?;
                let request = ResolveRequest { project, deployment_id, requires_deployment: requires, caller };
                lupa.resolve(&request).await
            }
            .await;
            (r.map(|r| json!({ "deployment": r.deployment })), &["deployment"])
        }
        "parse_api_key" => {
            let key = args.str("key")?;
            args.finish()?;
            let r = parse_api_key(&key);
            (r.map(|i| json!({ "key_type": i.key_type, "environment": i.environment })), &["key_type", "environment"])
        }
        // Two ops beyond the shared table, for the regression vectors the
        // model-based test writes (tests/regressions): every operation it
        // generates must be expressible as a step.
        "delete_project" => {
            let project = args.str("project")?;
            args.finish()?;
            (lupa.delete_project(&project).await.map(|_| json!({})), &[])
        }
        "history" => {
            let project = args.str("project")?;
            args.finish()?;
            let r =
                async {
                    let mut entries = Vec::new();
                    let mut cursor = None;
                    loop {
                        let page = lupa.history(&project, None, cursor.as_deref()).await?;
                        entries.extend(page.items.into_iter().map(
                            |e| json!({ "seq": e.seq, "deployment": e.deployment_id, "from": e.from, "to": e.to }),
                        ));
                        match page.next_cursor {
                            Some(c) => cursor = Some(c),
                            None => break,
                        }
                    }
                    Ok(json!({ "entries": entries }))
                }
                .await;
            (r, &["entries"])
        }
        "get_deployment" => {
            let id = args.str("deployment")?;
            args.finish()?;
            let r = lupa.get_deployment(&id).await;
            (
                r.map(|d| json!({ "project": d.project_id, "environment": d.environment, "status": d.status })),
                &["project", "environment", "status"],
            )
        }
        "list_deployments" => {
            let project = args.str("project")?;
            args.finish()?;
            let r = async {
                let mut ids = Vec::new();
                let mut cursor = None;
                loop {
                    let page = lupa.list_deployments(&project, None, cursor.as_deref()).await?;
                    ids.extend(page.items.into_iter().map(|d| d.id));
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                Ok(json!({ "ids": ids }))
            }
            .await;
            (r, &["ids"])
        }
        other => return Err(format!("unknown op {other:?}")),
    };
    check(&op, result, expect, fields)
}

fn check(op: &str, result: StepResult, expect: Option<Map<String, Value>>, fields: &[&str]) -> Result<(), String> {
    let expect = expect.unwrap_or_default();
    if let Some(code) = expect.get("error") {
        if let Some(k) = expect.keys().find(|k| *k != "error" && *k != "http_status") {
            return Err(format!("{op}: unknown expectation field {k:?} beside \"error\""));
        }
        return match result {
            Ok(v) => Err(format!("{op}: expected error {code}, got success {v}")),
            Err(e) => {
                let got = err_json(&e);
                if &got["error"] != code {
                    return Err(format!("{op}: expected error {code}, got {} ({})", e.code(), e.message()));
                }
                if let Some(status) = expect.get("http_status")
                    && &got["http_status"] != status
                {
                    return Err(format!("{op}: expected http_status {status}, got {}", got["http_status"]));
                }
                Ok(())
            }
        };
    }
    let actual = result.map_err(|e| format!("{op}: expected success, got {} ({})", e.code(), e.message()))?;
    for (field, want) in &expect {
        if !fields.contains(&field.as_str()) {
            return Err(format!("{op}: unknown expectation field {field:?}"));
        }
        let got = actual.get(field).unwrap_or(&Value::Null);
        if !matches(want, got) {
            return Err(format!("{op}: field {field}: expected {want}, got {got}"));
        }
    }
    Ok(())
}

/// Objects match when every listed field matches; everything else exactly.
fn matches(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w.iter().all(|(k, v)| g.get(k).is_some_and(|gv| matches(v, gv))),
        _ => want == got,
    }
}

async fn cache_step(lupa: &Lupa, op: &str, mut args: Args, expect: Option<Map<String, Value>>) -> Result<(), String> {
    let probe = lupa.cache_probe().ok_or("a cache step in a backend without a cache")?;
    let expect = expect.unwrap_or_default();
    let allowed: &[&str] = match op {
        "cache_get" => &["value", "json", "one_of"],
        "cache_ttl" => &["min", "max", "absent"],
        _ => &[],
    };
    if let Some(k) = expect.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("{op}: unknown expectation field {k:?}"));
    }
    match op {
        "cache_clear" => {
            args.finish()?;
            probe.clear().await.map_err(|e| e.to_string())
        }
        "cache_set" => {
            let key = args.str("key")?;
            let value = args.str("value")?;
            let ttl = match args.map.remove("ttl") {
                Some(Value::Number(n)) => n.as_u64().ok_or("ttl must be whole seconds")?,
                _ => return Err("argument ttl (seconds) is required".into()),
            };
            args.finish()?;
            probe.set(&key, &value, Duration::from_secs(ttl)).await.map_err(|e| e.to_string())
        }
        "cache_get" => {
            let key = args.str("key")?;
            args.finish()?;
            let got = probe.get(&key).await.map_err(|e| e.to_string())?;
            let got_json = got.as_ref().map_or(Value::Null, |s| Value::String(s.clone()));
            if let Some(want) = expect.get("value")
                && want != &got_json
            {
                return Err(format!("cache_get {key}: expected {want}, got {got_json}"));
            }
            if let Some(want) = expect.get("one_of") {
                let options = want.as_array().ok_or("one_of must be a list")?;
                if !options.contains(&got_json) {
                    return Err(format!("cache_get {key}: expected one of {want}, got {got_json}"));
                }
            }
            if let Some(want) = expect.get("json") {
                let parsed: Value = got
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .ok_or_else(|| format!("cache_get {key}: expected JSON {want}, got {got_json}"))?;
                if !matches(want, &parsed) {
                    return Err(format!("cache_get {key}: expected JSON {want}, got {parsed}"));
                }
            }
            Ok(())
        }
        "cache_ttl" => {
            let key = args.str("key")?;
            args.finish()?;
            let ttl = probe.ttl(&key).await.map_err(|e| e.to_string())?;
            if expect.get("absent") == Some(&Value::Bool(true)) {
                return match ttl {
                    None => Ok(()),
                    Some(t) => Err(format!("cache_ttl {key}: expected absent, got {t:?}")),
                };
            }
            let ttl = ttl.ok_or_else(|| format!("cache_ttl {key}: the key is absent"))?;
            // Redis rounds PTTL down; compare whole seconds, rounded up.
            let secs = ttl.as_millis().div_ceil(1000) as u64;
            let min = expect.get("min").and_then(Value::as_u64).unwrap_or(0);
            let max = expect.get("max").and_then(Value::as_u64).unwrap_or(u64::MAX);
            if secs < min || secs > max {
                return Err(format!("cache_ttl {key}: expected {min}..={max} s, got {secs} s"));
            }
            Ok(())
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_directory_is_an_error() {
        let missing = std::env::temp_dir().join("lupa-no-such-vector-dir");
        assert!(load_dirs(&[missing]).unwrap_err().contains("lupa-no-such-vector-dir"));
        let empty = std::env::temp_dir().join(format!("lupa-empty-vectors-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        assert!(load_dirs(std::slice::from_ref(&empty)).unwrap_err().contains("no *.json"));
        std::fs::write(empty.join("bad.json"), "{\"scenarios\": 3}").unwrap();
        assert!(load_dirs(std::slice::from_ref(&empty)).unwrap_err().contains("scenarios"));
        std::fs::remove_dir_all(&empty).unwrap();
    }

    #[tokio::test]
    async fn unknown_ops_arguments_and_expectations_fail() {
        let lupa = Lupa::open(Config::new("memory://", "memory://")).await.unwrap();
        for step in [
            json!({"op": "explode"}),
            json!({"op": "create_project", "project": "p", "colour": "red"}),
            json!({"op": "create_project", "project": "p2", "expect": {"colour": "red"}}),
            json!({"op": "parse_api_key", "key": "lupa_sk_live_a", "expect": {"error": "INVALID_API_KEY"}}),
            json!({"op": "cache_get", "key": "k", "expect": {"colour": 1}}),
        ] {
            assert!(run_step(&lupa, &step).await.is_err(), "{step}");
        }
        assert!(
            run_step(
                &lupa,
                &json!({"op": "parse_api_key", "key": "lupa_sk_live_a", "expect": {"environment": "live"}})
            )
            .await
            .is_ok()
        );
    }
}
