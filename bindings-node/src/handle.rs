//! The `Lupa` class: one core handle, every operation a Promise.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use lupa_core::{Caller, Config, CreateDeployment, Environment, FinalStatus, NewProject, ResolveRequest};

use crate::args::{self, Fields, TypeResult};
use crate::runtime::{self, promise, rejected, rejected_type_error};
use crate::types::{
    Change, Deployment, DeploymentChange, DeploymentPage, Health, HistoryEntry, HistoryPage, Project, ProjectPage,
    Promotion, Resolution, Stats, nullable,
};
use crate::{errors, http};

/// A TypeError message becomes a rejected Promise.
macro_rules! check {
    ($env:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(message) => return rejected_type_error($env, message),
        }
    };
}

/// Options of `Lupa.open`. Only `store` is required; every other option has
/// the core's default.
#[napi(object)]
#[allow(dead_code)]
pub struct OpenOptions {
    /// `postgres://…`, `sqlite://path`, `sqlite::memory:` or `memory://`.
    pub store: String,
    /// `redis://…`, `rediss://…`, `memory://` (default) or `none`.
    pub cache: Option<String>,
    /// Put in front of every cache key (default: none, the seed's names).
    pub key_prefix: Option<String>,
    /// The PostgreSQL schema of the tables (default `public`), created when
    /// missing.
    pub schema: Option<String>,
    /// Most connections the store pool opens (default 8).
    pub pool_size: Option<u32>,
    /// Longest wait for one cache call before it counts as a miss (default 50).
    pub cache_timeout_ms: Option<f64>,
    /// Longest wait for one store operation (default 5000).
    pub store_timeout_ms: Option<f64>,
    /// Consecutive cache failures that open the circuit breaker (default 3).
    pub breaker_threshold: Option<u32>,
    /// How long an open breaker skips the cache (default 1000).
    pub breaker_cooldown_ms: Option<f64>,
    /// How often pending cache updates are looked for (default 250).
    pub outbox_interval_ms: Option<f64>,
    /// Keep answers in process memory in front of the shared cache
    /// (default true).
    pub local_cache: Option<bool>,
    /// Most projects whose answers process memory holds (default 100000).
    pub local_capacity: Option<u32>,
    /// Longest an answer in memory is used while the invalidation channel
    /// is down (default 1000).
    pub local_bound_ms: Option<f64>,
    /// Count resolutions, cache tiers, store operations and changes for
    /// `stats()` and `metricsText()` (default true; false counts nothing).
    pub metrics: Option<bool>,
}

/// A new project.
#[napi(object)]
#[allow(dead_code)]
pub struct NewProjectOptions {
    /// Generated when absent.
    pub id: Option<String>,
    pub org_id: String,
    /// 1 to 256 characters.
    pub name: String,
}

/// A new deployment; it starts `processing`.
#[napi(object)]
#[allow(dead_code)]
pub struct NewDeploymentOptions {
    pub project: String,
    /// Generated when absent.
    pub id: Option<String>,
    pub snapshot: String,
    /// `production` is stored as staging and promoted the moment it is
    /// ready; default `staging`.
    #[napi(ts_type = "'production' | 'staging'")]
    pub environment: Option<String>,
    /// For imports and tests: an RFC 3339 string or a Date; default now.
    #[napi(ts_type = "string | Date")]
    pub created_at: Option<String>,
}

/// A page request.
#[napi(object)]
#[allow(dead_code)]
pub struct PageOptions {
    /// 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    #[napi(ts_type = "string | null")]
    pub cursor: Option<String>,
}

/// One resolution, with exactly one caller: `apiKeyEnvironment`, `apiKey`
/// (a whole key, parsed first), or `internal: true` (with an optional
/// `targetEnvironment`, default production).
#[napi(object)]
#[allow(dead_code)]
pub struct ResolveOptions {
    pub project: String,
    /// The `Deployment-Id` header; null, absent or empty means none.
    #[napi(ts_type = "string | null")]
    pub deployment_id: Option<String>,
    /// Whether the route needs a deployment (default true).
    pub requires_deployment: Option<bool>,
    #[napi(ts_type = "'live' | 'test'")]
    pub api_key_environment: Option<String>,
    pub api_key: Option<String>,
    pub internal: Option<bool>,
    #[napi(ts_type = "'production' | 'staging' | null")]
    pub target_environment: Option<String>,
}

