//! Error codes and the caller-owned error out-parameter.

use std::ffi::c_char;

use lupa_core::{Error, ErrorCode};

/// The result of every fallible call. Codes are numbered by family, after
/// the HTTP status a server answers with (4000-4029: 400, 4030-4039: 403,
/// 4040-4049: 404, 4090-4099: 409, 5000-5029: 500, 5030-5039: 503), and
/// 9000-9999 for codes of the C ABI itself. A value is never reused for
/// another meaning; new codes may be added within a family, so treat an
/// unknown code by its family (`code / 10` is the HTTP status for codes
/// below 9000).
///
/// The names of the core codes (`lupa_code_name`) are the stable names of
/// `semantics.md`, the same in every Lupa binding.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum lupa_code {
    /// Success.
    Ok = 0,
    /// An argument is malformed (bad id, unknown environment name, invalid
    /// UTF-8, too long, ...); the message names the argument (HTTP 400).
    InvalidArgument = 4000,
    /// A `live` caller and no ready production deployment (HTTP 400).
    NoProductionDeployment = 4001,
    /// A `test` caller and no ready staging deployment (HTTP 400).
    NoStagingDeployment = 4002,
    /// A change names a deployment of another project (HTTP 400).
    DeploymentNotInProject = 4003,
    /// The deployment must be `ready` for this (HTTP 400).
    DeploymentNotReady = 4004,
    /// The API key string does not have a known format (HTTP 403).
    InvalidApiKey = 4030,
    /// The project does not exist (HTTP 404).
    ProjectNotFound = 4040,
    /// The deployment does not exist, or belongs to another project when
    /// resolving (HTTP 404).
    DeploymentNotFound = 4041,
    /// The project id is taken (HTTP 409).
    ProjectExists = 4090,
    /// The deployment id is taken (HTTP 409).
    DeploymentExists = 4091,
    /// The status change is not allowed (HTTP 409).
    InvalidStatusTransition = 4092,
    /// Another deployment is production already (HTTP 409).
    ProductionConflict = 4093,
    /// Rollback has no previous production to go back to (HTTP 409).
    NoRollbackTarget = 4094,
    /// A bug or a caught panic; details are in the logs (HTTP 500).
    Internal = 5000,
    /// The store could not be reached in time (HTTP 503).
    StorageUnavailable = 5030,
    /// C ABI: a required pointer argument was NULL (HTTP 400).
    NullArgument = 9001,
    /// C ABI: the handle was closed with `lupa_close` (HTTP 503).
    HandleClosed = 9002,
    /// C ABI: the call did not finish within its timeout; a change may or
    /// may not have been committed (HTTP 504).
    Timeout = 9003,
    /// C ABI: the call was made from a thread that runs an async runtime
    /// (for example from inside the library's own runtime), where blocking
    /// would deadlock (HTTP 500).
    ReentrantCall = 9004,
    /// C ABI: a test hook needs a cache and the handle has none (HTTP 400).
    NoCache = 9005,
}

impl lupa_code {
    /// Every code, core codes first.
    /// cbindgen:ignore
    pub const ALL: [lupa_code; 21] = [
        lupa_code::Ok,
        lupa_code::InvalidArgument,
        lupa_code::NoProductionDeployment,
        lupa_code::NoStagingDeployment,
        lupa_code::DeploymentNotInProject,
        lupa_code::DeploymentNotReady,
        lupa_code::InvalidApiKey,
        lupa_code::ProjectNotFound,
        lupa_code::DeploymentNotFound,
        lupa_code::ProjectExists,
        lupa_code::DeploymentExists,
        lupa_code::InvalidStatusTransition,
        lupa_code::ProductionConflict,
        lupa_code::NoRollbackTarget,
        lupa_code::Internal,
        lupa_code::StorageUnavailable,
        lupa_code::NullArgument,
        lupa_code::HandleClosed,
        lupa_code::Timeout,
        lupa_code::ReentrantCall,
        lupa_code::NoCache,
    ];

    /// The C code of a core code.
    pub fn from_core(code: ErrorCode) -> lupa_code {
        match code {
            ErrorCode::InvalidApiKey => lupa_code::InvalidApiKey,
            ErrorCode::ProjectNotFound => lupa_code::ProjectNotFound,
            ErrorCode::DeploymentNotFound => lupa_code::DeploymentNotFound,
            ErrorCode::NoProductionDeployment => lupa_code::NoProductionDeployment,
            ErrorCode::NoStagingDeployment => lupa_code::NoStagingDeployment,
            ErrorCode::DeploymentNotInProject => lupa_code::DeploymentNotInProject,
            ErrorCode::DeploymentNotReady => lupa_code::DeploymentNotReady,
            ErrorCode::InvalidArgument => lupa_code::InvalidArgument,
            ErrorCode::ProjectExists => lupa_code::ProjectExists,
            ErrorCode::DeploymentExists => lupa_code::DeploymentExists,
            ErrorCode::InvalidStatusTransition => lupa_code::InvalidStatusTransition,
            ErrorCode::ProductionConflict => lupa_code::ProductionConflict,
            ErrorCode::NoRollbackTarget => lupa_code::NoRollbackTarget,
            ErrorCode::StorageUnavailable => lupa_code::StorageUnavailable,
            ErrorCode::Internal => lupa_code::Internal,
            // A code added to core later is a bug here until it is mapped;
            // the test `every_core_code_is_mapped` catches it.
            _ => lupa_code::Internal,
        }
    }

