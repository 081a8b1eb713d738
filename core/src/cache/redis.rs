//! The Redis backend: the seed's keys on a real Redis, versioned writes as
//! Lua scripts so that a check and its write are one atomic step.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError, Script};

use super::{Cache, CacheError, Invalidation, VERSION_TTL, VersionedFill};
use crate::redact::redact_text;

/// Writes each group's entries only while its version key holds no newer
/// version. A version key that does not parse refuses the fill: it is
/// rewritten by the next invalidation.
const FILL_LUA: &str = r#"
local ki, ai = 1, 2
for g = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[ai])
  local ver = tonumber(ARGV[ai + 1])
  ai = ai + 2
  local raw = redis.call('GET', KEYS[ki])
  local cur = 0
  if raw then cur = tonumber(raw) end
  ki = ki + 1
  for i = 1, n do
    if cur ~= nil and cur <= ver then
      redis.call('SET', KEYS[ki], ARGV[ai], 'PX', ARGV[ai + 1])
    end
    ki = ki + 1
    ai = ai + 2
  end
end
return 1
"#;

/// Raises each group's version key to the change's version, deletes the
/// group's keys, and publishes the change on the invalidation channel (when
/// one is named), all in one atomic step.
const INVALIDATE_LUA: &str = r#"
local channel = ARGV[2]
local ki, ai = 1, 3
for g = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[ai])
  local ver = tonumber(ARGV[ai + 1])
  local cur = tonumber(redis.call('GET', KEYS[ki]) or '0')
  if cur == nil or cur < ver then
    redis.call('SET', KEYS[ki], ARGV[ai + 1], 'PX', ARGV[ai + 2])
  end
  if channel ~= '' then
    redis.call('PUBLISH', channel, ARGV[ai + 3])
  end
  ai = ai + 4
  ki = ki + 1
  for i = 1, n do
    redis.call('DEL', KEYS[ki])
    ki = ki + 1
  end
end
return 1
"#;

/// A Redis server (or anything speaking its protocol) as the shared cache.
///
/// The connection is made on first use, not at construction, so a handle
/// opens while Redis is down; a broken connection is dropped and made again
/// on the next call.
pub struct RedisCache {
    client: Client,
    config: AsyncConnectionConfig,
    current: Mutex<Option<MultiplexedConnection>>,
    connecting: tokio::sync::Mutex<()>,
    fill: Script,
    invalidate: Script,
    channel: String,
    shown_url: String,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").field("url", &self.shown_url).finish_non_exhaustive()
    }
}

fn cache_error(e: RedisError) -> CacheError {
    CacheError(redact_text(&e.to_string()))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisCache {
    /// A cache on the server at `url` (`redis://` or `rediss://`), where
    /// connecting and every reply are bounded by `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<RedisCache, CacheError> {
        RedisCache::with_channel(url, timeout, "")
    }

    /// Like [`RedisCache::new`], publishing every invalidation on the
    /// pub/sub `channel` (empty: none) as `{project}:{version}`.
    pub fn with_channel(url: &str, timeout: Duration, channel: &str) -> Result<RedisCache, CacheError> {
        let client = Client::open(url).map_err(cache_error)?;
        let config =
            AsyncConnectionConfig::new().set_connection_timeout(Some(timeout)).set_response_timeout(Some(timeout));
        Ok(RedisCache {
            client,
            config,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            fill: Script::new(FILL_LUA),
            invalidate: Script::new(INVALIDATE_LUA),
            channel: channel.to_owned(),
            shown_url: redact_text(url),
        })
    }

    /// The client, for a pub/sub subscriber of the same server.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    fn cached(&self) -> Option<MultiplexedConnection> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn connection(&self) -> Result<MultiplexedConnection, CacheError> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let c = self.client.get_multiplexed_async_connection_with_config(&self.config).await.map_err(cache_error)?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` on a connection; a connection-level failure drops the
    /// connection so that the next call makes a new one.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, CacheError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection().await?;
        match f(conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error() {
                    *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                Err(cache_error(e))
            }
        }
    }
}

fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl Cache for RedisCache {
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let raw: Vec<Option<Vec<u8>>> =
            self.run(|mut c| async move { redis::cmd("MGET").arg(keys).query_async(&mut c).await }).await?;
        // A value that is not UTF-8 is treated as absent, like any corrupt value.
        Ok(raw.into_iter().map(|v| v.and_then(|b| String::from_utf8(b).ok())).collect())
    }

    async fn fill(&self, fills: &[VersionedFill]) -> Result<(), CacheError> {
        if fills.is_empty() {
            return Ok(());
        }
        let mut inv = self.fill.prepare_invoke();
        inv.arg(fills.len());
        for f in fills {
            inv.key(&f.version_key).arg(f.entries.len()).arg(f.version);
            for e in &f.entries {
                inv.key(&e.key).arg(&e.value).arg(millis(e.ttl));
            }
        }
        self.run(|mut c| async move { inv.invoke_async::<i64>(&mut c).await }).await.map(drop)
    }

    async fn invalidate(&self, invalidations: &[Invalidation]) -> Result<(), CacheError> {
        if invalidations.is_empty() {
            return Ok(());
        }
        let mut inv = self.invalidate.prepare_invoke();
        inv.arg(invalidations.len()).arg(&self.channel);
        for i in invalidations {
            inv.key(&i.version_key)
                .arg(i.keys.len())
                .arg(i.version)
                .arg(millis(VERSION_TTL))
                .arg(crate::channel::message(&i.project, i.version));
            for k in &i.keys {
                inv.key(k);
            }
        }
        self.run(|mut c| async move { inv.invoke_async::<i64>(&mut c).await }).await.map(drop)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await }).await.map(drop)
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        self.run(|mut c| async move {
            redis::cmd("SET").arg(key).arg(value).arg("PX").arg(millis(ttl)).query_async::<()>(&mut c).await
        })
        .await
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let ms: i64 = self.run(|mut c| async move { redis::cmd("PTTL").arg(key).query_async(&mut c).await }).await?;
        Ok(match ms {
            -2 => None,
            -1 => Some(Duration::MAX),
            ms => Some(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    async fn clear(&self, prefix: &str) -> Result<(), CacheError> {
        for space in ["project:*", "deployment:*"] {
            let pattern = format!("{}{space}", escape_glob(prefix));
            let mut cursor: u64 = 0;
            loop {
                let p = pattern.clone();
                let (next, keys): (u64, Vec<String>) = self
                    .run(|mut c| async move {
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(p)
                            .arg("COUNT")
                            .arg(1000)
                            .query_async(&mut c)
                            .await
                    })
                    .await?;
                if !keys.is_empty() {
                    self.run(|mut c| async move { redis::cmd("DEL").arg(keys).query_async::<i64>(&mut c).await })
                        .await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }
}
