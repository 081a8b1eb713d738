//! A pure, in-memory model of `semantics.md`, written from its text and
//! nothing else: projects, deployments (environment, status, created_at, the
//! promote-when-ready flag), per-project history with its sequence, the
//! rollback rule, resolution with its order of errors, and the error codes
//! with their HTTP statuses. No caches: the cache is never a source of
//! truth, so whatever is done to it changes no answer.
//!
//! Every operation answers as a conformance step expects it: `Ok(fields)`
//! with the fields the runner compares, or `Err(code)`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub type Outcome = Result<Value, &'static str>;

pub const PRODUCTION: &str = "production";
pub const STAGING: &str = "staging";
pub const PROCESSING: &str = "processing";
pub const READY: &str = "ready";
pub const FAILED: &str = "failed";

/// The HTTP status of each error code (semantics.md, Errors).
pub fn http_status(code: &str) -> u16 {
    match code {
        "INVALID_API_KEY" => 403,
        "PROJECT_NOT_FOUND" | "DEPLOYMENT_NOT_FOUND" => 404,
        "NO_PRODUCTION_DEPLOYMENT"
        | "NO_STAGING_DEPLOYMENT"
        | "DEPLOYMENT_NOT_IN_PROJECT"
        | "DEPLOYMENT_NOT_READY"
        | "INVALID_ARGUMENT" => 400,
        "PROJECT_EXISTS"
        | "DEPLOYMENT_EXISTS"
        | "INVALID_STATUS_TRANSITION"
        | "PRODUCTION_CONFLICT"
        | "NO_ROLLBACK_TARGET" => 409,
        "STORAGE_UNAVAILABLE" => 503,
        _ => 500,
    }
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub project: String,
    pub environment: &'static str,
    pub status: &'static str,
    /// Microseconds from an arbitrary origin: only the order matters.
    pub created_at: i64,
    pub promote_when_ready: bool,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: i64,
    pub deployment: String,
    pub from: &'static str,
    pub to: &'static str,
}

#[derive(Debug, Clone, Default)]
pub struct Project {
    /// Oldest first.
    pub history: Vec<Entry>,
}

/// The caller of a resolve.
#[derive(Debug, Clone)]
pub enum Caller {
    /// `live` or `test`.
    KeyEnvironment(&'static str),
    /// A whole key string.
    ApiKey(String),
    /// An internal token; none means production.
    Internal(Option<&'static str>),
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub projects: BTreeMap<String, Project>,
    /// Deployment ids are global: deletion frees an id for any project.
    pub deployments: BTreeMap<String, Deployment>,
}

/// Ids: non-empty, at most 64 characters of `[A-Za-z0-9_-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The key environment of a whole API key (semantics.md, API keys), or
/// `INVALID_API_KEY`.
pub fn parse_key(key: &str) -> Result<&'static str, &'static str> {
    let random_ok = |r: &str| !r.is_empty() && valid_id(&format!("x{r}")) && r.len() < 256;
    if key.len() > 256 {
        return Err("INVALID_API_KEY");
    }
    for kind in ["sk", "pk"] {
        for env in ["live", "test"] {
            if let Some(rest) = key.strip_prefix(&format!("lupa_{kind}_{env}_"))
                && random_ok(rest)
            {
                return Ok(if env == "live" { "live" } else { "test" });
            }
        }
    }
    if let Some(rest) = key.strip_prefix("lupa_sk_")
        && rest.len() >= 32
        && random_ok(rest)
    {
        return Ok("live");
    }
    Err("INVALID_API_KEY")
}

/// Argument validation comes before any lookup.
fn ids(ids: &[&str]) -> Result<(), &'static str> {
    if ids.iter().all(|id| valid_id(id)) { Ok(()) } else { Err("INVALID_ARGUMENT") }
}

impl Model {
    fn project(&self, p: &str) -> Result<(), &'static str> {
        if self.projects.contains_key(p) { Ok(()) } else { Err("PROJECT_NOT_FOUND") }
    }

