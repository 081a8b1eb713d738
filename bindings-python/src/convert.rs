//! Translation between the core's types and Python's: strings in, typed
//! results (the dataclasses and enums of `lupa_core._types`) and exceptions
//! (`lupa_core._errors`) out. No rule lives here.

use std::time::Duration;

use lupa_core::{
    ApiKeyInfo, Changed, ComponentHealth, Deployment, DeploymentSummary, Error, ErrorCode, Health, HistoryEntry, Page,
    Project, Promotion, Resolution, Stats,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};
use pyo3::{Borrowed, IntoPyObject, IntoPyObjectExt};

static TYPES: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn types(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    Ok(TYPES.get_or_try_init(py, || py.import("lupa_core._types").map(Bound::unbind))?.bind(py))
}

fn errors(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    Ok(ERRORS.get_or_try_init(py, || py.import("lupa_core._errors").map(Bound::unbind))?.bind(py))
}

/// A core error as the matching `lupa_core` exception.
pub fn py_error(py: Python<'_>, e: &Error) -> PyErr {
    let made =
        errors(py).and_then(|m| m.getattr("_from_native")?.call1((e.code().as_str(), e.message(), e.http_status())));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// Raises a core error in Python.
pub trait IntoPyResult<T> {
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| py_error(py, &e))
    }
}

/// A text argument: a `str` (or a subclass, such as the `str` enums),
/// valid Unicode. Anything else is a `TypeError`; a string with lone
/// surrogates, which cannot cross into Rust, is an `INVALID_ARGUMENT`
/// error.
pub struct Text(pub String);

impl<'a, 'py> FromPyObject<'a, 'py> for Text {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let s = obj.cast::<PyString>().map_err(|_| {
            let got = obj.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string());
            PyTypeError::new_err(format!("expected str, got {got}"))
        })?;
        match s.to_str() {
            Ok(text) => Ok(Text(text.to_owned())),
            Err(_) => Err(py_error(
                py,
                &Error::new(
                    ErrorCode::InvalidArgument,
                    "a text argument is not valid Unicode (it has lone surrogates)",
                ),
            )),
        }
    }
}

impl Text {
    pub fn opt(t: Option<Text>) -> Option<String> {
        t.map(|t| t.0)
    }
}

/// A page size from Python: any int; values outside `u32` become values the
/// core rejects with its own message.
pub fn limit(n: Option<i64>) -> Option<u32> {
    n.map(|n| u32::try_from(n).unwrap_or(if n < 0 { 0 } else { u32::MAX }))
}

/// Seconds from Python as a duration.
pub fn seconds(name: &str, value: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        Error::new(ErrorCode::InvalidArgument, format!("{name} must be a finite, non-negative number of seconds"))
    })
}

/// Every answer a call can give, converted to Python once the GIL is held
/// (for asyncio, when the result is handed to the event loop).
pub enum Out {
    None,
    Bool(bool),
    Count(usize),
    Text(Option<String>),
    Seconds(Option<Duration>),
    Project(Project),
    Deployment(Deployment),
    DeploymentChange(Changed<Deployment>),
    Promotion(Changed<Promotion>),
    Change(Changed<()>),
    Projects(Page<Project>),
    Deployments(Page<Deployment>),
    History(Page<HistoryEntry>),
    Resolution(Resolution),
    Health(Health),
    /// A Python object made before the call (the handle itself).
    Object(Py<PyAny>),
    /// The asyncio cache probe, or none without a cache.
    AsyncProbe(Option<std::sync::Arc<crate::handle::Handle>>),
    Error(Error),
}

impl<T: Into<Out>> From<Result<T, Error>> for Out {
    fn from(r: Result<T, Error>) -> Out {
        match r {
            Ok(v) => v.into(),
            Err(e) => Out::Error(e),
        }
    }
}

macro_rules! out_from {
    ($($ty:ty => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for Out {
            fn from(v: $ty) -> Out {
                Out::$variant(v)
            }
        })*
    };
}

out_from! {
    bool => Bool,
    usize => Count,
    Option<String> => Text,
    Option<Duration> => Seconds,
    Project => Project,
    Deployment => Deployment,
    Changed<Deployment> => DeploymentChange,
    Changed<Promotion> => Promotion,
    Changed<()> => Change,
    Page<Project> => Projects,
    Page<Deployment> => Deployments,
    Page<HistoryEntry> => History,
    Resolution => Resolution,
    Health => Health,
}

impl From<()> for Out {
    fn from(_: ()) -> Out {
        Out::None
    }
}

