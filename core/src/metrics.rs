//! What a handle counts: resolutions by outcome, each cache tier's hits and
//! misses, cache and store failures, resolve latency, resolutions per
//! deployment, promotions and rollbacks.
//!
//! Counting sits on the warm path (an answer from process memory costs about
//! a thousand instructions), so every counter is a relaxed atomic add, the
//! latency histogram is a fixed array found by a short scan, and the
//! per-deployment table is a fixed open-addressed array written once per slot:
//! no lock and no allocation once a deployment has its slot.
//!
//! [`Lupa::stats`](crate::Lupa::stats) takes a [`Stats`] snapshot;
//! [`Stats::to_prometheus`] renders it in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

use crate::cache::guard::BreakerState;
use crate::error::ErrorCode;
use crate::error::Result;
use crate::ids::{DeploymentId, ProjectId};
use crate::resolve::{Resolution, Source};

/// Upper bounds of the latency histogram's buckets, in microseconds; one
/// more bucket holds everything slower.
pub const LATENCY_BOUNDS_US: [u64; 20] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 5_000_000,
];

/// Deployments counted one by one; resolutions of any further deployment
/// are counted together as untracked, so a process with many projects keeps
/// a bounded number of series.
pub const TRACKED_DEPLOYMENTS: usize = 1024;
/// Slots probed for a deployment before it counts as untracked.
const PROBES: usize = 8;

const CODES: usize = ErrorCode::ALL.len();

/// The live counters of one handle.
pub(crate) struct Metrics {
    resolved: [AtomicU64; 3],
    failed: [AtomicU64; CODES],
    local_hits: AtomicU64,
    local_misses: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    cache_errors: AtomicU64,
    cache_timeouts: AtomicU64,
    cache_skipped: AtomicU64,
    breaker_opened: AtomicU64,
    store_queries: AtomicU64,
    store_failures: AtomicU64,
    latency: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    latency_sum_ns: AtomicU64,
    deployments: Box<[Slot; TRACKED_DEPLOYMENTS]>,
    untracked: AtomicU64,
    promotions: AtomicU64,
    rollbacks: AtomicU64,
}

#[derive(Default)]
struct Slot {
    owner: OnceLock<Owner>,
    count: AtomicU64,
}

/// The deployment a slot counts, and the project it was first resolved
/// under (an id names one deployment at a time).
struct Owner {
    key: Key,
    project: ProjectId,
    deployment: DeploymentId,
}

/// A deployment id's length and its first and last eight bytes: the whole
/// id when it is at most 16 bytes long (ids the library generates are 10),
/// so most ids compare in three word comparisons, with no call to `bcmp`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    len: usize,
    head: u64,
    tail: u64,
}

impl Key {
    fn of(id: &[u8]) -> Key {
        let len = id.len();
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let (head, tail) = if len >= 8 {
            (word(&id[..8]), word(&id[len - 8..]))
        } else {
            (id.iter().fold(0, |h, b| h << 8 | u64::from(*b)), 0)
        };
        Key { len, head, tail }
    }

    /// Whether equal keys mean equal ids.
    fn is_whole(&self) -> bool {
        self.len <= 16
    }

    /// The first slot to probe. Not a general-purpose hash: a crowded table
    /// only sends further deployments to the untracked count, so a multiply
    /// is enough.
    fn slot(&self) -> usize {
        let h = (self.head ^ self.tail.rotate_left(29) ^ self.len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 54) as usize
    }
}

/// What a cache call came to, as the guard saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CacheFailure {
    /// The cache answered with an error (or could not be reached).
    Error,
    /// No answer within the cache timeout.
    Timeout,
    /// Not asked: the circuit breaker is open.
    Skipped,
}

/// A kind of change that is counted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change {
    Promotion,
    Rollback,
}

fn source_index(source: Source) -> usize {
    match source {
        Source::Local => 0,
        Source::Cache => 1,
        Source::Store => 2,
    }
}

