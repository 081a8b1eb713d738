//! What the core's integration tests share: the workspace's test support
//! (services, unique names, a proxy, a private Redis) and where the vector
//! files are.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

pub use lupa_test_support::*;

pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/vectors")
}

/// Shrunk failures of the model-based test, as vector files.
pub fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/regressions")
}
