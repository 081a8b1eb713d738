//! The middleware helper: an HTTP request's headers in, the deployment id
//! or the HTTP answer for its error out.

use napi::bindgen_prelude::*;
use napi::{JsValue, ValueType};
use napi_derive::napi;
use serde_json::Value;

use lupa_core::{ResolveRequest, api_key_from_authorization, parse_api_key, project_from_host};

use crate::args::{self, Fields, TypeResult, json_type};
use crate::types::nullable;

/// Options of `resolveRequest`: `projectId`, or `rootDomain` to take the
/// project from the `Host` header's subdomain (`localhost` works too).
#[napi(object)]
#[allow(dead_code)]
pub struct HttpRequestOptions {
    /// The project, when the route names it.
    pub project_id: Option<String>,
    /// Subdomain routing: the project is the label before this domain in the
    /// `Host` header (`abc1234567.lupa.build`, `abc1234567.localhost:3000`).
    pub root_domain: Option<String>,
    /// The request headers: a `Headers` object (fetch, Next.js), or a plain
    /// object as Node's `IncomingMessage.headers` has them. `authorization`,
    /// `deployment-id` and (with `rootDomain`) `host` are read.
    #[napi(ts_type = "Headers | Record<string, string | string[] | undefined>")]
    pub headers: String,
    /// Whether the route needs a deployment (default true).
    pub requires_deployment: Option<bool>,
}

/// A request that may go on, to this deployment.
#[napi(object)]
pub struct HttpResolution {
    #[napi(ts_type = "true")]
    pub ok: bool,
    pub project_id: String,
    /// Null for a route that requires no deployment and named none.
    pub deployment_id: Either<String, Null>,
}

/// A request to answer with `status` and the JSON `body`
/// (`{"error": {"code", "message"}}`).
#[napi(object)]
pub struct HttpRejection {
    #[napi(ts_type = "false")]
    pub ok: bool,
    pub status: u16,
    /// The JSON text to answer with.
    pub body: String,
    /// The stable code, for logs.
    pub code: String,
    pub message: String,
}

pub enum ProjectFrom {
    Id(String),
    Host { host: Option<String>, root_domain: String },
}

pub struct Parsed {
    project: ProjectFrom,
    authorization: Option<String>,
    deployment_id: Option<String>,
    requires_deployment: bool,
}

/// A header value: a string, or (Node's repeated headers) a list joined
/// with ", ".
fn header_text(v: Option<Value>, name: &str) -> TypeResult<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Array(items)) => {
            let parts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            parts.map(|p| Some(p.join(", "))).ok_or_else(|| format!("headers[{name:?}] must hold strings"))
        }
        Some(other) => Err(format!("headers[{name:?}] must be a string, not {}", json_type(&other))),
    }
}

/// Reads headers from a `Headers`-like object (one with a `get` method) or
/// from a plain object (names matched in any case).
fn read_headers(headers: Unknown, names: &[&str]) -> TypeResult<Vec<Option<String>>> {
    let err = |e: Error| format!("headers: {}", e.reason);
    if headers.get_type().map_err(err)? != ValueType::Object {
        return Err("headers must be a Headers object or a plain object".into());
    }
    let obj = unsafe { headers.cast::<Object>() }.map_err(err)?;
    let get: Unknown = obj.get_named_property("get").map_err(err)?;
    if get.get_type().map_err(err)? == ValueType::Function {
        let get = unsafe { get.cast::<Function<String, Unknown>>() }.map_err(err)?;
        return names
            .iter()
            .map(|name| {
                let v = get.apply(obj, (*name).to_owned()).map_err(err)?;
                header_text(args::to_json(&v, "headers.get()")?, name)
            })
            .collect();
    }
    let map = match args::to_json(&headers, "headers")? {
        Some(Value::Object(map)) => map,
        _ => return Err("headers must be a Headers object or a plain object".into()),
    };
    names
        .iter()
        .map(|name| {
            let found = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
            header_text(found, name)
        })
        .collect()
}

/// Checks the options' types and reads the headers (on the JavaScript
/// thread).
pub fn parse(request: Unknown) -> TypeResult<Parsed> {
    let err = |e: Error| format!("request: {}", e.reason);
    if request.get_type().map_err(err)? != ValueType::Object || request.is_array().map_err(err)? {
        return Err("request must be an object".into());
    }
    let obj = unsafe { request.cast::<Object>() }.map_err(err)?;
    // The headers are read as they are (a Headers object has no own
    // properties to convert); every other field as plain data.
    let mut map = serde_json::Map::new();
    let mut headers = None;
    for key in Object::keys(&obj).map_err(err)? {
        let v: Unknown = obj.get_named_property(&key).map_err(err)?;
        if key == "headers" {
            headers = Some(v);
        } else if let Some(json) = args::to_json(&v, &format!("request.{key}"))? {
            map.insert(key, json);
        }
    }
    let mut o = Fields::new("request", map);
    let project_id = o.opt_str("projectId")?;
    let root_domain = o.opt_str("rootDomain")?;
    let requires_deployment = o.opt_bool("requiresDeployment")?.unwrap_or(true);
    o.finish()?;
    let headers = headers.ok_or("request.headers is required")?;
    let [authorization, deployment_id, host]: [Option<String>; 3] =
        read_headers(headers, &["authorization", "deployment-id", "host"])?
            .try_into()
            .map_err(|_| "headers could not be read".to_string())?;
    let project = match (project_id, root_domain) {
        (Some(id), None) => ProjectFrom::Id(id),
        (None, Some(root_domain)) => ProjectFrom::Host { host, root_domain },
        _ => return Err("give exactly one of request.projectId and request.rootDomain".into()),
    };
    Ok(Parsed { project, authorization, deployment_id, requires_deployment })
}

pub type Outcome = std::result::Result<(String, Option<String>), lupa_core::Error>;

/// Resolves the request; every failure becomes its HTTP answer.
pub async fn resolve(lupa: lupa_core::Result<lupa_core::Lupa>, p: Parsed) -> Outcome {
    let project = match p.project {
        ProjectFrom::Id(id) => id,
        ProjectFrom::Host { host, root_domain } => match project_from_host(host.as_deref().unwrap_or(""), &root_domain)
        {
            Ok(id) => id.to_string(),
            Err(e) => {
                // A malformed key wins over any other error (semantics.md),
                // a host without a project subdomain included.
                api_key_from_authorization(p.authorization.as_deref()).and_then(parse_api_key)?;
                return Err(e);
            }
        },
    };
    let request = ResolveRequest::from_headers(
        project.clone(),
        p.authorization.as_deref(),
        p.deployment_id.as_deref(),
        p.requires_deployment,
    )?;
    let resolution = lupa?.resolve(&request).await?;
    Ok((project, resolution.deployment.map(|d| d.to_string())))
}

pub fn to_js(outcome: Outcome) -> Either<HttpResolution, HttpRejection> {
    match outcome {
        Ok((project_id, deployment)) => {
            Either::A(HttpResolution { ok: true, project_id, deployment_id: nullable(deployment) })
        }
        Err(e) => Either::B(HttpRejection {
            ok: false,
            status: e.http_status(),
            body: e.http_body(),
            code: e.code().as_str().into(),
            message: e.message().into(),
        }),
    }
}