fn code_index(code: ErrorCode) -> usize {
    ErrorCode::ALL.iter().position(|c| *c == code).unwrap_or(CODES - 1)
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        Metrics {
            resolved: Default::default(),
            failed: Default::default(),
            local_hits: AtomicU64::new(0),
            local_misses: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            cache_errors: AtomicU64::new(0),
            cache_timeouts: AtomicU64::new(0),
            cache_skipped: AtomicU64::new(0),
            breaker_opened: AtomicU64::new(0),
            store_queries: AtomicU64::new(0),
            store_failures: AtomicU64::new(0),
            latency: Default::default(),
            latency_sum_ns: AtomicU64::new(0),
            deployments: Box::new(std::array::from_fn(|_| Slot::default())),
            untracked: AtomicU64::new(0),
            promotions: AtomicU64::new(0),
            rollbacks: AtomicU64::new(0),
        }
    }

    /// One finished resolution of `project` (as the caller gave it): its
    /// outcome and the deployment it reached.
    pub(crate) fn resolution(&self, project: &str, result: &Result<Resolution>) {
        match result {
            Ok(r) => {
                self.resolved[source_index(r.source)].fetch_add(1, Relaxed);
                if let Some(d) = &r.deployment {
                    self.count_deployment(project, d);
                }
            }
            Err(e) => {
                self.failed[code_index(e.code())].fetch_add(1, Relaxed);
            }
        }
    }

    /// How long a resolution that went past process memory took.
    pub(crate) fn latency(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_US.iter().position(|b| micros <= *b).unwrap_or(LATENCY_BOUNDS_US.len());
        self.latency[bucket].fetch_add(1, Relaxed);
        self.latency_sum_ns.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    fn count_deployment(&self, project: &str, deployment: &DeploymentId) {
        let key = Key::of(deployment.as_str().as_bytes());
        let start = key.slot();
        // The common case inline: the deployment holds its first slot.
        let slot = &self.deployments[start % TRACKED_DEPLOYMENTS];
        if slot.owner.get().is_some_and(|o| o.key == key && (key.is_whole() || &o.deployment == deployment)) {
            slot.count.fetch_add(1, Relaxed);
            return;
        }
        self.count_probing(project, deployment, key, start);
    }

    #[cold]
    #[inline(never)]
    fn count_probing(&self, project: &str, deployment: &DeploymentId, key: Key, start: usize) {
        for i in 0..PROBES {
            let slot = &self.deployments[(start + i) % TRACKED_DEPLOYMENTS];
            let owner = match slot.owner.get() {
                Some(owner) => owner,
                None => {
                    // A resolution that succeeded named a valid project.
                    let Ok(project) = ProjectId::new(project) else { return };
                    slot.owner.get_or_init(|| Owner { key, project, deployment: deployment.clone() })
                }
            };
            if &owner.deployment == deployment {
                slot.count.fetch_add(1, Relaxed);
                return;
            }
        }
        self.untracked.fetch_add(1, Relaxed);
    }

    /// A lookup in process memory; an answer found may be an error held
    /// there (a project that does not exist).
    pub(crate) fn local(&self, hit: bool) {
        if hit { &self.local_hits } else { &self.local_misses }.fetch_add(1, Relaxed);
    }

    pub(crate) fn shared_cache(&self, hit: bool) {
        if hit { &self.cache_hits } else { &self.cache_misses }.fetch_add(1, Relaxed);
    }

    pub(crate) fn cache_failure(&self, failure: CacheFailure) {
        match failure {
            CacheFailure::Error => &self.cache_errors,
            CacheFailure::Timeout => &self.cache_timeouts,
            CacheFailure::Skipped => &self.cache_skipped,
        }
        .fetch_add(1, Relaxed);
    }

    pub(crate) fn breaker_opened(&self) {
        self.breaker_opened.fetch_add(1, Relaxed);
    }

    /// One store operation, and whether it failed as unavailable.
    pub(crate) fn store_query(&self, unavailable: bool) {
        self.store_queries.fetch_add(1, Relaxed);
        if unavailable {
            self.store_failures.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn change(&self, change: Change) {
        match change {
            Change::Promotion => &self.promotions,
            Change::Rollback => &self.rollbacks,
        }
        .fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self, breaker: Option<BreakerState>, local_projects: Option<usize>) -> Stats {
        let load = |a: &AtomicU64| a.load(Relaxed);
        let mut deployments: Vec<DeploymentResolutions> = self
            .deployments
            .iter()
            .filter_map(|s| {
                let owner = s.owner.get()?;
                Some(DeploymentResolutions {
                    project: owner.project.clone(),
                    deployment: owner.deployment.clone(),
                    resolutions: load(&s.count),
                })
            })
            .collect();
        deployments.sort_by(|a, b| b.resolutions.cmp(&a.resolutions).then_with(|| a.deployment.cmp(&b.deployment)));
        Stats {
            resolutions: ResolutionCounts {
                local: load(&self.resolved[0]),
                cache: load(&self.resolved[1]),
                store: load(&self.resolved[2]),
                errors: ErrorCode::ALL
                    .iter()
                    .zip(&self.failed)
                    .filter(|(_, n)| load(n) > 0)
                    .map(|(c, n)| ErrorCount { code: *c, count: load(n) })
                    .collect(),
            },
            local: TierCounts { hits: load(&self.local_hits), misses: load(&self.local_misses) },
            local_projects,
            cache: SharedCacheCounts {
                hits: load(&self.cache_hits),
                misses: load(&self.cache_misses),
                errors: load(&self.cache_errors),
                timeouts: load(&self.cache_timeouts),
                skipped: load(&self.cache_skipped),
                breaker,
                breaker_opened: load(&self.breaker_opened),
            },
            store: StoreCounts { queries: load(&self.store_queries), unavailable: load(&self.store_failures) },
            latency: LatencyHistogram {
                bounds_us: LATENCY_BOUNDS_US.to_vec(),
                counts: self.latency.iter().map(load).collect(),
                sum_ns: load(&self.latency_sum_ns),
            },
            deployments,
            untracked_deployment_resolutions: load(&self.untracked),
            promotions: load(&self.promotions),
            rollbacks: load(&self.rollbacks),
        }
    }
}

/// A snapshot of a handle's counters since it was opened.
///
/// Every count only grows; take two snapshots and subtract for a rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Finished resolutions, by outcome.
    pub resolutions: ResolutionCounts,
    /// The in-process tier's lookups (zero when it is off).
    pub local: TierCounts,
    /// Projects held in process memory now (none when the tier is off).
    pub local_projects: Option<usize>,
    /// The shared cache (all zero without one).
    pub cache: SharedCacheCounts,
    /// The store.
    pub store: StoreCounts,
    /// How long resolutions took that process memory could not answer
    /// (answered by the shared cache or the store, or failed there), from
    /// the in-process miss to the answer. Answers from process memory are
    /// counted in `resolutions.local` but not timed: reading the clock
    /// twice would cost more than the lookup itself.
    pub latency: LatencyHistogram,
    /// Successful resolutions per deployment, most resolved first, for at
    /// most [`TRACKED_DEPLOYMENTS`] deployments.
    pub deployments: Vec<DeploymentResolutions>,
    /// Successful resolutions of deployments beyond those tracked.
    pub untracked_deployment_resolutions: u64,
    /// Promotions that changed production (`promote`, and a deployment
    /// promoted the moment it was ready); no-ops are not counted.
    pub promotions: u64,
    /// Rollbacks.
    pub rollbacks: u64,
}

/// Resolutions by outcome: answered by a tier, or failed with a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolutionCounts {
    /// Answered from process memory.
    pub local: u64,
    /// Answered from the shared cache.
    pub cache: u64,
    /// Answered by the store.
    pub store: u64,
    /// Failures by code (only codes that occurred), in the order of
    /// `semantics.md`.
    pub errors: Vec<ErrorCount>,
}

