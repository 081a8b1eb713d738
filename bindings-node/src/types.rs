//! What the methods resolve to: core values as plain JavaScript objects.
//! Times are RFC 3339 strings in UTC with microseconds (`Date` would drop
//! the microseconds the store keeps); `new Date(text)` reads them.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use lupa_core::format_timestamp;

/// A project.
#[napi(object)]
pub struct Project {
    pub id: String,
    pub org_id: String,
    pub name: String,
    /// RFC 3339, UTC, microseconds.
    pub created_at: String,
    /// RFC 3339, UTC, microseconds.
    pub updated_at: String,
}

impl From<lupa_core::Project> for Project {
    fn from(p: lupa_core::Project) -> Project {
        Project {
            id: p.id.to_string(),
            org_id: p.org_id.to_string(),
            name: p.name,
            created_at: format_timestamp(&p.created_at),
            updated_at: format_timestamp(&p.updated_at),
        }
    }
}

/// A deployment.
#[napi(object)]
pub struct Deployment {
    pub id: String,
    pub project_id: String,
    pub snapshot_id: String,
    #[napi(ts_type = "'production' | 'staging'")]
    pub environment: String,
    #[napi(ts_type = "'processing' | 'ready' | 'failed'")]
    pub status: String,
    /// RFC 3339, UTC, microseconds.
    pub created_at: String,
    /// RFC 3339, UTC, microseconds.
    pub updated_at: String,
    /// Why processing failed, when it did.
    pub failure_message: Either<String, Null>,
    /// Created for production: promoted the moment it is ready.
    pub promote_when_ready: bool,
}

impl From<lupa_core::Deployment> for Deployment {
    fn from(d: lupa_core::Deployment) -> Deployment {
        Deployment {
            id: d.id.to_string(),
            project_id: d.project_id.to_string(),
            snapshot_id: d.snapshot_id.to_string(),
            environment: d.environment.as_str().into(),
            status: d.status.as_str().into(),
            created_at: format_timestamp(&d.created_at),
            updated_at: format_timestamp(&d.updated_at),
            failure_message: nullable(d.failure_message),
            promote_when_ready: d.promote_when_ready,
        }
    }
}

/// A change to a deployment, and whether the shared cache still has to
/// catch up (the change stands either way; the update is applied as soon
/// as the cache is reachable).
#[napi(object)]
pub struct DeploymentChange {
    pub deployment: Deployment,
    pub cache_pending: bool,
}

impl From<lupa_core::Changed<lupa_core::Deployment>> for DeploymentChange {
    fn from(c: lupa_core::Changed<lupa_core::Deployment>) -> DeploymentChange {
        DeploymentChange { deployment: c.value.into(), cache_pending: c.cache_pending }
    }
}

/// `{id, environment, status}` of a deployment.
#[napi(object)]
pub struct DeploymentSummary {
    pub id: String,
    #[napi(ts_type = "'production' | 'staging'")]
    pub environment: String,
    #[napi(ts_type = "'processing' | 'ready' | 'failed'")]
    pub status: String,
}

/// The answer of `promote` and `rollback` (the seed's `{success,
/// deployment}`).
#[napi(object)]
pub struct Promotion {
    #[napi(ts_type = "true")]
    pub success: bool,
    /// The deployment now in production.
    pub deployment: DeploymentSummary,
    /// The deployment that was production before, now staging.
    pub demoted: Either<String, Null>,
    pub cache_pending: bool,
}

impl From<lupa_core::Changed<lupa_core::Promotion>> for Promotion {
    fn from(c: lupa_core::Changed<lupa_core::Promotion>) -> Promotion {
        let d = c.value.deployment;
        Promotion {
            success: true,
            deployment: DeploymentSummary {
                id: d.id.to_string(),
                environment: d.environment.as_str().into(),
                status: d.status.as_str().into(),
            },
            demoted: nullable(c.value.demoted.map(|d| d.to_string())),
            cache_pending: c.cache_pending,
        }
    }
}

/// The answer of a change that returns nothing else.
#[napi(object)]
pub struct Change {
    pub cache_pending: bool,
}

/// A page of projects.
#[napi(object)]
pub struct ProjectPage {
    pub items: Vec<Project>,
    /// Pass as `cursor` for the next page; null at the end.
    pub next_cursor: Either<String, Null>,
}

/// A page of deployments, newest first.
#[napi(object)]
pub struct DeploymentPage {
    pub items: Vec<Deployment>,
    /// Pass as `cursor` for the next page; null at the end.
    pub next_cursor: Either<String, Null>,
}

