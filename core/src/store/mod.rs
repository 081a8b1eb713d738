//! Pluggable storage: the [`Store`] trait and its built-in backends.
//!
//! A store keeps rows and transactions; it knows no rules. Every rule
//! (checks and their order, promotion, rollback, promote-when-ready) lives
//! once in the library's lifecycle module, written against [`ProjectTx`], so a third
//! party implements plain reads and writes and gets the exact semantics.
//!
//! A store must:
//! - make [`Store::begin`] exclusive per project (a row lock, an immediate
//!   transaction, a mutex), so that changes of one project serialize;
//! - keep at most one production deployment per project, and production
//!   deployments ready, even against writes that bypass this library (the
//!   SQL backends use a partial unique index and a CHECK constraint);
//! - hand out versions that only grow, across all projects, from
//!   [`ProjectTx::bump_version`];
//! - answer [`Store::lookup_environment`] and [`Store::lookup_deployment`]
//!   from one consistent snapshot, with the version of that snapshot.

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{DeploymentId, OrgId, ProjectId};
use crate::model::{Deployment, Environment, HistoryEntry, Project, Timestamp};

pub mod memory;
pub mod postgres;
pub(crate) mod sql;
pub mod sqlite;

/// The project fields the shared cache's `project:{id}:exists` entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectInfo {
    /// The owning organisation.
    pub org_id: OrgId,
    /// The display name.
    pub name: String,
    /// The project's version when it was read.
    pub version: i64,
}

/// Everything automatic resolution needs, read in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentLookup {
    /// The project, or none when it does not exist.
    pub project: Option<ProjectInfo>,
    /// The newest ready deployment of the environment (ties: greater id).
    pub deployment: Option<DeploymentId>,
}

/// Everything an explicit `Deployment-Id` needs, read in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentLookup {
    /// The project asked about, or none when it does not exist.
    pub project: Option<ProjectInfo>,
    /// The deployment with that id in any project, with its owner's version.
    pub deployment: Option<(Deployment, i64)>,
}

/// A durable cache update, written in the same transaction as the change it
/// belongs to and removed once applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInvalidation {
    /// The store's id of the record.
    pub id: i64,
    /// The update.
    pub invalidation: crate::cache::Invalidation,
}

/// Where a deployment listing continues: after this `(created_at, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    /// The `created_at` of the last item of the previous page.
    pub created_at: Timestamp,
    /// Its id.
    pub id: DeploymentId,
}

/// A storage backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a new project with a new version (see
    /// [`ProjectTx::bump_version`]) and returns that version; a taken id is
    /// `PROJECT_EXISTS`.
    async fn insert_project(&self, project: &Project) -> Result<i64>;
    /// One project.
    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>>;
    /// Projects by id (byte order), after `after`, at most `limit`.
    async fn list_projects(&self, after: Option<&ProjectId>, limit: u32) -> Result<Vec<Project>>;
    /// One deployment, of any project.
    async fn get_deployment(&self, id: &DeploymentId) -> Result<Option<Deployment>>;
    /// A project's deployments, newest `created_at` first (ties: greater id
    /// first), strictly after `after`, at most `limit`.
    async fn list_deployments(
        &self,
        project: &ProjectId,
        after: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<Deployment>>;
    /// A project's environment changes, newest first, with `seq` below
    /// `before` when given, at most `limit`.
    async fn history(&self, project: &ProjectId, before: Option<i64>, limit: u32) -> Result<Vec<HistoryEntry>>;
    /// Automatic resolution's read: one snapshot.
    async fn lookup_environment(&self, project: &ProjectId, environment: Environment) -> Result<EnvironmentLookup>;
    /// Explicit resolution's read: one snapshot.
    async fn lookup_deployment(&self, project: &ProjectId, deployment: &DeploymentId) -> Result<DeploymentLookup>;
    /// Starts a transaction holding the project exclusively; none when the
    /// project does not exist. Dropping it without commit rolls back.
    async fn begin(&self, project: &ProjectId) -> Result<Option<Box<dyn ProjectTx>>>;
    /// Cache updates not yet applied, oldest first.
    async fn pending_invalidations(&self, limit: u32) -> Result<Vec<PendingInvalidation>>;
    /// Removes applied cache updates (removing a missing one is fine).
    async fn clear_invalidations(&self, ids: &[i64]) -> Result<()>;
    /// Checks that the store answers.
    async fn ping(&self) -> Result<()>;
    /// Releases connections; later calls fail with `STORAGE_UNAVAILABLE`.
    async fn close(&self);
    /// Removes everything this store holds where that is cheap and safe (a
    /// private PostgreSQL schema); for tests. Does nothing by default.
    async fn drop_storage(&self) -> Result<()> {
        Ok(())
    }
}

/// A transaction that holds one project exclusively.
#[async_trait]
pub trait ProjectTx: Send {
    /// The project, as read when the transaction began.
    fn project(&self) -> &Project;
    /// A deployment of any project.
    async fn deployment(&mut self, id: &DeploymentId) -> Result<Option<Deployment>>;
    /// This project's production deployment.
    async fn production(&mut self) -> Result<Option<Deployment>>;
    /// The ids of all this project's deployments.
    async fn deployment_ids(&mut self) -> Result<Vec<DeploymentId>>;
    /// Inserts a deployment of this project; a taken id is `DEPLOYMENT_EXISTS`.
    async fn insert_deployment(&mut self, deployment: &Deployment) -> Result<()>;
    /// Writes a deployment's environment, status, `updated_at`, failure
    /// message and promote-when-ready flag.
    async fn update_deployment(&mut self, deployment: &Deployment) -> Result<()>;
    /// Deletes a deployment of this project.
    async fn delete_deployment(&mut self, id: &DeploymentId) -> Result<()>;
    /// Deletes the project with its deployments and history.
    async fn delete_project(&mut self) -> Result<()>;
    /// This project's entries that made a deployment production, newest
    /// first, with `seq` below `before` when given, at most `limit`.
    async fn production_history(&mut self, before: Option<i64>, limit: u32) -> Result<Vec<HistoryEntry>>;
    /// Appends an environment change; its `seq` is one more than the last.
    async fn record_history(
        &mut self,
        deployment: &DeploymentId,
        from: Environment,
        to: Environment,
        at: Timestamp,
    ) -> Result<i64>;
    /// Gives the project a new version, greater than any version handed out
    /// before for any project, and returns it.
    async fn bump_version(&mut self) -> Result<i64>;
    /// Records a cache update to apply after commit.
    async fn enqueue_invalidation(&mut self, invalidation: &crate::cache::Invalidation) -> Result<i64>;
    /// Makes every write of the transaction durable at once.
    async fn commit(self: Box<Self>) -> Result<()>;
}
