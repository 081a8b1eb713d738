//! An in-memory shared cache for one process: tests, and hosts that run a
//! single process without Redis.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Cache, CacheError, Invalidation, VERSION_TTL, VersionedFill};

/// A map of keys to values with expiry times.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> MemoryCache {
        MemoryCache::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (String, Instant)>) -> T) -> T {
        // A panic elsewhere cannot leave a map of plain strings inconsistent.
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() > 4096 && map.len().is_power_of_two() {
            map.retain(|_, (_, exp)| *exp > now);
        }
        f(&mut map)
    }
}

fn live(map: &HashMap<String, (String, Instant)>, key: &str) -> Option<String> {
    map.get(key).filter(|(_, exp)| *exp > Instant::now()).map(|(v, _)| v.clone())
}

fn version_of(map: &HashMap<String, (String, Instant)>, key: &str) -> i64 {
    live(map, key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, CacheError> {
        Ok(self.with(|map| keys.iter().map(|k| live(map, k)).collect()))
    }

    async fn fill(&self, fills: &[VersionedFill]) -> Result<(), CacheError> {
        self.with(|map| {
            let now = Instant::now();
            for fill in fills {
                if version_of(map, &fill.version_key) > fill.version {
                    continue;
                }
                for e in &fill.entries {
                    map.insert(e.key.clone(), (e.value.clone(), now + e.ttl));
                }
            }
        });
        Ok(())
    }

    async fn invalidate(&self, invalidations: &[Invalidation]) -> Result<(), CacheError> {
        self.with(|map| {
            let now = Instant::now();
            for inv in invalidations {
                if version_of(map, &inv.version_key) < inv.version {
                    map.insert(inv.version_key.clone(), (inv.version.to_string(), now + VERSION_TTL));
                }
                for k in &inv.keys {
                    map.remove(k);
                }
            }
        });
        Ok(())
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        self.with(|map| map.insert(key.to_string(), (value.to_string(), Instant::now() + ttl)));
        Ok(())
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        Ok(self.with(|map| map.get(key).and_then(|(_, exp)| exp.checked_duration_since(Instant::now()))))
    }

    async fn clear(&self, prefix: &str) -> Result<(), CacheError> {
        self.with(|map| {
            map.retain(|k, _| {
                let Some(rest) = k.strip_prefix(prefix) else { return true };
                !(rest.starts_with("project:") || rest.starts_with("deployment:"))
            })
        });
        Ok(())
    }
}
