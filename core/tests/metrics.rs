//! The counters move exactly as a scripted sequence of calls predicts, on
//! every tier, and the Prometheus text is well formed.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use lupa_core::metrics::Stats;
use lupa_core::{
    BreakerState, Caller, Config, CreateDeployment, Environment, ErrorCode, FinalStatus, KeyEnvironment, Lupa,
    NewProject, ResolveRequest,
};

const LIVE_KEY: &str = "lupa_sk_live_7x9Kp2mN4qR8tV3wY6zB1cD5fG0hJ";

fn live(project: &str) -> ResolveRequest {
    ResolveRequest::new(project, Caller::KeyEnvironment(KeyEnvironment::Live))
}

async fn ready_deployment(lupa: &Lupa, project: &str, id: &str, environment: Environment) {
    lupa.create_deployment(CreateDeployment {
        project: project.into(),
        id: Some(id.into()),
        snapshot: "snp1".into(),
        environment,
        created_at: None,
    })
    .await
    .unwrap();
    lupa.set_status(id, FinalStatus::Ready, None).await.unwrap();
}

async fn project(lupa: &Lupa, id: &str) {
    lupa.create_project(NewProject { id: Some(id.into()), org_id: "org".into(), name: "P".into() }).await.unwrap();
}

fn resolved(s: &Stats, deployment: &str) -> u64 {
    s.deployments.iter().find(|d| d.deployment.as_str() == deployment).map_or(0, |d| d.resolutions)
}

#[tokio::test]
async fn every_tier_counts_as_the_sequence_predicts() {
    let mut config = Config::new("sqlite::memory:", "memory://");
    // The background task's periodic store query would race the counts.
    config.outbox_interval = Duration::from_secs(3600);
    let lupa = Lupa::open(config).await.unwrap();
    project(&lupa, "p1").await;
    // Created for production: promoted the moment it is ready (a promotion).
    ready_deployment(&lupa, "p1", "d1", Environment::Production).await;
    let s = lupa.stats();
    assert_eq!(s.promotions, 1, "promote-when-ready counts as a promotion");
    assert_eq!(s.resolutions.total(), 0);

    // First resolve: misses process memory and the shared cache, the store answers.
    // The background task's first look for pending cache updates, made
    // when the handle opened, has finished by then.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = lupa.stats().store.queries;
    assert_eq!(lupa.resolve(&live("p1")).await.unwrap().deployment.unwrap().as_str(), "d1");
    let s = lupa.stats();
    assert_eq!((s.local.hits, s.local.misses), (0, 1));
    assert_eq!((s.cache.hits, s.cache.misses), (0, 1));
    assert_eq!(s.resolutions.store, 1);
    assert_eq!(s.store.queries, before + 1, "one statement answers a cold resolve");

    // Second and third: process memory.
    lupa.resolve(&live("p1")).await.unwrap();
    assert!(matches!(lupa.resolve_cached(&live("p1")), Some(Ok(_))));
    let s = lupa.stats();
    assert_eq!((s.local.hits, s.local.misses), (2, 1));
    assert_eq!(s.resolutions.local, 2);
    assert_eq!(s.store.queries, before + 1, "nothing more reached the store");
    assert_eq!(resolved(&s, "d1"), 3);
    assert_eq!(s.deployments[0].project.as_str(), "p1");

    // Errors by code, a malformed key first.
    let bad_key = ResolveRequest::new("p1", Caller::ApiKey("lupa_sk_nope".into()));
    assert_eq!(lupa.resolve(&bad_key).await.unwrap_err().code(), ErrorCode::InvalidApiKey);
    assert_eq!(lupa.resolve(&live("nosuch")).await.unwrap_err().code(), ErrorCode::ProjectNotFound);
    assert_eq!(lupa.resolve(&live("nosuch")).await.unwrap_err().code(), ErrorCode::ProjectNotFound);
    let test = ResolveRequest::new("p1", Caller::KeyEnvironment(KeyEnvironment::Test));
    assert_eq!(lupa.resolve(&test).await.unwrap_err().code(), ErrorCode::NoStagingDeployment);
    let s = lupa.stats();
    assert_eq!(s.resolutions.errors_with(ErrorCode::InvalidApiKey), 1);
    assert_eq!(s.resolutions.errors_with(ErrorCode::ProjectNotFound), 2);
    assert_eq!(s.resolutions.errors_with(ErrorCode::NoStagingDeployment), 1);
    assert_eq!(s.resolutions.total(), 7);
    // Timed: what went past process memory (the first resolve, the first
    // unknown project, the test key); the second unknown project was a
    // negative answer held in memory.
    assert_eq!(s.latency.count(), 3);
    assert_eq!(s.local.hits, 3);

    // A promotion and a rollback; a no-op promotion and a failed rollback count nothing.
    ready_deployment(&lupa, "p1", "d2", Environment::Staging).await;
    lupa.promote("p1", "d2").await.unwrap();
    lupa.promote("p1", "d2").await.unwrap();
    lupa.rollback("p1").await.unwrap();
    project(&lupa, "p2").await;
    assert_eq!(lupa.rollback("p2").await.unwrap_err().code(), ErrorCode::NoRollbackTarget);
    let s = lupa.stats();
    assert_eq!((s.promotions, s.rollbacks), (2, 1));

    // The change dropped process memory: the next answer comes from the store.
    assert_eq!(lupa.resolve(&live("p1")).await.unwrap().deployment.unwrap().as_str(), "d1");
    assert_eq!(lupa.stats().resolutions.store, 2);
    assert_eq!(s.cache.breaker, Some(BreakerState::Closed));
    assert_eq!((s.cache.errors, s.cache.timeouts, s.cache.skipped), (0, 0, 0));
    check_prometheus(&lupa.stats());
    lupa.close().await;
}

