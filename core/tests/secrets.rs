//! Passwords in store and cache URLs, and API keys, never show: not in an
//! error's Display or Debug, not in the Debug of `Config`, `Lupa` or
//! `ResolveRequest`, not in any `tracing` event or span a host's subscriber
//! sees (semantics.md, "Secrets"; INVALID_ARGUMENT never echoes a secret).
//!
//! Nothing listens on 127.0.0.1:1, so every connection fails there: the
//! failures are the point.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lupa_core::{Caller, Config, ErrorCode, Lupa, NewProject, ResolveRequest, parse_api_key};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const PASSWORD: &str = "S3cretPw";
const STORE_URL: &str = "postgres://user:S3cretPw@127.0.0.1:1/db";
const CACHE_URL: &str = "redis://:S3cretPw@127.0.0.1:1";
/// The random part of the keys below: what must never show.
const KEY_SECRET: &str = "K3ySecretPartK3ySecretPart42";
const VALID_KEY: &str = "lupa_sk_live_K3ySecretPartK3ySecretPart42";
const MALFORMED_KEY: &str = "lupa_xx_live_K3ySecretPartK3ySecretPart42";

/// Every event and span of every thread, as text with all its fields.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Log {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut text = Text(format!("{} {}", event.metadata().level(), event.metadata().target()));
        event.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut text = Text(format!("span {}", attrs.metadata().name()));
        attrs.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut text = Text("record".into());
        values.record(&mut text);
        self.0.lock().unwrap().push(text.0);
    }
}

/// The process-wide subscriber (the library logs from its own tasks, on
/// any thread), installed once for every test of this file.
fn log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Log::default();
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(log.clone()))
            .expect("no other subscriber in this test binary");
        log
    })
}

fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(PASSWORD), "{what} shows the password: {text}");
    assert!(!text.contains(KEY_SECRET), "{what} shows the API key: {text}");
}

fn assert_error_hidden(what: &str, e: &lupa_core::Error) {
    assert_hidden(&format!("{what} (Display)"), &e.to_string());
    assert_hidden(&format!("{what} (Debug)"), &format!("{e:?}"));
    assert_hidden(&format!("{what} (Debug, alternate)"), &format!("{e:#?}"));
    assert_hidden(&format!("{what} (message)"), e.message());
    assert_hidden(&format!("{what} (http body)"), &e.http_body());
}

fn assert_log_hidden() {
    let log = log().0.lock().unwrap();
    for line in log.iter() {
        assert_hidden("a tracing event", line);
    }
}

fn quick(store: &str, cache: &str) -> Config {
    let mut c = Config::new(store, cache);
    c.store_timeout = Duration::from_millis(500);
    c.cache_timeout = Duration::from_millis(200);
    c
}

#[test]
fn config_debug_hides_passwords() {
    let c = Config::new(STORE_URL, CACHE_URL);
    for text in [format!("{c:?}"), format!("{c:#?}")] {
        assert_hidden("Config Debug", &text);
        assert!(text.contains("127.0.0.1:1"), "the rest of the URL still shows: {text}");
    }
    let c = Config::new("postgres://user:S3cretPw@127.0.0.1:1/db?password=S3cretPw", "rediss://user:S3cretPw@h:1/0");
    assert_hidden("Config Debug (password in the query, rediss)", &format!("{c:?}"));
}

#[tokio::test]
async fn an_unreachable_store_fails_without_its_password() {
    log();
    let e = Lupa::open(quick(STORE_URL, "none")).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::StorageUnavailable, "{e}");
    assert_error_hidden("open on an unreachable PostgreSQL", &e);
    // The same store behind an unreachable cache.
    let e = Lupa::open(quick(STORE_URL, CACHE_URL)).await.unwrap_err();
    assert_error_hidden("open on unreachable PostgreSQL and Redis", &e);
    assert_log_hidden();
}

