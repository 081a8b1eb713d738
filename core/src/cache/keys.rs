//! The seed's cache keys and TTLs, behind an optional prefix.

use std::time::Duration;

use crate::ids::{DeploymentId, ProjectId};
use crate::model::Environment;

/// TTL of `project:{id}:exists`.
pub const PROJECT_EXISTS_TTL: Duration = Duration::from_secs(1800);
/// TTL of the environment pointers.
pub const POINTER_TTL: Duration = Duration::from_secs(3600);
/// TTL of `deployment:{id}:project`.
pub const OWNERSHIP_TTL: Duration = Duration::from_secs(3600);
/// TTL of `deployment:{id}:info`.
pub const INFO_TTL: Duration = Duration::from_secs(600);

/// Builds the full key names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheKeys {
    prefix: String,
}

impl CacheKeys {
    /// Keys behind `prefix` (empty: exactly the seed's names).
    pub fn new(prefix: impl Into<String>) -> CacheKeys {
        CacheKeys { prefix: prefix.into() }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A key as the seed names it, behind the prefix.
    pub fn raw(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// `project:{id}:exists`.
    pub fn project_exists(&self, project: &ProjectId) -> String {
        format!("{}project:{project}:exists", self.prefix)
    }

    /// `project:{id}:production_deployment` or `project:{id}:staging_deployment`.
    pub fn pointer(&self, project: &ProjectId, environment: Environment) -> String {
        format!("{}project:{project}:{}_deployment", self.prefix, environment.as_str())
    }

    /// `deployment:{id}:project`.
    pub fn ownership(&self, deployment: &DeploymentId) -> String {
        format!("{}deployment:{deployment}:project", self.prefix)
    }

    /// `deployment:{id}:info`.
    pub fn info(&self, deployment: &DeploymentId) -> String {
        format!("{}deployment:{deployment}:info", self.prefix)
    }

    /// The library's own key: the newest version of a project the cache has
    /// been told about.
    pub fn version(&self, project: &ProjectId) -> String {
        format!("{}project:{project}:lupa_version", self.prefix)
    }

    /// Both environment pointers of a project.
    pub fn pointers(&self, project: &ProjectId) -> [String; 2] {
        [self.pointer(project, Environment::Production), self.pointer(project, Environment::Staging)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_names() {
        let k = CacheKeys::default();
        let p = ProjectId::new("abc1234567").unwrap();
        let d = DeploymentId::new("def4567890").unwrap();
        assert_eq!(k.project_exists(&p), "project:abc1234567:exists");
        assert_eq!(k.pointer(&p, Environment::Production), "project:abc1234567:production_deployment");
        assert_eq!(k.pointer(&p, Environment::Staging), "project:abc1234567:staging_deployment");
        assert_eq!(k.ownership(&d), "deployment:def4567890:project");
        assert_eq!(k.info(&d), "deployment:def4567890:info");
        assert_eq!(CacheKeys::new("t1:").info(&d), "t1:deployment:def4567890:info");
    }
}
