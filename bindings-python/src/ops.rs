//! Every operation of the core handle, once, as a future that the sync
//! client blocks on (without the GIL) and the asyncio client awaits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lupa_core::{
    Caller, CreateDeployment, Environment, Error, ErrorCode, FinalStatus, NewProject, ResolveRequest, Stats,
};

use crate::convert::Out;
use crate::handle::Handle;

/// Runs `$body` with the process's core handle bound to `$l`, opening it
/// on first use, and turns the answer into an [`Out`].
macro_rules! op {
    ($h:expr, |$l:ident| $body:expr) => {{
        let h: Arc<Handle> = $h;
        async move {
            let r: Result<_, Error> = async {
                let $l = h.lupa().await?;
                $body
            }
            .await;
            Out::from(r)
        }
    }};
}

pub type Fut = std::pin::Pin<Box<dyn Future<Output = Out> + Send + 'static>>;

fn boxed(f: impl Future<Output = Out> + Send + 'static) -> Fut {
    Box::pin(f)
}

pub fn open(h: Arc<Handle>) -> Fut {
    boxed(op!(h, |l| {
        drop(l);
        Ok(())
    }))
}

pub fn close(h: Arc<Handle>) -> Fut {
    boxed(async move {
        h.close().await;
        Out::None
    })
}

pub fn create_project(h: Arc<Handle>, org_id: String, name: String, id: Option<String>) -> Fut {
    boxed(op!(h, |l| l.create_project(NewProject { id, org_id, name }).await))
}

pub fn get_project(h: Arc<Handle>, id: String) -> Fut {
    boxed(op!(h, |l| l.get_project(&id).await))
}

pub fn list_projects(h: Arc<Handle>, limit: Option<u32>, cursor: Option<String>) -> Fut {
    boxed(op!(h, |l| l.list_projects(limit, cursor.as_deref()).await))
}

pub fn delete_project(h: Arc<Handle>, id: String) -> Fut {
    boxed(op!(h, |l| l.delete_project(&id).await))
}

pub fn create_deployment(
    h: Arc<Handle>,
    project: String,
    snapshot: String,
    id: Option<String>,
    environment: Option<String>,
    created_at: Option<String>,
) -> Fut {
    boxed(op!(h, |l| {
        // The core's CreateDeployment has no default; staging is the
        // default `semantics.md` gives.
        let environment = environment.as_deref().map(str::parse).transpose()?.unwrap_or(Environment::Staging);
        l.create_deployment(CreateDeployment { project, id, snapshot, environment, created_at }).await
    }))
}

pub fn get_deployment(h: Arc<Handle>, id: String) -> Fut {
    boxed(op!(h, |l| l.get_deployment(&id).await))
}

pub fn list_deployments(h: Arc<Handle>, project: String, limit: Option<u32>, cursor: Option<String>) -> Fut {
    boxed(op!(h, |l| l.list_deployments(&project, limit, cursor.as_deref()).await))
}

pub fn set_status(h: Arc<Handle>, deployment: String, status: String, message: Option<String>) -> Fut {
    boxed(op!(h, |l| l.set_status(&deployment, status.parse::<FinalStatus>()?, message).await))
}

pub fn promote(h: Arc<Handle>, project: String, deployment: String) -> Fut {
    boxed(op!(h, |l| l.promote(&project, &deployment).await))
}

pub fn set_environment(h: Arc<Handle>, project: String, deployment: String, environment: String) -> Fut {
    boxed(op!(h, |l| l.set_environment(&project, &deployment, environment.parse()?).await))
}

pub fn delete_deployment(h: Arc<Handle>, project: String, deployment: String) -> Fut {
    boxed(op!(h, |l| l.delete_deployment(&project, &deployment).await))
}

pub fn rollback(h: Arc<Handle>, project: String) -> Fut {
    boxed(op!(h, |l| l.rollback(&project).await))
}

pub fn history(h: Arc<Handle>, project: String, limit: Option<u32>, cursor: Option<String>) -> Fut {
    boxed(op!(h, |l| l.history(&project, limit, cursor.as_deref()).await))
}

/// The loose parts of a resolution, as Python passes them.
pub struct ResolveArgs {
    pub project: String,
    pub deployment_id: Option<String>,
    pub requires_deployment: bool,
    pub api_key_environment: Option<String>,
    pub api_key: Option<String>,
    pub internal: bool,
    pub target_environment: Option<String>,
}

pub fn resolve(h: Arc<Handle>, a: ResolveArgs) -> Fut {
    boxed(op!(h, |l| {
        let caller = Caller::from_parts(
            a.api_key_environment.as_deref(),
            a.api_key.as_deref(),
            a.internal,
            a.target_environment.as_deref(),
        )?;
        let request = ResolveRequest {
            project: a.project,
            deployment_id: a.deployment_id,
            requires_deployment: a.requires_deployment,
            caller,
        };
        l.resolve(&request).await
    }))
}

pub fn resolve_headers(
    h: Arc<Handle>,
    project: String,
    authorization: Option<String>,
    deployment_id: Option<String>,
    requires_deployment: bool,
) -> Fut {
    boxed(op!(h, |l| {
        let request = ResolveRequest::from_headers(
            project,
            authorization.as_deref(),
            deployment_id.as_deref(),
            requires_deployment,
        )?;
        l.resolve(&request).await
    }))
}

pub fn health(h: Arc<Handle>) -> Fut {
    boxed(op!(h, |l| Ok(l.health().await)))
}

pub fn apply_pending_cache_updates(h: Arc<Handle>) -> Fut {
    boxed(op!(h, |l| l.apply_pending_cache_updates().await))
}

pub fn drop_storage(h: Arc<Handle>) -> Fut {
    boxed(op!(h, |l| l.drop_storage().await))
}

/// What the handle has counted, without opening it or waiting for
/// anything. A handle not yet open in this process (an `AsyncLupa` before
/// its first call, a handle in a forked child before its first call there)
/// has counted nothing.
pub fn stats(h: &Handle) -> Result<Stats, Error> {
    Ok(match h.opened()? {
        Some(lupa) => lupa.stats(),
        None => Stats::empty(),
    })
}

/// Whether the handle has a shared cache (opening it if needed).
pub fn has_cache(h: Arc<Handle>) -> Fut {
    boxed(op!(h, |l| Ok(l.cache_probe().is_some())))
}

fn probe(l: &lupa_core::Lupa) -> Result<lupa_core::CacheProbe, Error> {
    l.cache_probe().ok_or_else(|| Error::new(ErrorCode::InvalidArgument, "this handle has no shared cache"))
}

pub fn cache_get(h: Arc<Handle>, key: String) -> Fut {
    boxed(op!(h, |l| probe(&l)?.get(&key).await))
}

pub fn cache_ttl(h: Arc<Handle>, key: String) -> Fut {
    boxed(op!(h, |l| probe(&l)?.ttl(&key).await))
}

pub fn cache_set(h: Arc<Handle>, key: String, value: String, ttl: Duration) -> Fut {
    boxed(op!(h, |l| probe(&l)?.set(&key, &value, ttl).await))
}

pub fn cache_clear(h: Arc<Handle>) -> Fut {
    boxed(op!(h, |l| probe(&l)?.clear().await))
}
