//! The conformance vectors, driven through the exported C functions of
//! liblupa only: every step is a call of a `lupa_*` `extern "C"` function
//! with C strings, raw out-pointers and a caller-owned `lupa_error`, exactly
//! as a C host makes it. The Lupa Rust API is never called; vector files are
//! read with core's loader (plain JSON reading, no semantics).
//!
//! Backend pairs: memory+memory, sqlite+memory, postgres+redis and
//! postgres+none. Under CI=true a missing PostgreSQL or Redis fails.

use std::ffi::{CStr, CString, c_char};
use std::net::{TcpStream, ToSocketAddrs};
use std::ptr;
use std::time::Duration;

use lupa::*;
use lupa_core::conformance::{Scenario, VectorFile, load_dirs};
use serde_json::{Map, Value, json};

fn vectors_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/vectors")
}

fn reachable(url: &str, default_port: u16) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let addr = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:{default_port}") };
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

fn service(var: &str, default: &str, port: u16) -> Option<String> {
    let url = std::env::var(var).unwrap_or_else(|_| default.into());
    if reachable(&url, port) {
        return Some(url);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{var}: the service is not reachable and CI=true: a missing service fails the run");
    }
    eprintln!("SKIPPED: {var} is not reachable");
    None
}

fn postgres() -> Option<String> {
    service("LUPA_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres", 5432)
}

fn redis() -> Option<String> {
    service("LUPA_TEST_REDIS_URL", "redis://127.0.0.1:6379", 6379)
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{}_{nanos}_{n}", std::process::id())
}

// ----- the C calls ------------------------------------------------------------

fn cs(s: &str) -> CString {
    CString::new(s).expect("no NUL in vector strings")
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |c| c.as_ptr())
}

fn new_error() -> lupa_error {
    lupa_error { code: lupa_code::Internal, http_status: 0, message: [0; LUPA_ERROR_MESSAGE_LEN] }
}

/// A failed C call: the code's name, the HTTP status, the message.
#[derive(Debug)]
struct CError {
    name: String,
    http_status: u16,
    message: String,
}

fn c_error(code: lupa_code, err: &lupa_error) -> CError {
    assert_eq!(err.code, code, "the returned code and err.code agree");
    let name = unsafe { CStr::from_ptr(lupa_code_name(code as u32)) }.to_string_lossy().into_owned();
    let message = unsafe { CStr::from_ptr(err.message.as_ptr()) }.to_string_lossy().into_owned();
    CError { name, http_status: err.http_status, message }
}

/// Calls a function that hands out a string; takes ownership of it.
fn call_string(f: impl FnOnce(*mut *mut c_char, *mut lupa_error) -> lupa_code) -> Result<Option<String>, CError> {
    let mut out: *mut c_char = ptr::null_mut();
    let mut err = new_error();
    let code = f(&mut out, &mut err);
    if code != lupa_code::Ok {
        assert!(out.is_null(), "out is NULL on failure");
        return Err(c_error(code, &err));
    }
    if out.is_null() {
        return Ok(None);
    }
    let s = unsafe { CStr::from_ptr(out) }.to_str().expect("UTF-8 out").to_owned();
    unsafe { lupa_string_free(out) };
    Ok(Some(s))
}

fn call_json(f: impl FnOnce(*mut *mut c_char, *mut lupa_error) -> lupa_code) -> Result<Value, CError> {
    let s = call_string(f)?.expect("a JSON result");
    Ok(serde_json::from_str(&s).expect("the result is JSON"))
}

fn call_unit(f: impl FnOnce(*mut lupa_error) -> lupa_code) -> Result<(), CError> {
    let mut err = new_error();
    let code = f(&mut err);
    if code == lupa_code::Ok { Ok(()) } else { Err(c_error(code, &err)) }
}

struct Handle(*mut lupa_handle);

impl Drop for Handle {
    fn drop(&mut self) {
        unsafe { lupa_free(self.0) };
    }
}