fn config_from(mut o: Fields) -> TypeResult<Config> {
    let mut c = Config { store: o.str("store")?, ..Config::default() };
    if let Some(v) = o.opt_str("cache")? {
        c.cache = v;
    }
    if let Some(v) = o.opt_str("keyPrefix")? {
        c.key_prefix = v;
    }
    if let Some(v) = o.opt_str("schema")? {
        c.schema = v;
    }
    if let Some(v) = o.opt_u32("poolSize")? {
        c.pool_size = v;
    }
    if let Some(v) = o.opt_millis("cacheTimeoutMs")? {
        c.cache_timeout = v;
    }
    if let Some(v) = o.opt_millis("storeTimeoutMs")? {
        c.store_timeout = v;
    }
    if let Some(v) = o.opt_u32("breakerThreshold")? {
        c.breaker_threshold = v;
    }
    if let Some(v) = o.opt_millis("breakerCooldownMs")? {
        c.breaker_cooldown = v;
    }
    if let Some(v) = o.opt_millis("outboxIntervalMs")? {
        c.outbox_interval = v;
    }
    if let Some(v) = o.opt_bool("localCache")? {
        c.local_cache = v;
    }
    if let Some(v) = o.opt_u32("localCapacity")? {
        c.local_capacity = v as usize;
    }
    if let Some(v) = o.opt_millis("localBoundMs")? {
        c.local_bound = v;
    }
    if let Some(v) = o.opt_bool("metrics")? {
        c.metrics = v;
    }
    o.finish()?;
    Ok(c)
}

fn page_from(o: Unknown) -> TypeResult<(Option<u32>, Option<String>)> {
    let mut o = args::opt_object_arg(o, "options")?;
    let limit = o.opt_u32("limit")?;
    let cursor = o.opt_str("cursor")?;
    o.finish()?;
    Ok((limit, cursor))
}

fn closed() -> lupa_core::Error {
    lupa_core::Error::new(lupa_core::ErrorCode::StorageUnavailable, "Storage is unavailable")
}

/// A Lupa handle: a store, an optional shared cache, and every operation of
/// the library as a Promise-returning method. Open one per process with
/// `Lupa.open` and share it; `close()` releases its connections.
#[napi]
pub struct Lupa {
    inner: Arc<Mutex<Option<lupa_core::Lupa>>>,
}

impl Drop for Lupa {
    fn drop(&mut self) {
        // Collected without close(): let the runtime drop the core handle
        // (its pools and background task belong there). Calls still in
        // flight hold their own clones and finish first.
        if let Some(lupa) = self.inner.lock().ok().and_then(|mut l| l.take()) {
            runtime::spawn_detached(async move { drop(lupa) });
        }
    }
}

/// The core handle behind a JavaScript one, or the error of a closed handle.
fn current(inner: &Mutex<Option<lupa_core::Lupa>>) -> lupa_core::Result<lupa_core::Lupa> {
    inner.lock().ok().and_then(|l| l.clone()).ok_or_else(closed)
}

impl Lupa {
    fn current(&self) -> lupa_core::Result<lupa_core::Lupa> {
        current(&self.inner)
    }

    /// Runs `f` on the handle on the runtime; a closed handle fails.
    fn call<'e, T, Out, Fut>(
        &self,
        env: &'e Env,
        f: impl FnOnce(lupa_core::Lupa) -> Fut + Send + 'static,
        to_js: impl FnOnce(T) -> Out + Send + 'static,
    ) -> Result<Object<'e>>
    where
        T: Send + 'static,
        Out: ToNapiValue + 'static,
        Fut: Future<Output = lupa_core::Result<T>> + Send + 'static,
    {
        let lupa = self.current();
        promise(env, async move { f(lupa?).await }, to_js)
    }
}