#[tokio::test]
async fn an_unreachable_cache_degrades_without_its_password() {
    log();
    let mut config = quick("memory://", CACHE_URL);
    config.breaker_threshold = 2;
    let lupa = match Lupa::open(config).await {
        Ok(lupa) => lupa,
        Err(e) => {
            assert_error_hidden("open on an unreachable Redis", &e);
            assert_log_hidden();
            return;
        }
    };
    assert_hidden("Lupa Debug", &format!("{lupa:?}"));
    assert_hidden("Lupa Debug, alternate", &format!("{lupa:#?}"));
    lupa.create_project(NewProject { id: Some("p1".into()), org_id: "o".into(), name: "n".into() }).await.unwrap();
    // Enough failing cache calls to open the breaker, which logs.
    for _ in 0..4 {
        let r = lupa.resolve(&ResolveRequest::new("p1", Caller::ApiKey(VALID_KEY.into()))).await;
        let e = r.unwrap_err();
        assert_eq!(e.code(), ErrorCode::NoProductionDeployment, "{e}");
        assert_error_hidden("resolve behind an unreachable Redis", &e);
    }
    let health = lupa.health().await;
    assert_hidden("health", &format!("{health:?}"));
    assert_hidden("Lupa Debug after failures", &format!("{lupa:?}"));
    lupa.close().await;
    assert_log_hidden();
    let log = log().0.lock().unwrap();
    assert!(log.iter().any(|l| l.contains("lupa_core::cache")), "the cache failures were logged: {log:?}");
}

#[tokio::test]
async fn api_keys_never_show() {
    log();
    // ResolveRequest's Debug, with a valid key and with a malformed one.
    for key in [VALID_KEY, MALFORMED_KEY] {
        let request = ResolveRequest::new("p1", Caller::ApiKey(key.into())).deployment_id("d1");
        assert_hidden("ResolveRequest Debug", &format!("{request:?}"));
        assert_hidden("ResolveRequest Debug, alternate", &format!("{request:#?}"));
        assert_hidden("Caller Debug", &format!("{:?}", request.caller));
        let from_headers = ResolveRequest::from_headers("p1", Some(&format!("Bearer {key}")), None, true).unwrap();
        assert_hidden("ResolveRequest::from_headers Debug", &format!("{from_headers:?}"));
    }
    // A malformed key's error does not echo it, wherever it is rejected.
    let e = parse_api_key(MALFORMED_KEY).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidApiKey);
    assert_error_hidden("parse_api_key", &e);
    for header in [format!("Basic {VALID_KEY}"), VALID_KEY.to_string()] {
        let e = ResolveRequest::from_headers("p1", Some(&header), None, true).unwrap_err();
        assert_error_hidden("from_headers with a bad scheme", &e);
    }
    let info = parse_api_key(VALID_KEY).unwrap();
    assert_hidden("ApiKeyInfo Debug", &format!("{info:?}"));
    // Through resolve, with the library logging its spans.
    let lupa = Lupa::open(Config::new("memory://", "memory://")).await.unwrap();
    lupa.create_project(NewProject { id: Some("p1".into()), org_id: "o".into(), name: "n".into() }).await.unwrap();
    let e = lupa.resolve(&ResolveRequest::new("p1", Caller::ApiKey(MALFORMED_KEY.into()))).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidApiKey);
    assert_error_hidden("resolve with a malformed key", &e);
    // A malformed key with bad ids: the key wins, and nothing is echoed.
    let bad = ResolveRequest::new("bad id", Caller::ApiKey(format!("{MALFORMED_KEY}\n"))).deployment_id("x y");
    let e = lupa.resolve(&bad).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidApiKey);
    assert_error_hidden("resolve with a malformed key and bad ids", &e);
    // Two spaces after Bearer: the key taken from the header is malformed.
    let doubled = ResolveRequest::from_headers("p1", Some(&format!("Bearer  {VALID_KEY}")), None, true).unwrap();
    assert_hidden("ResolveRequest Debug, key with a space", &format!("{doubled:?}"));
    let e = lupa.resolve(&doubled).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidApiKey);
    assert_error_hidden("resolve with a key after two spaces", &e);
    let e = lupa.resolve(&ResolveRequest::new("p1", Caller::ApiKey(VALID_KEY.into()))).await.unwrap_err();
    assert_error_hidden("resolve with a valid key", &e);
    let _ = Caller::from_parts(Some(KEY_SECRET), None, false, None).map_err(|e| assert_error_hidden("from_parts", &e));
    lupa.close().await;
    assert_log_hidden();
}