struct Backend {
    store: String,
    cache: String,
}

impl Backend {
    fn label(&self) -> String {
        let kind = |u: &str| u.split(':').next().unwrap_or(u).to_owned();
        format!("{}+{}", kind(&self.store), kind(&self.cache))
    }

    fn has_cache(&self) -> bool {
        self.cache != "none"
    }

    fn open(&self) -> Result<Handle, String> {
        let tag = unique();
        let mut options = json!({ "key_prefix": format!("lupa-c-conformance-{tag}:") });
        if self.store.starts_with("postgres") {
            options["schema"] = json!(format!("lupa_c_{tag}"));
        }
        let (store, cache, options) = (cs(&self.store), cs(&self.cache), cs(&options.to_string()));
        let mut h: *mut lupa_handle = ptr::null_mut();
        call_unit(|err| unsafe { lupa_open(store.as_ptr(), cache.as_ptr(), options.as_ptr(), 0, &mut h, err) })
            .map_err(|e| format!("{}: {}", e.name, e.message))?;
        Ok(Handle(h))
    }

    fn cleanup(&self, h: Handle) {
        if self.has_cache() {
            let _ = call_unit(|err| unsafe { lupa_cache_clear(h.0, 0, err) });
        }
        let _ = call_unit(|err| unsafe { lupa_drop_storage(h.0, 0, err) });
        unsafe { lupa_close(h.0) };
        drop(h);
    }
}

// ----- the runner ---------------------------------------------------------------

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

    fn finish(self) -> Result<(), String> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(format!("unknown argument {k:?}")),
        }
    }
}

#[derive(Default)]
struct Report {
    passed: usize,
    skipped: usize,
    failures: Vec<String>,
}

fn run(files: &[VectorFile], backend: &Backend) -> Report {
    let mut report = Report::default();
    for file in files {
        let file_name = file.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        for scenario in &file.scenarios {
            match run_scenario(scenario, backend) {
                Ok(true) => report.passed += 1,
                Ok(false) => report.skipped += 1,
                Err((step, message)) => report.failures.push(match step {
                    Some(i) => format!("{file_name} / {} / step {i}: {message}", scenario.name),
                    None => format!("{file_name} / {}: {message}", scenario.name),
                }),
            }
        }
    }
    report
}

/// Ok(true): passed; Ok(false): skipped (needs a cache).
fn run_scenario(scenario: &Scenario, backend: &Backend) -> Result<bool, (Option<usize>, String)> {
    if let Some(unknown) = scenario.requires.iter().find(|r| r.as_str() != "cache") {
        return Err((None, format!("unknown requirement {unknown:?}")));
    }
    if scenario.requires.iter().any(|r| r == "cache") && !backend.has_cache() {
        return Ok(false);
    }
    let h = backend.open().map_err(|e| (None, format!("could not open: {e}")))?;
    let mut outcome = Ok(true);
    for (i, step) in scenario.steps.iter().enumerate() {
        if let Err(message) = run_step(&h, step) {
            outcome = Err((Some(i), message));
            break;
        }
    }
    backend.cleanup(h);
    outcome
}

type StepResult = Result<Value, CError>;

