//! Every call to the shared cache goes through here: a timeout per call and
//! a circuit breaker, so a dead or slow cache costs at most one timeout per
//! request, and nothing once the breaker is open.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Cache, CacheError};
use crate::metrics::{CacheFailure, Metrics};

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go to the cache.
    Closed,
    /// Calls skip the cache until the cool-down ends.
    Open,
    /// The cool-down ended; one trial call decides.
    HalfOpen,
}

/// Counts consecutive failures; after `threshold` of them the cache is
/// skipped for `cooldown`, then one trial call decides.
#[derive(Debug)]
pub(crate) struct Breaker {
    base: Instant,
    threshold: u32,
    cooldown: Duration,
    failures: AtomicU32,
    /// Milliseconds since `base` until which the breaker is open; 0: closed.
    open_until: AtomicU64,
    trial: AtomicBool,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            base: Instant::now(),
            threshold: threshold.max(1),
            cooldown,
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            trial: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        // Never 0, which means closed.
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// Whether a call may go to the cache now.
    pub(crate) fn allows(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        if self.now_ms() < until {
            return false;
        }
        self.trial.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    pub(crate) fn success(&self) {
        self.failures.store(0, Ordering::Release);
        if self.open_until.load(Ordering::Acquire) != 0 {
            self.open_until.store(0, Ordering::Release);
            self.trial.store(false, Ordering::Release);
            tracing::info!(target: "lupa_core::cache", "cache reachable again; circuit closed");
        }
    }

    /// Counts a failure; true when it opened the breaker.
    pub(crate) fn failure(&self) -> bool {
        let n = self.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        let trial_failed = self.trial.load(Ordering::Acquire);
        if n >= self.threshold || trial_failed {
            let until = self.now_ms().saturating_add(u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX));
            let opened = self.open_until.swap(until, Ordering::AcqRel) == 0;
            if opened {
                tracing::warn!(target: "lupa_core::cache", failures = n, "cache failing; circuit open");
            }
            self.trial.store(false, Ordering::Release);
            return opened;
        }
        false
    }

    pub(crate) fn state(&self) -> BreakerState {
        match self.open_until.load(Ordering::Acquire) {
            0 => BreakerState::Closed,
            until if self.now_ms() < until => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }
}

/// A cache behind a per-call timeout and a breaker.
pub(crate) struct GuardedCache {
    pub(crate) inner: Arc<dyn Cache>,
    timeout: Duration,
    pub(crate) breaker: Breaker,
    metrics: Option<Arc<Metrics>>,
}

impl GuardedCache {
    pub(crate) fn new(
        inner: Arc<dyn Cache>,
        timeout: Duration,
        threshold: u32,
        cooldown: Duration,
        metrics: Option<Arc<Metrics>>,
    ) -> GuardedCache {
        GuardedCache { inner, timeout, breaker: Breaker::new(threshold, cooldown), metrics }
    }

    fn count(&self, failure: CacheFailure) {
        if let Some(m) = &self.metrics {
            m.cache_failure(failure);
        }
    }

    /// Runs one cache call, or fails at once while the breaker is open.
    pub(crate) async fn call<T, Fut>(&self, fut: Fut) -> Result<T, CacheError>
    where
        Fut: std::future::Future<Output = Result<T, CacheError>>,
    {
        if !self.breaker.allows() {
            self.count(CacheFailure::Skipped);
            return Err(CacheError("skipped while the circuit is open".into()));
        }
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.inspect_err(|_| self.count(CacheFailure::Error)),
            Err(_) => {
                self.count(CacheFailure::Timeout);
                Err(CacheError(format!("no answer within {:?}", self.timeout)))
            }
        };
        match &result {
            Ok(_) => self.breaker.success(),
            Err(e) => {
                tracing::debug!(target: "lupa_core::cache", error = %e, "cache call failed");
                if self.breaker.failure()
                    && let Some(m) = &self.metrics
                {
                    m.breaker_opened();
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_recovers_through_one_trial() {
        let b = Breaker::new(3, Duration::from_millis(30));
        assert!(b.allows());
        b.failure();
        b.failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allows());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.allows(), "one trial");
        assert!(!b.allows(), "only one");
        b.failure();
        assert_eq!(b.state(), BreakerState::Open, "a failed trial opens again");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allows());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allows() && b.allows());
    }
}