    /// The core code, for the codes that have one.
    pub fn to_core(self) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| lupa_code::from_core(*c) == self)
    }

    /// A code from its number.
    pub fn from_u32(n: u32) -> Option<lupa_code> {
        lupa_code::ALL.into_iter().find(|c| *c as u32 == n)
    }

    /// The stable name.
    pub fn name(self) -> &'static str {
        if let Some(core) = self.to_core() {
            return core.as_str();
        }
        match self {
            lupa_code::Ok => "OK",
            lupa_code::NullArgument => "NULL_ARGUMENT",
            lupa_code::HandleClosed => "HANDLE_CLOSED",
            lupa_code::Timeout => "TIMEOUT",
            lupa_code::ReentrantCall => "REENTRANT_CALL",
            lupa_code::NoCache => "NO_CACHE",
            _ => "INTERNAL",
        }
    }

    /// The HTTP status.
    pub fn http_status(self) -> u16 {
        if let Some(core) = self.to_core() {
            return core.http_status();
        }
        match self {
            lupa_code::Ok => 200,
            lupa_code::NullArgument | lupa_code::NoCache => 400,
            lupa_code::HandleClosed => 503,
            lupa_code::Timeout => 504,
            _ => 500,
        }
    }
}

/// The size of `lupa_error.message`, the terminating NUL included.
pub const LUPA_ERROR_MESSAGE_LEN: usize = 512;

/// What went wrong, written by every fallible call into a struct the caller
/// owns (on the stack, typically). There is no global "last error".
///
/// On success the call sets `code` to `LUPA_CODE_OK`, `http_status` to 200
/// and `message` to "". Nothing in it needs freeing. The message is UTF-8,
/// NUL-terminated, truncated (at a character boundary) to fit, and never
/// contains a secret such as a password or an API key.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct lupa_error {
    /// The code, the same value the call returned.
    pub code: lupa_code,
    /// The HTTP status a server answers with for this error.
    pub http_status: u16,
    /// A human message.
    pub message: [c_char; LUPA_ERROR_MESSAGE_LEN],
}

/// An error on its way to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The code.
    pub code: lupa_code,
    /// The message.
    pub message: String,
}

impl Failure {
    /// A failure with a message.
    pub fn new(code: lupa_code, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }

    /// A NULL where a pointer was required.
    pub fn null(name: &str) -> Failure {
        Failure::new(lupa_code::NullArgument, format!("{name} must not be NULL"))
    }

    /// A malformed argument.
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(lupa_code::InvalidArgument, message)
    }

    /// A bug.
    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(lupa_code::Internal, message)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure { code: lupa_code::from_core(e.code()), message: e.message().to_owned() }
    }
}

/// Writes `code` and `message` into `err` (when not NULL).
///
/// # Safety
/// `err` is NULL or points to a writable `lupa_error`.
pub(crate) unsafe fn write_error(err: *mut lupa_error, code: lupa_code, message: &str) {
    if err.is_null() {
        return;
    }
    // Truncate at a character boundary, leaving room for the NUL.
    let mut end = message.len().min(LUPA_ERROR_MESSAGE_LEN - 1);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let bytes = &message.as_bytes()[..end];
    // SAFETY: err is valid and writable (the caller's contract); every byte
    // of the message array is written, so no uninitialised byte is read.
    unsafe {
        std::ptr::addr_of_mut!((*err).code).write(code);
        std::ptr::addr_of_mut!((*err).http_status).write(code.http_status());
        let dst = std::ptr::addr_of_mut!((*err).message).cast::<u8>();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
        std::ptr::write_bytes(dst.add(bytes.len()), 0, LUPA_ERROR_MESSAGE_LEN - bytes.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_code_is_mapped() {
        for core in ErrorCode::ALL {
            let c = lupa_code::from_core(core);
            assert_eq!(c.to_core(), Some(core));
            assert_eq!(c.name(), core.as_str());
            assert_eq!(c.http_status(), core.http_status());
            assert_eq!(c as u32 / 10, u32::from(core.http_status()), "{core} is in the family of its status");
        }
    }

    #[test]
    fn numbers_and_names_are_unique() {
        for (i, a) in lupa_code::ALL.iter().enumerate() {
            assert_eq!(lupa_code::from_u32(*a as u32), Some(*a));
            for b in &lupa_code::ALL[i + 1..] {
                assert_ne!(*a as u32, *b as u32);
                assert_ne!(a.name(), b.name());
            }
        }
        assert_eq!(lupa_code::from_u32(1), None);
    }

    #[test]
    fn messages_are_truncated_at_a_character_boundary() {
        let mut e = lupa_error { code: lupa_code::Ok, http_status: 0, message: [1; LUPA_ERROR_MESSAGE_LEN] };
        let long = "é".repeat(600);
        unsafe { write_error(&mut e, lupa_code::InvalidArgument, &long) };
        let text = unsafe { std::ffi::CStr::from_ptr(e.message.as_ptr()) }.to_str().unwrap();
        assert_eq!(text.len(), 510);
        assert_eq!(e.http_status, 400);
    }
}