fn run_step(h: &Handle, step: &Value) -> Result<(), String> {
    let h = h.0;
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
        "cache_get" | "cache_ttl" | "cache_set" | "cache_clear" => return cache_step(h, &op, args, expect),
        "create_project" => {
            let id = cs(&args.str("project")?);
            let org = cs(&args.opt_str("org_id")?.unwrap_or_else(|| "org_conformance".into()));
            let name = cs(&args.opt_str("name")?.unwrap_or_else(|| "Conformance".into()));
            args.finish()?;
            let r = call_json(|out, err| unsafe {
                lupa_create_project(h, id.as_ptr(), org.as_ptr(), name.as_ptr(), 0, out, err)
            });
            (r, &[])
        }
        "create_deployment" => {
            let project = cs(&args.str("project")?);
            let id = cs(&args.str("deployment")?);
            let snapshot = cs(&args.opt_str("snapshot")?.unwrap_or_else(|| "snp_conformance".into()));
            let environment = args.opt_str("environment")?.map(|s| cs(&s));
            let created_at = args.opt_str("created_at")?.map(|s| cs(&s));
            args.finish()?;
            let r = call_json(|out, err| unsafe {
                lupa_create_deployment(
                    h,
                    project.as_ptr(),
                    id.as_ptr(),
                    snapshot.as_ptr(),
                    opt_ptr(&environment),
                    opt_ptr(&created_at),
                    0,
                    out,
                    err,
                )
            });
            (r.map(|v| v["value"].clone()), &["environment", "status"])
        }
        "set_status" => {
            let id = cs(&args.str("deployment")?);
            let status = cs(&args.str("status")?);
            let message = args.opt_str("message")?.map(|s| cs(&s));
            args.finish()?;
            let r = call_json(|out, err| unsafe {
                lupa_set_status(h, id.as_ptr(), status.as_ptr(), opt_ptr(&message), 0, out, err)
            });
            (r.map(|v| v["value"].clone()), &["status"])
        }
        "promote" | "rollback" => {
            let project = cs(&args.str("project")?);
            let deployment = if op == "promote" { Some(cs(&args.str("deployment")?)) } else { None };
            args.finish()?;
            let r = call_json(|out, err| unsafe {
                match &deployment {
                    Some(d) => lupa_promote(h, project.as_ptr(), d.as_ptr(), 0, out, err),
                    None => lupa_rollback(h, project.as_ptr(), 0, out, err),
                }
            });
            (r.map(|v| v["value"].clone()), &["deployment"])
        }
        "set_environment" => {
            let project = cs(&args.str("project")?);
            let id = cs(&args.str("deployment")?);
            let environment = cs(&args.str("environment")?);
            args.finish()?;
            let r = call_json(|out, err| unsafe {
                lupa_set_environment(h, project.as_ptr(), id.as_ptr(), environment.as_ptr(), 0, out, err)
            });
            (r.map(|v| v["value"].clone()), &["environment"])
        }
        "delete_deployment" => {
            let project = cs(&args.str("project")?);
            let id = cs(&args.str("deployment")?);
            args.finish()?;
            let r =
                call_json(|out, err| unsafe { lupa_delete_deployment(h, project.as_ptr(), id.as_ptr(), 0, out, err) });
            (r.map(|_| json!({})), &[])
        }
        "resolve" => {
            let project = cs(&args.str("project")?);
            let deployment_id = args.opt_str("deployment_id")?.map(|s| cs(&s));
            let requires = args.opt_bool("requires_deployment")?.unwrap_or(true);
            let key_env = args.opt_str("api_key_environment")?.map(|s| cs(&s));
            let key = args.opt_str("api_key")?.map(|s| cs(&s));
            let internal = args.opt_bool("internal")?.unwrap_or(false);
            let has_target = args.map.contains_key("target_environment");
            let target = args.opt_str("target_environment")?.map(|s| cs(&s));
            args.finish()?;
            if has_target && !internal {
                return Err("target_environment without internal".into());
            }
            let request = lupa_resolve_request {
                project: project.as_ptr(),
                deployment_id: opt_ptr(&deployment_id),
                requires_deployment: requires,
                api_key_environment: opt_ptr(&key_env),
                api_key: opt_ptr(&key),
                internal,
                target_environment: opt_ptr(&target),
            };
            let mut out = lupa_resolution {
                has_deployment: true,
                deployment_id: [1; LUPA_ID_BUFFER_LEN],
                source: lupa_source::Cache,
            };
            let r = call_unit(|err| unsafe { lupa_resolve(h, &request, 0, &mut out, err) }).map(|()| {
                let id = unsafe { CStr::from_ptr(out.deployment_id.as_ptr()) }.to_str().expect("ASCII id").to_owned();
                assert_eq!(out.has_deployment, !id.is_empty());
                assert_ne!(out.source, lupa_source::None);
                json!({ "deployment": if out.has_deployment { Value::String(id) } else { Value::Null } })
            });
            if r.is_err() {
                assert!(!out.has_deployment && out.deployment_id[0] == 0 && out.source == lupa_source::None);
            }
            (r, &["deployment"])
        }
        "parse_api_key" => {
            let key = cs(&args.str("key")?);
            args.finish()?;
            let mut info = lupa_api_key_info { key_type: lupa_key_type::Pk, environment: lupa_key_environment::Test };
            let r = call_unit(|err| unsafe { lupa_parse_api_key(key.as_ptr(), &mut info, err) }).map(|()| {
                let key_type = match info.key_type {
                    lupa_key_type::Sk => "sk",
                    lupa_key_type::Pk => "pk",
                    lupa_key_type::Unknown => "unknown",
                };
                let environment = match info.environment {
                    lupa_key_environment::Live => "live",
                    lupa_key_environment::Test => "test",
                    lupa_key_environment::Unknown => "unknown",
                };
                json!({ "key_type": key_type, "environment": environment })
            });
            (r, &["key_type", "environment"])
        }
        "get_deployment" => {
            let id = cs(&args.str("deployment")?);
            args.finish()?;
            let r = call_json(|out, err| unsafe { lupa_get_deployment(h, id.as_ptr(), 0, out, err) })
                .map(|d| json!({ "project": d["project_id"], "environment": d["environment"], "status": d["status"] }));
            (r, &["project", "environment", "status"])
        }
        "list_deployments" => {
            let project = cs(&args.str("project")?);
            args.finish()?;
            let r = (|| {
                let mut ids = Vec::new();
                let mut cursor: Option<CString> = None;
                loop {
                    let page = call_json(|out, err| unsafe {
                        lupa_list_deployments(h, project.as_ptr(), 0, opt_ptr(&cursor), 0, out, err)
                    })?;
                    ids.extend(page["items"].as_array().expect("items").iter().map(|d| d["id"].clone()));
                    match page["next_cursor"].as_str() {
                        Some(c) => cursor = Some(cs(c)),
                        None => break,
                    }
                }
                Ok(json!({ "ids": ids }))
            })();
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
                if code.as_str() != Some(e.name.as_str()) {
                    return Err(format!("{op}: expected error {code}, got {} ({})", e.name, e.message));
                }
                if let Some(status) = expect.get("http_status")
                    && status.as_u64() != Some(u64::from(e.http_status))
                {
                    return Err(format!("{op}: expected http_status {status}, got {}", e.http_status));
                }
                Ok(())
            }
        };
    }
    let actual = result.map_err(|e| format!("{op}: expected success, got {} ({})", e.name, e.message))?;
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

