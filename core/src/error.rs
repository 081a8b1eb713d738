//! The one error type of the library: a stable code, a message and an HTTP
//! status, exactly as `semantics.md` lists them.

use std::fmt;

/// The stable error codes. Their names never change; every binding carries
/// them across its boundary unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The API key string does not have a known format (403).
    InvalidApiKey,
    /// The project does not exist (404).
    ProjectNotFound,
    /// The deployment does not exist, or belongs to another project when
    /// resolving (404).
    DeploymentNotFound,
    /// A `live` caller and no ready production deployment (400).
    NoProductionDeployment,
    /// A `test` caller and no ready staging deployment (400).
    NoStagingDeployment,
    /// A change names a deployment of another project (400).
    DeploymentNotInProject,
    /// The deployment must be `ready` for this (400).
    DeploymentNotReady,
    /// An argument is malformed (400).
    InvalidArgument,
    /// The project id is taken (409).
    ProjectExists,
    /// The deployment id is taken (409).
    DeploymentExists,
    /// The status change is not allowed (409).
    InvalidStatusTransition,
    /// Another deployment is production already (409).
    ProductionConflict,
    /// Rollback has no previous production to go back to (409).
    NoRollbackTarget,
    /// The store could not be reached in time (503).
    StorageUnavailable,
    /// A bug or a caught panic (500).
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of `semantics.md`.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::InvalidApiKey,
        ErrorCode::ProjectNotFound,
        ErrorCode::DeploymentNotFound,
        ErrorCode::NoProductionDeployment,
        ErrorCode::NoStagingDeployment,
        ErrorCode::DeploymentNotInProject,
        ErrorCode::DeploymentNotReady,
        ErrorCode::InvalidArgument,
        ErrorCode::ProjectExists,
        ErrorCode::DeploymentExists,
        ErrorCode::InvalidStatusTransition,
        ErrorCode::ProductionConflict,
        ErrorCode::NoRollbackTarget,
        ErrorCode::StorageUnavailable,
        ErrorCode::Internal,
    ];

    /// The stable name, for example `"NO_PRODUCTION_DEPLOYMENT"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidApiKey => "INVALID_API_KEY",
            ErrorCode::ProjectNotFound => "PROJECT_NOT_FOUND",
            ErrorCode::DeploymentNotFound => "DEPLOYMENT_NOT_FOUND",
            ErrorCode::NoProductionDeployment => "NO_PRODUCTION_DEPLOYMENT",
            ErrorCode::NoStagingDeployment => "NO_STAGING_DEPLOYMENT",
            ErrorCode::DeploymentNotInProject => "DEPLOYMENT_NOT_IN_PROJECT",
            ErrorCode::DeploymentNotReady => "DEPLOYMENT_NOT_READY",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::ProjectExists => "PROJECT_EXISTS",
            ErrorCode::DeploymentExists => "DEPLOYMENT_EXISTS",
            ErrorCode::InvalidStatusTransition => "INVALID_STATUS_TRANSITION",
            ErrorCode::ProductionConflict => "PRODUCTION_CONFLICT",
            ErrorCode::NoRollbackTarget => "NO_ROLLBACK_TARGET",
            ErrorCode::StorageUnavailable => "STORAGE_UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The HTTP status a server answers with for this code.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidApiKey => 403,
            ErrorCode::ProjectNotFound | ErrorCode::DeploymentNotFound => 404,
            ErrorCode::NoProductionDeployment
            | ErrorCode::NoStagingDeployment
            | ErrorCode::DeploymentNotInProject
            | ErrorCode::DeploymentNotReady
            | ErrorCode::InvalidArgument => 400,
            ErrorCode::ProjectExists
            | ErrorCode::DeploymentExists
            | ErrorCode::InvalidStatusTransition
            | ErrorCode::ProductionConflict
            | ErrorCode::NoRollbackTarget => 409,
            ErrorCode::StorageUnavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// Looks a code up by its stable name.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of any Lupa operation.
///
/// The message never contains a secret (a password or an API key): every
/// place that builds one from outside text redacts it first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    code: ErrorCode,
    message: String,
}

/// The result type of every fallible Lupa call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with a message of the caller's.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status of the code.
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidArgument, message)
    }

    pub(crate) fn invalid_api_key() -> Error {
        Error::new(ErrorCode::InvalidApiKey, "API Key is not valid")
    }

    pub(crate) fn project_not_found() -> Error {
        Error::new(ErrorCode::ProjectNotFound, "Project not found")
    }

    pub(crate) fn deployment_not_found() -> Error {
        Error::new(ErrorCode::DeploymentNotFound, "Deployment not found or does not belong to this project")
    }

    pub(crate) fn deployment_not_in_project() -> Error {
        Error::new(ErrorCode::DeploymentNotInProject, "Deployment does not belong to this project")
    }

    pub(crate) fn not_ready_to_promote() -> Error {
        Error::new(ErrorCode::DeploymentNotReady, "Deployment must be ready to promote to production")
    }

    pub(crate) fn not_ready_to_query() -> Error {
        Error::new(ErrorCode::DeploymentNotReady, "Deployment is not ready to be queried")
    }

    /// The error resolution gives for a code about the data (what the
    /// in-process tier keeps instead of the whole error).
    pub(crate) fn of_resolution(code: ErrorCode) -> Error {
        match code {
            ErrorCode::ProjectNotFound => Error::project_not_found(),
            ErrorCode::DeploymentNotFound => Error::deployment_not_found(),
            ErrorCode::DeploymentNotReady => Error::not_ready_to_query(),
            ErrorCode::NoProductionDeployment => Error::new(
                ErrorCode::NoProductionDeployment,
                "No production deployment found. Please specify Deployment-Id header.",
            ),
            ErrorCode::NoStagingDeployment => Error::new(
                ErrorCode::NoStagingDeployment,
                "No staging deployment found. Please specify Deployment-Id header.",
            ),
            other => Error::new(other, other.as_str()),
        }
    }

    pub(crate) fn project_exists() -> Error {
        Error::new(ErrorCode::ProjectExists, "Project already exists")
    }

    pub(crate) fn deployment_exists() -> Error {
        Error::new(ErrorCode::DeploymentExists, "Deployment already exists")
    }

    pub(crate) fn no_rollback_target() -> Error {
        Error::new(ErrorCode::NoRollbackTarget, "No previous production deployment to roll back to")
    }

    /// The store failed or did not answer in time. `detail` goes to the log
    /// only, since driver errors can quote connection strings.
    pub(crate) fn storage_unavailable(detail: &dyn fmt::Display) -> Error {
        tracing::warn!(target: "lupa_core::store", error = %crate::redact::redact_text(&detail.to_string()), "storage unavailable");
        Error::new(ErrorCode::StorageUnavailable, "Storage is unavailable")
    }

    pub(crate) fn internal(detail: &dyn fmt::Display) -> Error {
        tracing::error!(target: "lupa_core", error = %crate::redact::redact_text(&detail.to_string()), "internal error");
        Error::new(ErrorCode::Internal, "Internal error; details are in the logs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_statuses_match_the_table() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::InvalidApiKey.http_status(), 403);
        assert_eq!(ErrorCode::ProjectNotFound.http_status(), 404);
        assert_eq!(ErrorCode::NoStagingDeployment.http_status(), 400);
        assert_eq!(ErrorCode::ProductionConflict.http_status(), 409);
        assert_eq!(ErrorCode::StorageUnavailable.http_status(), 503);
        assert_eq!(ErrorCode::Internal.http_status(), 500);
        assert_eq!(ErrorCode::from_name("NOPE"), None);
    }
}
