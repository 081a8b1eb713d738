//! Core errors as JavaScript `Error` instances with `code` (the stable code)
//! and `httpStatus`; wrong JavaScript types as `TypeError`s.

use napi::bindgen_prelude::*;
use napi::{JsError, JsTypeError};

/// The `code` of a TypeError for an argument of the wrong type (Node's own
/// name for it): a code of the binding, not one of the library's.
pub const TYPE_ERROR_CODE: &str = "ERR_INVALID_ARG_TYPE";

fn build(env: &Env, e: &lupa_core::Error) -> Result<sys::napi_value> {
    let raw = unsafe { JsError::from(Error::new(e.code().as_str(), e.message())).into_value(env.raw()) };
    let mut obj = unsafe { Object::from_napi_value(env.raw(), raw)? };
    obj.set_named_property("httpStatus", e.http_status() as u32)?;
    Ok(raw)
}

fn wrap(env: &Env, raw: Result<sys::napi_value>) -> Error {
    match raw {
        Ok(raw) => Error::from(unsafe { Unknown::from_raw_unchecked(env.raw(), raw) }),
        Err(e) => e,
    }
}

/// A core error as a JavaScript `Error` (on the JavaScript thread), to
/// reject a Promise with or for a synchronous function to throw.
pub fn lupa_error(env: &Env, e: &lupa_core::Error) -> Error {
    wrap(env, build(env, e))
}

/// A `TypeError` with `code` [`TYPE_ERROR_CODE`], to reject a Promise with
/// or for a synchronous function to throw.
pub fn type_error(env: &Env, message: &str) -> Error {
    let raw = unsafe { JsTypeError::from(Error::new(TYPE_ERROR_CODE, message)).into_value(env.raw()) };
    wrap(env, Ok(raw))
}
