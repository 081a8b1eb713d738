//! The handle: opens the backends, runs every operation with its time bound,
//! keeps the shared cache in step with the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::Instrument as _;

use crate::cache::guard::{BreakerState, GuardedCache};
use crate::cache::keys::{self, CacheKeys};
use crate::cache::memory::MemoryCache;
use crate::cache::redis::RedisCache;
use crate::cache::{Cache, CacheEntry, Invalidation, VersionedFill, values};
use crate::channel::Channel;
use crate::config::Config;
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{DeploymentId, OrgId, ProjectId, SnapshotId};
use crate::lifecycle::{self, Effect, NewDeployment};
use crate::local::{LocalTier, Question};
use crate::metrics::{Change, Metrics, Stats};
use crate::model::{
    Changed, Deployment, Environment, FinalStatus, HistoryEntry, Page, Project, Promotion, Status, now,
    parse_timestamp, validate_project_name,
};
use crate::redact::redact_url;
use crate::resolve::{Resolution, ResolveRequest, Source};
use crate::store::memory::MemoryStore;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{ListCursor, ProjectTx, Store};

/// The largest page a listing returns.
pub const MAX_PAGE: u32 = 1000;

/// A new project.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// The id; generated when none.
    pub id: Option<String>,
    /// The owning organisation.
    pub org_id: String,
    /// A display name, 1 to 256 characters.
    pub name: String,
}

/// A new deployment (it starts `processing`).
#[derive(Debug, Clone)]
pub struct CreateDeployment {
    /// The project.
    pub project: String,
    /// The id; generated when none.
    pub id: Option<String>,
    /// The snapshot to build from.
    pub snapshot: String,
    /// `production` is stored as staging and promoted the moment it is
    /// ready; default staging.
    pub environment: Environment,
    /// For imports, migrations and tests (RFC 3339); default now.
    pub created_at: Option<String>,
}

/// How one component of the handle is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum ComponentHealth {
    /// It answered.
    Ok,
    /// Not configured.
    Disabled,
    /// It did not answer; the detail holds no secret.
    Unavailable(String),
}

/// The answer of [`Lupa::health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The store.
    pub store: ComponentHealth,
    /// The shared cache.
    pub cache: ComponentHealth,
    /// The cache circuit breaker (closed when there is no cache).
    pub breaker: BreakerState,
    /// Cache updates recorded in the store and not yet applied (none when
    /// the store could not be asked).
    pub pending_cache_updates: Option<usize>,
    /// Projects with answers in the in-process tier (none when it is off).
    pub local_projects: Option<usize>,
}

/// Direct reads and writes of the shared cache by seed key name; see
/// [`Lupa::cache_probe`].
#[derive(Clone)]
pub struct CacheProbe {
    cache: Arc<dyn Cache>,
    keys: CacheKeys,
    local: Option<Arc<LocalTier>>,
}

fn probe_error(e: crate::cache::CacheError) -> Error {
    Error::new(crate::error::ErrorCode::StorageUnavailable, format!("cache unavailable: {}", e.0))
}

impl CacheProbe {
    /// The value of `key` (a seed name such as `project:p1:exists`).
    pub async fn get(&self, key: &str) -> Result<Option<String>> {
        let full = self.keys.raw(key);
        Ok(self.cache.get_many(std::slice::from_ref(&full)).await.map_err(probe_error)?.pop().flatten())
    }

    /// The remaining time to live of `key`; none when absent.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        self.cache.ttl(&self.keys.raw(key)).await.map_err(probe_error)
    }

    /// Writes `key` unconditionally.
    pub async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        self.cache.set(&self.keys.raw(key), value, ttl).await.map_err(probe_error)
    }

    /// Deletes every library key behind this handle's prefix, and every
    /// answer of the in-process tier.
    pub async fn clear(&self) -> Result<()> {
        if let Some(local) = &self.local {
            local.clear();
        }
        self.cache.clear(self.keys.prefix()).await.map_err(probe_error)
    }
}

struct Inner {
    store: Arc<dyn Store>,
    cache: Option<GuardedCache>,
    local: Option<Arc<LocalTier>>,
    /// Durable cache updates this process applied and has yet to remove:
    /// removed in batches by the background task, off the change's path.
    applied: std::sync::Mutex<Vec<i64>>,
    keys: CacheKeys,
    store_timeout: Duration,
    closed: AtomicBool,
    metrics: Option<Arc<Metrics>>,
}

/// A Lupa handle: cheap to clone, safe to share across tasks and threads.
///
/// Every call is async and needs a tokio runtime. Opening spawns one
/// background task on the runtime of the caller, which applies pending cache
/// updates; it ends with the last clone or with [`Lupa::close`].
#[derive(Clone)]
pub struct Lupa {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Lupa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lupa")
            .field("cache", &self.inner.cache.is_some())
            .field("key_prefix", &self.inner.keys.prefix())
            .finish_non_exhaustive()
    }
}

