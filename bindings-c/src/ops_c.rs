//! The operations of a handle, resolution, and the helpers without one.

use std::ffi::c_char;
use std::time::Duration;

use lupa_core::{
    Caller, CreateDeployment, Environment, FinalStatus, KeyEnvironment, KeyType, NewProject, ResolveRequest, Source,
};

use crate::boundary::{arg, give_json, give_string, guard, opt_arg};
use crate::error_c::{Failure, lupa_code, lupa_error};
use crate::handle_c::{handle, lupa_handle};

/// The size of a buffer that holds any id (at most 64 ASCII characters)
/// with its terminating NUL.
pub const LUPA_ID_BUFFER_LEN: usize = 65;

/// Which tier answered a resolution.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lupa_source {
    /// No answer (the call failed).
    None = 0,
    /// The shared cache.
    Cache = 1,
    /// The store.
    Store = 2,
    /// This process's memory (the in-process tier).
    Local = 3,
}

/// One resolution request, as the middleware has it. The caller owns it and
/// every string in it; the library only reads them during the call.
///
/// Give exactly one caller: `api_key_environment`, or `api_key`, or
/// `internal` (with an optional `target_environment`). Zero-initialise the
/// struct and set what applies; note that `requires_deployment` must then
/// be set to true explicitly for routes that need a deployment.
#[repr(C)]
pub struct lupa_resolve_request {
    /// The project id. Required.
    pub project: *const c_char,
    /// The `Deployment-Id` header value; NULL or "" means none.
    pub deployment_id: *const c_char,
    /// Whether the route requires a deployment (search does).
    pub requires_deployment: bool,
    /// `"live"` or `"test"`: the environment of an API key the host has
    /// already authenticated. NULL when another caller form is used.
    pub api_key_environment: *const c_char,
    /// A whole API key string, parsed first (a malformed key is
    /// `LUPA_CODE_INVALID_API_KEY` before anything else is looked up).
    /// NULL when another caller form is used.
    pub api_key: *const c_char,
    /// An internal caller (a service token).
    pub internal: bool,
    /// For internal callers only: `"production"` or `"staging"`; NULL means
    /// production.
    pub target_environment: *const c_char,
}

/// The answer of `lupa_resolve`, written into a struct the caller owns.
/// Nothing in it needs freeing.
#[repr(C)]
pub struct lupa_resolution {
    /// Whether a deployment was resolved (false only for a route that
    /// requires none and named none, or when the call failed).
    pub has_deployment: bool,
    /// The deployment id, NUL-terminated; "" when `has_deployment` is false.
    pub deployment_id: [c_char; LUPA_ID_BUFFER_LEN],
    /// Which tier answered.
    pub source: lupa_source,
}

/// What an API key string says about itself: `lupa_parse_api_key`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lupa_key_type {
    /// Not parsed (the call failed).
    Unknown = 0,
    /// `sk`: a secret key.
    Sk = 1,
    /// `pk`: a public, read-only key.
    Pk = 2,
}

/// The environment of an API key.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lupa_key_environment {
    /// Not parsed (the call failed).
    Unknown = 0,
    /// `live`: resolves production.
    Live = 1,
    /// `test`: resolves staging.
    Test = 2,
}

/// The answer of `lupa_parse_api_key`, written into a struct the caller
/// owns. It holds no part of the secret.
#[repr(C)]
pub struct lupa_api_key_info {
    /// Secret or public.
    pub key_type: lupa_key_type,
    /// Live or test.
    pub environment: lupa_key_environment,
}

/// Writes a JSON result into `out` after checking it.
fn json_out(out: *mut *mut c_char, f: impl FnOnce() -> Result<*mut c_char, Failure>) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null("out_json"));
    }
    // SAFETY: out is non-NULL and writable (every export's contract).
    unsafe { out.write(std::ptr::null_mut()) };
    let s = f()?;
    // SAFETY: as above.
    unsafe { out.write(s) };
    Ok(())
}

fn limit(n: u32) -> Option<u32> {
    (n != 0).then_some(n)
}

// ----- projects ------------------------------------------------------------

