//! Passwords in store and cache URLs and API keys never appear in any
//! output: results, errors, usage errors, help, the log.

use crate::support::{Run, Setup, closed_port, database_url};

const PASSWORD: &str = "Pg-S3cret-9f2c";
const CACHE_PASSWORD: &str = "Rd-S3cret-41ab";
const KEY_SECRET: &str = "K3ySecretPartXq9Zw8";

fn assert_clean(what: &str, r: &Run) {
    for secret in [PASSWORD, CACHE_PASSWORD, KEY_SECRET] {
        assert!(!r.all().contains(secret), "{what} printed a secret:\n{}", r.all());
    }
}

/// `url` with `password` for its user's password.
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, path) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
    let (user, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (userinfo.split(':').next().unwrap_or("postgres"), host),
        None => ("postgres", authority),
    };
    format!("{scheme}://{user}:{password}@{host}{path}")
}

#[test]
fn store_and_cache_passwords_never_appear() {
    let s = Setup::bare();
    let down = format!("postgres://app:{PASSWORD}@127.0.0.1:{}/lupa", closed_port());
    let cache_down = format!("redis://:{CACHE_PASSWORD}@127.0.0.1:{}", closed_port());
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("an unreachable store", vec!["--store", &down, "--store-timeout", "1s", "project", "ls"]),
        ("its log", vec!["-vv", "--store", &down, "--store-timeout", "1s", "project", "ls"]),
        ("its JSON error", vec!["--json", "-v", "--store", &down, "--store-timeout", "1s", "health"]),
        ("an unknown scheme", vec!["--store", "mysql://app:Pg-S3cret-9f2c@h/db", "migrate"]),
        ("a usage error", vec!["--store", &down, "--limit", "x", "project", "ls"]),
        ("a bad duration", vec!["--store", &down, "--store-timeout", "later", "health"]),
        ("a cache that refuses", vec!["-vv", "--cache", &cache_down, "health"]),
        ("a cache that refuses, JSON", vec!["--json", "--cache", &cache_down, "health"]),
        ("migrate", vec!["--cache", &cache_down, "migrate"]),
    ];
    for (what, args) in &runs {
        let r = s.run(args);
        assert_ne!(r.code, -1, "{what}");
        assert_clean(what, &r);
    }
    // The URL is shown, its password hidden.
    let r = s.run(&["--cache", &cache_down, "health"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stdout.contains("redis://:***@127.0.0.1:"), "{}", r.stdout);

    // Nor in --help, whatever the environment holds.
    let mut s = Setup::bare();
    s.set("LUPA_STORE", down.clone());
    s.set("LUPA_CACHE", cache_down.clone());
    for args in [&["--help"][..], &["resolve", "--help"], &["deploy", "ls", "--help"], &["bogus"]] {
        assert_clean("help", &s.run(args));
    }
}

#[test]
fn a_password_for_a_reachable_store_never_appears() {
    let Some(s) = Setup::postgres_redis() else { return };
    // With trust authentication the password is ignored and the commands
    // succeed; with password authentication they fail. Either way it stays
    // hidden.
    let store = with_password(&database_url(), PASSWORD);
    let cache = format!("redis://:{CACHE_PASSWORD}@{}", crate::support::host_port(&crate::support::redis_url(), 6379));
    for args in [
        &["--store", &store, "migrate"][..],
        &["--store", &store, "--json", "migrate"],
        &["--store", &store, "--cache", &cache, "health"],
        &["--store", &store, "--cache", &cache, "--json", "-vv", "health"],
        &["--store", &store, "-vv", "project", "ls"],
    ] {
        let r = s.run(args);
        assert_clean("a reachable store", &r);
        if r.code == 0 {
            assert!(r.stdout.contains(":***@") || args.contains(&"ls"), "the URL is shown redacted: {}", r.stdout);
        }
    }
}

#[test]
fn api_keys_never_appear() {
    let s = Setup::sqlite();
    s.ok(&["project", "create", "--org", "o", "--name", "n", "--id", "p1"]);
    let live = format!("lupa_sk_live_{KEY_SECRET}");
    let legacy = format!("lupa_sk_{KEY_SECRET}{KEY_SECRET}");
    let malformed = format!("lupa_sk_live_{KEY_SECRET}!");
    let cases: Vec<Vec<&str>> = vec![
        vec!["resolve", "p1", "--key", &live],
        vec!["--json", "resolve", "p1", "--key", &live],
        vec!["-vv", "resolve", "p1", "--key", &legacy],
        vec!["resolve", "nosuchprj", "--key", &live],
        vec!["--json", "resolve", "p1", "--key", &malformed],
        vec!["resolve", "p1", "--key", &malformed, "--deployment-id", "bad id"],
        // A key where none belongs: clap quotes the stray argument.
        vec!["resolve", "p1", &live],
        vec!["resolve", "p1", "--key-env", &live],
        vec!["resolve", "p1", "--key", &live, "--key-env", "live"],
        vec!["deploy", "show", &live],
    ];
    for args in &cases {
        let r = s.run(args);
        assert_ne!(r.code, 0, "{args:?} should have failed: {r:?}");
        assert_clean(&format!("lupa {}", args.len()), &r);
    }
    // A stray key is still recognisable as one, secret part hidden.
    let r = s.run(&["resolve", "p1", &live]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("lupa_sk_live_***"), "{}", r.stderr);
}