/// Options that apply whatever the backends are.
#[derive(Debug, Clone)]
pub struct Options {
    /// See [`Config::key_prefix`].
    pub key_prefix: String,
    /// See [`Config::cache_timeout`].
    pub cache_timeout: Duration,
    /// See [`Config::store_timeout`].
    pub store_timeout: Duration,
    /// See [`Config::breaker_threshold`].
    pub breaker_threshold: u32,
    /// See [`Config::breaker_cooldown`].
    pub breaker_cooldown: Duration,
    /// See [`Config::outbox_interval`].
    pub outbox_interval: Duration,
    /// See [`Config::local_cache`]. With backends of the caller's own there
    /// is no invalidation channel, so in-process answers always expire after
    /// `local_bound`.
    pub local_cache: bool,
    /// See [`Config::local_capacity`].
    pub local_capacity: usize,
    /// See [`Config::local_bound`].
    pub local_bound: Duration,
    /// See [`Config::metrics`].
    pub metrics: bool,
}

impl From<&Config> for Options {
    fn from(c: &Config) -> Options {
        Options {
            key_prefix: c.key_prefix.clone(),
            cache_timeout: c.cache_timeout,
            store_timeout: c.store_timeout,
            breaker_threshold: c.breaker_threshold,
            breaker_cooldown: c.breaker_cooldown,
            outbox_interval: c.outbox_interval,
            local_cache: c.local_cache,
            local_capacity: c.local_capacity,
            local_bound: c.local_bound,
            metrics: c.metrics,
        }
    }
}

impl Default for Options {
    fn default() -> Options {
        Options::from(&Config::default())
    }
}

fn parse_limit(limit: Option<u32>) -> Result<u32> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(Error::invalid_argument(format!("limit must be 1 to {MAX_PAGE}"))),
    }
}

fn deployment_cursor(d: &Deployment) -> String {
    format!("{}.{}", d.created_at.timestamp_micros(), d.id)
}

fn parse_deployment_cursor(cursor: &str) -> Result<ListCursor> {
    let bad = || Error::invalid_argument("cursor is not one this library returned");
    let (micros, id) = cursor.split_once('.').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let created_at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok(ListCursor { created_at, id: DeploymentId::new(id).map_err(|_| bad())? })
}

impl Lupa {
    /// Opens the store and cache that `config` names, applying the store's
    /// migrations. The cache is connected on first use, so a handle opens
    /// while the cache is down.
    ///
    /// Handles of one process that open the same store share one in-process
    /// tier, so a change made through one is seen at once through the others.
    pub async fn open(config: Config) -> Result<Lupa> {
        config.validate()?;
        let channel_name = format!("{}lupa:invalidations", config.key_prefix);
        let (store, postgres) = open_store(&config).await?;
        let (cache, redis) = open_cache(&config, &channel_name)?;
        let local = if config.local_cache {
            let channel = match (redis, postgres) {
                (Some(client), _) => Channel::Redis { client: Box::new(client), channel: channel_name },
                (None, Some((pool, channel))) => Channel::Postgres { pool, channel },
                (None, None) if is_private_store(&config.store) => Channel::SingleProcess,
                (None, None) => Channel::Absent,
            };
            let shared = (!is_private_store(&config.store))
                .then(|| format!("{}|{}|{}", std::process::id(), config.store, config.schema));
            let tier = local_tier(shared, config.local_capacity, config.local_bound, channel);
            tier.settle(crate::channel::PATIENCE).await;
            Some(tier)
        } else {
            None
        };
        Ok(Lupa::assemble(store, cache, local, Options::from(&config)))
    }

    /// A handle over backends of the caller's own (see [`Store`] and [`Cache`]).
    pub fn with_backends(store: Arc<dyn Store>, cache: Option<Arc<dyn Cache>>, options: Options) -> Lupa {
        let local =
            options.local_cache.then(|| local_tier(None, options.local_capacity, options.local_bound, Channel::Absent));
        Lupa::assemble(store, cache, local, options)
    }