/// Creates a project; a taken id is `LUPA_CODE_PROJECT_EXISTS`.
///
/// - `id`: NULL to generate one.
/// - `org_id`, `name` (1 to 256 characters): required.
/// - `*out_json` (on success; NULL on failure), freed with
///   `lupa_string_free`: the project,
///   `{"id", "org_id", "name", "created_at", "updated_at"}` (times are
///   RFC 3339 strings in UTC).
///
/// `timeout_ms`: 0 for the handle's default. `err` may be NULL.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_create_project(
    handle: *const lupa_handle,
    id: *const c_char,
    org_id: *const c_char,
    name: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: every pointer is NULL or valid for the call (contract).
            let (h, id, org_id, name) =
                unsafe { (self::handle(handle)?, opt_arg(id, "id")?, arg(org_id, "org_id")?, arg(name, "name")?) };
            let new = NewProject { id: id.map(str::to_owned), org_id: org_id.to_owned(), name: name.to_owned() };
            give_json(&h.call(timeout_ms, h.lupa.create_project(new))?)
        })
    })
}

/// One project (JSON as `lupa_create_project`); a missing one is
/// `LUPA_CODE_PROJECT_NOT_FOUND`. `*out_json` is freed with
/// `lupa_string_free`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_get_project(
    handle: *const lupa_handle,
    id: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, id) = unsafe { (self::handle(handle)?, arg(id, "id")?) };
            give_json(&h.call(timeout_ms, h.lupa.get_project(id))?)
        })
    })
}

/// Projects in id order (bytes), a page at a time.
///
/// - `limit`: 1 to 1000, or 0 for 100.
/// - `cursor`: NULL for the first page, else the `next_cursor` of the
///   previous page.
/// - `*out_json`, freed with `lupa_string_free`:
///   `{"items": [project, ...], "next_cursor": string or null}`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_list_projects(
    handle: *const lupa_handle,
    limit: u32,
    cursor: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, cursor) = unsafe { (self::handle(handle)?, opt_arg(cursor, "cursor")?) };
            give_json(&h.call(timeout_ms, h.lupa.list_projects(self::limit(limit), cursor))?)
        })
    })
}

/// Deletes a project with its deployments and history, and every cache
/// entry of the project and of its deployments.
///
/// `*out_json`, freed with `lupa_string_free`:
/// `{"value": null, "cache_pending": bool}` (`cache_pending` true: the
/// shared cache could not be reached; the change stands and its cache
/// update is applied as soon as the cache is back). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_delete_project(
    handle: *const lupa_handle,
    id: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, id) = unsafe { (self::handle(handle)?, arg(id, "id")?) };
            give_json(&h.call(timeout_ms, h.lupa.delete_project(id))?)
        })
    })
}

// ----- deployments ---------------------------------------------------------

/// Creates a deployment, `processing`.
///
/// - `project`, `snapshot`: required.
/// - `id`: NULL to generate one; a taken id is `LUPA_CODE_DEPLOYMENT_EXISTS`.
/// - `environment`: NULL for `"staging"`; `"production"` is stored as
///   staging and promoted the moment it becomes ready.
/// - `created_at`: NULL for now, or an RFC 3339 time (imports, tests).
/// - `*out_json`, freed with `lupa_string_free`:
///   `{"value": deployment, "cache_pending": bool}` where a deployment is
///   `{"id", "project_id", "snapshot_id", "environment", "status",
///   "created_at", "updated_at", "failure_message" (string or null),
///   "promote_when_ready" (bool)}`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_create_deployment(
    handle: *const lupa_handle,
    project: *const c_char,
    id: *const c_char,
    snapshot: *const c_char,
    environment: *const c_char,
    created_at: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, project, id, snapshot, environment, created_at) = unsafe {
                (
                    self::handle(handle)?,
                    arg(project, "project")?,
                    opt_arg(id, "id")?,
                    arg(snapshot, "snapshot")?,
                    opt_arg(environment, "environment")?,
                    opt_arg(created_at, "created_at")?,
                )
            };
            let environment = environment.map(str::parse::<Environment>).transpose()?.unwrap_or(Environment::Staging);
            let new = CreateDeployment {
                project: project.to_owned(),
                id: id.map(str::to_owned),
                snapshot: snapshot.to_owned(),
                environment,
                created_at: created_at.map(str::to_owned),
            };
            give_json(&h.call(timeout_ms, h.lupa.create_deployment(new))?)
        })
    })
}