#[napi]
impl Lupa {
    /// Opens the store and cache the options name, applying the store's
    /// migrations. The cache connects on first use, so a handle opens while
    /// the cache is down.
    #[napi(ts_args_type = "options: OpenOptions", ts_return_type = "Promise<Lupa>")]
    pub fn open<'e>(env: &'e Env, options: Unknown) -> Result<Object<'e>> {
        let config = check!(env, args::object_arg(options, "options").and_then(config_from));
        promise(env, lupa_core::Lupa::open(config), |lupa| Lupa { inner: Arc::new(Mutex::new(Some(lupa))) })
    }

    /// Stops background work and releases the store's and the cache's
    /// connections. Later calls fail with `STORAGE_UNAVAILABLE`; closing
    /// twice is harmless.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        let lupa = self.inner.lock().ok().and_then(|mut l| l.take());
        promise(
            env,
            async move {
                if let Some(lupa) = lupa {
                    lupa.close().await;
                }
                Ok(())
            },
            |()| (),
        )
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.lock().map(|l| l.is_none()).unwrap_or(true)
    }

    // ----- projects -----------------------------------------------------

    /// Creates a project; a taken id is `PROJECT_EXISTS` (409).
    #[napi(ts_args_type = "project: NewProjectOptions", ts_return_type = "Promise<Project>")]
    pub fn create_project<'e>(&self, env: &'e Env, project: Unknown) -> Result<Object<'e>> {
        let new = check!(
            env,
            args::object_arg(project, "project").and_then(|mut o| {
                let new = NewProject { id: o.opt_str("id")?, org_id: o.str("orgId")?, name: o.str("name")? };
                o.finish()?;
                Ok(new)
            })
        );
        self.call(env, move |l| async move { l.create_project(new).await }, Project::from)
    }

    /// One project; `PROJECT_NOT_FOUND` (404) when there is none.
    #[napi(ts_args_type = "id: string", ts_return_type = "Promise<Project>")]
    pub fn get_project<'e>(&self, env: &'e Env, id: Unknown) -> Result<Object<'e>> {
        let id = check!(env, args::string_arg(id, "id"));
        self.call(env, move |l| async move { l.get_project(&id).await }, Project::from)
    }

    /// Projects in id order (bytes), a page at a time.
    #[napi(ts_args_type = "options?: PageOptions", ts_return_type = "Promise<ProjectPage>")]
    pub fn list_projects<'e>(&self, env: &'e Env, options: Unknown) -> Result<Object<'e>> {
        let (limit, cursor) = check!(env, page_from(options));
        self.call(
            env,
            move |l| async move { l.list_projects(limit, cursor.as_deref()).await },
            |p| ProjectPage {
                items: p.items.into_iter().map(Project::from).collect(),
                next_cursor: nullable(p.next_cursor),
            },
        )
    }

    /// Deletes a project with its deployments, history and cache entries.
    #[napi(ts_args_type = "id: string", ts_return_type = "Promise<Change>")]
    pub fn delete_project<'e>(&self, env: &'e Env, id: Unknown) -> Result<Object<'e>> {
        let id = check!(env, args::string_arg(id, "id"));
        self.call(
            env,
            move |l| async move { l.delete_project(&id).await },
            |c| Change { cache_pending: c.cache_pending },
        )
    }

    // ----- deployments --------------------------------------------------

    /// Creates a deployment, `processing`.
    #[napi(ts_args_type = "deployment: NewDeploymentOptions", ts_return_type = "Promise<DeploymentChange>")]
    pub fn create_deployment<'e>(&self, env: &'e Env, deployment: Unknown) -> Result<Object<'e>> {
        let (project, id, snapshot, environment, created_at) = check!(
            env,
            args::object_arg(deployment, "deployment").and_then(|mut o| {
                let parts = (
                    o.str("project")?,
                    o.opt_str("id")?,
                    o.str("snapshot")?,
                    o.opt_str("environment")?,
                    o.opt_str("createdAt")?,
                );
                o.finish()?;
                Ok(parts)
            })
        );
        self.call(
            env,
            move |l| async move {
                let environment = environment.as_deref().map(str::parse).transpose()?.unwrap_or(Environment::Staging);
                l.create_deployment(CreateDeployment { project, id, snapshot, environment, created_at }).await
            },
            DeploymentChange::from,
        )
    }

    /// One deployment, of any project; `DEPLOYMENT_NOT_FOUND` (404).
    #[napi(ts_args_type = "id: string", ts_return_type = "Promise<Deployment>")]
    pub fn get_deployment<'e>(&self, env: &'e Env, id: Unknown) -> Result<Object<'e>> {
        let id = check!(env, args::string_arg(id, "id"));
        self.call(env, move |l| async move { l.get_deployment(&id).await }, Deployment::from)
    }

    /// A project's deployments, newest `createdAt` first (ties: greater id
    /// first), a page at a time.
    #[napi(ts_args_type = "project: string, options?: PageOptions", ts_return_type = "Promise<DeploymentPage>")]
    pub fn list_deployments<'e>(&self, env: &'e Env, project: Unknown, options: Unknown) -> Result<Object<'e>> {
        let project = check!(env, args::string_arg(project, "project"));
        let (limit, cursor) = check!(env, page_from(options));
        self.call(
            env,
            move |l| async move { l.list_deployments(&project, limit, cursor.as_deref()).await },
            |p| DeploymentPage {
                items: p.items.into_iter().map(Deployment::from).collect(),
                next_cursor: nullable(p.next_cursor),
            },
        )
    }

    /// The processing task's call: `ready` or `failed` (with an optional
    /// failure message). A deployment created for production is promoted
    /// the moment it is ready.
    #[napi(
        ts_args_type = "deployment: string, status: 'ready' | 'failed', message?: string | null",
        ts_return_type = "Promise<DeploymentChange>"
    )]
    pub fn set_status<'e>(
        &self,
        env: &'e Env,
        deployment: Unknown,
        status: Unknown,
        message: Unknown,
    ) -> Result<Object<'e>> {
        let deployment = check!(env, args::string_arg(deployment, "deployment"));
        let status = check!(env, args::string_arg(status, "status"));
        let message = check!(env, args::opt_string_arg(message, "message"));
        self.call(
            env,
            move |l| async move { l.set_status(&deployment, status.parse::<FinalStatus>()?, message).await },
            DeploymentChange::from,
        )
    }

    /// Makes a ready deployment production and demotes the current one, in
    /// one transaction. Promoting the current production is a no-op.
    #[napi(ts_args_type = "project: string, deployment: string", ts_return_type = "Promise<Promotion>")]
    pub fn promote<'e>(&self, env: &'e Env, project: Unknown, deployment: Unknown) -> Result<Object<'e>> {
        let project = check!(env, args::string_arg(project, "project"));
        let deployment = check!(env, args::string_arg(deployment, "deployment"));
        self.call(env, move |l| async move { l.promote(&project, &deployment).await }, Promotion::from)
    }

    /// Sets a deployment's environment without demoting anyone (the PATCH
    /// endpoint): production needs a ready deployment and no other
    /// production (`PRODUCTION_CONFLICT`).
    #[napi(
        ts_args_type = "project: string, deployment: string, environment: 'production' | 'staging'",
        ts_return_type = "Promise<DeploymentChange>"
    )]
    pub fn set_environment<'e>(
        &self,
        env: &'e Env,
        project: Unknown,
        deployment: Unknown,
        environment: Unknown,
    ) -> Result<Object<'e>> {
        let project = check!(env, args::string_arg(project, "project"));
        let deployment = check!(env, args::string_arg(deployment, "deployment"));
        let environment = check!(env, args::string_arg(environment, "environment"));
        self.call(
            env,
            move |l| async move { l.set_environment(&project, &deployment, environment.parse()?).await },
            DeploymentChange::from,
        )
    }

    /// Deletes a deployment (production included); its id is free again.
    #[napi(ts_args_type = "project: string, deployment: string", ts_return_type = "Promise<DeploymentChange>")]
    pub fn delete_deployment<'e>(&self, env: &'e Env, project: Unknown, deployment: Unknown) -> Result<Object<'e>> {
        let project = check!(env, args::string_arg(project, "project"));
        let deployment = check!(env, args::string_arg(deployment, "deployment"));
        self.call(env, move |l| async move { l.delete_deployment(&project, &deployment).await }, DeploymentChange::from)
    }

    /// Promotes the deployment that was production before the current one;
    /// `NO_ROLLBACK_TARGET` (409) when there is none.
    #[napi(ts_args_type = "project: string", ts_return_type = "Promise<Promotion>")]
    pub fn rollback<'e>(&self, env: &'e Env, project: Unknown) -> Result<Object<'e>> {
        let project = check!(env, args::string_arg(project, "project"));
        self.call(env, move |l| async move { l.rollback(&project).await }, Promotion::from)
    }

    /// A project's environment changes, newest first, a page at a time.
    #[napi(ts_args_type = "project: string, options?: PageOptions", ts_return_type = "Promise<HistoryPage>")]
    pub fn history<'e>(&self, env: &'e Env, project: Unknown, options: Unknown) -> Result<Object<'e>> {
        let project = check!(env, args::string_arg(project, "project"));
        let (limit, cursor) = check!(env, page_from(options));
        self.call(
            env,
            move |l| async move { l.history(&project, limit, cursor.as_deref()).await },
            |p| HistoryPage {
                items: p
                    .items
                    .into_iter()
                    .map(|e| HistoryEntry {
                        seq: e.seq,
                        deployment_id: e.deployment_id.to_string(),
                        from: e.from.as_str().into(),
                        to: e.to.as_str().into(),
                        at: lupa_core::format_timestamp(&e.at),
                    })
                    .collect(),
                next_cursor: nullable(p.next_cursor),
            },
        )
    }

    // ----- resolution ---------------------------------------------------

    /// Which deployment a request reaches (`semantics.md`, Resolution).
    #[napi(ts_args_type = "request: ResolveOptions", ts_return_type = "Promise<Resolution>")]
    pub fn resolve<'e>(&self, env: &'e Env, request: Unknown) -> Result<Object<'e>> {
        let (project, deployment_id, requires, key_env, key, internal, target) = check!(
            env,
            args::object_arg(request, "request").and_then(|mut o| {
                let parts = (
                    o.str("project")?,
                    o.opt_str("deploymentId")?,
                    o.opt_bool("requiresDeployment")?.unwrap_or(true),
                    o.opt_str("apiKeyEnvironment")?,
                    o.opt_str("apiKey")?,
                    o.opt_bool("internal")?.unwrap_or(false),
                    o.opt_str("targetEnvironment")?,
                );
                o.finish()?;
                Ok(parts)
            })
        );
        let caller = Caller::from_parts(key_env.as_deref(), key.as_deref(), internal, target.as_deref());
        let request =
            caller.map(|caller| ResolveRequest { project, deployment_id, requires_deployment: requires, caller });
        // An answer held in process memory settles the Promise here, on the
        // JavaScript thread, without a hop to the runtime's threads. A
        // negative answer and a malformed request are answers too: they
        // settle here as well, and are not asked (and counted) twice.
        if let Ok(request) = &request
            && let Ok(lupa) = self.current()
            && let Some(answer) = lupa.resolve_cached(request)
        {
            return match answer {
                Ok(found) => {
                    let settled = PromiseRaw::resolve(env, Resolution::from(found))?;
                    Ok(Object::from_raw(env.raw(), settled.raw()))
                }
                Err(e) => rejected(env, e),
            };
        }
        self.call(env, move |l| async move { l.resolve(&request?).await }, Resolution::from)
    }

    /// The middleware helper: resolves an HTTP request in one call, from a
    /// project id (or the `Host` header under `rootDomain`), its headers
    /// (`Authorization: Bearer <key>`, `Deployment-Id`) and whether the route
    /// requires a deployment. Resolves to `{ok: true, projectId,
    /// deploymentId}` or to `{ok: false, status, body}` with the JSON body
    /// `{"error": {"code", "message"}}` to answer with; it rejects only for
    /// arguments of the wrong type.
    #[napi(ts_args_type = "request: HttpRequestOptions", ts_return_type = "Promise<HttpResolution | HttpRejection>")]
    pub fn resolve_request<'e>(&self, env: &'e Env, request: Unknown) -> Result<Object<'e>> {
        let parsed = check!(env, http::parse(request));
        let lupa = self.current();
        promise(env, async move { Ok(http::resolve(lupa, parsed).await) }, http::to_js)
    }

    // ----- operations ---------------------------------------------------

    /// Asks the store and the cache whether they answer.
    #[napi(ts_return_type = "Promise<Health>")]
    pub fn health<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        self.call(env, |l| async move { Ok(l.health().await) }, Health::from)
    }

    /// What the handle has counted since it was opened: resolutions by
    /// tier and by error code, each cache tier's hits and misses, cache and
    /// store failures, a latency histogram, resolutions per deployment,
    /// promotions and rollbacks (all zero with option `metrics: false`).
    /// Synchronous: it reads counters in memory and never waits. Throws
    /// `STORAGE_UNAVAILABLE` once the handle is closed.
    #[napi]
    pub fn stats(&self, env: &Env) -> Result<Stats> {
        let lupa = self.current().map_err(|e| errors::lupa_error(env, &e))?;
        Ok(Stats::from(lupa.stats()))
    }

    /// The same counters in the Prometheus text exposition format (version
    /// 0.0.4), every series named `lupa_*`, for a `/metrics` endpoint to
    /// answer with as it is. Synchronous, as `stats()`.
    #[napi]
    pub fn metrics_text(&self, env: &Env) -> Result<String> {
        let lupa = self.current().map_err(|e| errors::lupa_error(env, &e))?;
        Ok(lupa.stats().to_prometheus())
    }

    /// Applies the cache updates recorded in the store that are still
    /// pending (from any process); resolves to how many remain.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn apply_pending_cache_updates<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        self.call(
            env,
            |l| async move { l.apply_pending_cache_updates().await },
            |n| u32::try_from(n).unwrap_or(u32::MAX),
        )
    }

    /// For tests: removes everything the store holds where that is cheap and
    /// safe (a private PostgreSQL schema is dropped).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn drop_storage<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        self.call(env, |l| async move { l.drop_storage().await }, |()| ())
    }

    /// The test hook for the shared cache: direct reads and writes by the
    /// seed's key names (without this handle's key prefix), bypassing the
    /// circuit breaker. Null when no cache is configured or the handle is
    /// closed; its calls fail with `STORAGE_UNAVAILABLE` once the handle is
    /// closed (it holds no connection of its own).
    #[napi]
    pub fn cache_probe(&self) -> Option<CacheProbe> {
        self.current().ok()?.cache_probe()?;
        Some(CacheProbe { inner: self.inner.clone() })
    }
}