impl ResolutionCounts {
    /// Every finished resolution, answered or failed.
    pub fn total(&self) -> u64 {
        self.local + self.cache + self.store + self.errors.iter().map(|e| e.count).sum::<u64>()
    }

    /// Failures with `code`.
    pub fn errors_with(&self, code: ErrorCode) -> u64 {
        self.errors.iter().find(|e| e.code == code).map_or(0, |e| e.count)
    }
}

/// How many resolutions failed with one code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    /// The stable code.
    #[serde(serialize_with = "serialize_code")]
    pub code: ErrorCode,
    /// How many.
    pub count: u64,
}

fn serialize_code<S: serde::Serializer>(code: &ErrorCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(code.as_str())
}

/// Hits and misses of a cache tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierCounts {
    /// Lookups the tier answered.
    pub hits: u64,
    /// Lookups it could not answer.
    pub misses: u64,
}

/// The shared cache, as resolution used it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedCacheCounts {
    /// Lookups that found a usable answer.
    pub hits: u64,
    /// Lookups that answered without one (missing, or a value that does not
    /// parse).
    pub misses: u64,
    /// Calls (reads, fills, updates) that failed.
    pub errors: u64,
    /// Calls that got no answer within the cache timeout.
    pub timeouts: u64,
    /// Calls skipped while the circuit breaker was open.
    pub skipped: u64,
    /// The breaker's state now (none without a shared cache).
    pub breaker: Option<BreakerState>,
    /// How often the breaker opened.
    pub breaker_opened: u64,
}

