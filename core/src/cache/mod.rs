//! Pluggable shared cache: the [`Cache`] trait, the seed's keys and values,
//! and the built-in backends (Redis, memory).
//!
//! The cache is an optimisation, never a source of truth. Two operations
//! keep it from serving an old answer:
//! - [`Cache::fill`] writes what a reader read from the store, but only
//!   while the project's version key is not newer than the version the
//!   reader saw, in one atomic step;
//! - [`Cache::invalidate`] raises the version key and deletes the entries a
//!   change made stale, in one atomic step.
//!
//! So a reader that raced a change cannot write its old answer back.

use std::time::Duration;

use async_trait::async_trait;

pub(crate) mod guard;
pub mod keys;
pub mod memory;
pub mod redis;
pub(crate) mod values;

/// A cache failure: unreachable, too slow, or an unexpected reply. The
/// message holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cache: {0}")]
pub struct CacheError(pub String);

/// One entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The full key, prefix included.
    pub key: String,
    /// The value.
    pub value: String,
    /// How long it lives.
    pub ttl: Duration,
}

/// Entries written only while `version_key` holds no version newer than
/// `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedFill {
    /// The project's version key.
    pub version_key: String,
    /// The version the reader saw.
    pub version: i64,
    /// What to write.
    pub entries: Vec<CacheEntry>,
}

/// Raise `version_key` to at least `version`, then delete `keys`, and tell
/// other processes' in-process tiers that `project` changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invalidation {
    /// The project that changed.
    pub project: crate::ids::ProjectId,
    /// The project's version key.
    pub version_key: String,
    /// The version of the change.
    pub version: i64,
    /// The entries the change made stale.
    pub keys: Vec<String>,
}

/// How long a version key outlives the entries it guards. It must outlast
/// any read that is still in flight, and the longest entry TTL.
pub const VERSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// A shared cache backend.
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// The values of `keys`, in order (none when absent).
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, CacheError>;
    /// Applies each fill atomically and conditionally (see the module docs).
    async fn fill(&self, fills: &[VersionedFill]) -> Result<(), CacheError>;
    /// Applies each invalidation atomically (see the module docs).
    async fn invalidate(&self, invalidations: &[Invalidation]) -> Result<(), CacheError>;
    /// Checks that the cache answers.
    async fn ping(&self) -> Result<(), CacheError>;
    /// Writes one entry unconditionally (tests and tooling).
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError>;
    /// The remaining time to live of a key; none when the key is absent.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError>;
    /// Deletes the library's keys behind `prefix`: those that continue with
    /// `project:` or `deployment:`. Other keys on a shared server stay.
    async fn clear(&self, prefix: &str) -> Result<(), CacheError>;
}