/// Direct access to the shared cache by seed key name (`project:p1:exists`),
/// for tests and tooling; see `Lupa.cacheProbe()`.
#[napi]
pub struct CacheProbe {
    inner: Arc<Mutex<Option<lupa_core::Lupa>>>,
}

impl CacheProbe {
    /// The core probe of the handle, while it is open.
    fn probe(&self) -> lupa_core::Result<lupa_core::CacheProbe> {
        current(&self.inner)?.cache_probe().ok_or_else(closed)
    }
}

#[napi]
impl CacheProbe {
    /// The value of `key`, or null.
    #[napi(ts_args_type = "key: string", ts_return_type = "Promise<string | null>")]
    pub fn get<'e>(&self, env: &'e Env, key: Unknown) -> Result<Object<'e>> {
        let key = check!(env, args::string_arg(key, "key"));
        let probe = self.probe();
        promise(env, async move { probe?.get(&key).await }, nullable)
    }

    /// The remaining time to live of `key` in seconds (millisecond
    /// precision), or null when it is absent.
    #[napi(ts_args_type = "key: string", ts_return_type = "Promise<number | null>")]
    pub fn ttl<'e>(&self, env: &'e Env, key: Unknown) -> Result<Object<'e>> {
        let key = check!(env, args::string_arg(key, "key"));
        let probe = self.probe();
        promise(env, async move { probe?.ttl(&key).await }, |t| match t {
            Some(t) => Either::A(t.as_millis() as f64 / 1000.0),
            None => Either::B(Null),
        })
    }

    /// Writes `key` unconditionally with a time to live in seconds.
    #[napi(ts_args_type = "key: string, value: string, ttlSeconds: number", ts_return_type = "Promise<void>")]
    pub fn set<'e>(&self, env: &'e Env, key: Unknown, value: Unknown, ttl_seconds: Unknown) -> Result<Object<'e>> {
        let key = check!(env, args::string_arg(key, "key"));
        let value = check!(env, args::string_arg(value, "value"));
        let ttl = check!(
            env,
            match args::to_json(&ttl_seconds, "ttlSeconds") {
                Ok(Some(serde_json::Value::Number(n))) => n
                    .as_f64()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1e9)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| "ttlSeconds must be a number of seconds above 0".to_string()),
                Ok(_) => Err("ttlSeconds must be a number".to_string()),
                Err(m) => Err(m),
            }
        );
        let probe = self.probe();
        promise(env, async move { probe?.set(&key, &value, ttl).await }, |()| ())
    }

    /// Deletes every library key behind the handle's key prefix (never
    /// anything else on a shared server).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn clear<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        let probe = self.probe();
        promise(env, async move { probe?.clear().await }, |()| ())
    }
}