/// One deployment, of any project (JSON deployment as in
/// `lupa_create_deployment`, without the `value` wrapper); a missing one is
/// `LUPA_CODE_DEPLOYMENT_NOT_FOUND`. `*out_json` is freed with
/// `lupa_string_free`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_get_deployment(
    handle: *const lupa_handle,
    id: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, id) = unsafe { (self::handle(handle)?, arg(id, "id")?) };
            give_json(&h.call(timeout_ms, h.lupa.get_deployment(id))?)
        })
    })
}

/// A project's deployments, newest `created_at` first (ties: greater id
/// first), a page at a time: `{"items": [deployment, ...], "next_cursor":
/// string or null}`. `limit` and `cursor` as `lupa_list_projects`.
/// `*out_json` is freed with `lupa_string_free`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_list_deployments(
    handle: *const lupa_handle,
    project: *const c_char,
    limit: u32,
    cursor: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, project, cursor) =
                unsafe { (self::handle(handle)?, arg(project, "project")?, opt_arg(cursor, "cursor")?) };
            give_json(&h.call(timeout_ms, h.lupa.list_deployments(project, self::limit(limit), cursor))?)
        })
    })
}

/// The processing task's call: `status` is `"ready"` or `"failed"`
/// (`"processing"` is `LUPA_CODE_INVALID_ARGUMENT`); `message` (NULL for
/// none) says why processing failed. A deployment created for production is
/// promoted the moment it is ready.
///
/// `*out_json`, freed with `lupa_string_free`:
/// `{"value": deployment, "cache_pending": bool}`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_set_status(
    handle: *const lupa_handle,
    deployment: *const c_char,
    status: *const c_char,
    message: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, deployment, status, message) = unsafe {
                (
                    self::handle(handle)?,
                    arg(deployment, "deployment")?,
                    arg(status, "status")?,
                    opt_arg(message, "message")?,
                )
            };
            let status: FinalStatus = status.parse()?;
            give_json(&h.call(timeout_ms, h.lupa.set_status(deployment, status, message.map(str::to_owned)))?)
        })
    })
}

/// Makes a ready deployment production, demoting the current one, in one
/// transaction. Promoting the current production again is a no-op.
///
/// `*out_json`, freed with `lupa_string_free`:
/// `{"value": {"deployment": {"id", "environment", "status"}, "demoted":
/// id or null}, "cache_pending": bool}`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_promote(
    handle: *const lupa_handle,
    project: *const c_char,
    deployment: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, project, deployment) =
                unsafe { (self::handle(handle)?, arg(project, "project")?, arg(deployment, "deployment")?) };
            give_json(&h.call(timeout_ms, h.lupa.promote(project, deployment))?)
        })
    })
}

/// Sets a deployment's environment (`"production"` or `"staging"`) without
/// demoting anyone: production needs a ready deployment and no other
/// production (else `LUPA_CODE_PRODUCTION_CONFLICT`).
///
/// `*out_json`, freed with `lupa_string_free`:
/// `{"value": deployment, "cache_pending": bool}`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_set_environment(
    handle: *const lupa_handle,
    project: *const c_char,
    deployment: *const c_char,
    environment: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, project, deployment, environment) = unsafe {
                (
                    self::handle(handle)?,
                    arg(project, "project")?,
                    arg(deployment, "deployment")?,
                    arg(environment, "environment")?,
                )
            };
            let environment: Environment = environment.parse()?;
            give_json(&h.call(timeout_ms, h.lupa.set_environment(project, deployment, environment))?)
        })
    })
}

/// Deletes a deployment (production included); its id is free again.
///
/// `*out_json`, freed with `lupa_string_free`:
/// `{"value": deployment (as it was), "cache_pending": bool}`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_delete_deployment(
    handle: *const lupa_handle,
    project: *const c_char,
    deployment: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, project, deployment) =
                unsafe { (self::handle(handle)?, arg(project, "project")?, arg(deployment, "deployment")?) };
            give_json(&h.call(timeout_ms, h.lupa.delete_deployment(project, deployment))?)
        })
    })
}

