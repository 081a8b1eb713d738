//! What the integration tests share: where the real services are, and the
//! rule that a missing service fails under CI instead of skipping.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

pub fn database_url() -> String {
    std::env::var("LUPA_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("LUPA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn reachable(url: &str, default_port: u16) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let addr = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:{default_port}") };
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

fn require(what: &str, url: &str, port: u16) -> bool {
    if reachable(url, port) {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is not reachable at {} and CI=true: a missing service fails the run", lupa_core::redact_url(url));
    }
    eprintln!("SKIPPED: {what} is not reachable at {}", lupa_core::redact_url(url));
    false
}

/// The PostgreSQL URL when the server answers (under CI a missing server
/// panics).
pub fn postgres() -> Option<String> {
    let url = database_url();
    require("PostgreSQL", &url, 5432).then_some(url)
}

/// The Redis URL when the server answers (under CI a missing server panics).
pub fn redis() -> Option<String> {
    let url = redis_url();
    require("Redis", &url, 6379).then_some(url)
}

pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/vectors")
}

/// A name no other test run uses: for schemas, prefixes and files.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{tag}_{}_{n}_{nanos}", std::process::id())
}
