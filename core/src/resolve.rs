//! The middleware's question, as types: who is asking, for which project,
//! with which `Deployment-Id`; and the HTTP answer for an error.

use serde::Serialize;

use crate::apikey::{KeyEnvironment, api_key_from_authorization, parse_api_key};
use crate::error::{Error, Result};
use crate::ids::{DeploymentId, ProjectId};
use crate::model::Environment;

/// Who is asking: this decides the target environment when no
/// `Deployment-Id` is given.
#[derive(Clone, PartialEq, Eq)]
pub enum Caller {
    /// An API key whose environment the host already knows.
    KeyEnvironment(KeyEnvironment),
    /// A whole API key string, parsed first (a malformed one is
    /// `INVALID_API_KEY` before anything else).
    ApiKey(String),
    /// An internal token with an explicit target (none means production).
    Internal(Option<Environment>),
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::KeyEnvironment(e) => f.debug_tuple("KeyEnvironment").field(e).finish(),
            Caller::ApiKey(_) => f.write_str("ApiKey(***)"),
            Caller::Internal(t) => f.debug_tuple("Internal").field(t).finish(),
        }
    }
}

impl Caller {
    /// Builds a caller from the loose parts a binding receives: exactly one
    /// of an API key environment name, a whole key, or `internal` (with an
    /// optional target environment name).
    pub fn from_parts(
        api_key_environment: Option<&str>,
        api_key: Option<&str>,
        internal: bool,
        target_environment: Option<&str>,
    ) -> Result<Caller> {
        if target_environment.is_some() && !internal {
            return Err(Error::invalid_argument("target_environment is only for internal callers"));
        }
        match (api_key_environment, api_key, internal) {
            (Some(env), None, false) => Ok(Caller::KeyEnvironment(env.parse()?)),
            (None, Some(key), false) => Ok(Caller::ApiKey(key.to_owned())),
            (None, None, true) => Ok(Caller::Internal(target_environment.map(str::parse).transpose()?)),
            (None, None, false) => {
                Err(Error::invalid_argument("a caller is required: an API key environment, an API key, or internal"))
            }
            _ => {
                Err(Error::invalid_argument("give exactly one caller: an API key environment, an API key, or internal"))
            }
        }
    }

    /// The environment automatic resolution targets.
    pub fn target(&self) -> Result<Environment> {
        match self {
            Caller::KeyEnvironment(e) => Ok(e.target()),
            Caller::ApiKey(key) => Ok(parse_api_key(key)?.environment.target()),
            Caller::Internal(t) => Ok(t.unwrap_or(Environment::Production)),
        }
    }
}

/// One resolution request, as the middleware has it: strings straight from
/// the request, validated by [`crate::Lupa::resolve`] in the order
/// `semantics.md` fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRequest {
    /// The project id.
    pub project: String,
    /// The `Deployment-Id` header; none or empty means none.
    pub deployment_id: Option<String>,
    /// Whether the route needs a deployment (search does; some do not).
    pub requires_deployment: bool,
    /// Who is asking.
    pub caller: Caller,
}

impl ResolveRequest {
    /// A request for `project` by `caller` on a route that requires a
    /// deployment, without a `Deployment-Id`.
    pub fn new(project: impl Into<String>, caller: Caller) -> ResolveRequest {
        ResolveRequest { project: project.into(), deployment_id: None, requires_deployment: true, caller }
    }

    /// With a `Deployment-Id` header value.
    pub fn deployment_id(mut self, id: impl Into<String>) -> ResolveRequest {
        self.deployment_id = Some(id.into());
        self
    }

    /// Whether the route requires a deployment.
    pub fn requires_deployment(mut self, requires: bool) -> ResolveRequest {
        self.requires_deployment = requires;
        self
    }

    /// A request from HTTP headers: `Authorization: Bearer <key>` and
    /// `Deployment-Id`.
    pub fn from_headers(
        project: impl Into<String>,
        authorization: Option<&str>,
        deployment_id: Option<&str>,
        requires_deployment: bool,
    ) -> Result<ResolveRequest> {
        let key = api_key_from_authorization(authorization)?;
        Ok(ResolveRequest {
            project: project.into(),
            deployment_id: deployment_id.map(str::to_owned),
            requires_deployment,
            caller: Caller::ApiKey(key.to_owned()),
        })
    }

    /// Checks everything that needs no lookup: the key first (a malformed
    /// key wins over any other error), then the ids.
    pub(crate) fn validate(&self) -> Result<ValidRequest> {
        let target = self.caller.target()?;
        let project = ProjectId::new(self.project.as_str())?;
        let deployment = match self.deployment_id.as_deref() {
            None | Some("") => None,
            Some(id) => Some(DeploymentId::new(id)?),
        };
        Ok(ValidRequest { project, deployment, requires_deployment: self.requires_deployment, target })
    }
}