/// Promotes the deployment that was production before the current one
/// (`LUPA_CODE_NO_ROLLBACK_TARGET` when there is none, or it is gone or not
/// ready). `*out_json` as `lupa_promote`, freed with `lupa_string_free`.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_rollback(
    handle: *const lupa_handle,
    project: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, project) = unsafe { (self::handle(handle)?, arg(project, "project")?) };
            give_json(&h.call(timeout_ms, h.lupa.rollback(project))?)
        })
    })
}

/// A project's environment changes, newest first, a page at a time:
/// `{"items": [{"seq", "deployment_id", "from", "to", "at"}, ...],
/// "next_cursor": string or null}`. `limit` and `cursor` as
/// `lupa_list_projects`. `*out_json` is freed with `lupa_string_free`.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_history(
    handle: *const lupa_handle,
    project: *const c_char,
    limit: u32,
    cursor: *const c_char,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: as lupa_create_project.
            let (h, project, cursor) =
                unsafe { (self::handle(handle)?, arg(project, "project")?, opt_arg(cursor, "cursor")?) };
            give_json(&h.call(timeout_ms, h.lupa.history(project, self::limit(limit), cursor))?)
        })
    })
}

// ----- resolution ----------------------------------------------------------

/// Which deployment a request reaches (the hot path: no allocation is
/// handed to the caller).
///
/// `request` is read only; `*out` is always written: on failure
/// `has_deployment` is false, `deployment_id` is "" and `source` is
/// `LUPA_SOURCE_NONE`. Errors, in the order `semantics.md` fixes:
/// `LUPA_CODE_INVALID_API_KEY`, `LUPA_CODE_INVALID_ARGUMENT`,
/// `LUPA_CODE_PROJECT_NOT_FOUND`, `LUPA_CODE_DEPLOYMENT_NOT_FOUND`,
/// `LUPA_CODE_DEPLOYMENT_NOT_READY`, `LUPA_CODE_NO_PRODUCTION_DEPLOYMENT`,
/// `LUPA_CODE_NO_STAGING_DEPLOYMENT`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_resolve(
    handle: *const lupa_handle,
    request: *const lupa_resolve_request,
    timeout_ms: u64,
    out: *mut lupa_resolution,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        // The struct is written whole: the caller's memory may hold anything.
        // SAFETY: out is non-NULL and writable (contract).
        unsafe {
            out.write(lupa_resolution {
                has_deployment: false,
                deployment_id: [0; LUPA_ID_BUFFER_LEN],
                source: lupa_source::None,
            })
        };
        // SAFETY: handle and request are NULL or valid for the call (contract).
        let (h, r) = unsafe { (self::handle(handle)?, request.as_ref().ok_or_else(|| Failure::null("request"))?) };
        // SAFETY: the strings of the request are NULL or NUL-terminated.
        let (project, deployment_id, key_env, key, target) = unsafe {
            (
                arg(r.project, "request.project")?,
                opt_arg(r.deployment_id, "request.deployment_id")?,
                opt_arg(r.api_key_environment, "request.api_key_environment")?,
                opt_arg(r.api_key, "request.api_key")?,
                opt_arg(r.target_environment, "request.target_environment")?,
            )
        };
        let caller = Caller::from_parts(key_env, key, r.internal, target)?;
        let request = ResolveRequest {
            project: project.to_owned(),
            deployment_id: deployment_id.map(str::to_owned),
            requires_deployment: r.requires_deployment,
            caller,
        };
        let resolution = h.call(timeout_ms, h.lupa.resolve(&request))?;
        let mut answer = lupa_resolution {
            has_deployment: false,
            deployment_id: [0; LUPA_ID_BUFFER_LEN],
            source: lupa_source::None,
        };
        if let Some(d) = resolution.deployment {
            let bytes = d.as_str().as_bytes();
            if bytes.len() >= LUPA_ID_BUFFER_LEN {
                return Err(Failure::internal("a deployment id is longer than LUPA_ID_BUFFER_LEN"));
            }
            for (dst, b) in answer.deployment_id.iter_mut().zip(bytes) {
                *dst = *b as c_char;
            }
            answer.has_deployment = true;
        }
        answer.source = match resolution.source {
            Source::Cache => lupa_source::Cache,
            Source::Store => lupa_source::Store,
            Source::Local => lupa_source::Local,
        };
        // SAFETY: checked above.
        unsafe { out.write(answer) };
        Ok(())
    })
}