    /// Project exists, deployment exists, deployment is this project's: the
    /// ownership checks of promote, set_environment and delete.
    fn owned(&self, p: &str, d: &str) -> Result<(), &'static str> {
        ids(&[p, d])?;
        self.project(p)?;
        let dep = self.deployments.get(d).ok_or("DEPLOYMENT_NOT_FOUND")?;
        if dep.project != p {
            return Err("DEPLOYMENT_NOT_IN_PROJECT");
        }
        Ok(())
    }

    fn production_of(&self, p: &str) -> Option<String> {
        self.deployments.iter().find(|(_, d)| d.project == p && d.environment == PRODUCTION).map(|(id, _)| id.clone())
    }

    fn record(&mut self, p: &str, d: &str, from: &'static str, to: &'static str) {
        let project = self.projects.get_mut(p).expect("a change of an existing project");
        let seq = project.history.last().map_or(1, |e| e.seq + 1);
        project.history.push(Entry { seq, deployment: d.to_owned(), from, to });
    }

    /// Promote's transaction: the current production becomes staging, the
    /// target production; both recorded, the target's flag cleared.
    fn promote_within(&mut self, p: &str, d: &str) {
        if let Some(current) = self.production_of(p) {
            self.deployments.get_mut(&current).unwrap().environment = STAGING;
            self.record(p, &current, PRODUCTION, STAGING);
        }
        let target = self.deployments.get_mut(d).unwrap();
        let from = target.environment;
        target.environment = PRODUCTION;
        target.promote_when_ready = false;
        self.record(p, d, from, PRODUCTION);
    }

    fn promotion(d: &str) -> Value {
        json!({ "deployment": { "id": d, "environment": PRODUCTION, "status": READY } })
    }

    pub fn create_project(&mut self, p: &str) -> Outcome {
        ids(&[p])?;
        if self.projects.contains_key(p) {
            return Err("PROJECT_EXISTS");
        }
        self.projects.insert(p.to_owned(), Project::default());
        Ok(json!({}))
    }

    pub fn delete_project(&mut self, p: &str) -> Outcome {
        ids(&[p])?;
        self.project(p)?;
        self.projects.remove(p);
        self.deployments.retain(|_, d| d.project != p);
        Ok(json!({}))
    }

    pub fn create_deployment(&mut self, p: &str, d: &str, production: bool, created_at: i64) -> Outcome {
        ids(&[p, d])?;
        self.project(p)?;
        if self.deployments.contains_key(d) {
            return Err("DEPLOYMENT_EXISTS");
        }
        self.deployments.insert(
            d.to_owned(),
            Deployment {
                project: p.to_owned(),
                environment: STAGING,
                status: PROCESSING,
                created_at,
                promote_when_ready: production,
            },
        );
        Ok(json!({ "environment": STAGING, "status": PROCESSING }))
    }

    /// `to` is `ready`, `failed`, or anything else (not a target).
    pub fn set_status(&mut self, d: &str, to: &'static str) -> Outcome {
        ids(&[d])?;
        if to != READY && to != FAILED {
            return Err("INVALID_ARGUMENT");
        }
        let dep = self.deployments.get_mut(d).ok_or("DEPLOYMENT_NOT_FOUND")?;
        match (dep.status, to) {
            (PROCESSING, READY) => {
                dep.status = READY;
                if dep.promote_when_ready {
                    let p = dep.project.clone();
                    self.promote_within(&p, d);
                }
            }
            (PROCESSING, FAILED) => {
                dep.status = FAILED;
                dep.promote_when_ready = false;
            }
            (from, to) if from == to => {}
            _ => return Err("INVALID_STATUS_TRANSITION"),
        }
        Ok(json!({ "status": to }))
    }

    pub fn promote(&mut self, p: &str, d: &str) -> Outcome {
        self.owned(p, d)?;
        let dep = &self.deployments[d];
        if dep.status != READY {
            return Err("DEPLOYMENT_NOT_READY");
        }
        if dep.environment != PRODUCTION {
            self.promote_within(p, d);
        }
        Ok(Model::promotion(d))
    }

    pub fn set_environment(&mut self, p: &str, d: &str, to: &'static str) -> Outcome {
        self.owned(p, d)?;
        let dep = &self.deployments[d];
        let from = dep.environment;
        if to == PRODUCTION {
            if dep.status != READY {
                return Err("DEPLOYMENT_NOT_READY");
            }
            if from != PRODUCTION {
                if self.production_of(p).is_some() {
                    return Err("PRODUCTION_CONFLICT");
                }
                let dep = self.deployments.get_mut(d).unwrap();
                dep.environment = PRODUCTION;
                dep.promote_when_ready = false;
                self.record(p, d, from, PRODUCTION);
            }
        } else {
            let dep = self.deployments.get_mut(d).unwrap();
            dep.environment = STAGING;
            dep.promote_when_ready = false;
            if from != STAGING {
                self.record(p, d, from, STAGING);
            }
        }
        Ok(json!({ "environment": to }))
    }

    pub fn delete_deployment(&mut self, p: &str, d: &str) -> Outcome {
        self.owned(p, d)?;
        self.deployments.remove(d);
        Ok(json!({}))
    }

    /// The deployment that was production immediately before the current
    /// one (with no production now: the last one that was), if it still
    /// exists, is this project's and is ready.
    pub fn rollback(&mut self, p: &str) -> Outcome {
        ids(&[p])?;
        self.project(p)?;
        let current = self.production_of(p);
        let target = self.projects[p]
            .history
            .iter()
            .rev()
            .filter(|e| e.to == PRODUCTION)
            .map(|e| e.deployment.clone())
            .find(|d| Some(d) != current.as_ref())
            .ok_or("NO_ROLLBACK_TARGET")?;
        match self.deployments.get(&target) {
            Some(dep) if dep.project == p && dep.status == READY => {}
            _ => return Err("NO_ROLLBACK_TARGET"),
        }
        self.promote_within(p, &target);
        Ok(Model::promotion(&target))
    }

    /// Newest first.
    pub fn history(&self, p: &str) -> Outcome {
        ids(&[p])?;
        self.project(p)?;
        let entries: Vec<Value> = self.projects[p]
            .history
            .iter()
            .rev()
            .map(|e| json!({ "seq": e.seq, "deployment": e.deployment, "from": e.from, "to": e.to }))
            .collect();
        Ok(json!({ "entries": entries }))
    }

    pub fn get_deployment(&self, d: &str) -> Outcome {
        ids(&[d])?;
        let dep = self.deployments.get(d).ok_or("DEPLOYMENT_NOT_FOUND")?;
        Ok(json!({ "project": dep.project, "environment": dep.environment, "status": dep.status }))
    }

    /// Newest `created_at` first, ties by the greater id.
    fn ordered(&self, p: &str) -> Vec<(&String, &Deployment)> {
        let mut v: Vec<_> = self.deployments.iter().filter(|(_, d)| d.project == p).collect();
        v.sort_by(|a, b| (b.1.created_at, b.0.as_bytes()).cmp(&(a.1.created_at, a.0.as_bytes())));
        v
    }

    pub fn list_deployments(&self, p: &str) -> Outcome {
        ids(&[p])?;
        self.project(p)?;
        let ids: Vec<&String> = self.ordered(p).into_iter().map(|(id, _)| id).collect();
        Ok(json!({ "ids": ids }))
    }

    /// semantics.md, Resolution, steps 0 to 4.
    pub fn resolve(&self, p: &str, header: Option<&str>, requires: bool, caller: &Caller) -> Outcome {
        // 0. A whole key is parsed before anything else.
        let target = match caller {
            Caller::ApiKey(key) => key_target(parse_key(key)?),
            Caller::KeyEnvironment(env) => key_target(env),
            Caller::Internal(t) => t.unwrap_or(PRODUCTION),
        };
        // An empty header is none; a malformed one is a bad argument.
        let header = header.filter(|h| !h.is_empty());
        if !valid_id(p) || header.is_some_and(|h| !valid_id(h)) {
            return Err("INVALID_ARGUMENT");
        }
        // 1.
        self.project(p)?;
        // 2.
        if let Some(d) = header {
            let dep = self.deployments.get(d).filter(|dep| dep.project == p).ok_or("DEPLOYMENT_NOT_FOUND")?;
            if requires && dep.status != READY {
                return Err("DEPLOYMENT_NOT_READY");
            }
            return Ok(json!({ "deployment": d }));
        }
        // 3.
        if !requires {
            return Ok(json!({ "deployment": null }));
        }
        // 4.
        match self.ordered(p).into_iter().find(|(_, d)| d.environment == target && d.status == READY) {
            Some((id, _)) => Ok(json!({ "deployment": id })),
            None if target == PRODUCTION => Err("NO_PRODUCTION_DEPLOYMENT"),
            None => Err("NO_STAGING_DEPLOYMENT"),
        }
    }
}

fn key_target(env: &str) -> &'static str {
    if env == "live" { PRODUCTION } else { STAGING }
}