/// The store's operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    /// Operations sent to the store: one statement for a resolution's
    /// lookup, one transaction for a change, and the background task's look
    /// for pending cache updates (one every `outbox_interval` with a shared
    /// cache).
    pub queries: u64,
    /// Operations that failed with `STORAGE_UNAVAILABLE`.
    pub unavailable: u64,
}

/// A latency histogram: `counts[i]` resolutions took at most
/// `bounds_us[i]` microseconds (and more than the bound before); the last
/// count is everything slower than the last bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatencyHistogram {
    /// Upper bounds in microseconds ([`LATENCY_BOUNDS_US`]).
    pub bounds_us: Vec<u64>,
    /// One count per bound, and one more for slower resolutions.
    pub counts: Vec<u64>,
    /// The sum of every resolution's duration, in nanoseconds.
    pub sum_ns: u64,
}

impl LatencyHistogram {
    /// How many resolutions it holds.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Successful resolutions of one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentResolutions {
    /// Its project.
    pub project: ProjectId,
    /// The deployment.
    pub deployment: DeploymentId,
    /// Resolutions that reached it.
    pub resolutions: u64,
}

impl Stats {
    /// A snapshot of nothing counted, with no gauge: what a handle that has
    /// not opened yet reports.
    pub fn empty() -> Stats {
        Metrics::new().snapshot(None, None)
    }