    fn assemble(
        store: Arc<dyn Store>,
        cache: Option<Arc<dyn Cache>>,
        local: Option<Arc<LocalTier>>,
        options: Options,
    ) -> Lupa {
        let metrics = options.metrics.then(|| Arc::new(Metrics::new()));
        let cache = cache.map(|c| {
            let (timeout, threshold, cooldown) =
                (options.cache_timeout, options.breaker_threshold, options.breaker_cooldown);
            GuardedCache::new(c, timeout, threshold, cooldown, metrics.clone())
        });
        let has_cache = cache.is_some();
        let lupa = Lupa {
            inner: Arc::new(Inner {
                store,
                cache,
                local,
                applied: std::sync::Mutex::new(Vec::new()),
                keys: CacheKeys::new(options.key_prefix),
                store_timeout: options.store_timeout,
                closed: AtomicBool::new(false),
                metrics,
            }),
        };
        if has_cache && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(apply_pending_forever(Arc::downgrade(&lupa.inner), options.outbox_interval));
        }
        lupa
    }

    /// Stops background work and releases the store's connections. Calls
    /// made afterwards fail with `STORAGE_UNAVAILABLE`; closing twice is
    /// harmless.
    pub async fn close(&self) {
        if self.inner.closed.load(Ordering::Acquire) {
            return;
        }
        // Best effort: a record left behind is only applied once more.
        let _ = self.inner.remove_applied().await;
        if !self.inner.closed.swap(true, Ordering::AcqRel) {
            self.inner.store.close().await;
        }
    }

    /// The cache key names this handle uses.
    pub fn cache_keys(&self) -> &CacheKeys {
        &self.inner.keys
    }

    /// Removes everything the store holds where that is cheap and safe (a
    /// private PostgreSQL schema is dropped); for tests.
    pub async fn drop_storage(&self) -> Result<()> {
        self.db(self.inner.store.drop_storage()).await
    }

    /// Direct access to the configured shared cache, bypassing its breaker:
    /// for tests and tooling (none when no cache is configured).
    pub fn cache_backend(&self) -> Option<Arc<dyn Cache>> {
        self.inner.cache.as_ref().map(|c| c.inner.clone())
    }

    /// The shared cache as the seed names its keys (without this handle's
    /// prefix), bypassing the breaker: the test hook every binding's
    /// conformance runner uses for `cache_*` steps. None without a cache.
    pub fn cache_probe(&self) -> Option<CacheProbe> {
        let cache = self.cache_backend()?;
        Some(CacheProbe { cache, keys: self.inner.keys.clone(), local: self.inner.local.clone() })
    }

    // ----- projects -------------------------------------------------------

    /// Creates a project; a taken id is `PROJECT_EXISTS`.
    pub async fn create_project(&self, new: NewProject) -> Result<Project> {
        let id = match new.id {
            Some(id) => ProjectId::new(id)?,
            None => ProjectId::generate()?,
        };
        let org_id = OrgId::new(new.org_id)?;
        validate_project_name(&new.name)?;
        let span = tracing::info_span!("lupa.create_project", project = %id, error = tracing::field::Empty);
        traced(span, self.insert_project(id, org_id, new.name)).await
    }

    async fn insert_project(&self, id: ProjectId, org_id: OrgId, name: String) -> Result<Project> {
        let t = now();
        let project = Project { id, org_id, name, created_at: t, updated_at: t };
        let version = self.db(self.inner.store.insert_project(&project)).await?;
        // Answers "project not found" may be held in process memory, here and
        // elsewhere; the shared cache holds no negative answers.
        if let Some(cache) = &self.inner.cache {
            let invalidation = Invalidation {
                project: project.id.clone(),
                version_key: self.inner.keys.version(&project.id),
                version,
                keys: vec![self.inner.keys.project_exists(&project.id)],
            };
            let _ = cache.call(cache.inner.invalidate(std::slice::from_ref(&invalidation))).await;
        }
        if let Some(local) = &self.inner.local {
            local.invalidate(&project.id, Some(version));
        }
        Ok(project)
    }

    /// One project.
    pub async fn get_project(&self, id: &str) -> Result<Project> {
        let id = ProjectId::new(id)?;
        let span = tracing::debug_span!("lupa.get_project", project = %id, error = tracing::field::Empty);
        traced(span, async { self.db(self.inner.store.get_project(&id)).await?.ok_or_else(Error::project_not_found) })
            .await
    }

    /// Projects in id order (bytes), a page at a time.
    pub async fn list_projects(&self, limit: Option<u32>, cursor: Option<&str>) -> Result<Page<Project>> {
        let limit = parse_limit(limit)?;
        let after = cursor
            .map(|c| ProjectId::new(c).map_err(|_| Error::invalid_argument("cursor is not one this library returned")))
            .transpose()?;
        let span = tracing::debug_span!("lupa.list_projects", limit, error = tracing::field::Empty);
        let items = traced(span, self.db(self.inner.store.list_projects(after.as_ref(), limit))).await?;
        let next_cursor = (items.len() == limit as usize).then(|| items.last().map(|p| p.id.to_string())).flatten();
        Ok(Page { items, next_cursor })
    }

    /// Deletes a project with its deployments and history, and every cache
    /// entry of the project and of its deployments.
    pub async fn delete_project(&self, id: &str) -> Result<Changed<()>> {
        let id = ProjectId::new(id)?;
        let span = tracing::info_span!("lupa.delete_project", project = %id, error = tracing::field::Empty);
        traced(span, self.change(&id, uncounted, |tx, keys| Box::pin(lifecycle::delete_project(tx, keys)))).await
    }

    // ----- deployments ----------------------------------------------------

    /// Creates a deployment, `processing`.
    pub async fn create_deployment(&self, new: CreateDeployment) -> Result<Changed<Deployment>> {
        let project = ProjectId::new(new.project)?;
        let id = match new.id {
            Some(id) => DeploymentId::new(id)?,
            None => DeploymentId::generate()?,
        };
        let snapshot_id = SnapshotId::new(new.snapshot)?;
        let created_at = new.created_at.as_deref().map(parse_timestamp).transpose()?;
        let span = tracing::info_span!(
            "lupa.create_deployment",
            project = %project,
            deployment = %id,
            environment = %new.environment,
            error = tracing::field::Empty,
        );
        let new = NewDeployment { id, snapshot_id, environment: new.environment, created_at };
        let change =
            self.change(&project, uncounted, move |tx, keys| Box::pin(lifecycle::create_deployment(tx, keys, new)));
        traced(span, change).await
    }

    /// One deployment, of any project.
    pub async fn get_deployment(&self, id: &str) -> Result<Deployment> {
        let id = DeploymentId::new(id)?;
        let span = tracing::debug_span!("lupa.get_deployment", deployment = %id, error = tracing::field::Empty);
        traced(span, async {
            self.db(self.inner.store.get_deployment(&id)).await?.ok_or_else(Error::deployment_not_found)
        })
        .await
    }

    /// A project's deployments, newest `created_at` first (ties: greater id
    /// first), a page at a time.
    pub async fn list_deployments(
        &self,
        project: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Page<Deployment>> {
        let project = ProjectId::new(project)?;
        let limit = parse_limit(limit)?;
        let after = cursor.map(parse_deployment_cursor).transpose()?;
        let span =
            tracing::debug_span!("lupa.list_deployments", project = %project, limit, error = tracing::field::Empty);
        traced(span, async {
            let items = self.db(self.inner.store.list_deployments(&project, after.as_ref(), limit)).await?;
            if items.is_empty() && self.db(self.inner.store.get_project(&project)).await?.is_none() {
                return Err(Error::project_not_found());
            }
            let next_cursor = (items.len() == limit as usize).then(|| items.last().map(deployment_cursor)).flatten();
            Ok(Page { items, next_cursor })
        })
        .await
    }

    /// The processing task's call: `ready` or `failed`. A deployment created
    /// for production is promoted the moment it is ready.
    pub async fn set_status(
        &self,
        deployment: &str,
        status: FinalStatus,
        message: Option<String>,
    ) -> Result<Changed<Deployment>> {
        let id = DeploymentId::new(deployment)?;
        if let Some(m) = &message {
            crate::model::validate_failure_message(m)?;
        }
        let span = tracing::info_span!(
            "lupa.set_status",
            deployment = %id,
            status = %Status::from(status),
            project = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        traced(span.clone(), async move {
            let d = self.db(self.inner.store.get_deployment(&id)).await?.ok_or_else(Error::deployment_not_found)?;
            span.record("project", d.project_id.as_str());
            // Inside the transaction the deployment is read again under the
            // project's lock; a deployment deleted meanwhile is not found then.
            // A status change that leaves the deployment in production was a
            // promotion of a deployment created for production.
            let promoted = |d: &Deployment| (d.environment == Environment::Production).then_some(Change::Promotion);
            self.change(&d.project_id, promoted, move |tx, keys| {
                Box::pin(lifecycle::set_status(tx, keys, id, status, message))
            })
            .await
        })
        .await
    }

    /// Makes a ready deployment production, demoting the current one, in one
    /// transaction. Promoting the current production again is a no-op.
    pub async fn promote(&self, project: &str, deployment: &str) -> Result<Changed<Promotion>> {
        let project = ProjectId::new(project)?;
        let id = DeploymentId::new(deployment)?;
        let span =
            tracing::info_span!("lupa.promote", project = %project, deployment = %id, error = tracing::field::Empty);
        let change = self.change(
            &project,
            |_| Some(Change::Promotion),
            move |tx, keys| Box::pin(lifecycle::promote(tx, keys, id)),
        );
        traced(span, change).await
    }

    /// Sets a deployment's environment without demoting anyone: production
    /// needs a ready deployment and no other production.
    pub async fn set_environment(
        &self,
        project: &str,
        deployment: &str,
        environment: Environment,
    ) -> Result<Changed<Deployment>> {
        let project = ProjectId::new(project)?;
        let id = DeploymentId::new(deployment)?;
        let span = tracing::info_span!(
            "lupa.set_environment",
            project = %project,
            deployment = %id,
            environment = %environment,
            error = tracing::field::Empty,
        );
        let change = self.change(&project, uncounted, move |tx, keys| {
            Box::pin(lifecycle::set_environment(tx, keys, id, environment))
        });
        traced(span, change).await
    }

    /// Deletes a deployment (production included); its id is free again.
    pub async fn delete_deployment(&self, project: &str, deployment: &str) -> Result<Changed<Deployment>> {
        let project = ProjectId::new(project)?;
        let id = DeploymentId::new(deployment)?;
        let span = tracing::info_span!(
            "lupa.delete_deployment",
            project = %project,
            deployment = %id,
            error = tracing::field::Empty,
        );
        let change =
            self.change(&project, uncounted, move |tx, keys| Box::pin(lifecycle::delete_deployment(tx, keys, id)));
        traced(span, change).await
    }

    /// Promotes the deployment that was production before the current one.
    pub async fn rollback(&self, project: &str) -> Result<Changed<Promotion>> {
        let project = ProjectId::new(project)?;
        let span = tracing::info_span!("lupa.rollback", project = %project, error = tracing::field::Empty);
        let change =
            self.change(&project, |_| Some(Change::Rollback), |tx, keys| Box::pin(lifecycle::rollback(tx, keys)));
        traced(span, change).await
    }

    /// A project's environment changes, newest first, a page at a time.
    pub async fn history(&self, project: &str, limit: Option<u32>, cursor: Option<&str>) -> Result<Page<HistoryEntry>> {
        let project = ProjectId::new(project)?;
        let limit = parse_limit(limit)?;
        let before = cursor
            .map(|c| c.parse::<i64>().map_err(|_| Error::invalid_argument("cursor is not one this library returned")))
            .transpose()?;
        let span = tracing::debug_span!("lupa.history", project = %project, limit, error = tracing::field::Empty);
        traced(span, async {
            let items = self.db(self.inner.store.history(&project, before, limit)).await?;
            if items.is_empty() && self.db(self.inner.store.get_project(&project)).await?.is_none() {
                return Err(Error::project_not_found());
            }
            let next_cursor =
                (items.len() == limit as usize).then(|| items.last().map(|e| e.seq.to_string())).flatten();
            Ok(Page { items, next_cursor })
        })
        .await
    }

    // ----- resolution -----------------------------------------------------

    /// Which deployment a request reaches (see `semantics.md`, Resolution).
    ///
    /// Answers come from the first tier that has them: process memory, the
    /// shared cache, the store. Concurrent misses of the same question share
    /// one fetch.
    pub async fn resolve(&self, request: &ResolveRequest) -> Result<Resolution> {
        let result = self.resolve_uncounted(request).await;
        self.inner.count(|m| m.resolution(&request.project, &result));
        result
    }

    async fn resolve_uncounted(&self, request: &ResolveRequest) -> Result<Resolution> {
        let req = request.validate()?;
        self.inner.check_open()?;
        let span = resolve_span(&req);
        let Some(local) = &self.inner.local else { return self.past_memory(span, self.resolve_shared(&req)).await };
        let question = question_of(&req);
        let ticket = match local.get(&req.project, &question) {
            Ok(answer) => {
                self.inner.count(|m| m.local(true));
                if let Some(span) = &span {
                    span.record("source", Source::Local.as_str());
                }
                return answer.map(|deployment| Resolution { deployment, source: Source::Local });
            }
            Err(ticket) => ticket,
        };
        self.inner.count(|m| m.local(false));
        let flight = local.single_flight(&req.project, &question, ticket, || self.resolve_shared(&req));
        let result = self.past_memory(span, flight).await;
        local.fill(
            &req.project,
            question,
            ticket,
            &result.as_ref().map(|r| r.deployment.clone()).map_err(Clone::clone),
        );
        result
    }

    /// The answer held in process memory, without waiting for anything:
    /// none when the in-process tier does not hold it (then call
    /// [`Lupa::resolve`]). Malformed requests get their error at once.
    ///
    /// An answer (`Some`, success or error) is a counted resolution: take it
    /// as final rather than asking [`Lupa::resolve`] again, which would
    /// count it twice.
    pub fn resolve_cached(&self, request: &ResolveRequest) -> Option<Result<Resolution>> {
        let req = match request.validate().and_then(|r| self.inner.check_open().map(|()| r)) {
            Ok(r) => r,
            Err(e) => {
                self.inner.count(|m| m.resolution(&request.project, &Err(e.clone())));
                return Some(Err(e));
            }
        };
        let local = self.inner.local.as_ref()?;
        let result = local
            .get(&req.project, &question_of(&req))
            .ok()
            .map(|answer| answer.map(|deployment| Resolution { deployment, source: Source::Local }))?;
        self.inner.count(|m| {
            m.local(true);
            m.resolution(&request.project, &result);
        });
        Some(result)
    }

    async fn resolve_shared(&self, req: &crate::resolve::ValidRequest) -> Result<Resolution> {
        match (&req.deployment, req.requires_deployment) {
            (Some(d), requires) => self.resolve_explicit(&req.project, d, requires).await,
            (None, false) => {
                let source = self.check_project(&req.project).await?;
                Ok(Resolution { deployment: None, source })
            }
            (None, true) => self.resolve_environment(&req.project, req.target).await,
        }
    }

    async fn resolve_environment(&self, project: &ProjectId, env: Environment) -> Result<Resolution> {
        let keys = &self.inner.keys;
        let wanted = [keys.project_exists(project), keys.pointer(project, env)];
        let cached = self.cache_read(&wanted).await;
        if let Some([Some(exists), Some(pointer)]) = cached.as_deref().and_then(|v| <&[_; 2]>::try_from(v).ok())
            && values::decode_project_exists(exists).is_some()
            && let Some(d) = values::decode_deployment_id(pointer)
        {
            self.count_shared(true);
            return Ok(Resolution { deployment: Some(d), source: Source::Cache });
        }
        self.count_shared_miss(&cached);
        let found = self.db(self.inner.store.lookup_environment(project, env)).await?;
        let info = found.project.ok_or_else(Error::project_not_found)?;
        if cached.is_some() {
            let [exists_key, pointer_key] = wanted;
            let mut entries = vec![exists_entry(exists_key, &info)];
            if let Some(d) = &found.deployment {
                entries.push(CacheEntry { key: pointer_key, value: d.to_string(), ttl: keys::POINTER_TTL });
            }
            self.cache_fill(&[VersionedFill { version_key: keys.version(project), version: info.version, entries }])
                .await;
        }
        match found.deployment {
            Some(d) => Ok(Resolution { deployment: Some(d), source: Source::Store }),
            None => Err(no_deployment(env)),
        }
    }

    async fn resolve_explicit(&self, project: &ProjectId, id: &DeploymentId, requires: bool) -> Result<Resolution> {
        let keys = &self.inner.keys;
        let wanted = [keys.project_exists(project), keys.ownership(id), keys.info(id)];
        let cached = self.cache_read(&wanted).await;
        // Only an answer that succeeds is taken from the cache; every error
        // is confirmed by the store.
        if let Some([Some(exists), Some(owner), Some(info)]) =
            cached.as_deref().and_then(|v| <&[_; 3]>::try_from(v).ok())
            && values::decode_project_exists(exists).is_some()
            && values::decode_project_id(owner).as_ref() == Some(project)
            && let Some(info) = values::decode_info(info)
            && &info.project_id == project
            && (!requires || info.status == Status::Ready)
        {
            self.count_shared(true);
            return Ok(Resolution { deployment: Some(id.clone()), source: Source::Cache });
        }
        self.count_shared_miss(&cached);
        let found = self.db(self.inner.store.lookup_deployment(project, id)).await?;
        let pinfo = found.project.ok_or_else(Error::project_not_found)?;
        if cached.is_some() {
            let [exists_key, owner_key, info_key] = wanted;
            let mut fills = vec![VersionedFill {
                version_key: keys.version(project),
                version: pinfo.version,
                entries: vec![exists_entry(exists_key, &pinfo)],
            }];
            if let Some((d, owner_version)) = &found.deployment {
                let info = values::DeploymentInfo {
                    project_id: d.project_id.clone(),
                    environment: d.environment,
                    status: d.status,
                };
                fills.push(VersionedFill {
                    version_key: keys.version(&d.project_id),
                    version: *owner_version,
                    entries: vec![
                        CacheEntry { key: owner_key, value: d.project_id.to_string(), ttl: keys::OWNERSHIP_TTL },
                        CacheEntry { key: info_key, value: values::encode(&info), ttl: keys::INFO_TTL },
                    ],
                });
            }
            self.cache_fill(&fills).await;
        }
        // Another project's deployment is reported exactly like a missing one.
        let d = match found.deployment {
            Some((d, _)) if &d.project_id == project => d,
            _ => return Err(Error::deployment_not_found()),
        };
        if requires && d.status != Status::Ready {
            return Err(Error::not_ready_to_query());
        }
        Ok(Resolution { deployment: Some(d.id), source: Source::Store })
    }

    async fn check_project(&self, project: &ProjectId) -> Result<Source> {
        let key = self.inner.keys.project_exists(project);
        let cached = self.cache_read(std::slice::from_ref(&key)).await;
        if let Some([Some(v)]) = cached.as_deref().and_then(|v| <&[_; 1]>::try_from(v).ok())
            && values::decode_project_exists(v).is_some()
        {
            self.count_shared(true);
            return Ok(Source::Cache);
        }
        self.count_shared_miss(&cached);
        let found = self.db(self.inner.store.lookup_environment(project, Environment::Production)).await?;
        let info = found.project.ok_or_else(Error::project_not_found)?;
        if cached.is_some() {
            let fill = VersionedFill {
                version_key: self.inner.keys.version(project),
                version: info.version,
                entries: vec![exists_entry(key, &info)],
            };
            self.cache_fill(&[fill]).await;
        }
        Ok(Source::Store)
    }

    /// A resolution that process memory could not answer: timed for the
    /// latency histogram, and traced.
    async fn past_memory(
        &self,
        span: Option<tracing::Span>,
        fut: impl std::future::Future<Output = Result<Resolution>>,
    ) -> Result<Resolution> {
        let span = span.unwrap_or_else(tracing::Span::none);
        let started = self.inner.metrics.as_ref().map(|_| Instant::now());
        let result = traced(span.clone(), fut).await;
        if let (Some(m), Some(started)) = (&self.inner.metrics, started) {
            m.latency(started.elapsed());
        }
        if let Ok(r) = &result
            && !span.is_disabled()
        {
            span.record("source", r.source.as_str());
            if let Some(d) = &r.deployment {
                span.record("deployment", d.as_str());
            }
        }
        result
    }

    fn count_shared(&self, hit: bool) {
        self.inner.count(|m| m.shared_cache(hit));
    }

    /// A cache read that answered without a usable answer is a miss; one
    /// that failed was counted as a failure already.
    fn count_shared_miss(&self, cached: &Option<Vec<Option<String>>>) {
        if cached.is_some() {
            self.count_shared(false);
        }
    }

    // ----- observability --------------------------------------------------

    /// What this handle has counted since it was opened (all zero with
    /// [`Config::metrics`] off); [`Stats::to_prometheus`] renders it for a
    /// scrape endpoint.
    pub fn stats(&self) -> Stats {
        let breaker = self.inner.cache.as_ref().map(|c| c.breaker.state());
        let local = self.inner.local.as_ref().map(|l| l.len());
        match &self.inner.metrics {
            Some(m) => m.snapshot(breaker, local),
            None => Metrics::new().snapshot(breaker, local),
        }
    }

    // ----- health ---------------------------------------------------------

    /// Asks the store and the cache whether they answer.
    pub async fn health(&self) -> Health {
        let store = match self.db(self.inner.store.ping()).await {
            Ok(()) => ComponentHealth::Ok,
            Err(e) => ComponentHealth::Unavailable(e.message().to_owned()),
        };
        let (cache, breaker) = match &self.inner.cache {
            None => (ComponentHealth::Disabled, BreakerState::Closed),
            Some(c) => {
                let h = match tokio::time::timeout(self.inner.store_timeout, c.inner.ping()).await {
                    Ok(Ok(())) => ComponentHealth::Ok,
                    Ok(Err(e)) => ComponentHealth::Unavailable(e.0),
                    Err(_) => ComponentHealth::Unavailable("no answer in time".into()),
                };
                (h, c.breaker.state())
            }
        };
        let pending = self.inner.count_pending().await.ok();
        let local_projects = self.inner.local.as_ref().map(|l| l.len());
        Health { store, cache, breaker, pending_cache_updates: pending, local_projects }
    }

    /// Applies the cache updates recorded in the store that are still
    /// pending (from this process or any other) and says how many remain.
    /// The background task does this on its own; this is for callers that
    /// want it now.
    pub async fn apply_pending_cache_updates(&self) -> Result<usize> {
        self.inner.apply_pending().await
    }

    // ----- plumbing -------------------------------------------------------

    /// Runs a store operation within the store timeout.
    async fn db<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.inner.db(fut).await
    }

    /// Reads cache keys; none when there is no cache or it failed.
    async fn cache_read(&self, keys: &[String]) -> Option<Vec<Option<String>>> {
        let cache = self.inner.cache.as_ref()?;
        cache.call(cache.inner.get_many(keys)).await.ok().filter(|v| v.len() == keys.len())
    }

    async fn cache_fill(&self, fills: &[VersionedFill]) {
        if let Some(cache) = &self.inner.cache {
            // A failed fill only costs a later miss.
            let _ = cache.call(cache.inner.fill(fills)).await;
        }
    }

    /// Runs one change in a transaction that holds the project: the rule in
    /// `op`, then a new version and a durable cache update in the same
    /// transaction, then the cache update itself after commit.
    ///
    /// `counted` names the kind of change to count when something changed.
    async fn change<T, F>(&self, project: &ProjectId, counted: fn(&T) -> Option<Change>, op: F) -> Result<Changed<T>>
    where
        T: Send,
        F: for<'a> FnOnce(
                &'a mut dyn ProjectTx,
                &'a CacheKeys,
            )
                -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Effect<T>>> + Send + 'a>>
            + Send,
    {
        let inner = &self.inner;
        let has_cache = inner.cache.is_some();
        let (value, pending, changed) = self
            .db(async {
                let mut tx = inner.store.begin(project).await?.ok_or_else(Error::project_not_found)?;
                let Effect { value, stale } = op(tx.as_mut(), &inner.keys).await?;
                let mut pending = None;
                let mut changed = None;
                if !stale.is_empty() {
                    let version = tx.bump_version().await?;
                    changed = Some(version);
                    if has_cache {
                        let invalidation = Invalidation {
                            project: project.clone(),
                            version_key: inner.keys.version(project),
                            version,
                            keys: stale,
                        };
                        let id = tx.enqueue_invalidation(&invalidation).await?;
                        pending = Some((id, invalidation));
                    }
                }
                tx.commit().await?;
                Ok((value, pending, changed))
            })
            .await?;
        let cache_pending = match pending {
            Some((id, invalidation)) => !inner.apply_one(id, invalidation).await,
            None => false,
        };
        // After the shared cache: a reader that refilled this process's
        // memory from the shared cache meanwhile is dropped here too.
        if let Some(local) = &inner.local
            && let Some(version) = changed
        {
            local.invalidate(project, Some(version));
        }
        if changed.is_some()
            && let Some(kind) = counted(&value)
        {
            inner.count(|m| m.change(kind));
        }
        Ok(Changed { value, cache_pending })
    }
}

