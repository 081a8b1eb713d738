//! `lupa-core` for Node.js: the Lupa deployment library as a native addon.
//!
//! Thin by design: every rule (ids, API keys, resolution, the HTTP answer of
//! an error) lives in the `lupa-core` crate; this crate translates JavaScript
//! values into core calls and core errors into JavaScript errors.
//!
//! Every operation runs on one tokio runtime owned by the addon (never on
//! the JavaScript thread) and settles a Promise through a Node-API deferred.
//! The runtime lives as long as the process: it is never shut down when a
//! worker thread's environment goes away, so handles in other threads keep
//! working and no runtime teardown races a worker's exit.

#![deny(clippy::all)]

mod args;
mod errors;
mod handle;
mod http;
mod runtime;
mod types;

use napi::bindgen_prelude::*;
use napi_derive::napi;

pub use handle::{CacheProbe, Lupa};

/// What an API key string says about itself (its format only).
#[napi(object)]
pub struct ApiKeyInfo {
    /// `"sk"` (secret) or `"pk"` (public, read-only).
    #[napi(ts_type = "'sk' | 'pk'")]
    pub key_type: String,
    /// `"live"` (resolves production) or `"test"` (resolves staging).
    #[napi(ts_type = "'live' | 'test'")]
    pub environment: String,
}

/// Parses an API key string (`lupa_{sk|pk}_{live|test}_{random}` or the
/// legacy `lupa_sk_{random}`). Throws an Error with `code`
/// `INVALID_API_KEY` (403) for anything else, and a TypeError for a value
/// that is not a string.
#[napi(ts_args_type = "key: string")]
pub fn parse_api_key(env: &Env, key: Unknown) -> Result<ApiKeyInfo> {
    let key = args::string_arg(key, "key").map_err(|m| errors::type_error(env, &m))?;
    let info = lupa_core::parse_api_key(&key).map_err(|e| errors::lupa_error(env, &e))?;
    Ok(ApiKeyInfo { key_type: info.key_type.as_str().into(), environment: info.environment.as_str().into() })
}

/// The project id in a `Host` header under `rootDomain` (subdomain routing:
/// `abc1234567.lupa.build` under `lupa.build`, or
/// `abc1234567.localhost:3000` under `localhost`). Throws an Error with
/// `code` `INVALID_ARGUMENT` when the host has no project subdomain.
#[napi(ts_args_type = "host: string, rootDomain: string")]
pub fn project_from_host(env: &Env, host: Unknown, root_domain: Unknown) -> Result<String> {
    let host = args::string_arg(host, "host").map_err(|m| errors::type_error(env, &m))?;
    let root = args::string_arg(root_domain, "rootDomain").map_err(|m| errors::type_error(env, &m))?;
    lupa_core::project_from_host(&host, &root).map(|p| p.to_string()).map_err(|e| errors::lupa_error(env, &e))
}

/// One stable error code and the HTTP status that goes with it.
#[napi(object)]
pub struct ErrorCodeInfo {
    /// The stable code, for example `"NO_PRODUCTION_DEPLOYMENT"`.
    pub code: String,
    /// The HTTP status a server answers with.
    pub http_status: u16,
}

/// Every stable error code of the library, in the order of its
/// specification.
#[napi]
pub fn error_codes() -> Vec<ErrorCodeInfo> {
    lupa_core::ErrorCode::ALL
        .iter()
        .map(|c| ErrorCodeInfo { code: c.as_str().into(), http_status: c.http_status() })
        .collect()
}