    /// The snapshot in the Prometheus text exposition format (version
    /// 0.0.4), every series named `lupa_*`.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        let r = &self.resolutions;
        family(&mut out, "lupa_resolutions_total", "counter", "Resolutions answered, by the tier that answered.");
        for (source, n) in [("local", r.local), ("cache", r.cache), ("store", r.store)] {
            let _ = writeln!(out, "lupa_resolutions_total{{source=\"{source}\"}} {n}");
        }
        family(&mut out, "lupa_resolution_errors_total", "counter", "Resolutions that failed, by error code.");
        for e in &r.errors {
            let _ = writeln!(out, "lupa_resolution_errors_total{{code=\"{}\"}} {}", e.code, e.count);
        }
        family(&mut out, "lupa_cache_hits_total", "counter", "Lookups a cache tier answered.");
        let _ = writeln!(out, "lupa_cache_hits_total{{tier=\"local\"}} {}", self.local.hits);
        let _ = writeln!(out, "lupa_cache_hits_total{{tier=\"shared\"}} {}", self.cache.hits);
        family(&mut out, "lupa_cache_misses_total", "counter", "Lookups a cache tier could not answer.");
        let _ = writeln!(out, "lupa_cache_misses_total{{tier=\"local\"}} {}", self.local.misses);
        let _ = writeln!(out, "lupa_cache_misses_total{{tier=\"shared\"}} {}", self.cache.misses);
        family(&mut out, "lupa_cache_failures_total", "counter", "Shared cache calls that failed, by kind.");
        for (kind, n) in
            [("error", self.cache.errors), ("timeout", self.cache.timeouts), ("skipped", self.cache.skipped)]
        {
            let _ = writeln!(out, "lupa_cache_failures_total{{kind=\"{kind}\"}} {n}");
        }
        family(&mut out, "lupa_cache_breaker_opened_total", "counter", "How often the circuit breaker opened.");
        let _ = writeln!(out, "lupa_cache_breaker_opened_total {}", self.cache.breaker_opened);
        if let Some(state) = self.cache.breaker {
            family(
                &mut out,
                "lupa_cache_breaker_state",
                "gauge",
                "The circuit breaker's state (1 for the current one).",
            );
            for (name, s) in
                [("closed", BreakerState::Closed), ("open", BreakerState::Open), ("half_open", BreakerState::HalfOpen)]
            {
                let _ = writeln!(out, "lupa_cache_breaker_state{{state=\"{name}\"}} {}", u8::from(state == s));
            }
        }
        if let Some(n) = self.local_projects {
            family(&mut out, "lupa_local_projects", "gauge", "Projects held in process memory.");
            let _ = writeln!(out, "lupa_local_projects {n}");
        }
        family(&mut out, "lupa_store_queries_total", "counter", "Operations sent to the store.");
        let _ = writeln!(out, "lupa_store_queries_total {}", self.store.queries);
        family(&mut out, "lupa_store_unavailable_total", "counter", "Store operations that failed as unavailable.");
        let _ = writeln!(out, "lupa_store_unavailable_total {}", self.store.unavailable);

        let h = &self.latency;
        family(
            &mut out,
            "lupa_resolve_duration_seconds",
            "histogram",
            "How long resolutions took that process memory could not answer.",
        );
        let mut cumulative = 0u64;
        for (bound, n) in h.bounds_us.iter().zip(&h.counts) {
            cumulative += n;
            let _ = writeln!(out, "lupa_resolve_duration_seconds_bucket{{le=\"{}\"}} {cumulative}", seconds(*bound));
        }
        let _ = writeln!(out, "lupa_resolve_duration_seconds_bucket{{le=\"+Inf\"}} {}", h.count());
        let _ = writeln!(out, "lupa_resolve_duration_seconds_sum {}", h.sum_ns as f64 / 1e9);
        let _ = writeln!(out, "lupa_resolve_duration_seconds_count {}", h.count());

