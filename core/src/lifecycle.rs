//! The rules of every change, written once against [`ProjectTx`]: the order
//! of checks, promotion, environment changes, status transitions,
//! promote-when-ready, deletion and rollback.
//!
//! Each function runs inside a transaction that holds the project, and says
//! which cache entries its change made stale; the handle bumps the project's
//! version, records the cache update durably and commits.

use crate::cache::keys::CacheKeys;
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{DeploymentId, SnapshotId};
use crate::model::{Deployment, Environment, FinalStatus, Promotion, Status, Timestamp, now};
use crate::store::ProjectTx;

/// A change's result and the cache entries it made stale (none: nothing a
/// reader sees changed).
pub(crate) struct Effect<T> {
    pub value: T,
    pub stale: Vec<String>,
}

impl<T> Effect<T> {
    fn unchanged(value: T) -> Effect<T> {
        Effect { value, stale: Vec::new() }
    }
}

/// What a new deployment is made of.
#[derive(Debug, Clone)]
pub(crate) struct NewDeployment {
    pub id: DeploymentId,
    pub snapshot_id: SnapshotId,
    pub environment: Environment,
    pub created_at: Option<Timestamp>,
}

/// The deployment, which must be this project's: a missing one is
/// `DEPLOYMENT_NOT_FOUND`, another project's `DEPLOYMENT_NOT_IN_PROJECT`.
async fn owned(tx: &mut dyn ProjectTx, id: &DeploymentId) -> Result<Deployment> {
    let d = tx.deployment(id).await?.ok_or_else(Error::deployment_not_found)?;
    if d.project_id != tx.project().id {
        return Err(Error::deployment_not_in_project());
    }
    Ok(d)
}

fn pointers_and_info(keys: &CacheKeys, tx: &dyn ProjectTx, deployments: &[&DeploymentId]) -> Vec<String> {
    let mut stale = keys.pointers(&tx.project().id).to_vec();
    stale.extend(deployments.iter().map(|d| keys.info(d)));
    stale
}

pub(crate) async fn create_deployment(
    tx: &mut dyn ProjectTx,
    keys: &CacheKeys,
    new: NewDeployment,
) -> Result<Effect<Deployment>> {
    let t = now();
    let d = Deployment {
        id: new.id,
        project_id: tx.project().id.clone(),
        snapshot_id: new.snapshot_id,
        // Created for production, it waits in staging until ready, so the
        // current production keeps serving meanwhile.
        environment: Environment::Staging,
        status: Status::Processing,
        created_at: new.created_at.unwrap_or(t),
        updated_at: t,
        failure_message: None,
        promote_when_ready: new.environment == Environment::Production,
    };
    tx.insert_deployment(&d).await?;
    let stale = vec![keys.ownership(&d.id), keys.info(&d.id)];
    Ok(Effect { value: d, stale })
}

/// Makes `target` production, demoting the current production first (the
/// unique index is checked row by row).
async fn promote_within(
    tx: &mut dyn ProjectTx,
    keys: &CacheKeys,
    mut target: Deployment,
) -> Result<Effect<(Deployment, Promotion)>> {
    let at = now();
    let mut demoted = None;
    if let Some(mut current) = tx.production().await? {
        current.environment = Environment::Staging;
        current.updated_at = at;
        tx.update_deployment(&current).await?;
        tx.record_history(&current.id, Environment::Production, Environment::Staging, at).await?;
        demoted = Some(current.id);
    }
    let from = target.environment;
    target.environment = Environment::Production;
    target.promote_when_ready = false;
    target.updated_at = at;
    tx.update_deployment(&target).await?;
    tx.record_history(&target.id, from, Environment::Production, at).await?;
    let mut touched = vec![&target.id];
    touched.extend(demoted.as_ref());
    let stale = pointers_and_info(keys, tx, &touched);
    let promotion = Promotion { deployment: target.summary(), demoted };
    Ok(Effect { value: (target, promotion), stale })
}

pub(crate) async fn promote(tx: &mut dyn ProjectTx, keys: &CacheKeys, id: DeploymentId) -> Result<Effect<Promotion>> {
    let d = owned(tx, &id).await?;
    if d.status != Status::Ready {
        return Err(Error::not_ready_to_promote());
    }
    if d.environment == Environment::Production {
        // Retries are safe: promoting the production again changes nothing.
        return Ok(Effect::unchanged(Promotion { deployment: d.summary(), demoted: None }));
    }
    let e = promote_within(tx, keys, d).await?;
    Ok(Effect { value: e.value.1, stale: e.stale })
}