fn matches(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w.iter().all(|(k, v)| g.get(k).is_some_and(|gv| matches(v, gv))),
        _ => want == got,
    }
}

fn cache_step(h: *mut lupa_handle, op: &str, mut args: Args, expect: Option<Map<String, Value>>) -> Result<(), String> {
    let expect = expect.unwrap_or_default();
    let allowed: &[&str] = match op {
        "cache_get" => &["value", "json", "one_of"],
        "cache_ttl" => &["min", "max", "absent"],
        _ => &[],
    };
    if let Some(k) = expect.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("{op}: unknown expectation field {k:?}"));
    }
    let failed = |e: CError| format!("{op}: {} ({})", e.name, e.message);
    match op {
        "cache_clear" => {
            args.finish()?;
            call_unit(|err| unsafe { lupa_cache_clear(h, 0, err) }).map_err(failed)
        }
        "cache_set" => {
            let key = cs(&args.str("key")?);
            let value = cs(&args.str("value")?);
            let ttl = match args.map.remove("ttl") {
                Some(Value::Number(n)) => n.as_u64().ok_or("ttl must be whole seconds")?,
                _ => return Err("argument ttl (seconds) is required".into()),
            };
            args.finish()?;
            call_unit(|err| unsafe { lupa_cache_set(h, key.as_ptr(), value.as_ptr(), ttl, 0, err) }).map_err(failed)
        }
        "cache_get" => {
            let key_s = args.str("key")?;
            let key = cs(&key_s);
            args.finish()?;
            let got =
                call_string(|out, err| unsafe { lupa_cache_get(h, key.as_ptr(), 0, out, err) }).map_err(failed)?;
            let got_json = got.as_ref().map_or(Value::Null, |s| Value::String(s.clone()));
            if let Some(want) = expect.get("value")
                && want != &got_json
            {
                return Err(format!("cache_get {key_s}: expected {want}, got {got_json}"));
            }
            if let Some(want) = expect.get("one_of") {
                let options = want.as_array().ok_or("one_of must be a list")?;
                if !options.contains(&got_json) {
                    return Err(format!("cache_get {key_s}: expected one of {want}, got {got_json}"));
                }
            }
            if let Some(want) = expect.get("json") {
                let parsed: Value = got
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .ok_or_else(|| format!("cache_get {key_s}: expected JSON {want}, got {got_json}"))?;
                if !matches(want, &parsed) {
                    return Err(format!("cache_get {key_s}: expected JSON {want}, got {parsed}"));
                }
            }
            Ok(())
        }
        "cache_ttl" => {
            let key_s = args.str("key")?;
            let key = cs(&key_s);
            args.finish()?;
            let mut ms: i64 = -2;
            call_unit(|err| unsafe { lupa_cache_ttl(h, key.as_ptr(), 0, &mut ms, err) }).map_err(failed)?;
            if expect.get("absent") == Some(&Value::Bool(true)) {
                return if ms == -1 { Ok(()) } else { Err(format!("cache_ttl {key_s}: expected absent, got {ms} ms")) };
            }
            if ms < 0 {
                return Err(format!("cache_ttl {key_s}: the key is absent"));
            }
            // Redis rounds PTTL down; compare whole seconds, rounded up.
            let secs = (ms as u64).div_ceil(1000);
            let min = expect.get("min").and_then(Value::as_u64).unwrap_or(0);
            let max = expect.get("max").and_then(Value::as_u64).unwrap_or(u64::MAX);
            if secs < min || secs > max {
                return Err(format!("cache_ttl {key_s}: expected {min}..={max} s, got {secs} s"));
            }
            Ok(())
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

fn run_pair(store: &str, cache: &str) -> Report {
    let files = load_dirs(&[vectors_dir()]).expect("vector files (a missing or empty directory fails)");
    let backend = Backend { store: store.into(), cache: cache.into() };
    let report = run(&files, &backend);
    println!(
        "C ABI conformance {}: {} passed, {} failed, {} skipped",
        backend.label(),
        report.passed,
        report.failures.len(),
        report.skipped
    );
    for f in &report.failures {
        println!("  FAILED {f}");
    }
    assert!(report.passed > 0, "{}: no scenario ran", backend.label());
    assert!(report.failures.is_empty(), "{}: {} scenario(s) failed", backend.label(), report.failures.len());
    report
}

#[test]
fn memory_memory() {
    let r = run_pair("memory://", "memory://");
    assert_eq!(r.skipped, 0);
}

#[test]
fn sqlite_memory() {
    let r = run_pair("sqlite::memory:", "memory://");
    assert_eq!(r.skipped, 0);
}

#[test]
fn postgres_redis() {
    let (Some(db), Some(redis)) = (postgres(), redis()) else { return };
    let r = run_pair(&db, &redis);
    assert_eq!(r.skipped, 0);
}

#[test]
fn postgres_none() {
    let Some(db) = postgres() else { return };
    let r = run_pair(&db, "none");
    assert!(r.skipped > 0, "cache scenarios are skipped without a cache");
}
