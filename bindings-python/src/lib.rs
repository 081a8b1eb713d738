//! `lupa_core._native`: the Python binding of lupa-core. The public Python
//! API is the `lupa_core` package, which re-exports these classes beside
//! its exceptions, enums and result types.
//!
//! Every rule lives in the core; this crate translates types and errors,
//! releases the GIL around blocking calls, runs asyncio calls on a tokio
//! runtime, and keeps handles usable across `fork()`.

mod client;
mod convert;
mod handle;
mod logging;
mod ops;
mod runtime;

use lupa_core::{Error, ErrorCode};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::convert::{IntoPyResult, Text};

/// Parses an API key string into its type and environment.
#[pyfunction]
fn parse_api_key<'py>(py: Python<'py>, key: Text) -> PyResult<Bound<'py, PyAny>> {
    let info = lupa_core::parse_api_key(&key.0).py(py)?;
    convert::api_key_info(py, &info)
}

/// The API key of an `Authorization` header value (`Bearer <key>`).
#[pyfunction]
fn api_key_from_authorization(py: Python<'_>, header: Option<Text>) -> PyResult<String> {
    let header = Text::opt(header);
    lupa_core::api_key_from_authorization(header.as_deref()).map(str::to_owned).py(py)
}

/// The project id of a `Host` header under `root_domain`.
#[pyfunction]
fn project_from_host(py: Python<'_>, host: Text, root_domain: Text) -> PyResult<String> {
    lupa_core::project_from_host(&host.0, &root_domain.0).map(|p| p.to_string()).py(py)
}

/// Every stable error code with its HTTP status, in the core's order.
#[pyfunction]
fn error_codes() -> Vec<(&'static str, u16)> {
    ErrorCode::ALL.iter().map(|c| (c.as_str(), c.http_status())).collect()
}

fn code(name: &str) -> PyResult<ErrorCode> {
    ErrorCode::from_name(name).ok_or_else(|| PyValueError::new_err("not a Lupa error code"))
}

/// The HTTP status of an error code.
#[pyfunction]
fn error_http_status(name: Text) -> PyResult<u16> {
    Ok(code(&name.0)?.http_status())
}

/// The JSON body an HTTP server answers an error with.
#[pyfunction]
fn error_http_body(name: Text, message: Text) -> PyResult<String> {
    Ok(Error::new(code(&name.0)?, message.0).http_body())
}

/// The `atexit` hook: lets the runtime's threads finish handing results to
/// Python, and keeps them out while the interpreter finalizes.
#[pyfunction]
fn _shutdown(py: Python<'_>) {
    py.detach(|| runtime::close_gate(std::time::Duration::from_secs(5)));
}

/// The `os.register_at_fork(after_in_child=...)` hook.
#[pyfunction]
fn _after_fork_in_child() {
    runtime::reset_gate_after_fork();
}

// The module needs the GIL: not for the free-threaded build.
#[pymodule(gil_used = true)]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install();
    let shutdown = wrap_pyfunction!(_shutdown, m)?;
    m.py().import("atexit")?.call_method1("register", (shutdown,))?;
    let after_fork = wrap_pyfunction!(_after_fork_in_child, m)?;
    let kwargs = pyo3::types::PyDict::new(m.py());
    kwargs.set_item("after_in_child", after_fork)?;
    m.py().import("os")?.call_method("register_at_fork", (), Some(&kwargs))?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_PAGE", lupa_core::MAX_PAGE)?;
    m.add("MAX_ID_LEN", lupa_core::MAX_ID_LEN)?;
    m.add_class::<client::PyLupa>()?;
    m.add_class::<client::PyAsyncLupa>()?;
    m.add_class::<client::CacheProbe>()?;
    m.add_class::<client::AsyncCacheProbe>()?;
    m.add_function(wrap_pyfunction!(parse_api_key, m)?)?;
    m.add_function(wrap_pyfunction!(api_key_from_authorization, m)?)?;
    m.add_function(wrap_pyfunction!(project_from_host, m)?)?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(error_http_status, m)?)?;
    m.add_function(wrap_pyfunction!(error_http_body, m)?)?;
    Ok(())
}
