//! An in-memory store for one process: tests, demos and embedded use where
//! nothing needs to survive a restart.
//!
//! Writers take one lock for their whole transaction and stage their writes;
//! commit applies them under the state's write lock, so readers see a
//! transaction entirely or not at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{DeploymentLookup, EnvironmentLookup, ListCursor, PendingInvalidation, ProjectInfo, ProjectTx, Store};
use crate::cache::Invalidation;
use crate::error::{Error, Result};
use crate::ids::{DeploymentId, ProjectId};
use crate::model::{Deployment, Environment, HistoryEntry, Project, Status, Timestamp};

#[derive(Default)]
struct State {
    projects: BTreeMap<ProjectId, (Project, i64)>,
    deployments: HashMap<DeploymentId, Deployment>,
    by_project: HashMap<ProjectId, BTreeSet<DeploymentId>>,
    history: HashMap<ProjectId, Vec<HistoryEntry>>,
    outbox: BTreeMap<i64, Invalidation>,
}

struct Inner {
    state: RwLock<State>,
    writer: Arc<Mutex<()>>,
    versions: AtomicI64,
    outbox_ids: AtomicI64,
    closed: AtomicBool,
}

/// The in-memory store. Cloning shares the same data.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

/// Newest `created_at` first, ties by the greater id first.
fn newest_first(a: &Deployment, b: &Deployment) -> std::cmp::Ordering {
    b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id))
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore {
            inner: Arc::new(Inner {
                state: RwLock::new(State::default()),
                writer: Arc::new(Mutex::new(())),
                versions: AtomicI64::new(0),
                outbox_ids: AtomicI64::new(0),
                closed: AtomicBool::new(false),
            }),
        }
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.inner.read()
    }
}

impl Inner {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::storage_unavailable(&"the store is closed"));
        }
        Ok(())
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.check_open()?;
        // Writers apply staged changes without panicking, so a poisoned lock
        // still guards consistent data.
        Ok(self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>> {
        self.check_open()?;
        Ok(self.state.write().unwrap_or_else(|e| e.into_inner()))
    }

    fn next_version(&self) -> i64 {
        self.versions.fetch_add(1, Ordering::AcqRel) + 1
    }
}

