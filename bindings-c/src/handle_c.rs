//! Opening and closing a handle.

use std::ffi::c_char;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lupa_core::{Config, Lupa};
use serde::Deserialize;

use crate::boundary::{arg, block_on, guard, guard_value, opt_arg, timeout, with_runtime_entered};
use crate::error_c::{Failure, lupa_code, lupa_error};

/// The default of option `call_timeout_ms`, and of `lupa_open`'s timeout.
pub const LUPA_DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// An open Lupa handle: a store, an optional shared cache, and the options
/// they were opened with. Opaque; create it with `lupa_open`, stop it with
/// `lupa_close`, release it with `lupa_free`.
///
/// Thread-safety: every call taking a `const lupa_handle *` may run on many
/// threads at once. `lupa_close` may run at the same time as other calls
/// (they then finish, or fail with `LUPA_CODE_HANDLE_CLOSED`). `lupa_free`
/// must be the last use of the pointer, after every other call on it has
/// returned.
///
/// fork(): a child process must not use a handle opened before the fork
/// (its connections and background work stayed with the parent); it opens
/// its own, and the library starts a fresh runtime for it. The parent's
/// handles keep working in the parent.
pub struct lupa_handle {
    pub(crate) lupa: Lupa,
    closed: AtomicBool,
    close_signal: tokio::sync::watch::Sender<bool>,
    call_timeout: Duration,
}

fn closed_error() -> Failure {
    Failure::new(lupa_code::HandleClosed, "the handle is closed")
}

impl lupa_handle {
    /// Runs a core call on the library's runtime, within the call's timeout,
    /// ending early when the handle is closed meanwhile.
    pub(crate) fn call<T>(
        &self,
        timeout_ms: u64,
        fut: impl Future<Output = lupa_core::Result<T>>,
    ) -> Result<T, Failure> {
        self.call_raw(timeout_ms, async { fut.await.map_err(Failure::from) })
    }

    /// As `call`, for futures that already give a `Failure`.
    pub(crate) fn call_raw<T>(
        &self,
        timeout_ms: u64,
        fut: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        let mut closing = self.close_signal.subscribe();
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_error());
        }
        let r = block_on(timeout(timeout_ms, self.call_timeout), async move {
            tokio::select! {
                biased;
                _ = closing.wait_for(|closed| *closed) => Err(closed_error()),
                r = fut => r,
            }
        });
        match r {
            // The store refused because the handle was closed meanwhile: say so.
            Err(f) if f.code == lupa_code::StorageUnavailable && self.closed.load(Ordering::Acquire) => {
                Err(closed_error())
            }
            r => r,
        }
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.close_signal.send_replace(true);
        let lupa = self.lupa.clone();
        if tokio::runtime::Handle::try_current().is_ok() {
            // A thread that runs a runtime cannot block: the connections are
            // released in the background instead.
            let _ = crate::boundary::spawn(async move { lupa.close().await });
        } else {
            let _ = block_on(Duration::from_secs(5), async move {
                lupa.close().await;
                Ok(())
            });
        }
    }
}