impl Inner {
    /// A closed handle answers nothing, not even from a cache.
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::storage_unavailable(&"the handle is closed"));
        }
        Ok(())
    }

    async fn db<T>(&self, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.check_open()?;
        let result = match tokio::time::timeout(self.store_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::storage_unavailable(&format!("no answer within {:?}", self.store_timeout))),
        };
        self.count(|m| m.store_query(result.as_ref().is_err_and(|e| e.code() == ErrorCode::StorageUnavailable)));
        result
    }

    fn count(&self, f: impl FnOnce(&Metrics)) {
        if let Some(m) = &self.metrics {
            f(m);
        }
    }

    /// Applies one change's cache update and removes its durable record;
    /// false when the cache could not be reached (the record stays).
    async fn apply_one(&self, id: i64, invalidation: Invalidation) -> bool {
        let Some(cache) = &self.cache else { return true };
        if cache.call(cache.inner.invalidate(std::slice::from_ref(&invalidation))).await.is_err() {
            tracing::warn!(target: "lupa_core::cache", "cache update pending; it will be applied when the cache is back");
            return false;
        }
        self.applied.lock().unwrap_or_else(|e| e.into_inner()).push(id);
        true
    }

    /// Removes the records of updates this process applied; one that stays
    /// (the store failed) is applied again later, which is harmless.
    async fn remove_applied(&self) -> Result<()> {
        let ids = std::mem::take(&mut *self.applied.lock().unwrap_or_else(|e| e.into_inner()));
        if ids.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.db(self.store.clear_invalidations(&ids)).await {
            self.applied.lock().unwrap_or_else(|e| e.into_inner()).extend(ids);
            return Err(e);
        }
        Ok(())
    }

    /// Recorded updates that no process has applied yet, as far as this one
    /// knows.
    async fn count_pending(&self) -> Result<usize> {
        let rows = self.db(self.store.pending_invalidations(10_000)).await?;
        let applied = self.applied.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(rows.iter().filter(|p| !applied.contains(&p.id)).count())
    }

    async fn apply_pending(&self) -> Result<usize> {
        let Some(cache) = &self.cache else { return Ok(0) };
        self.remove_applied().await?;
        loop {
            let batch = self.db(self.store.pending_invalidations(256)).await?;
            if batch.is_empty() {
                return Ok(0);
            }
            let invalidations: Vec<Invalidation> = batch.iter().map(|p| p.invalidation.clone()).collect();
            if cache.call(cache.inner.invalidate(&invalidations)).await.is_err() {
                return Ok(batch.len());
            }
            let ids: Vec<i64> = batch.iter().map(|p| p.id).collect();
            self.db(self.store.clear_invalidations(&ids)).await?;
            tracing::info!(target: "lupa_core::cache", count = ids.len(), "applied pending cache updates");
            if batch.len() < 256 {
                return Ok(0);
            }
        }
    }
}