fn info(state: &State, project: &ProjectId) -> Option<ProjectInfo> {
    state.projects.get(project).map(|(p, v)| ProjectInfo {
        org_id: p.org_id.clone(),
        name: p.name.clone(),
        version: *v,
    })
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_project(&self, project: &Project) -> Result<i64> {
        let _writer = self.inner.writer.lock().await;
        let mut state = self.inner.write()?;
        if state.projects.contains_key(&project.id) {
            return Err(Error::project_exists());
        }
        let version = self.inner.next_version();
        state.projects.insert(project.id.clone(), (project.clone(), version));
        Ok(version)
    }

    async fn get_project(&self, id: &ProjectId) -> Result<Option<Project>> {
        Ok(self.read()?.projects.get(id).map(|(p, _)| p.clone()))
    }

    async fn list_projects(&self, after: Option<&ProjectId>, limit: u32) -> Result<Vec<Project>> {
        let state = self.read()?;
        let range = match after {
            Some(a) => state.projects.range::<ProjectId, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => state.projects.range::<ProjectId, _>(..),
        };
        Ok(range.take(limit as usize).map(|(_, (p, _))| p.clone()).collect())
    }

    async fn get_deployment(&self, id: &DeploymentId) -> Result<Option<Deployment>> {
        Ok(self.read()?.deployments.get(id).cloned())
    }

    async fn list_deployments(
        &self,
        project: &ProjectId,
        after: Option<&ListCursor>,
        limit: u32,
    ) -> Result<Vec<Deployment>> {
        let state = self.read()?;
        let mut all: Vec<Deployment> = state
            .by_project
            .get(project)
            .into_iter()
            .flatten()
            .filter_map(|id| state.deployments.get(id).cloned())
            .filter(|d| match after {
                Some(c) => (d.created_at, &d.id) < (c.created_at, &c.id),
                None => true,
            })
            .collect();
        all.sort_by(newest_first);
        all.truncate(limit as usize);
        Ok(all)
    }

    async fn history(&self, project: &ProjectId, before: Option<i64>, limit: u32) -> Result<Vec<HistoryEntry>> {
        let state = self.read()?;
        Ok(state
            .history
            .get(project)
            .into_iter()
            .flat_map(|h| h.iter().rev())
            .filter(|e| before.is_none_or(|b| e.seq < b))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn lookup_environment(&self, project: &ProjectId, environment: Environment) -> Result<EnvironmentLookup> {
        let state = self.read()?;
        let deployment = state
            .by_project
            .get(project)
            .into_iter()
            .flatten()
            .filter_map(|id| state.deployments.get(id))
            .filter(|d| d.environment == environment && d.status == Status::Ready)
            .min_by(|a, b| newest_first(a, b))
            .map(|d| d.id.clone());
        Ok(EnvironmentLookup { project: info(&state, project), deployment })
    }

    async fn lookup_deployment(&self, project: &ProjectId, deployment: &DeploymentId) -> Result<DeploymentLookup> {
        let state = self.read()?;
        let deployment = state.deployments.get(deployment).map(|d| {
            let owner_version = state.projects.get(&d.project_id).map_or(0, |(_, v)| *v);
            (d.clone(), owner_version)
        });
        Ok(DeploymentLookup { project: info(&state, project), deployment })
    }

    async fn begin(&self, project: &ProjectId) -> Result<Option<Box<dyn ProjectTx>>> {
        self.inner.check_open()?;
        let writer = self.inner.writer.clone().lock_owned().await;
        let Some(found) = self.read()?.projects.get(project).map(|(p, _)| p.clone()) else {
            return Ok(None);
        };
        Ok(Some(Box::new(MemoryTx {
            inner: self.inner.clone(),
            _writer: writer,
            project: found,
            staged: HashMap::new(),
            history: Vec::new(),
            version: None,
            invalidations: Vec::new(),
            delete_project: false,
        })))
    }

    async fn pending_invalidations(&self, limit: u32) -> Result<Vec<PendingInvalidation>> {
        let state = self.read()?;
        Ok(state
            .outbox
            .iter()
            .take(limit as usize)
            .map(|(id, inv)| PendingInvalidation { id: *id, invalidation: inv.clone() })
            .collect())
    }

    async fn clear_invalidations(&self, ids: &[i64]) -> Result<()> {
        let mut state = self.inner.write()?;
        for id in ids {
            state.outbox.remove(id);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.inner.check_open()
    }

    async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }
}

struct MemoryTx {
    inner: Arc<Inner>,
    _writer: OwnedMutexGuard<()>,
    project: Project,
    /// Deployments written by this transaction; `None` means deleted.
    staged: HashMap<DeploymentId, Option<Deployment>>,
    history: Vec<HistoryEntry>,
    version: Option<i64>,
    invalidations: Vec<(i64, Invalidation)>,
    delete_project: bool,
}

impl MemoryTx {
    fn current(&self, id: &DeploymentId) -> Result<Option<Deployment>> {
        if let Some(staged) = self.staged.get(id) {
            return Ok(staged.clone());
        }
        Ok(self.inner.read()?.deployments.get(id).cloned())
    }

    /// This project's deployments as the transaction sees them.
    fn project_deployments(&self) -> Result<Vec<Deployment>> {
        let state = self.inner.read()?;
        let mut ids: BTreeSet<DeploymentId> = state.by_project.get(&self.project.id).cloned().unwrap_or_default();
        ids.extend(self.staged.keys().cloned());
        drop(state);
        let mut out = Vec::new();
        for id in ids {
            if let Some(d) = self.current(&id)?
                && d.project_id == self.project.id
            {
                out.push(d);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ProjectTx for MemoryTx {
    fn project(&self) -> &Project {
        &self.project
    }

    async fn deployment(&mut self, id: &DeploymentId) -> Result<Option<Deployment>> {
        self.current(id)
    }

    async fn production(&mut self) -> Result<Option<Deployment>> {
        Ok(self.project_deployments()?.into_iter().find(|d| d.environment == Environment::Production))
    }

    async fn deployment_ids(&mut self) -> Result<Vec<DeploymentId>> {
        Ok(self.project_deployments()?.into_iter().map(|d| d.id).collect())
    }

    async fn insert_deployment(&mut self, deployment: &Deployment) -> Result<()> {
        if self.current(&deployment.id)?.is_some() {
            return Err(Error::deployment_exists());
        }
        self.staged.insert(deployment.id.clone(), Some(deployment.clone()));
        Ok(())
    }

    async fn update_deployment(&mut self, deployment: &Deployment) -> Result<()> {
        // The same invariants the SQL backends enforce with constraints.
        if deployment.environment == Environment::Production {
            if deployment.status != Status::Ready {
                return Err(Error::internal(&"a production deployment must be ready"));
            }
            if let Some(other) = self
                .project_deployments()?
                .into_iter()
                .find(|d| d.environment == Environment::Production && d.id != deployment.id)
            {
                return Err(Error::internal(&format!("{} is production already", other.id)));
            }
        }
        self.staged.insert(deployment.id.clone(), Some(deployment.clone()));
        Ok(())
    }

    async fn delete_deployment(&mut self, id: &DeploymentId) -> Result<()> {
        self.staged.insert(id.clone(), None);
        Ok(())
    }

    async fn delete_project(&mut self) -> Result<()> {
        for id in self.deployment_ids().await? {
            self.staged.insert(id, None);
        }
        self.delete_project = true;
        Ok(())
    }

    async fn production_history(&mut self, before: Option<i64>, limit: u32) -> Result<Vec<HistoryEntry>> {
        let state = self.inner.read()?;
        let committed = state.history.get(&self.project.id).map(Vec::as_slice).unwrap_or_default();
        Ok(committed
            .iter()
            .chain(self.history.iter())
            .rev()
            .filter(|e| e.to == Environment::Production && before.is_none_or(|b| e.seq < b))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn record_history(
        &mut self,
        deployment: &DeploymentId,
        from: Environment,
        to: Environment,
        at: Timestamp,
    ) -> Result<i64> {
        let last = match self.history.last() {
            Some(e) => e.seq,
            None => self.inner.read()?.history.get(&self.project.id).and_then(|h| h.last()).map_or(0, |e| e.seq),
        };
        let entry = HistoryEntry { seq: last + 1, deployment_id: deployment.clone(), from, to, at };
        self.history.push(entry);
        Ok(last + 1)
    }

    async fn bump_version(&mut self) -> Result<i64> {
        let v = self.inner.next_version();
        self.version = Some(v);
        Ok(v)
    }

    async fn enqueue_invalidation(&mut self, invalidation: &Invalidation) -> Result<i64> {
        let id = self.inner.outbox_ids.fetch_add(1, Ordering::AcqRel) + 1;
        self.invalidations.push((id, invalidation.clone()));
        Ok(id)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let this = *self;
        let mut state = this.inner.write()?;
        let pid = this.project.id.clone();
        for (id, staged) in this.staged {
            if let Some(old) = state.deployments.remove(&id)
                && let Some(set) = state.by_project.get_mut(&old.project_id)
            {
                set.remove(&id);
            }
            if let Some(d) = staged {
                state.by_project.entry(d.project_id.clone()).or_default().insert(id.clone());
                state.deployments.insert(id, d);
            }
        }
        state.history.entry(pid.clone()).or_default().extend(this.history);
        if let Some(v) = this.version
            && let Some((_, version)) = state.projects.get_mut(&pid)
        {
            *version = v;
        }
        state.outbox.extend(this.invalidations);
        if this.delete_project {
            state.projects.remove(&pid);
            state.by_project.remove(&pid);
            state.history.remove(&pid);
        }
        Ok(())
    }
}