pub(crate) struct ValidRequest {
    pub project: ProjectId,
    pub deployment: Option<DeploymentId>,
    pub requires_deployment: bool,
    pub target: Environment,
}

/// Which tier answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// This process's memory (the in-process tier).
    Local,
    /// The shared cache.
    Cache,
    /// The store.
    Store,
}

impl Source {
    /// `"local"`, `"cache"` or `"store"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Cache => "cache",
            Source::Store => "store",
        }
    }
}

/// A successful resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolution {
    /// The deployment to query; none for a route that requires none and
    /// named none.
    pub deployment: Option<DeploymentId>,
    /// Which tier answered.
    pub source: Source,
}

/// The project a request is for, from its `Host` header under `root_domain`
/// (the seed's subdomain routing: `abc1234567.lupa.build` with root
/// `lupa.build`, or `abc1234567.localhost:3000` with root `localhost`). A
/// port is ignored; the root domain matches in any case.
pub fn project_from_host(host: &str, root_domain: &str) -> Result<ProjectId> {
    let no_subdomain = || Error::invalid_argument("the Host header has no project subdomain");
    let host = match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let root = root_domain.trim_start_matches('.');
    if root.is_empty() || host.len() <= root.len() + 1 {
        return Err(no_subdomain());
    }
    // The split falls inside a character when the host is not ASCII where
    // the root would start: then it does not end with the root.
    let (label, suffix) = host.split_at_checked(host.len() - root.len()).ok_or_else(no_subdomain)?;
    if !suffix.eq_ignore_ascii_case(root) {
        return Err(no_subdomain());
    }
    let label = label.strip_suffix('.').ok_or_else(no_subdomain)?;
    if label.contains('.') {
        return Err(no_subdomain());
    }
    ProjectId::new(label)
}

impl Error {
    /// The JSON body an HTTP server answers with: `{"error": {"code", "message"}}`.
    pub fn http_body(&self) -> String {
        serde_json::json!({ "error": { "code": self.code().as_str(), "message": self.message() } }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn a_malformed_key_wins_over_a_malformed_id() {
        let r = ResolveRequest::new("bad id", Caller::ApiKey("nonsense".into()));
        assert_eq!(r.validate().err().unwrap().code(), ErrorCode::InvalidApiKey);
        let r = ResolveRequest::new("bad id", Caller::KeyEnvironment(KeyEnvironment::Live));
        assert_eq!(r.validate().err().unwrap().code(), ErrorCode::InvalidArgument);
        let r = ResolveRequest::new("p1", Caller::Internal(None)).deployment_id("");
        assert!(r.validate().unwrap().deployment.is_none(), "an empty header is none");
    }

    #[test]
    fn callers_from_parts() {
        assert_eq!(
            Caller::from_parts(Some("live"), None, false, None).unwrap(),
            Caller::KeyEnvironment(KeyEnvironment::Live)
        );
        assert_eq!(
            Caller::from_parts(None, None, true, Some("staging")).unwrap(),
            Caller::Internal(Some(Environment::Staging))
        );
        for (env, key, internal, target) in [
            (None, None, false, None),
            (Some("prod"), None, false, None),
            (Some("live"), Some("k"), false, None),
            (None, None, true, Some("prod")),
            (Some("live"), None, false, Some("staging")),
        ] {
            let e = Caller::from_parts(env, key, internal, target).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidArgument);
        }
        assert!(!format!("{:?}", Caller::ApiKey("lupa_sk_live_SECRET".into())).contains("SECRET"));
    }

    #[test]
    fn subdomains() {
        let p = |h: &str, r: &str| project_from_host(h, r).map(|p| p.to_string()).map_err(|e| e.code());
        assert_eq!(p("abc1234567.lupa.build", "lupa.build"), Ok("abc1234567".into()));
        assert_eq!(p("abc1234567.LUPA.build:443", "lupa.build"), Ok("abc1234567".into()));
        assert_eq!(p("abc1234567.localhost:3000", "localhost"), Ok("abc1234567".into()));
        assert_eq!(p("abc1234567.lupa.build.", "lupa.build"), Ok("abc1234567".into()));
        for (h, r) in [
            ("lupa.build", "lupa.build"),
            ("a.b.lupa.build", "lupa.build"),
            ("abc.other.build", "lupa.build"),
            ("abclupa.build", "lupa.build"),
            ("localhost:3000", "localhost"),
            ("bad id.lupa.build", "lupa.build"),
            ("x.lupa.build", ""),
        ] {
            assert_eq!(p(h, r), Err(ErrorCode::InvalidArgument), "{h} under {r}");
        }
    }

    #[test]
    fn http_body() {
        let e = Error::project_not_found();
        assert_eq!(e.http_body(), r#"{"error":{"code":"PROJECT_NOT_FOUND","message":"Project not found"}}"#);
    }
}