/// Parses an API key string (format only: whether the key exists is the
/// host's own authentication): `lupa_{sk|pk}_{live|test}_{random}` or the
/// legacy `lupa_sk_{32+ random}`. Anything else is
/// `LUPA_CODE_INVALID_API_KEY`.
///
/// `*out` is always written (`LUPA_KEY_TYPE_UNKNOWN` and
/// `LUPA_KEY_ENVIRONMENT_UNKNOWN` on failure). Needs no handle.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_parse_api_key(
    key: *const c_char,
    out: *mut lupa_api_key_info,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let unknown =
            lupa_api_key_info { key_type: lupa_key_type::Unknown, environment: lupa_key_environment::Unknown };
        // SAFETY: out is non-NULL and writable (contract); written whole.
        unsafe { out.write(unknown) };
        // SAFETY: key is NULL or NUL-terminated (contract).
        let key = unsafe { arg(key, "key") }?;
        let info = lupa_core::parse_api_key(key)?;
        let key_type = match info.key_type {
            KeyType::Sk => lupa_key_type::Sk,
            KeyType::Pk => lupa_key_type::Pk,
        };
        let environment = match info.environment {
            KeyEnvironment::Live => lupa_key_environment::Live,
            KeyEnvironment::Test => lupa_key_environment::Test,
        };
        // SAFETY: as above.
        unsafe { out.write(lupa_api_key_info { key_type, environment }) };
        Ok(())
    })
}

/// The API key in an `Authorization` header value: the scheme `Bearer` (any
/// case), one space, then the key (`LUPA_CODE_INVALID_API_KEY` otherwise).
/// The key is not parsed; pass it as `lupa_resolve_request.api_key` or to
/// `lupa_parse_api_key`.
///
/// `*out_key` (NULL on failure) is freed with `lupa_string_free`. Needs no
/// handle. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_api_key_from_authorization(
    authorization: *const c_char,
    out_key: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_key, || {
            // SAFETY: authorization is NULL or NUL-terminated (contract).
            let header = unsafe { arg(authorization, "authorization") }?;
            give_string(lupa_core::api_key_from_authorization(Some(header))?.to_owned())
        })
    })
}

/// The project a request is for, from its `Host` header under
/// `root_domain` (`abc1234567.lupa.build` under `lupa.build`; a port is
/// ignored). No project subdomain is `LUPA_CODE_INVALID_ARGUMENT`.
///
/// `*out_project` (NULL on failure) is freed with `lupa_string_free`. Needs
/// no handle. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_project_from_host(
    host: *const c_char,
    root_domain: *const c_char,
    out_project: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_project, || {
            // SAFETY: the strings are NULL or NUL-terminated (contract).
            let (host, root) = unsafe { (arg(host, "host")?, arg(root_domain, "root_domain")?) };
            give_string(lupa_core::project_from_host(host, root)?.to_string())
        })
    })
}

// ----- health and maintenance -----------------------------------------------

/// Asks the store and the cache whether they answer. The call itself
/// succeeds when they do not; the JSON says so.
///
/// `*out_json`, freed with `lupa_string_free`: `{"store": component,
/// "cache": component, "breaker": "closed" | "open" | "half_open",
/// "pending_cache_updates": number or null}` where a component is
/// `{"state": "ok"}`, `{"state": "disabled"}` or `{"state": "unavailable",
/// "detail": string}`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_health(
    handle: *const lupa_handle,
    timeout_ms: u64,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: handle is NULL or live (contract).
            let h = unsafe { self::handle(handle) }?;
            give_json(&h.call(timeout_ms, async { Ok(h.lupa.health().await) })?)
        })
    })
}

