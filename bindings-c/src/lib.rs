//! # liblupa: the C ABI of Lupa core
//!
//! Which deployment of a knowledge base a request reaches, and the changes
//! that move it, for C, Go and any host with a C FFI. The header
//! `include/lupa.h` is generated from this crate by a pinned cbindgen and
//! committed; `scripts/test-c` fails when it is out of date.
//!
//! Conventions of every export (they are repeated in the header):
//! - Fallible calls return a [`lupa_code`] and, when `err` is not NULL, fill
//!   the caller-owned [`lupa_error`]. There is no global "last error".
//! - Strings in are UTF-8 and NUL-terminated, borrowed for the call only;
//!   invalid UTF-8 is `LUPA_CODE_INVALID_ARGUMENT`, a NULL where a string is
//!   required is `LUPA_CODE_NULL_ARGUMENT`.
//! - Strings out are allocated by the library and freed by the caller with
//!   `lupa_string_free` (NULL is harmless). Structured results other than
//!   resolution are JSON objects whose shapes the header documents.
//! - Calls block the calling thread while the work runs on a runtime owned
//!   by the library; one handle may be used from many threads at once. Every
//!   call on a handle takes a timeout in milliseconds (0: the handle's
//!   default, option `call_timeout_ms`), except `lupa_stats` and
//!   `lupa_metrics_text`, which only read counters and never block.
//! - No panic crosses the boundary: it becomes `LUPA_CODE_INTERNAL`.
#![allow(non_camel_case_types)]
// The safety contract of every export is the same and is stated once, at
// the top of lupa.h: pointers are NULL or valid for the call, strings are
// NUL-terminated, a handle is not used after lupa_free. A `# Safety` section
// per function would repeat it thirty times in the header.
#![allow(clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]

mod boundary;
mod error_c;
mod handle_c;
mod ops_c;

pub use error_c::{Failure, LUPA_ERROR_MESSAGE_LEN, lupa_code, lupa_error};
pub use handle_c::*;
pub use ops_c::*;

use std::ffi::{CString, c_char};

use boundary::{guard, guard_value};

/// The major version of the library this header belongs to.
pub const LUPA_VERSION_MAJOR: u32 = 0;
/// The minor version of the library this header belongs to.
pub const LUPA_VERSION_MINOR: u32 = 1;
/// The patch version of the library this header belongs to.
pub const LUPA_VERSION_PATCH: u32 = 0;
/// The version of the library this header belongs to, as text. Compare it
/// with `lupa_version()` to detect a header/library mismatch. (The header
/// spells it out in `cbindgen.toml`; a test keeps the two equal.)
/// cbindgen:ignore
pub const LUPA_VERSION: &str = "0.1.0";

/// The library's version, for example "0.1.0".
///
/// Returns a static string: never free it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn lupa_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The stable name of a code, for example "NO_PRODUCTION_DEPLOYMENT" (the
/// names of `semantics.md`; codes of the C ABI have names of their own,
/// such as "NULL_ARGUMENT"). An unknown number gives "UNKNOWN".
///
/// Returns a static string: never free it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn lupa_code_name(code: u32) -> *const c_char {
    static NAMES: std::sync::OnceLock<Vec<(u32, CString)>> = std::sync::OnceLock::new();
    guard_value(c"INTERNAL".as_ptr(), || {
        let names = NAMES.get_or_init(|| {
            lupa_code::ALL.iter().map(|c| (*c as u32, CString::new(c.name()).unwrap_or_default())).collect()
        });
        names.iter().find(|(n, _)| *n == code).map_or(c"UNKNOWN".as_ptr(), |(_, name)| name.as_ptr())
    })
}

/// The HTTP status a server answers with for a code (200 for
/// `LUPA_CODE_OK`; 500 for an unknown number). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn lupa_code_http_status(code: u32) -> u16 {
    guard_value(500, || lupa_code::from_u32(code).map_or(500, |c| c.http_status()))
}

/// Frees a string this library returned. NULL is harmless. Freeing the
/// same string twice, or a string from elsewhere, is undefined behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    guard_value((), || {
        // SAFETY: s came from CString::into_raw in this library (contract).
        drop(unsafe { CString::from_raw(s) });
    });
}

