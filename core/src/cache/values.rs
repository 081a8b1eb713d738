//! The seed's cache values: encoding, and decoding that never trusts what
//! it reads (a value that does not parse is a miss).

use serde::{Deserialize, Serialize};

use crate::ids::{DeploymentId, OrgId, ProjectId};
use crate::model::{Environment, Status};

/// `project:{id}:exists`: `{"org_id": ..., "name": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProjectExists {
    pub org_id: OrgId,
    pub name: String,
}

/// `deployment:{id}:info`: `{"projectId", "environment", "status"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeploymentInfo {
    pub project_id: ProjectId,
    pub environment: Environment,
    pub status: Status,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> String {
    // These types hold only strings and enums, which always serialise.
    serde_json::to_string(value).unwrap_or_default()
}

pub(crate) fn decode_project_exists(raw: &str) -> Option<ProjectExists> {
    serde_json::from_str(raw).ok()
}

pub(crate) fn decode_info(raw: &str) -> Option<DeploymentInfo> {
    serde_json::from_str(raw).ok()
}

/// A plain id value (`deployment:{id}:project`, the pointers).
pub(crate) fn decode_project_id(raw: &str) -> Option<ProjectId> {
    ProjectId::new(raw).ok()
}

pub(crate) fn decode_deployment_id(raw: &str) -> Option<DeploymentId> {
    DeploymentId::new(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_values_are_misses() {
        assert!(decode_project_exists("{not json").is_none());
        assert!(decode_info("{\"projectId\": 42").is_none());
        assert!(decode_info("{\"projectId\":\"p\",\"environment\":\"prod\",\"status\":\"ready\"}").is_none());
        assert!(decode_project_id("bad id").is_none());
        assert!(decode_deployment_id("").is_none());
        let info = DeploymentInfo {
            project_id: ProjectId::new("abc").unwrap(),
            environment: Environment::Staging,
            status: Status::Ready,
        };
        let text = encode(&info);
        assert_eq!(text, r#"{"projectId":"abc","environment":"staging","status":"ready"}"#);
        assert_eq!(decode_info(&text), Some(info));
        assert_eq!(
            decode_project_exists(r#"{"org_id":"org_1","name":"Docs","extra":1}"#).map(|p| p.name),
            Some("Docs".to_string())
        );
    }
}
