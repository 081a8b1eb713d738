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
        let breaker = serde_json::to_value(h.breaker)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{:?}", h.breaker).to_lowercase());
        Health {
            store: h.store.into(),
            cache: h.cache.into(),
            breaker,
            pending_cache_updates: match h.pending_cache_updates {
                Some(n) => Either::A(u32::try_from(n).unwrap_or(u32::MAX)),
                None => Either::B(Null),
            },
        }
    }
}

pub fn nullable(v: Option<String>) -> Either<String, Null> {
    match v {
        Some(s) => Either::A(s),
        None => Either::B(Null),
    }
}