async fn apply_pending_forever(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = inner.apply_pending().await {
            tracing::debug!(target: "lupa_core::cache", error = %e, "could not look for pending cache updates");
        }
    }
}

/// Runs `fut` inside `span`, recording the error code when it fails.
async fn traced<T>(span: tracing::Span, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let result = fut.instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("error", e.code().as_str());
    }
    result
}

/// The span of one resolution, when a subscriber may want it. The level
/// check is one atomic load; a disabled span would still cost a tenth of a
/// warm resolve to build and drop.
fn resolve_span(req: &crate::resolve::ValidRequest) -> Option<tracing::Span> {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    if STATIC_MAX_LEVEL < tracing::Level::DEBUG || LevelFilter::current() < tracing::Level::DEBUG {
        return None;
    }
    let span = tracing::debug_span!(
        "lupa.resolve",
        project = %req.project,
        deployment_id = req.deployment.as_ref().map(DeploymentId::as_str),
        target = %req.target,
        requires_deployment = req.requires_deployment,
        deployment = tracing::field::Empty,
        source = tracing::field::Empty,
        error = tracing::field::Empty,
    );
    (!span.is_disabled()).then_some(span)
}

/// For changes that are not counted.
fn uncounted<T>(_: &T) -> Option<Change> {
    None
}

