//! The Python classes: `Lupa` (blocking, the GIL released while it waits),
//! `AsyncLupa` (asyncio awaitables), and the cache test hooks. Both clients
//! share one kind of handle, and can share one handle (`as_async`,
//! `as_sync`).

use std::sync::Arc;

use lupa_core::{Config, Error, ErrorCode};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::convert::{IntoPyResult, Out, Text, seconds};
use crate::handle::Handle;
use crate::ops::{self, Fut, ResolveArgs};
use crate::runtime::{ForkAwareTokio, runtime};

/// Blocks on `fut` with the GIL released.
fn block<'py>(py: Python<'py>, fut: Fut) -> PyResult<Bound<'py, PyAny>> {
    let out = py.detach(|| match runtime() {
        Ok(rt) => rt.block_on(fut),
        Err(e) => Out::Error(e),
    });
    out.into_pyobject(py)
}

/// An asyncio awaitable for `fut`, run on the tokio runtime.
fn awaitable<'py>(py: Python<'py>, fut: Fut) -> PyResult<Bound<'py, PyAny>> {
    runtime().py(py)?;
    pyo3_async_runtimes::generic::future_into_py::<ForkAwareTokio, _, Out>(py, async move { Ok(fut.await) })
}

fn count(name: &str, value: Option<i64>) -> Result<Option<u32>, Error> {
    value
        .map(|v| {
            u32::try_from(v).map_err(|_| {
                Error::new(ErrorCode::InvalidArgument, format!("{name} must be between 0 and {}", u32::MAX))
            })
        })
        .transpose()
}

/// The configuration from the constructor's arguments; what is not given
/// keeps the core's default.
#[allow(clippy::too_many_arguments)]
fn config(
    store: Option<Text>,
    cache: Option<Text>,
    key_prefix: Option<Text>,
    schema: Option<Text>,
    pool_size: Option<i64>,
    cache_timeout: Option<f64>,
    store_timeout: Option<f64>,
    breaker_threshold: Option<i64>,
    breaker_cooldown: Option<f64>,
    outbox_interval: Option<f64>,
    local: LocalOptions,
    metrics: Option<bool>,
) -> Result<Config, Error> {
    let mut c = Config::default();
    if let Some(Text(s)) = store {
        c.store = s;
    }
    if let Some(Text(s)) = cache {
        c.cache = s;
    }
    if let Some(Text(s)) = key_prefix {
        c.key_prefix = s;
    }
    if let Some(Text(s)) = schema {
        c.schema = s;
    }
    if let Some(n) = count("pool_size", pool_size)? {
        c.pool_size = n;
    }
    if let Some(n) = count("breaker_threshold", breaker_threshold)? {
        c.breaker_threshold = n;
    }
    for (name, value, slot) in [
        ("cache_timeout", cache_timeout, &mut c.cache_timeout),
        ("store_timeout", store_timeout, &mut c.store_timeout),
        ("breaker_cooldown", breaker_cooldown, &mut c.breaker_cooldown),
        ("outbox_interval", outbox_interval, &mut c.outbox_interval),
    ] {
        if let Some(v) = value {
            *slot = seconds(name, v)?;
        }
    }
    if let Some(on) = local.cache {
        c.local_cache = on;
    }
    if let Some(n) = count("local_capacity", local.capacity)? {
        c.local_capacity = n as usize;
    }
    if let Some(v) = local.bound {
        c.local_bound = seconds("local_bound", v)?;
    }
    if let Some(on) = metrics {
        c.metrics = on;
    }
    Ok(c)
}

/// The in-process tier's options: on or off, most projects, and the bound
/// on an answer's age while the invalidation channel is down (seconds).
#[derive(Default, Clone, Copy)]
struct LocalOptions {
    cache: Option<bool>,
    capacity: Option<i64>,
    bound: Option<f64>,
}

/// `created_at`: an RFC 3339 string or a timezone-aware `datetime` (a
/// naive one has no offset, which the core rejects).
fn timestamp_text(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    let Some(v) = value else { return Ok(None) };
    if v.is_none() {
        return Ok(None);
    }
    if v.is_instance_of::<PyString>() {
        return Ok(Some(v.extract::<Text>()?.0));
    }
    let datetime = v.py().import("datetime")?.getattr("datetime")?;
    if v.is_instance(&datetime)? {
        return Ok(Some(v.call_method0("isoformat")?.extract::<Text>()?.0));
    }
    Err(PyTypeError::new_err("created_at must be a datetime, an RFC 3339 str or None"))
}