fn make<'py>(py: Python<'py>, class: &str, fields: &[(&str, Bound<'py, PyAny>)]) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(py);
    for (k, v) in fields {
        kwargs.set_item(*k, v)?;
    }
    types(py)?.getattr(class)?.call((), Some(&kwargs))
}

fn enum_member<'py>(py: Python<'py>, class: &str, value: &str) -> PyResult<Bound<'py, PyAny>> {
    types(py)?.getattr(class)?.call1((value,))
}

fn any<'py, T>(py: Python<'py>, v: T) -> PyResult<Bound<'py, PyAny>>
where
    T: IntoPyObject<'py>,
{
    v.into_bound_py_any(py)
}

fn project<'py>(py: Python<'py>, p: &Project) -> PyResult<Bound<'py, PyAny>> {
    make(
        py,
        "Project",
        &[
            ("id", any(py, p.id.as_str())?),
            ("org_id", any(py, p.org_id.as_str())?),
            ("name", any(py, p.name.as_str())?),
            ("created_at", any(py, p.created_at)?),
            ("updated_at", any(py, p.updated_at)?),
        ],
    )
}

fn deployment<'py>(py: Python<'py>, d: &Deployment) -> PyResult<Bound<'py, PyAny>> {
    make(
        py,
        "Deployment",
        &[
            ("id", any(py, d.id.as_str())?),
            ("project_id", any(py, d.project_id.as_str())?),
            ("snapshot_id", any(py, d.snapshot_id.as_str())?),
            ("environment", enum_member(py, "Environment", d.environment.as_str())?),
            ("status", enum_member(py, "Status", d.status.as_str())?),
            ("created_at", any(py, d.created_at)?),
            ("updated_at", any(py, d.updated_at)?),
            ("failure_message", any(py, d.failure_message.as_deref())?),
            ("promote_when_ready", any(py, d.promote_when_ready)?),
        ],
    )
}

fn summary<'py>(py: Python<'py>, d: &DeploymentSummary) -> PyResult<Bound<'py, PyAny>> {
    make(
        py,
        "DeploymentSummary",
        &[
            ("id", any(py, d.id.as_str())?),
            ("environment", enum_member(py, "Environment", d.environment.as_str())?),
            ("status", enum_member(py, "Status", d.status.as_str())?),
        ],
    )
}

fn history_entry<'py>(py: Python<'py>, h: &HistoryEntry) -> PyResult<Bound<'py, PyAny>> {
    make(
        py,
        "HistoryEntry",
        &[
            ("seq", any(py, h.seq)?),
            ("deployment_id", any(py, h.deployment_id.as_str())?),
            ("from_environment", enum_member(py, "Environment", h.from.as_str())?),
            ("to_environment", enum_member(py, "Environment", h.to.as_str())?),
            ("at", any(py, h.at)?),
        ],
    )
}

fn page<'py, T>(
    py: Python<'py>,
    class: &str,
    p: &Page<T>,
    item: impl Fn(Python<'py>, &T) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let items = p.items.iter().map(|i| item(py, i)).collect::<PyResult<Vec<_>>>()?;
    make(py, class, &[("items", any(py, items)?), ("next_cursor", any(py, p.next_cursor.as_deref())?)])
}

fn component<'py>(py: Python<'py>, c: &ComponentHealth) -> PyResult<Bound<'py, PyAny>> {
    let (state, detail) = match c {
        ComponentHealth::Ok => ("ok", None),
        ComponentHealth::Disabled => ("disabled", None),
        ComponentHealth::Unavailable(d) => ("unavailable", Some(d.as_str())),
    };
    make(py, "ComponentHealth", &[("state", any(py, state)?), ("detail", any(py, detail)?)])
}

fn breaker_name(b: lupa_core::BreakerState) -> &'static str {
    match b {
        lupa_core::BreakerState::Closed => "closed",
        lupa_core::BreakerState::Open => "open",
        lupa_core::BreakerState::HalfOpen => "half_open",
    }
}

fn counts<'py>(py: Python<'py>, class: &str, fields: &[(&str, u64)]) -> PyResult<Bound<'py, PyAny>> {
    let values = fields.iter().map(|(k, v)| Ok((*k, any(py, *v)?))).collect::<PyResult<Vec<_>>>()?;
    make(py, class, &values)
}