/// The JSON body an HTTP server answers with for `error`:
/// `{"error": {"code": "PROJECT_NOT_FOUND", "message": "Project not found"}}`.
/// Codes of the C ABI itself, which have no HTTP meaning of their own, are
/// reported as the nearest core code (`NULL_ARGUMENT` and `NO_CACHE` as
/// `INVALID_ARGUMENT`, `HANDLE_CLOSED` and `TIMEOUT` as
/// `STORAGE_UNAVAILABLE`, anything else as `INTERNAL`).
///
/// `error` is read only. On success `*out_json` is a string the caller frees
/// with `lupa_string_free`; on failure it is set to NULL. `err` may be NULL
/// and may be the same struct as `error`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_error_http_body(
    error: *const lupa_error,
    out_json: *mut *mut c_char,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        if out_json.is_null() {
            return Err(Failure::null("out_json"));
        }
        // SAFETY: out_json is non-NULL and writable (contract).
        unsafe { out_json.write(std::ptr::null_mut()) };
        if error.is_null() {
            return Err(Failure::null("error"));
        }
        // The code is read as a number: a C caller may have stored anything.
        // SAFETY: error points to a readable lupa_error (contract).
        let number = unsafe { std::ptr::addr_of!((*error).code).cast::<u32>().read() };
        // SAFETY: as above; the message is read up to its NUL, within bounds.
        let raw = unsafe { &*std::ptr::addr_of!((*error).message) };
        let bytes: Vec<u8> = raw.iter().map(|c| *c as u8).take_while(|b| *b != 0).collect();
        let message = String::from_utf8_lossy(&bytes).into_owned();
        let code = lupa_code::from_u32(number).ok_or_else(|| Failure::invalid("error.code is not a lupa_code"))?;
        if code == lupa_code::Ok {
            return Err(Failure::invalid("error holds no error (LUPA_CODE_OK)"));
        }
        let core = code.to_core().unwrap_or(match code {
            lupa_code::NullArgument | lupa_code::NoCache => lupa_core::ErrorCode::InvalidArgument,
            lupa_code::HandleClosed | lupa_code::Timeout => lupa_core::ErrorCode::StorageUnavailable,
            _ => lupa_core::ErrorCode::Internal,
        });
        let body = lupa_core::Error::new(core, message).http_body();
        let s = boundary::give_string(body)?;
        // SAFETY: checked above.
        unsafe { out_json.write(s) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_macros_match_the_crate() {
        assert_eq!(LUPA_VERSION, env!("CARGO_PKG_VERSION"));
        assert_eq!(LUPA_VERSION_MAJOR.to_string(), env!("CARGO_PKG_VERSION_MAJOR"));
        assert_eq!(LUPA_VERSION_MINOR.to_string(), env!("CARGO_PKG_VERSION_MINOR"));
        assert_eq!(LUPA_VERSION_PATCH.to_string(), env!("CARGO_PKG_VERSION_PATCH"));
        let v = unsafe { std::ffi::CStr::from_ptr(lupa_version()) };
        assert_eq!(v.to_str().unwrap(), LUPA_VERSION);
    }

    #[test]
    fn the_committed_header_names_this_version() {
        let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../include/lupa.h")).unwrap();
        assert!(header.contains(&format!("#define LUPA_VERSION \"{}\"", env!("CARGO_PKG_VERSION"))));
        assert!(header.contains(&format!("#define LUPA_VERSION_MAJOR {LUPA_VERSION_MAJOR}\n")));
        assert!(header.contains(&format!("#define LUPA_VERSION_MINOR {LUPA_VERSION_MINOR}\n")));
        assert!(header.contains(&format!("#define LUPA_VERSION_PATCH {LUPA_VERSION_PATCH}\n")));
    }

    #[test]
    fn the_stats_documentation_names_the_core_limits() {
        let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../include/lupa.h")).unwrap();
        let tracked = lupa_core::metrics::TRACKED_DEPLOYMENTS;
        assert!(header.contains(&format!("first, for at most {tracked} deployments;")));
        assert!(lupa_core::metrics::LATENCY_BOUNDS_US.starts_with(&[1, 2, 5]));
    }

    #[test]
    fn id_buffers_fit_the_longest_id() {
        assert_eq!(LUPA_ID_BUFFER_LEN, lupa_core::MAX_ID_LEN + 1);
    }
}