/// What the handle has counted since it was opened: resolutions by outcome,
/// each cache tier's hits and misses, cache and store failures, resolve
/// latency, resolutions per deployment, promotions and rollbacks. All zero
/// when the handle was opened with option `metrics` false (the gauges
/// `local_projects` and `cache.breaker` still read the live state).
///
/// Reads counters in memory: it never blocks, takes no timeout and may be
/// called from any thread, one that runs an async runtime included. A
/// closed handle is `LUPA_CODE_HANDLE_CLOSED`, as for every other call.
///
/// `*out_json` (NULL on failure), freed with `lupa_string_free`, is a JSON
/// object; every count is an unsigned 64-bit integer that only grows (take
/// two snapshots and subtract for a rate):
///
/// ```text
/// {"resolutions": {"local": n, "cache": n, "store": n,
///                  "errors": [{"code": "PROJECT_NOT_FOUND", "count": n}, ...]},
///  "local": {"hits": n, "misses": n},
///  "local_projects": n or null,
///  "cache": {"hits": n, "misses": n, "errors": n, "timeouts": n,
///            "skipped": n, "breaker": "closed" | "open" | "half_open" | null,
///            "breaker_opened": n},
///  "store": {"queries": n, "unavailable": n},
///  "latency": {"bounds_us": [1, 2, 5, ...], "counts": [n, ...], "sum_ns": n},
///  "deployments": [{"project": id, "deployment": id, "resolutions": n}, ...],
///  "untracked_deployment_resolutions": n,
///  "promotions": n,
///  "rollbacks": n}
/// ```
///
/// - `resolutions`: finished resolutions answered from process memory
///   (`local`), the shared cache or the store; `errors` has one entry per
///   code that occurred (names as `lupa_code_name`), in the order of
///   `semantics.md`.
/// - `local`: lookups of the in-process tier (zero when it is off);
///   `local_projects`: projects it holds now (null when it is off).
/// - `cache`: the shared cache (all zero without one). `hits` and `misses`
///   are lookups; `errors` (failed calls), `timeouts` (no answer within
///   `cache_timeout_ms`) and `skipped` (not asked: breaker open) are calls
///   of any kind; `breaker` is the breaker's state now (null without a
///   shared cache); `breaker_opened`, how often it opened.
/// - `store`: operations sent (one statement per resolution lookup, one
///   transaction per change, and those of the background task that
///   applies pending cache updates, which runs every `outbox_interval_ms`
///   on a handle with a shared cache) and those that failed as
///   `STORAGE_UNAVAILABLE`.
/// - `latency`: how long the resolutions took that process memory could
///   not answer (answered by the shared cache or the store, or failed
///   there), from the in-process miss to the answer; answers from process
///   memory and malformed requests are counted in `resolutions` but not
///   timed. `counts[i]` of them took at most `bounds_us[i]` microseconds
///   (and more than the bound before); `counts` has one more entry, for
///   everything slower than the last bound; `sum_ns` is the sum of their
///   durations in nanoseconds.
/// - `deployments`: successful resolutions per deployment, most resolved
///   first, for at most 1024 deployments;
///   `untracked_deployment_resolutions` counts those of any further one.
/// - `promotions`: promotions that changed production (`lupa_promote`, and
///   a deployment promoted the moment it was ready); `rollbacks`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_stats(
    handle: *const lupa_handle,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_json, || {
            // SAFETY: handle is NULL or live (contract).
            let h = unsafe { self::handle(handle) }?;
            give_json(&h.lupa.stats())
        })
    })
}

/// The same counters as `lupa_stats`, in the Prometheus text exposition
/// format (version 0.0.4), every series named `lupa_*`: for a scrape
/// endpoint to answer with as it is (`Content-Type: text/plain;
/// version=0.0.4`).
///
/// Never blocks and takes no timeout, as `lupa_stats`; a closed handle is
/// `LUPA_CODE_HANDLE_CLOSED`. `*out_text` (NULL on failure) is freed with
/// `lupa_string_free`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_metrics_text(
    handle: *const lupa_handle,
    out_text: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        if out_text.is_null() {
            return Err(Failure::null("out_text"));
        }
        json_out(out_text, || {
            // SAFETY: handle is NULL or live (contract).
            let h = unsafe { self::handle(handle) }?;
            give_string(h.lupa.stats().to_prometheus())
        })
    })
}