/// One recorded environment change.
#[napi(object)]
pub struct HistoryEntry {
    pub seq: i64,
    pub deployment_id: String,
    #[napi(ts_type = "'production' | 'staging'")]
    pub from: String,
    #[napi(ts_type = "'production' | 'staging'")]
    pub to: String,
    /// RFC 3339, UTC, microseconds.
    pub at: String,
}

/// A page of history, newest first.
#[napi(object)]
pub struct HistoryPage {
    pub items: Vec<HistoryEntry>,
    pub next_cursor: Either<String, Null>,
}

/// Which deployment a request reaches.
#[napi(object)]
pub struct Resolution {
    /// Null for a route that requires no deployment and named none.
    pub deployment: Either<String, Null>,
    /// Which tier answered.
    #[napi(ts_type = "'local' | 'cache' | 'store'")]
    pub source: String,
}

impl From<lupa_core::Resolution> for Resolution {
    fn from(r: lupa_core::Resolution) -> Resolution {
        Resolution { deployment: nullable(r.deployment.map(|d| d.to_string())), source: r.source.as_str().into() }
    }
}

/// How one component of the handle is doing.
#[napi(object)]
pub struct ComponentHealth {
    #[napi(ts_type = "'ok' | 'disabled' | 'unavailable'")]
    pub state: String,
    /// Why it is unavailable (no secret); null otherwise.
    pub detail: Either<String, Null>,
}

impl From<lupa_core::ComponentHealth> for ComponentHealth {
    fn from(h: lupa_core::ComponentHealth) -> ComponentHealth {
        let (state, detail) = match h {
            lupa_core::ComponentHealth::Ok => ("ok", None),
            lupa_core::ComponentHealth::Disabled => ("disabled", None),
            lupa_core::ComponentHealth::Unavailable(d) => ("unavailable", Some(d)),
        };
        ComponentHealth { state: state.into(), detail: nullable(detail) }
    }
}

/// The answer of `health()`.
#[napi(object)]
pub struct Health {
    pub store: ComponentHealth,
    pub cache: ComponentHealth,
    /// The cache circuit breaker.
    #[napi(ts_type = "'closed' | 'open' | 'half_open'")]
    pub breaker: String,
    /// Cache updates recorded and not yet applied; null when the store could
    /// not be asked.
    pub pending_cache_updates: Either<u32, Null>,
}

impl From<lupa_core::Health> for Health {
    fn from(h: lupa_core::Health) -> Health {
        Health {
            store: h.store.into(),
            cache: h.cache.into(),
            breaker: breaker_name(h.breaker).into(),
            pending_cache_updates: match h.pending_cache_updates {
                Some(n) => Either::A(u32::try_from(n).unwrap_or(u32::MAX)),
                None => Either::B(Null),
            },
        }
    }
}

fn breaker_name(b: lupa_core::BreakerState) -> &'static str {
    match b {
        lupa_core::BreakerState::Closed => "closed",
        lupa_core::BreakerState::Open => "open",
        lupa_core::BreakerState::HalfOpen => "half_open",
    }
}

/// A count as a JavaScript number (exact up to `Number.MAX_SAFE_INTEGER`).
fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What a handle has counted since it was opened (`stats()`). Every count
/// only grows: take two snapshots and subtract for a rate. Counts are
/// numbers, exact up to `Number.MAX_SAFE_INTEGER`.
#[napi(object)]
pub struct Stats {
    /// Finished resolutions, by outcome.
    pub resolutions: ResolutionCounts,
    /// The in-process tier's lookups (zero when it is off).
    pub local: TierCounts,
    /// Projects held in process memory now; null when the tier is off.
    pub local_projects: Either<i64, Null>,
    /// The shared cache (all zero without one).
    pub cache: SharedCacheCounts,
    /// The store's operations.
    pub store: StoreCounts,
    /// How long the resolutions took that process memory could not answer
    /// (answered by the shared cache or the store, or failed there), from
    /// the in-process miss to the answer. Answers from process memory and
    /// malformed requests are counted in `resolutions` but not timed.
    pub latency: LatencyHistogram,
    /// Successful resolutions per deployment, most resolved first, for a
    /// bounded number of deployments.
    pub deployments: Vec<DeploymentResolutions>,
    /// Successful resolutions of deployments beyond those tracked one by one.
    pub untracked_deployment_resolutions: i64,
    /// Promotions that changed production (`promote`, and a deployment
    /// promoted the moment it was ready); no-ops are not counted.
    pub promotions: i64,
    pub rollbacks: i64,
}

