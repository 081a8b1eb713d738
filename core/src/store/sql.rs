//! What the SQL backends share: turning driver errors into the library's,
//! rows into domain values, and the durable cache updates' encoding.

use crate::cache::Invalidation;
use crate::error::{Error, Result};
use crate::ids::{DeploymentId, ProjectId, SnapshotId};
use crate::model::{Deployment, Environment, HistoryEntry, Status, Timestamp};

/// A driver error as the library reports it: connection trouble is
/// `STORAGE_UNAVAILABLE`, anything else a bug (`INTERNAL`). The driver's
/// text goes to the log only, redacted.
pub(crate) fn map_err(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => Error::storage_unavailable(&e),
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL classes 08 (connection), 53 (resources), 57 (operator
            // intervention, e.g. shutdown); SQLite 5/6 (busy, locked).
            if code.starts_with("08") || code.starts_with("53") || code.starts_with("57") || code == "5" || code == "6"
            {
                Error::storage_unavailable(&e)
            } else {
                Error::internal(&e)
            }
        }
        _ => Error::internal(&e),
    }
}

/// A unique violation becomes `conflict`; anything else as [`map_err`].
pub(crate) fn map_unique(e: sqlx::Error, conflict: impl FnOnce() -> Error) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => conflict(),
        _ => map_err(e),
    }
}

/// A value read back from the store that breaks a rule the store itself
/// enforces: someone wrote around the library.
pub(crate) fn corrupt(what: &str) -> Error {
    Error::internal(&format!("the store holds an invalid {what}"))
}

pub(crate) fn environment(text: &str) -> Result<Environment> {
    text.parse().map_err(|_| corrupt("environment"))
}

pub(crate) fn status(text: &str) -> Result<Status> {
    text.parse().map_err(|_| corrupt("status"))
}

pub(crate) fn project_id(text: String) -> Result<ProjectId> {
    ProjectId::new(text).map_err(|_| corrupt("project id"))
}

pub(crate) fn deployment_id(text: String) -> Result<DeploymentId> {
    DeploymentId::new(text).map_err(|_| corrupt("deployment id"))
}

/// The columns of a deployment row, already decoded by the backend.
pub(crate) struct DeploymentRow {
    pub id: String,
    pub project_id: String,
    pub snapshot_id: String,
    pub environment: String,
    pub status: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub failure_message: Option<String>,
    pub promote_when_ready: bool,
}

impl DeploymentRow {
    pub(crate) fn into_deployment(self) -> Result<Deployment> {
        Ok(Deployment {
            id: deployment_id(self.id)?,
            project_id: project_id(self.project_id)?,
            snapshot_id: SnapshotId::new(self.snapshot_id).map_err(|_| corrupt("snapshot id"))?,
            environment: environment(&self.environment)?,
            status: status(&self.status)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            failure_message: self.failure_message,
            promote_when_ready: self.promote_when_ready,
        })
    }
}

pub(crate) fn history_entry(seq: i64, deployment: String, from: &str, to: &str, at: Timestamp) -> Result<HistoryEntry> {
    Ok(HistoryEntry {
        seq,
        deployment_id: deployment_id(deployment)?,
        from: environment(from)?,
        to: environment(to)?,
        at,
    })
}

pub(crate) fn encode_invalidation(inv: &Invalidation) -> String {
    serde_json::to_string(inv).unwrap_or_default()
}

/// A record that does not decode is dropped with a warning: retrying it
/// forever would help no one.
pub(crate) fn decode_invalidation(id: i64, payload: &str) -> Option<Invalidation> {
    match serde_json::from_str(payload) {
        Ok(inv) => Some(inv),
        Err(_) => {
            tracing::warn!(target: "lupa_core::store", id, "dropping a pending cache update that does not decode");
            None
        }
    }
}
