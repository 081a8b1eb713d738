//! The cache value decoders, reachable from the fuzz targets in `fuzz/`.
//!
//! Only built with the `fuzzing` feature, which nothing but `fuzz/`
//! enables: the decoders and their types stay crate-private in every
//! ordinary build. Each function decodes a raw cache value the way a cache
//! read does and, when it parses, encodes it again the way a cache fill
//! does, so a target can check that what is read back is what would be
//! written.

use crate::cache::values;

/// `project:{id}:exists`: the value re-encoded, or `None` for a miss.
pub fn project_exists(raw: &str) -> Option<String> {
    values::decode_project_exists(raw).map(|v| values::encode(&v))
}

/// `deployment:{id}:info`: the value re-encoded, or `None` for a miss.
pub fn deployment_info(raw: &str) -> Option<String> {
    values::decode_info(raw).map(|v| values::encode(&v))
}

/// `deployment:{id}:project`: the project id, or `None` for a miss.
pub fn project_id(raw: &str) -> Option<String> {
    values::decode_project_id(raw).map(|v| v.as_str().to_owned())
}

/// The environment pointers: the deployment id, or `None` for a miss.
pub fn deployment_id(raw: &str) -> Option<String> {
    values::decode_deployment_id(raw).map(|v| v.as_str().to_owned())
}