fn resolve_args(
    project: Text,
    deployment_id: Option<Text>,
    requires_deployment: bool,
    api_key_environment: Option<Text>,
    api_key: Option<Text>,
    internal: bool,
    target_environment: Option<Text>,
) -> ResolveArgs {
    ResolveArgs {
        project: project.0,
        deployment_id: Text::opt(deployment_id),
        requires_deployment,
        api_key_environment: Text::opt(api_key_environment),
        api_key: Text::opt(api_key),
        internal,
        target_environment: Text::opt(target_environment),
    }
}

/// Generates the operations shared by `Lupa` and `AsyncLupa`: each one
/// hands its future to `$run` (block or awaitable).
macro_rules! operations {
    ($class:ident, $run:ident) => {
        #[pymethods]
        impl $class {
            #[pyo3(signature = (org_id, name, *, id=None))]
            fn create_project<'py>(
                &self,
                py: Python<'py>,
                org_id: Text,
                name: Text,
                id: Option<Text>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::create_project(self.handle.clone(), org_id.0, name.0, Text::opt(id)))
            }

            fn get_project<'py>(&self, py: Python<'py>, id: Text) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::get_project(self.handle.clone(), id.0))
            }

            #[pyo3(signature = (*, limit=None, cursor=None))]
            fn list_projects<'py>(
                &self,
                py: Python<'py>,
                limit: Option<i64>,
                cursor: Option<Text>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::list_projects(self.handle.clone(), crate::convert::limit(limit), Text::opt(cursor)))
            }

            fn delete_project<'py>(&self, py: Python<'py>, id: Text) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::delete_project(self.handle.clone(), id.0))
            }

            #[pyo3(signature = (project, snapshot, *, id=None, environment=None, created_at=None))]
            fn create_deployment<'py>(
                &self,
                py: Python<'py>,
                project: Text,
                snapshot: Text,
                id: Option<Text>,
                environment: Option<Text>,
                created_at: Option<&Bound<'py, PyAny>>,
            ) -> PyResult<Bound<'py, PyAny>> {
                let created_at = timestamp_text(created_at)?;
                $run(
                    py,
                    ops::create_deployment(
                        self.handle.clone(),
                        project.0,
                        snapshot.0,
                        Text::opt(id),
                        Text::opt(environment),
                        created_at,
                    ),
                )
            }

            fn get_deployment<'py>(&self, py: Python<'py>, id: Text) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::get_deployment(self.handle.clone(), id.0))
            }

            #[pyo3(signature = (project, *, limit=None, cursor=None))]
            fn list_deployments<'py>(
                &self,
                py: Python<'py>,
                project: Text,
                limit: Option<i64>,
                cursor: Option<Text>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(
                    py,
                    ops::list_deployments(
                        self.handle.clone(),
                        project.0,
                        crate::convert::limit(limit),
                        Text::opt(cursor),
                    ),
                )
            }

            #[pyo3(signature = (deployment, status, message=None))]
            fn set_status<'py>(
                &self,
                py: Python<'py>,
                deployment: Text,
                status: Text,
                message: Option<Text>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::set_status(self.handle.clone(), deployment.0, status.0, Text::opt(message)))
            }

            fn promote<'py>(&self, py: Python<'py>, project: Text, deployment: Text) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::promote(self.handle.clone(), project.0, deployment.0))
            }

            fn set_environment<'py>(
                &self,
                py: Python<'py>,
                project: Text,
                deployment: Text,
                environment: Text,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::set_environment(self.handle.clone(), project.0, deployment.0, environment.0))
            }

            fn delete_deployment<'py>(
                &self,
                py: Python<'py>,
                project: Text,
                deployment: Text,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::delete_deployment(self.handle.clone(), project.0, deployment.0))
            }

            fn rollback<'py>(&self, py: Python<'py>, project: Text) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::rollback(self.handle.clone(), project.0))
            }

            #[pyo3(signature = (project, *, limit=None, cursor=None))]
            fn history<'py>(
                &self,
                py: Python<'py>,
                project: Text,
                limit: Option<i64>,
                cursor: Option<Text>,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::history(self.handle.clone(), project.0, crate::convert::limit(limit), Text::opt(cursor)))
            }

            #[allow(clippy::too_many_arguments)]
            #[pyo3(signature = (
                                project, *, deployment_id=None, requires_deployment=true, api_key_environment=None,
                                api_key=None, internal=false, target_environment=None
                            ))]
            fn resolve<'py>(
                &self,
                py: Python<'py>,
                project: Text,
                deployment_id: Option<Text>,
                requires_deployment: bool,
                api_key_environment: Option<Text>,
                api_key: Option<Text>,
                internal: bool,
                target_environment: Option<Text>,
            ) -> PyResult<Bound<'py, PyAny>> {
                let args = resolve_args(
                    project,
                    deployment_id,
                    requires_deployment,
                    api_key_environment,
                    api_key,
                    internal,
                    target_environment,
                );
                $run(py, ops::resolve(self.handle.clone(), args))
            }

            #[pyo3(signature = (project, authorization, deployment_id=None, *, requires_deployment=true))]
            fn resolve_headers<'py>(
                &self,
                py: Python<'py>,
                project: Text,
                authorization: Option<Text>,
                deployment_id: Option<Text>,
                requires_deployment: bool,
            ) -> PyResult<Bound<'py, PyAny>> {
                $run(
                    py,
                    ops::resolve_headers(
                        self.handle.clone(),
                        project.0,
                        Text::opt(authorization),
                        Text::opt(deployment_id),
                        requires_deployment,
                    ),
                )
            }

            fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::health(self.handle.clone()))
            }

            /// What the handle has counted since it was opened; never blocks
            /// (a plain method on both clients).
            fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                crate::convert::stats(py, &ops::stats(&self.handle).py(py)?)
            }

            /// The same snapshot in the Prometheus text exposition format.
            fn metrics_text(&self, py: Python<'_>) -> PyResult<String> {
                ops::stats(&self.handle).map(|s| s.to_prometheus()).py(py)
            }

            fn apply_pending_cache_updates<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::apply_pending_cache_updates(self.handle.clone()))
            }

            fn drop_storage<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::drop_storage(self.handle.clone()))
            }

            fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::close(self.handle.clone()))
            }

            #[getter]
            fn closed(&self) -> bool {
                self.handle.is_closed()
            }

            fn __repr__(&self) -> String {
                format!("{}({})", stringify!($class).trim_start_matches("Py"), self.handle.describe())
            }
        }
    };
}