fn exists_entry(key: String, info: &crate::store::ProjectInfo) -> CacheEntry {
    let value = values::encode(&values::ProjectExists { org_id: info.org_id.clone(), name: info.name.clone() });
    CacheEntry { key, value, ttl: keys::PROJECT_EXISTS_TTL }
}

fn no_deployment(env: Environment) -> Error {
    Error::of_resolution(match env {
        Environment::Production => crate::error::ErrorCode::NoProductionDeployment,
        Environment::Staging => crate::error::ErrorCode::NoStagingDeployment,
    })
}

type PgChannel = Option<(sqlx::PgPool, String)>;

async fn open_store(config: &Config) -> Result<(Arc<dyn Store>, PgChannel)> {
    let url = config.store.as_str();
    if url == "memory://" || url == "memory:" {
        Ok((Arc::new(MemoryStore::new()), None))
    } else if url.starts_with("sqlite:") {
        Ok((Arc::new(SqliteStore::open(url, config).await?), None))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pg = PostgresStore::open(url, config).await?;
        let channel = Some((pg.pool().clone(), pg.channel().to_owned()));
        Ok((Arc::new(pg), channel))
    } else {
        Err(Error::invalid_argument(format!(
            "store URL {} is not postgres://, sqlite: or memory://",
            shown_scheme(url)
        )))
    }
}

