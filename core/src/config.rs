//! Opening configuration: where the store and the cache are, and the knobs
//! that bound how long anything may take.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::redact::redact_url;

/// How to open a [`crate::Lupa`] handle.
///
/// `Debug` shows URLs with their passwords hidden.
#[derive(Clone)]
pub struct Config {
    /// The store: `postgres://…` (TLS through `sslmode`), `sqlite://path`,
    /// `sqlite::memory:` or `memory://`.
    pub store: String,
    /// The shared cache: `redis://…`, `rediss://…`, `memory://` or `none`.
    pub cache: String,
    /// Put in front of every cache key (default: none, the seed's names).
    pub key_prefix: String,
    /// The PostgreSQL schema of the tables (default `public`); created when
    /// missing.
    pub schema: String,
    /// Most connections the store pool opens.
    pub pool_size: u32,
    /// Longest wait for one cache call before it counts as a miss.
    pub cache_timeout: Duration,
    /// Longest wait for one store operation before `STORAGE_UNAVAILABLE`.
    pub store_timeout: Duration,
    /// Consecutive cache failures that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker skips the cache before one trial call.
    pub breaker_cooldown: Duration,
    /// How often pending cache updates (from any process) are looked for and
    /// applied.
    pub outbox_interval: Duration,
    /// Keep resolution answers in process memory, in front of the shared
    /// cache (see [`crate::Lupa::resolve`]).
    pub local_cache: bool,
    /// Most projects whose answers the in-process tier holds.
    pub local_capacity: usize,
    /// Longest an in-process answer is used while the invalidation channel
    /// is down (or when there is none).
    pub local_bound: Duration,
    /// Count resolutions, cache tiers, store operations and changes
    /// ([`crate::Lupa::stats`]); off, `stats` answers all zero.
    pub metrics: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            store: "memory://".into(),
            cache: "memory://".into(),
            key_prefix: String::new(),
            schema: "public".into(),
            pool_size: 8,
            cache_timeout: Duration::from_millis(50),
            store_timeout: Duration::from_secs(5),
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_secs(1),
            outbox_interval: Duration::from_millis(250),
            local_cache: true,
            local_capacity: 100_000,
            local_bound: Duration::from_secs(1),
            metrics: true,
        }
    }
}

impl Config {
    /// A configuration for `store` and `cache` with every default.
    pub fn new(store: impl Into<String>, cache: impl Into<String>) -> Config {
        Config { store: store.into(), cache: cache.into(), ..Config::default() }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate_schema(&self.schema)?;
        if self.pool_size == 0 {
            return Err(Error::invalid_argument("pool_size must be at least 1"));
        }
        for (name, d) in [
            ("cache_timeout", self.cache_timeout),
            ("store_timeout", self.store_timeout),
            ("outbox_interval", self.outbox_interval),
            ("local_bound", self.local_bound),
        ] {
            if d.is_zero() {
                return Err(Error::invalid_argument(format!("{name} must be more than zero")));
            }
        }
        if self.key_prefix.len() > 256 || self.key_prefix.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::invalid_argument(
                "key_prefix must be at most 256 characters, without spaces or control characters",
            ));
        }
        Ok(())
    }
}

/// A PostgreSQL schema name: it goes into SQL as an identifier, so only a
/// plain lower-case name is accepted.
pub(crate) fn validate_schema(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_argument("schema must be 1 to 63 characters of a-z, 0-9 and '_', not starting with a digit"))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("store", &redact_url(&self.store))
            .field("cache", &redact_url(&self.cache))
            .field("key_prefix", &self.key_prefix)
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("cache_timeout", &self.cache_timeout)
            .field("store_timeout", &self.store_timeout)
            .field("breaker_threshold", &self.breaker_threshold)
            .field("breaker_cooldown", &self.breaker_cooldown)
            .field("outbox_interval", &self.outbox_interval)
            .field("local_cache", &self.local_cache)
            .field("local_capacity", &self.local_capacity)
            .field("local_bound", &self.local_bound)
            .field("metrics", &self.metrics)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_passwords() {
        let c = Config::new("postgres://u:topsecret@h/db", "redis://:alsosecret@h:6379");
        let shown = format!("{c:?}");
        assert!(!shown.contains("topsecret") && !shown.contains("alsosecret"), "{shown}");
        assert!(shown.contains("postgres://u:***@h/db"));
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(validate_schema("public").is_ok());
        assert!(validate_schema("lupa_t1").is_ok());
        for bad in ["", "Public", "a-b", "1abc", "x\"; drop", &"a".repeat(64)] {
            assert!(validate_schema(bad).is_err(), "{bad}");
        }
    }
}