/// A Lupa handle whose calls block (with the GIL released).
#[pyclass(frozen, module = "lupa_core._native", name = "Lupa")]
pub struct PyLupa {
    handle: Arc<Handle>,
}

/// A Lupa handle whose calls return asyncio awaitables.
#[pyclass(frozen, module = "lupa_core._native", name = "AsyncLupa")]
pub struct PyAsyncLupa {
    handle: Arc<Handle>,
}

operations!(PyLupa, block);
operations!(PyAsyncLupa, awaitable);

#[pymethods]
impl PyLupa {
    /// Opens a handle (applying the store's migrations).
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        store=None, cache=None, *, key_prefix=None, schema=None, pool_size=None, cache_timeout=None,
        store_timeout=None, breaker_threshold=None, breaker_cooldown=None, outbox_interval=None,
        local_cache=None, local_capacity=None, local_bound=None, metrics=None
    ))]
    fn new(
        py: Python<'_>,
        store: Option<Text>,
        cache: Option<Text>,
        key_prefix: Option<Text>,
        schema: Option<Text>,
        pool_size: Option<i64>,
        cache_timeout: Option<f64>,
        store_timeout: Option<f64>,
        breaker_threshold: Option<i64>,
        breaker_cooldown: Option<f64>,
        outbox_interval: Option<f64>,
        local_cache: Option<bool>,
        local_capacity: Option<i64>,
        local_bound: Option<f64>,
        metrics: Option<bool>,
    ) -> PyResult<Self> {
        let config = config(
            store,
            cache,
            key_prefix,
            schema,
            pool_size,
            cache_timeout,
            store_timeout,
            breaker_threshold,
            breaker_cooldown,
            outbox_interval,
            LocalOptions { cache: local_cache, capacity: local_capacity, bound: local_bound },
            metrics,
        )
        .py(py)?;
        let handle = Arc::new(Handle::new(config));
        block(py, ops::open(handle.clone()))?;
        Ok(PyLupa { handle })
    }

    /// An asyncio client on this same handle.
    fn as_async(&self) -> PyAsyncLupa {
        PyAsyncLupa { handle: self.handle.clone() }
    }

    /// The cache test hook, or None without a shared cache.
    fn cache_probe(&self, py: Python<'_>) -> PyResult<Option<CacheProbe>> {
        let has = block(py, ops::has_cache(self.handle.clone()))?.is_truthy()?;
        Ok(has.then(|| CacheProbe { handle: self.handle.clone() }))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        block(py, ops::close(self.handle.clone()))?;
        Ok(())
    }
}