/// A snapshot of the handle's counters, as the dataclasses of `_types`.
pub fn stats<'py>(py: Python<'py>, s: &Stats) -> PyResult<Bound<'py, PyAny>> {
    let r = &s.resolutions;
    let code = errors(py)?.getattr("ErrorCode")?;
    let errors = r
        .errors
        .iter()
        .map(|e| make(py, "ErrorCount", &[("code", code.call1((e.code.as_str(),))?), ("count", any(py, e.count)?)]))
        .collect::<PyResult<Vec<_>>>()?;
    let resolutions = make(
        py,
        "ResolutionCounts",
        &[
            ("local", any(py, r.local)?),
            ("cache", any(py, r.cache)?),
            ("store", any(py, r.store)?),
            ("errors", any(py, errors)?),
        ],
    )?;
    let c = &s.cache;
    let breaker = c.breaker.map(breaker_name);
    let cache = make(
        py,
        "SharedCacheCounts",
        &[
            ("hits", any(py, c.hits)?),
            ("misses", any(py, c.misses)?),
            ("errors", any(py, c.errors)?),
            ("timeouts", any(py, c.timeouts)?),
            ("skipped", any(py, c.skipped)?),
            ("breaker", any(py, breaker)?),
            ("breaker_opened", any(py, c.breaker_opened)?),
        ],
    )?;
    let latency = make(
        py,
        "LatencyHistogram",
        &[
            ("bounds_us", any(py, s.latency.bounds_us.clone())?),
            ("counts", any(py, s.latency.counts.clone())?),
            ("sum_ns", any(py, s.latency.sum_ns)?),
        ],
    )?;
    let deployments = s
        .deployments
        .iter()
        .map(|d| {
            make(
                py,
                "DeploymentResolutions",
                &[
                    ("project", any(py, d.project.as_str())?),
                    ("deployment", any(py, d.deployment.as_str())?),
                    ("resolutions", any(py, d.resolutions)?),
                ],
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    make(
        py,
        "Stats",
        &[
            ("resolutions", resolutions),
            ("local", counts(py, "TierCounts", &[("hits", s.local.hits), ("misses", s.local.misses)])?),
            ("local_projects", any(py, s.local_projects)?),
            ("cache", cache),
            (
                "store",
                counts(py, "StoreCounts", &[("queries", s.store.queries), ("unavailable", s.store.unavailable)])?,
            ),
            ("latency", latency),
            ("deployments", any(py, deployments)?),
            ("untracked_deployment_resolutions", any(py, s.untracked_deployment_resolutions)?),
            ("promotions", any(py, s.promotions)?),
            ("rollbacks", any(py, s.rollbacks)?),
        ],
    )
}

/// The key's type and environment.
pub fn api_key_info<'py>(py: Python<'py>, i: &ApiKeyInfo) -> PyResult<Bound<'py, PyAny>> {
    make(
        py,
        "ApiKeyInfo",
        &[
            ("key_type", enum_member(py, "KeyType", i.key_type.as_str())?),
            ("environment", enum_member(py, "KeyEnvironment", i.environment.as_str())?),
        ],
    )
}

impl<'py> IntoPyObject<'py> for Out {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Out::None => Ok(py.None().into_bound(py)),
            Out::Bool(b) => any(py, b),
            Out::Count(n) => any(py, n),
            Out::Text(t) => any(py, t),
            Out::Seconds(d) => any(py, d.map(|d| d.as_secs_f64())),
            Out::Project(p) => project(py, &p),
            Out::Deployment(d) => deployment(py, &d),
            Out::DeploymentChange(c) => make(
                py,
                "DeploymentChange",
                &[("deployment", deployment(py, &c.value)?), ("cache_pending", any(py, c.cache_pending)?)],
            ),
            Out::Promotion(c) => make(
                py,
                "Promotion",
                &[
                    ("deployment", summary(py, &c.value.deployment)?),
                    ("demoted", any(py, c.value.demoted.as_ref().map(|d| d.as_str()))?),
                    ("cache_pending", any(py, c.cache_pending)?),
                ],
            ),
            Out::Change(c) => make(py, "Change", &[("cache_pending", any(py, c.cache_pending)?)]),
            Out::Projects(p) => page(py, "ProjectPage", &p, |py, i| project(py, i)),
            Out::Deployments(p) => page(py, "DeploymentPage", &p, |py, i| deployment(py, i)),
            Out::History(p) => page(py, "HistoryPage", &p, |py, i| history_entry(py, i)),
            Out::Resolution(r) => make(
                py,
                "Resolution",
                &[
                    ("deployment", any(py, r.deployment.as_ref().map(|d| d.as_str()))?),
                    ("source", enum_member(py, "Source", r.source.as_str())?),
                ],
            ),
            Out::Health(h) => make(
                py,
                "Health",
                &[
                    ("store", component(py, &h.store)?),
                    ("cache", component(py, &h.cache)?),
                    ("breaker", any(py, breaker_name(h.breaker))?),
                    ("pending_cache_updates", any(py, h.pending_cache_updates)?),
                ],
            ),
            Out::Object(o) => Ok(o.into_bound(py)),
            Out::AsyncProbe(None) => Ok(py.None().into_bound(py)),
            Out::AsyncProbe(Some(handle)) => Ok(Bound::new(py, crate::client::AsyncCacheProbe { handle })?.into_any()),
            Out::Error(e) => Err(py_error(py, &e)),
        }
    }
}