#[tokio::test]
async fn shared_cache_hits_without_the_in_process_tier() {
    let mut config = Config::new("memory://", "memory://");
    config.local_cache = false;
    let lupa = Lupa::open(config).await.unwrap();
    project(&lupa, "p1").await;
    ready_deployment(&lupa, "p1", "d1", Environment::Production).await;
    let explicit = ResolveRequest::new("p1", Caller::ApiKey(LIVE_KEY.into())).deployment_id("d1");
    for _ in 0..3 {
        lupa.resolve(&live("p1")).await.unwrap();
        lupa.resolve(&explicit).await.unwrap();
    }
    let s = lupa.stats();
    assert_eq!((s.cache.hits, s.cache.misses), (4, 2), "the first of each kind fills the cache");
    assert_eq!((s.resolutions.cache, s.resolutions.store, s.resolutions.local), (4, 2, 0));
    assert_eq!((s.local.hits, s.local.misses, s.local_projects), (0, 0, None));
    assert_eq!(resolved(&s, "d1"), 6);
}

#[tokio::test]
async fn a_dead_cache_counts_failures_and_opens_the_breaker() {
    let mut config = Config::new("memory://", "redis://127.0.0.1:1");
    config.local_cache = false;
    config.breaker_threshold = 3;
    config.breaker_cooldown = Duration::from_secs(60);
    let lupa = Lupa::open(config).await.unwrap();
    project(&lupa, "p1").await;
    ready_deployment(&lupa, "p1", "d1", Environment::Production).await;
    for _ in 0..10 {
        assert_eq!(lupa.resolve(&live("p1")).await.unwrap().deployment.unwrap().as_str(), "d1");
    }
    let s = lupa.stats();
    assert_eq!(s.cache.breaker, Some(BreakerState::Open));
    assert_eq!(s.cache.breaker_opened, 1);
    assert_eq!(s.cache.errors + s.cache.timeouts, 3, "calls fail until the breaker opens");
    assert!(s.cache.skipped >= 10, "then every call skips the cache: {}", s.cache.skipped);
    assert_eq!((s.cache.hits, s.cache.misses), (0, 0), "a failed read is neither a hit nor a miss");
    assert_eq!(s.resolutions.store, 10);
    let text = s.to_prometheus();
    assert!(text.contains("lupa_cache_breaker_state{state=\"open\"} 1"), "{text}");
    assert!(text.contains("lupa_cache_breaker_opened_total 1"), "{text}");
    check_prometheus(&s);
}