/// Borrows the handle behind a pointer; a closed one is `HANDLE_CLOSED`.
///
/// # Safety
/// `h` is NULL or a pointer from `lupa_open` not yet given to `lupa_free`.
pub(crate) unsafe fn handle<'a>(h: *const lupa_handle) -> Result<&'a lupa_handle, Failure> {
    // SAFETY: forwarded contract.
    let h = unsafe { h.as_ref() }.ok_or_else(|| Failure::null("handle"))?;
    if h.closed.load(Ordering::Acquire) {
        return Err(closed_error());
    }
    Ok(h)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OpenOptions {
    key_prefix: Option<String>,
    schema: Option<String>,
    pool_size: Option<u32>,
    cache_timeout_ms: Option<u64>,
    store_timeout_ms: Option<u64>,
    breaker_threshold: Option<u32>,
    breaker_cooldown_ms: Option<u64>,
    outbox_interval_ms: Option<u64>,
    local_cache: Option<bool>,
    local_capacity: Option<usize>,
    local_bound_ms: Option<u64>,
    metrics: Option<bool>,
    call_timeout_ms: Option<u64>,
}

/// Opens a handle on a store and a cache, applying the store's migrations.
/// The cache is connected on first use, so a handle opens while the cache
/// is down.
///
/// - `store_url`: `postgres://...` (TLS through `sslmode`), `sqlite://path`,
///   `sqlite::memory:` or `memory://`. Required.
/// - `cache_url`: `redis://...`, `rediss://...`, `memory://` or `none`.
///   Required.
/// - `options_json`: NULL for every default, or a JSON object with any of
///   `key_prefix` (string, put before every cache key; default ""),
///   `schema` (PostgreSQL schema, created when missing; default "public"),
///   `pool_size`, `cache_timeout_ms` (default 50), `store_timeout_ms`
///   (default 5000), `breaker_threshold`, `breaker_cooldown_ms`,
///   `outbox_interval_ms`, `local_cache` (bool: answers in process memory
///   in front of the shared cache; default true), `local_capacity` (most
///   projects held; default 100000), `local_bound_ms` (longest an answer in
///   memory is used while the invalidation channel is down; default 1000),
///   `metrics` (bool: count resolutions, cache tiers, store operations and
///   changes for `lupa_stats` and `lupa_metrics_text`; default true; false
///   counts nothing), and `call_timeout_ms` (the timeout of calls
///   made with `timeout_ms` 0; default 30000). An unknown field is
///   `LUPA_CODE_INVALID_ARGUMENT`.
/// - `timeout_ms`: how long opening may take; 0 means 30000.
/// - `out`: receives the handle, or NULL on failure. The caller owns it and
///   releases it with `lupa_free`.
/// - `err`: may be NULL.
///
/// Messages never show a password from a URL. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_open(
    store_url: *const c_char,
    cache_url: *const c_char,
    options_json: *const c_char,
    timeout_ms: u64,
    out: *mut *mut lupa_handle,
    err: *mut lupa_error,
) -> lupa_code {
    guard(err, || {
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        // SAFETY: out is non-NULL and writable (contract).
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: the string arguments are NULL or NUL-terminated (contract).
        let (store, cache, options) = unsafe {
            (arg(store_url, "store_url")?, arg(cache_url, "cache_url")?, opt_arg(options_json, "options_json")?)
        };
        let options: OpenOptions = match options {
            None => OpenOptions::default(),
            Some(text) => serde_json::from_str(text).map_err(|e| Failure::invalid(format!("options_json: {e}")))?,
        };
        let mut config = Config::new(store, cache);
        let ms = Duration::from_millis;
        if let Some(v) = options.key_prefix {
            config.key_prefix = v;
        }
        if let Some(v) = options.schema {
            config.schema = v;
        }
        if let Some(v) = options.pool_size {
            config.pool_size = v;
        }
        if let Some(v) = options.cache_timeout_ms {
            config.cache_timeout = ms(v);
        }
        if let Some(v) = options.store_timeout_ms {
            config.store_timeout = ms(v);
        }
        if let Some(v) = options.breaker_threshold {
            config.breaker_threshold = v;
        }
        if let Some(v) = options.breaker_cooldown_ms {
            config.breaker_cooldown = ms(v);
        }
        if let Some(v) = options.outbox_interval_ms {
            config.outbox_interval = ms(v);
        }
        if let Some(v) = options.local_cache {
            config.local_cache = v;
        }
        if let Some(v) = options.local_capacity {
            config.local_capacity = v;
        }
        if let Some(v) = options.local_bound_ms {
            config.local_bound = ms(v);
        }
        if let Some(v) = options.metrics {
            config.metrics = v;
        }
        let call_timeout = ms(options.call_timeout_ms.unwrap_or(LUPA_DEFAULT_TIMEOUT_MS));
        if call_timeout.is_zero() {
            return Err(Failure::invalid("call_timeout_ms must be more than zero"));
        }

        let lupa = block_on(timeout(timeout_ms, ms(LUPA_DEFAULT_TIMEOUT_MS)), async {
            Lupa::open(config).await.map_err(Failure::from)
        })?;
        let (close_signal, _) = tokio::sync::watch::channel(false);
        let h = Box::new(lupa_handle { lupa, closed: AtomicBool::new(false), close_signal, call_timeout });
        // SAFETY: checked above.
        unsafe { out.write(Box::into_raw(h)) };
        Ok(())
    })
}

/// Closes a handle: stops its background work and releases its store
/// connections. Calls in flight on other threads end promptly, with their
/// result or `LUPA_CODE_HANDLE_CLOSED`; later calls fail with
/// `LUPA_CODE_HANDLE_CLOSED`. Closing twice is harmless. The memory stays
/// valid until `lupa_free`.
///
/// Returns `LUPA_CODE_OK`, or `LUPA_CODE_NULL_ARGUMENT` for NULL.
/// Thread-safe, also while other calls on the handle are running.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_close(handle: *mut lupa_handle) -> lupa_code {
    // SAFETY: handle is NULL or live (contract).
    guard(std::ptr::null_mut(), || {
        // SAFETY: handle is NULL or live (contract).
        let h = unsafe { handle.as_ref() }.ok_or_else(|| Failure::null("handle"))?;
        h.close();
        Ok(())
    })
}

/// Closes the handle (when still open) and releases it. NULL is harmless.
///
/// This must be the last use of the pointer: no other call on the handle
/// may be running or start afterwards (close it with `lupa_close` first
/// when other threads may still be using it, and wait for them).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lupa_free(handle: *mut lupa_handle) {
    if handle.is_null() {
        return;
    }
    guard_value((), || {
        // SAFETY: handle came from lupa_open and is freed once (contract).
        let h = unsafe { Box::from_raw(handle) };
        h.close();
        with_runtime_entered(|| drop(h));
    });
}
