//! The domain: projects, deployments, their environments and statuses, and
//! the history of environment changes.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{DeploymentId, OrgId, ProjectId, SnapshotId};

/// A point in time: UTC, microsecond precision.
pub type Timestamp = DateTime<Utc>;

/// Now, truncated to the microseconds every store keeps.
pub fn now() -> Timestamp {
    Utc::now().trunc_subsecs(6)
}

/// Parses an RFC 3339 time with any offset into UTC microseconds.
pub fn parse_timestamp(text: &str) -> Result<Timestamp> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
        .map_err(|_| Error::invalid_argument("created_at must be an RFC 3339 time"))
}

/// Formats a time as RFC 3339 with microseconds and a `Z` offset; the text
/// sorts in time order.
pub fn format_timestamp(t: &Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Where a deployment serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Live traffic: `live` keys reach the project's one production deployment.
    Production,
    /// Everything else: `test` keys reach the newest ready one.
    Staging,
}

impl Environment {
    /// `"production"` or `"staging"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Staging => "staging",
        }
    }
}

impl FromStr for Environment {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "production" => Ok(Environment::Production),
            "staging" => Ok(Environment::Staging),
            _ => Err(Error::invalid_argument("environment must be \"production\" or \"staging\"")),
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far processing has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Documents are being indexed; not queryable.
    Processing,
    /// Queryable.
    Ready,
    /// Processing failed; not queryable.
    Failed,
}

impl Status {
    /// `"processing"`, `"ready"` or `"failed"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Processing => "processing",
            Status::Ready => "ready",
            Status::Failed => "failed",
        }
    }
}

impl FromStr for Status {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "processing" => Ok(Status::Processing),
            "ready" => Ok(Status::Ready),
            "failed" => Ok(Status::Failed),
            _ => Err(Error::invalid_argument("status must be \"processing\", \"ready\" or \"failed\"")),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome the processing task reports: the only statuses
/// [`crate::Lupa::set_status`] accepts, so `processing` cannot be a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalStatus {
    /// Processing succeeded.
    Ready,
    /// Processing failed.
    Failed,
}

impl From<FinalStatus> for Status {
    fn from(s: FinalStatus) -> Status {
        match s {
            FinalStatus::Ready => Status::Ready,
            FinalStatus::Failed => Status::Failed,
        }
    }
}

impl FromStr for FinalStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ready" => Ok(FinalStatus::Ready),
            "failed" => Ok(FinalStatus::Failed),
            "processing" => {
                Err(Error::invalid_argument("status \"processing\" cannot be set; only \"ready\" or \"failed\""))
            }
            _ => Err(Error::invalid_argument("status must be \"ready\" or \"failed\"")),
        }
    }
}

/// A project: the owner of deployments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    /// The project id.
    pub id: ProjectId,
    /// The organisation that owns the project.
    pub org_id: OrgId,
    /// A display name, 1 to 256 characters.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// Checks a project name: UTF-8 text of 1 to 256 characters. NUL is
/// refused: PostgreSQL cannot store it, and a name must mean the same on
/// every store.
pub(crate) fn validate_project_name(name: &str) -> Result<()> {
    let chars = name.chars().count();
    if chars == 0 || chars > 256 {
        return Err(Error::invalid_argument("project name must be 1 to 256 characters"));
    }
    if name.contains('\0') {
        return Err(Error::invalid_argument("project name must not contain NUL"));
    }
    Ok(())
}

/// Checks a failure message: any text without NUL (for the same reason).
pub(crate) fn validate_failure_message(message: &str) -> Result<()> {
    if message.contains('\0') {
        return Err(Error::invalid_argument("message must not contain NUL"));
    }
    Ok(())
}

/// A version of a project's knowledge base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployment {
    /// The deployment id.
    pub id: DeploymentId,
    /// The project it belongs to.
    pub project_id: ProjectId,
    /// The snapshot it was built from.
    pub snapshot_id: SnapshotId,
    /// Where it serves.
    pub environment: Environment,
    /// How far processing has come.
    pub status: Status,
    /// When it was created (resolution prefers the newest).
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Why processing failed, when it did.
    pub failure_message: Option<String>,
    /// Created for production: promoted the moment it becomes ready.
    pub promote_when_ready: bool,
}

impl Deployment {
    /// The short form promote and rollback answer with.
    pub fn summary(&self) -> DeploymentSummary {
        DeploymentSummary { id: self.id.clone(), environment: self.environment, status: self.status }
    }
}

/// `{id, environment, status}`: what promote and rollback return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentSummary {
    /// The deployment id.
    pub id: DeploymentId,
    /// Its environment after the change.
    pub environment: Environment,
    /// Its status.
    pub status: Status,
}

/// One recorded environment change of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// Per-project sequence number, increasing by one with every change.
    pub seq: i64,
    /// The deployment whose environment changed.
    pub deployment_id: DeploymentId,
    /// Its environment before.
    pub from: Environment,
    /// Its environment after.
    pub to: Environment,
    /// When the change was committed.
    pub at: Timestamp,
}

/// What a change did, and whether the shared cache is already up to date.
///
/// When the cache could not be reached the change still stands (the store is
/// the truth); `cache_pending` is then true and a durable record of the cache
/// update, written with the change, is applied by any process as soon as the
/// cache is back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed<T> {
    /// The result of the change.
    pub value: T,
    /// True when the shared cache update is still pending.
    pub cache_pending: bool,
}

impl<T> std::ops::Deref for Changed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// The answer of promote and rollback: `{success, deployment}` in the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Promotion {
    /// The deployment now in production.
    pub deployment: DeploymentSummary,
    /// The deployment that was production before, now staging (none for a
    /// no-op or when the project had no production).
    pub demoted: Option<DeploymentId>,
}

/// A page of a listing, and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The items, in listing order.
    pub items: Vec<T>,
    /// Pass this as the cursor to get the next page; none at the end.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_their_names_only() {
        assert_eq!("production".parse::<Environment>().unwrap(), Environment::Production);
        assert!("Production".parse::<Environment>().is_err());
        assert!("processing".parse::<FinalStatus>().is_err());
        assert_eq!("failed".parse::<Status>().unwrap(), Status::Failed);
    }

    #[test]
    fn timestamps_keep_microseconds_and_normalise_offsets() {
        let t = parse_timestamp("2025-10-28T12:30:00.1234567+02:00").unwrap();
        assert_eq!(format_timestamp(&t), "2025-10-28T10:30:00.123456Z");
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn project_names_count_characters() {
        assert!(validate_project_name("Docs").is_ok());
        assert!(validate_project_name(&"é".repeat(256)).is_ok());
        assert!(validate_project_name(&"é".repeat(257)).is_err());
        assert!(validate_project_name("").is_err());
        assert!(validate_project_name("a\0b").is_err());
        assert!(validate_failure_message("parse error\0").is_err());
    }
}