#[tokio::test]
async fn metrics_off_counts_nothing() {
    let mut config = Config::new("memory://", "memory://");
    config.metrics = false;
    let lupa = Lupa::open(config).await.unwrap();
    project(&lupa, "p1").await;
    ready_deployment(&lupa, "p1", "d1", Environment::Production).await;
    lupa.resolve(&live("p1")).await.unwrap();
    lupa.resolve(&live("p1")).await.unwrap();
    let s = lupa.stats();
    assert_eq!(s.resolutions.total(), 0);
    assert_eq!((s.promotions, s.store.queries, s.local.hits), (0, 0, 0));
    assert_eq!(s.local_projects, Some(1), "gauges still read the live state");
}

#[tokio::test]
async fn postgres_and_redis_count_the_same_way() {
    let (Some(db), Some(redis)) = (support::postgres(), support::redis()) else { return };
    let mut config = Config::new(db, redis);
    config.outbox_interval = Duration::from_secs(3600);
    config.schema = support::unique("lupa_metrics").to_lowercase();
    config.key_prefix = format!("{}:", support::unique("lupa_metrics"));
    let lupa = Lupa::open(config).await.unwrap();
    project(&lupa, "p1").await;
    ready_deployment(&lupa, "p1", "d1", Environment::Production).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = lupa.stats();
    lupa.resolve(&live("p1")).await.unwrap();
    lupa.resolve(&live("p1")).await.unwrap();
    let s = lupa.stats();
    assert_eq!(s.store.queries, before.store.queries + 1);
    assert_eq!((s.cache.misses, s.local.misses, s.local.hits), (1, 1, 1));
    assert_eq!((s.resolutions.store, s.resolutions.local), (1, 1));
    assert_eq!(s.promotions, 1);
    check_prometheus(&s);
    lupa.drop_storage().await.unwrap();
    lupa.close().await;
}

/// The text exposition format, checked line by line: every sample belongs
/// to a family declared with HELP and TYPE before it, names and labels are
/// well formed, values are numbers, histogram buckets are cumulative and
/// end in `+Inf` equal to `_count`; and the samples agree with the snapshot.
fn check_prometheus(s: &Stats) {
    let text = s.to_prometheus();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples: HashMap<String, f64> = HashMap::new();
    let mut last_bucket = 0.0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "family declared twice: {line}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
        let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && name.starts_with("lupa_"), "{line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}')).expect("labels in braces");
                for pair in inner.split(',') {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{line}");
                    assert!(v.len() >= 2 && v.starts_with('"') && v.ends_with('"'), "{line}");
                }
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|f| types.get(*f).is_some_and(|k| k == "histogram")))
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        if name.ends_with("_bucket") {
            assert!(value >= last_bucket, "buckets are cumulative: {line}");
            last_bucket = value;
        }
        assert!(samples.insert(series.to_owned(), value).is_none(), "series twice: {series}");
    }
    let get = |series: &str| samples.get(series).copied().unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert_eq!(get("lupa_resolve_duration_seconds_bucket{le=\"+Inf\"}"), s.latency.count() as f64);
    assert_eq!(get("lupa_resolve_duration_seconds_count"), s.latency.count() as f64);
    assert_eq!(get("lupa_resolutions_total{source=\"store\"}"), s.resolutions.store as f64);
    assert_eq!(get("lupa_cache_hits_total{tier=\"local\"}"), s.local.hits as f64);
    assert_eq!(get("lupa_promotions_total"), s.promotions as f64);
    for e in &s.resolutions.errors {
        assert_eq!(get(&format!("lupa_resolution_errors_total{{code=\"{}\"}}", e.code)), e.count as f64);
    }
    for d in &s.deployments {
        let series =
            format!("lupa_deployment_resolutions_total{{project=\"{}\",deployment=\"{}\"}}", d.project, d.deployment);
        assert_eq!(get(&series), d.resolutions as f64);
    }
}