pub(crate) async fn set_status(
    tx: &mut dyn ProjectTx,
    keys: &CacheKeys,
    id: DeploymentId,
    status: FinalStatus,
    message: Option<String>,
) -> Result<Effect<Deployment>> {
    let mut d = tx.deployment(&id).await?.ok_or_else(Error::deployment_not_found)?;
    let to = Status::from(status);
    match (d.status, to) {
        (Status::Processing, Status::Ready) if d.promote_when_ready => {
            d.status = Status::Ready;
            let e = promote_within(tx, keys, d).await?;
            Ok(Effect { value: e.value.0, stale: e.stale })
        }
        (Status::Processing, _) => {
            d.status = to;
            d.updated_at = now();
            d.promote_when_ready = false;
            if to == Status::Failed {
                d.failure_message = message;
            }
            tx.update_deployment(&d).await?;
            let stale = pointers_and_info(keys, tx, &[&d.id]);
            Ok(Effect { value: d, stale })
        }
        (from, to) if from == to => Ok(Effect::unchanged(d)),
        (from, to) => {
            Err(Error::new(ErrorCode::InvalidStatusTransition, format!("Cannot change status from {from} to {to}")))
        }
    }
}

pub(crate) async fn set_environment(
    tx: &mut dyn ProjectTx,
    keys: &CacheKeys,
    id: DeploymentId,
    environment: Environment,
) -> Result<Effect<Deployment>> {
    let mut d = owned(tx, &id).await?;
    match environment {
        Environment::Staging => {
            let was = d.environment;
            if was == Environment::Staging && !d.promote_when_ready {
                return Ok(Effect::unchanged(d));
            }
            let at = now();
            d.environment = Environment::Staging;
            d.promote_when_ready = false;
            d.updated_at = at;
            tx.update_deployment(&d).await?;
            if was == Environment::Staging {
                // Only the promote-when-ready flag changed: nothing a reader sees.
                return Ok(Effect::unchanged(d));
            }
            tx.record_history(&d.id, was, Environment::Staging, at).await?;
            let stale = pointers_and_info(keys, tx, &[&d.id]);
            Ok(Effect { value: d, stale })
        }
        Environment::Production => {
            if d.status != Status::Ready {
                return Err(Error::not_ready_to_promote());
            }
            if d.environment == Environment::Production {
                return Ok(Effect::unchanged(d));
            }
            if let Some(current) = tx.production().await? {
                return Err(Error::new(
                    ErrorCode::ProductionConflict,
                    format!("Deployment {} is already production; promote to replace it", current.id),
                ));
            }
            let at = now();
            let from = d.environment;
            d.environment = Environment::Production;
            d.promote_when_ready = false;
            d.updated_at = at;
            tx.update_deployment(&d).await?;
            tx.record_history(&d.id, from, Environment::Production, at).await?;
            let stale = pointers_and_info(keys, tx, &[&d.id]);
            Ok(Effect { value: d, stale })
        }
    }
}

pub(crate) async fn delete_deployment(
    tx: &mut dyn ProjectTx,
    keys: &CacheKeys,
    id: DeploymentId,
) -> Result<Effect<Deployment>> {
    let d = owned(tx, &id).await?;
    tx.delete_deployment(&d.id).await?;
    let mut stale = pointers_and_info(keys, tx, &[&d.id]);
    stale.push(keys.ownership(&d.id));
    Ok(Effect { value: d, stale })
}

pub(crate) async fn delete_project(tx: &mut dyn ProjectTx, keys: &CacheKeys) -> Result<Effect<()>> {
    let ids = tx.deployment_ids().await?;
    tx.delete_project().await?;
    let project = tx.project().id.clone();
    let mut stale = vec![keys.project_exists(&project)];
    stale.extend(keys.pointers(&project));
    for id in &ids {
        stale.push(keys.ownership(id));
        stale.push(keys.info(id));
    }
    Ok(Effect { value: (), stale })
}

/// Promotes the deployment that was production immediately before the
/// current one (or, with no production now, the last one that was).
pub(crate) async fn rollback(tx: &mut dyn ProjectTx, keys: &CacheKeys) -> Result<Effect<Promotion>> {
    let current = tx.production().await?.map(|d| d.id);
    let mut before = None;
    let target = 'search: loop {
        let page = tx.production_history(before, 64).await?;
        let Some(last) = page.last() else { break None };
        before = Some(last.seq);
        for entry in page {
            if Some(&entry.deployment_id) != current.as_ref() {
                break 'search Some(entry.deployment_id);
            }
        }
    };
    let target = target.ok_or_else(Error::no_rollback_target)?;
    let d = match tx.deployment(&target).await? {
        Some(d) if d.project_id == tx.project().id && d.status == Status::Ready => d,
        _ => return Err(Error::no_rollback_target()),
    };
    let e = promote_within(tx, keys, d).await?;
    Ok(Effect { value: e.value.1, stale: e.stale })
}