/// Applies now the cache updates recorded in the store that are still
/// pending (from this process or any other); the handle also does this in
/// the background. `*out_remaining` receives how many remain (0 when the
/// cache answered). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_apply_pending_cache_updates(
    handle: *const lupa_handle,
    timeout_ms: u64,
    out_remaining: *mut u64,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        if out_remaining.is_null() {
            return Err(Failure::null("out_remaining"));
        }
        // SAFETY: handle is NULL or live; out_remaining is writable (contract).
        let h = unsafe { self::handle(handle) }?;
        let n = h.call(timeout_ms, h.lupa.apply_pending_cache_updates())?;
        // SAFETY: checked above.
        unsafe { out_remaining.write(n as u64) };
        Ok(())
    })
}

/// Removes everything the store holds where that is cheap and safe (a
/// private PostgreSQL schema is dropped): for tests. Thread-safe, but
/// other calls on the handle then fail.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_drop_storage(
    handle: *const lupa_handle,
    timeout_ms: u64,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        // SAFETY: handle is NULL or live (contract).
        let h = unsafe { self::handle(handle) }?;
        h.call(timeout_ms, h.lupa.drop_storage())
    })
}

// ----- cache test hooks -----------------------------------------------------

fn probe(h: &lupa_handle) -> Result<lupa_core::CacheProbe, Failure> {
    h.lupa.cache_probe().ok_or_else(|| Failure::new(lupa_code::NoCache, "this handle has no cache"))
}

/// Test hook: the value of a shared-cache key as the seed names it
/// (`project:{id}:exists`, without the handle's key prefix), bypassing the
/// circuit breaker. `*out_value` is the value, or NULL when the key is
/// absent; free it with `lupa_string_free`. `LUPA_CODE_NO_CACHE` without a
/// cache; `LUPA_CODE_STORAGE_UNAVAILABLE` when the cache does not answer.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_cache_get(
    handle: *const lupa_handle,
    key: *const c_char,
    timeout_ms: u64,
    out_value: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        json_out(out_value, || {
            // SAFETY: as lupa_create_project.
            let (h, key) = unsafe { (self::handle(handle)?, arg(key, "key")?) };
            let probe = probe(h)?;
            match h.call(timeout_ms, probe.get(key))? {
                Some(v) => give_string(v),
                None => Ok(std::ptr::null_mut()),
            }
        })
    })
}

/// Test hook: the remaining time to live of a shared-cache key (seed name)
/// in milliseconds into `*out_ttl_ms`, or -1 when the key is absent.
/// Errors as `lupa_cache_get`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_cache_ttl(
    handle: *const lupa_handle,
    key: *const c_char,
    timeout_ms: u64,
    out_ttl_ms: *mut i64,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        if out_ttl_ms.is_null() {
            return Err(Failure::null("out_ttl_ms"));
        }
        // SAFETY: as lupa_create_project; out_ttl_ms is writable.
        let (h, key) = unsafe { (self::handle(handle)?, arg(key, "key")?) };
        let probe = probe(h)?;
        let ttl = h.call(timeout_ms, probe.ttl(key))?;
        let ms = ttl.map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        // SAFETY: checked above.
        unsafe { out_ttl_ms.write(ms) };
        Ok(())
    })
}

/// Test hook: writes a shared-cache key (seed name) unconditionally, for
/// `ttl_seconds` (at least 1). Errors as `lupa_cache_get`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_cache_set(
    handle: *const lupa_handle,
    key: *const c_char,
    value: *const c_char,
    ttl_seconds: u64,
    timeout_ms: u64,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        // SAFETY: as lupa_create_project.
        let (h, key, value) = unsafe { (self::handle(handle)?, arg(key, "key")?, arg(value, "value")?) };
        if ttl_seconds == 0 {
            return Err(Failure::invalid("ttl_seconds must be at least 1"));
        }
        let probe = probe(h)?;
        h.call(timeout_ms, probe.set(key, value, Duration::from_secs(ttl_seconds)))
    })
}

/// Test hook: deletes every library key behind this handle's key prefix
/// (never the whole server) and nothing else. Errors as `lupa_cache_get`.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_cache_clear(
    handle: *const lupa_handle,
    timeout_ms: u64,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        // SAFETY: handle is NULL or live (contract).
        let h = unsafe { self::handle(handle) }?;
        let probe = probe(h)?;
        h.call(timeout_ms, probe.clear())
    })
}