/// Resolutions answered by each tier, and failures by code.
#[napi(object)]
pub struct ResolutionCounts {
    /// Answered from process memory.
    pub local: i64,
    /// Answered from the shared cache.
    pub cache: i64,
    /// Answered by the store.
    pub store: i64,
    /// Failures by code (only codes that occurred), in the order of
    /// `semantics.md`.
    pub errors: Vec<ErrorCount>,
}

/// How many resolutions failed with one code.
#[napi(object)]
pub struct ErrorCount {
    /// The stable code, for example `"PROJECT_NOT_FOUND"`.
    pub code: String,
    pub count: i64,
}

/// Lookups a cache tier answered, and those it could not.
#[napi(object)]
pub struct TierCounts {
    pub hits: i64,
    pub misses: i64,
}

/// The shared cache, as resolution used it.
#[napi(object)]
pub struct SharedCacheCounts {
    /// Lookups that found a usable answer.
    pub hits: i64,
    /// Lookups without one (missing, or a value that does not parse).
    pub misses: i64,
    /// Calls of any kind (reads, fills, updates) that failed.
    pub errors: i64,
    /// Calls without an answer within the cache timeout.
    pub timeouts: i64,
    /// Calls skipped while the circuit breaker was open.
    pub skipped: i64,
    /// The breaker's state now; null without a shared cache.
    #[napi(ts_type = "'closed' | 'open' | 'half_open' | null")]
    pub breaker: Either<String, Null>,
    /// How often the breaker opened.
    pub breaker_opened: i64,
}

/// The store's operations.
#[napi(object)]
pub struct StoreCounts {
    /// Operations sent to the store: one statement for a resolution's
    /// lookup, one transaction for a change, and the background work that
    /// applies pending cache updates.
    pub queries: i64,
    /// Operations that failed with `STORAGE_UNAVAILABLE`.
    pub unavailable: i64,
}

/// `counts[i]` resolutions took at most `boundsUs[i]` microseconds (and
/// more than the bound before); the last count, one past the bounds, is
/// everything slower.
#[napi(object)]
pub struct LatencyHistogram {
    /// Upper bounds in microseconds.
    pub bounds_us: Vec<i64>,
    /// One count per bound, and one more for slower resolutions.
    pub counts: Vec<i64>,
    /// Every resolution's duration added up, in nanoseconds.
    pub sum_ns: i64,
}

/// Successful resolutions of one deployment.
#[napi(object)]
pub struct DeploymentResolutions {
    pub project: String,
    pub deployment: String,
    pub resolutions: i64,
}

impl From<lupa_core::Stats> for Stats {
    fn from(s: lupa_core::Stats) -> Stats {
        let r = s.resolutions;
        let c = s.cache;
        Stats {
            resolutions: ResolutionCounts {
                local: n(r.local),
                cache: n(r.cache),
                store: n(r.store),
                errors: r
                    .errors
                    .iter()
                    .map(|e| ErrorCount { code: e.code.as_str().into(), count: n(e.count) })
                    .collect(),
            },
            local: TierCounts { hits: n(s.local.hits), misses: n(s.local.misses) },
            local_projects: match s.local_projects {
                Some(p) => Either::A(i64::try_from(p).unwrap_or(i64::MAX)),
                None => Either::B(Null),
            },
            cache: SharedCacheCounts {
                hits: n(c.hits),
                misses: n(c.misses),
                errors: n(c.errors),
                timeouts: n(c.timeouts),
                skipped: n(c.skipped),
                breaker: nullable(c.breaker.map(|b| breaker_name(b).to_owned())),
                breaker_opened: n(c.breaker_opened),
            },
            store: StoreCounts { queries: n(s.store.queries), unavailable: n(s.store.unavailable) },
            latency: LatencyHistogram {
                bounds_us: s.latency.bounds_us.into_iter().map(n).collect(),
                counts: s.latency.counts.into_iter().map(n).collect(),
                sum_ns: n(s.latency.sum_ns),
            },
            deployments: s
                .deployments
                .into_iter()
                .map(|d| DeploymentResolutions {
                    project: d.project.to_string(),
                    deployment: d.deployment.to_string(),
                    resolutions: n(d.resolutions),
                })
                .collect(),
            untracked_deployment_resolutions: n(s.untracked_deployment_resolutions),
            promotions: n(s.promotions),
            rollbacks: n(s.rollbacks),
        }
    }
}

pub fn nullable(v: Option<String>) -> Either<String, Null> {
    match v {
        Some(s) => Either::A(s),
        None => Either::B(Null),
    }
}