        family(&mut out, "lupa_deployment_resolutions_total", "counter", "Successful resolutions per deployment.");
        for d in &self.deployments {
            let _ = writeln!(
                out,
                "lupa_deployment_resolutions_total{{project=\"{}\",deployment=\"{}\"}} {}",
                d.project, d.deployment, d.resolutions
            );
        }
        family(
            &mut out,
            "lupa_untracked_deployment_resolutions_total",
            "counter",
            "Successful resolutions of deployments beyond those tracked one by one.",
        );
        let _ = writeln!(out, "lupa_untracked_deployment_resolutions_total {}", self.untracked_deployment_resolutions);
        family(&mut out, "lupa_promotions_total", "counter", "Promotions that changed production.");
        let _ = writeln!(out, "lupa_promotions_total {}", self.promotions);
        family(&mut out, "lupa_rollbacks_total", "counter", "Rollbacks.");
        let _ = writeln!(out, "lupa_rollbacks_total {}", self.rollbacks);
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Microseconds as seconds, exactly (no float rounding in `le` labels).
fn seconds(micros: u64) -> String {
    let (whole, frac) = (micros / 1_000_000, micros % 1_000_000);
    if frac == 0 { format!("{whole}") } else { format!("{whole}.{:06}", frac).trim_end_matches('0').to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(source: Source, d: &str) -> Result<Resolution> {
        Ok(Resolution { deployment: Some(DeploymentId::new(d).unwrap()), source })
    }

    #[test]
    fn counts_outcomes_latency_and_deployments() {
        let m = Metrics::new();
        let p = "abc1234567";
        m.resolution(p, &found(Source::Local, "def4567890"));
        m.resolution(p, &found(Source::Store, "def4567890"));
        m.resolution(p, &Err(crate::Error::of_resolution(ErrorCode::InvalidApiKey)));
        for took in [Duration::from_nanos(700), Duration::from_micros(800), Duration::from_secs(9)] {
            m.latency(took);
        }
        let s = m.snapshot(None, None);
        assert_eq!((s.resolutions.local, s.resolutions.cache, s.resolutions.store), (1, 0, 1));
        assert_eq!(s.resolutions.errors_with(ErrorCode::InvalidApiKey), 1);
        assert_eq!(s.resolutions.total(), 3);
        assert_eq!(s.latency.counts[0], 1, "700 ns is at most 1 µs");
        assert_eq!(s.latency.counts[LATENCY_BOUNDS_US.iter().position(|b| *b == 1_000).unwrap()], 1);
        assert_eq!(*s.latency.counts.last().unwrap(), 1, "9 s is past the last bound");
        assert_eq!(s.latency.sum_ns, 9_000_800_700);
        assert_eq!(s.deployments.len(), 1);
        assert_eq!((s.deployments[0].project.as_str(), s.deployments[0].resolutions), (p, 2));
    }

    #[test]
    fn deployments_beyond_the_table_are_untracked() {
        let m = Metrics::new();
        let n = TRACKED_DEPLOYMENTS * 2;
        for i in 0..n {
            m.resolution("abc1234567", &found(Source::Cache, &format!("d{i}")));
        }
        let s = m.snapshot(None, None);
        assert!(s.deployments.len() <= TRACKED_DEPLOYMENTS);
        let tracked: u64 = s.deployments.iter().map(|d| d.resolutions).sum();
        assert_eq!(tracked + s.untracked_deployment_resolutions, n as u64);
        assert!(s.untracked_deployment_resolutions >= TRACKED_DEPLOYMENTS as u64);
    }

    #[test]
    fn slots_spread_over_the_table() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..512 {
            let slot = Key::of(format!("dep{i:07}").as_bytes()).slot();
            assert!(slot < TRACKED_DEPLOYMENTS);
            seen.insert(slot);
        }
        assert!(seen.len() > 300, "512 ids fell in {} slots", seen.len());
        assert!(Key::of(b"").slot() < TRACKED_DEPLOYMENTS && Key::of(b"d").slot() != Key::of(b"e").slot());
    }

    #[test]
    fn keys_of_short_ids_are_the_whole_id() {
        let ids = ["d", "e", "de", "ed", "abcdefg", "abcdefgh", "abcdefgi", "bbcdefgh", "abc1234567", "abc1234568"];
        for a in ids {
            for b in ids {
                assert_eq!(Key::of(a.as_bytes()) == Key::of(b.as_bytes()), a == b, "{a} {b}");
            }
        }
        let long = "x".repeat(17);
        assert!(!Key::of(long.as_bytes()).is_whole() && Key::of(b"0123456789abcdef").is_whole());
    }

    #[test]
    fn le_labels_are_exact() {
        assert_eq!(seconds(1), "0.000001");
        assert_eq!(seconds(2_500), "0.0025");
        assert_eq!(seconds(1_000_000), "1");
        assert_eq!(seconds(5_000_000), "5");
    }
}