#[pymethods]
impl PyAsyncLupa {
    /// Makes a handle; it opens on `open()`, `async with` or the first call.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        store=None, cache=None, *, key_prefix=None, schema=None, pool_size=None, cache_timeout=None,
        store_timeout=None, breaker_threshold=None, breaker_cooldown=None, outbox_interval=None,
        local_cache=None, local_capacity=None, local_bound=None, metrics=None
    ))]
    fn new(
        py: Python<'_>,
        store: Option<Text>,
        cache: Option<Text>,
        key_prefix: Option<Text>,
        schema: Option<Text>,
        pool_size: Option<i64>,
        cache_timeout: Option<f64>,
        store_timeout: Option<f64>,
        breaker_threshold: Option<i64>,
        breaker_cooldown: Option<f64>,
        outbox_interval: Option<f64>,
        local_cache: Option<bool>,
        local_capacity: Option<i64>,
        local_bound: Option<f64>,
        metrics: Option<bool>,
    ) -> PyResult<Self> {
        let config = config(
            store,
            cache,
            key_prefix,
            schema,
            pool_size,
            cache_timeout,
            store_timeout,
            breaker_threshold,
            breaker_cooldown,
            outbox_interval,
            LocalOptions { cache: local_cache, capacity: local_capacity, bound: local_bound },
            metrics,
        )
        .py(py)?;
        Ok(PyAsyncLupa { handle: Arc::new(Handle::new(config)) })
    }

    /// A blocking client on this same handle.
    fn as_sync(&self) -> PyLupa {
        PyLupa { handle: self.handle.clone() }
    }

    /// Opens the handle now (applying the store's migrations); the
    /// awaitable gives the handle back.
    fn open<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let me: Py<PyAny> = slf.clone().into_any().unbind();
        let open = ops::open(slf.get().handle.clone());
        awaitable(
            py,
            Box::pin(async move {
                match open.await {
                    Out::Error(e) => Out::Error(e),
                    _ => Out::Object(me),
                }
            }),
        )
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::open(slf)
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(&self, py: Python<'py>, _exc: &Bound<'py, pyo3::types::PyTuple>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, ops::close(self.handle.clone()))
    }

    /// The cache test hook, or None without a shared cache.
    fn cache_probe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let handle = self.handle.clone();
        let has = ops::has_cache(handle.clone());
        awaitable(
            py,
            Box::pin(async move {
                match has.await {
                    Out::Bool(true) => Out::AsyncProbe(Some(handle)),
                    Out::Error(e) => Out::Error(e),
                    _ => Out::AsyncProbe(None),
                }
            }),
        )
    }
}

/// A test hook: the handle's shared cache by the seed's key names (without
/// the key prefix), bypassing the circuit breaker. For conformance tests and
/// tooling, not for serving.
#[pyclass(frozen, module = "lupa_core._native", name = "CacheProbe")]
pub struct CacheProbe {
    handle: Arc<Handle>,
}

/// [`CacheProbe`] with asyncio awaitables.
#[pyclass(frozen, module = "lupa_core._native", name = "AsyncCacheProbe")]
pub struct AsyncCacheProbe {
    pub(crate) handle: Arc<Handle>,
}

macro_rules! probe_operations {
    ($class:ident, $run:ident) => {
        #[pymethods]
        impl $class {
            fn get<'py>(&self, py: Python<'py>, key: Text) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::cache_get(self.handle.clone(), key.0))
            }

            fn ttl<'py>(&self, py: Python<'py>, key: Text) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::cache_ttl(self.handle.clone(), key.0))
            }

            fn set<'py>(&self, py: Python<'py>, key: Text, value: Text, ttl: f64) -> PyResult<Bound<'py, PyAny>> {
                let ttl = seconds("ttl", ttl).py(py)?;
                $run(py, ops::cache_set(self.handle.clone(), key.0, value.0, ttl))
            }

            fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                $run(py, ops::cache_clear(self.handle.clone()))
            }

            fn __repr__(&self) -> String {
                format!("{}({})", stringify!($class), self.handle.describe())
            }
        }
    };
}

probe_operations!(CacheProbe, block);
probe_operations!(AsyncCacheProbe, awaitable);