/// A store no other process can reach.
fn is_private_store(url: &str) -> bool {
    url.starts_with("memory:") || url.contains(":memory:") || url.contains("mode=memory")
}

/// The cache, and the Redis client its invalidation channel listens with.
type OpenedCache = (Option<Arc<dyn Cache>>, Option<redis::Client>);

fn open_cache(config: &Config, channel: &str) -> Result<OpenedCache> {
    let url = config.cache.as_str();
    match url {
        "none" | "" => Ok((None, None)),
        "memory://" | "memory:" => Ok((Some(Arc::new(MemoryCache::new())), None)),
        _ if url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://") => {
            let cache = RedisCache::with_channel(url, config.cache_timeout, channel)
                .map_err(|e| Error::invalid_argument(format!("cache URL {}: {}", redact_url(url), e.0)))?;
            let client = cache.client().clone();
            Ok((Some(Arc::new(cache)), Some(client)))
        }
        _ => Err(Error::invalid_argument(format!(
            "cache URL {} is not redis://, rediss://, memory:// or none",
            shown_scheme(url)
        ))),
    }
}

/// The in-process tier for a store: shared by the handles of this process
/// that open the same store (`shared`), else a tier of its own.
fn local_tier(shared: Option<String>, capacity: usize, bound: Duration, channel: Channel) -> Arc<LocalTier> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static TIERS: OnceLock<Mutex<HashMap<String, Weak<LocalTier>>>> = OnceLock::new();
    let make = |channel: Channel| {
        let tier = Arc::new(LocalTier::new(capacity, bound, channel.initially_up()));
        channel.spawn(Arc::downgrade(&tier));
        tier
    };
    let Some(key) = shared else { return make(channel) };
    let mut tiers = TIERS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    tiers.retain(|_, t| t.strong_count() > 0);
    if let Some(tier) = tiers.get(&key).and_then(Weak::upgrade) {
        return tier;
    }
    let tier = make(channel);
    tiers.insert(key, Arc::downgrade(&tier));
    tier
}

fn question_of(req: &crate::resolve::ValidRequest) -> Question {
    match (&req.deployment, req.requires_deployment) {
        (Some(d), requires) => Question::Explicit(d.clone(), requires),
        (None, false) => Question::Project,
        (None, true) => Question::Environment(req.target),
    }
}

/// The scheme of a URL, for messages: never the rest, which may hold a
/// password.
fn shown_scheme(url: &str) -> String {
    match url.split_once(':') {
        Some((scheme, _)) if scheme.len() <= 20 && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+') => {
            format!("\"{scheme}:…\"")
        }
        _ => "(unrecognised)".into(),
    }
}
