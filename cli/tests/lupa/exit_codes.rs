//! Exit codes: 0 success, 2 usage, 3 a 4xx error, 4 unavailable, 1
//! internal; and the defaults the CLI falls back to.

use std::time::Instant;

use crate::support::{Setup, closed_port, exists};

#[test]
fn help_and_version_exit_0_and_document_the_exit_codes() {
    let s = Setup::bare();
    let help = s.run(&["--help"]);
    assert_eq!(help.code, 0, "{help:?}");
    for line in ["0  success", "1  internal error", "2  usage", "3  refused", "4  unavailable"] {
        assert!(help.stdout.contains(line), "--help lacks {line:?}:\n{}", help.stdout);
    }
    for command in ["project", "deploy", "rollback", "resolve", "migrate", "health", "demo"] {
        assert!(help.stdout.contains(&format!("  {command} ")), "--help lacks {command}");
    }
    let version = s.run(&["--version"]);
    assert_eq!(version.code, 0);
    assert_eq!(version.stdout.trim(), format!("lupa {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(s.run(&["deploy", "create", "--help"]).code, 0);
    assert!(!exists(&s.path("lupa.db")), "help opens no store");
}

#[test]
fn usage_errors_exit_2_before_the_store_is_touched() {
    let s = Setup::bare();
    let cases: &[&[&str]] = &[
        &[],
        &["bogus"],
        &["project"],
        &["project", "create", "--name", "no org"],
        &["project", "ls", "--limit", "0"],
        &["project", "ls", "--limit", "1001"],
        &["project", "ls", "--limit", "ten"],
        &["deploy", "create", "p1", "--snapshot", "s1", "--environment", "prod"],
        &["deploy", "create", "p1", "--snapshot", "s1", "--created-at", "yesterday"],
        &["deploy", "create", "p1"],
        &["deploy", "env", "p1", "d1", "live"],
        &["deploy", "promote", "p1"],
        &["--store-timeout", "5x", "health"],
        &["--store-timeout", "0ms", "health"],
        &["resolve", "p1"],
        &["resolve", "p1", "--key-env", "prod"],
        &["resolve", "p1", "--key-env", "live", "--internal"],
        &["resolve", "p1", "--key", "k", "--internal-target", "staging"],
        &["resolve", "p1", "--internal-target", "live"],
    ];
    for args in cases {
        let r = s.run(args);
        assert_eq!(r.code, 2, "lupa {args:?}: {r:?}");
        assert_eq!(r.stdout, "", "lupa {args:?}");
        assert!(r.stderr.contains("error") || r.stderr.contains("Usage"), "lupa {args:?}: {}", r.stderr);
        let json: Vec<&str> = std::iter::once("--json").chain(args.iter().copied()).collect();
        assert_eq!(s.run(&json).code, 2, "lupa {json:?}");
    }
    assert!(!exists(&s.path("lupa.db")), "a usage error opens no store");
}

#[test]
fn a_store_cache_schema_or_prefix_the_library_cannot_open_exits_2() {
    let s = Setup::bare();
    for (args, error) in [
        (&["--store", "mysql://h/db", "migrate"][..], "INVALID_ARGUMENT"),
        (&["--cache", "memcached://h", "migrate"], "INVALID_ARGUMENT"),
        (&["--schema", "Not-A-Schema", "migrate"], "INVALID_ARGUMENT"),
        (&["--key-prefix", "two words", "migrate"], "INVALID_ARGUMENT"),
    ] {
        let message = s.fails(args, 2, error);
        assert!(!message.is_empty(), "{args:?}");
        let human = s.run(args);
        assert_eq!(human.code, 2);
        assert!(human.stderr.starts_with(&format!("error: {error}: ")), "{}", human.stderr);
    }
}

#[test]
fn refusals_exit_3_with_the_code_on_stderr() {
    let s = Setup::sqlite();
    let r = s.run(&["resolve", "nosuchprj", "--key-env", "live"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "error: PROJECT_NOT_FOUND: Project not found\n");
    let r = s.run(&["resolve", "nosuchprj", "--key", "lupa_sk_live_"]);
    assert_eq!(r.code, 3);
    assert_eq!(r.stderr, "error: INVALID_API_KEY: API Key is not valid\n");
    s.fails(&["deploy", "ls", "nosuchprj"], 3, "PROJECT_NOT_FOUND");
}

#[test]
fn an_unreachable_store_exits_4() {
    let s = Setup::bare();
    let store = format!("postgres://postgres@127.0.0.1:{}/postgres", closed_port());
    for command in [&["project", "ls"][..], &["migrate"], &["health"], &["resolve", "p1", "--key-env", "live"]] {
        let mut args = vec!["--store", &store, "--store-timeout", "1s"];
        args.extend_from_slice(command);
        let started = Instant::now();
        s.fails(&args, 4, "STORAGE_UNAVAILABLE");
        assert!(started.elapsed().as_secs() < 30, "the store timeout bounds the wait");
        let human = s.run(&args);
        assert_eq!(human.code, 4);
        assert!(human.stderr.starts_with("error: STORAGE_UNAVAILABLE: Storage is unavailable\n"), "{}", human.stderr);
        assert!(human.stderr.contains("-v"), "a hint at the log: {}", human.stderr);
    }
    let verbose = s.run(&["--store", &store, "--store-timeout", "1s", "-v", "project", "ls"]);
    assert_eq!(verbose.code, 4);
    assert!(verbose.stderr.contains("lupa_core::store"), "-v shows the library's log: {}", verbose.stderr);
}

#[test]
fn health_exits_4_when_the_configured_cache_is_down() {
    let s = Setup::sqlite();
    let cache = format!("redis://127.0.0.1:{}", closed_port());
    let r = s.run(&["--json", "--cache", &cache, "health"]);
    assert_eq!(r.code, 4, "{r:?}");
    let h: serde_json::Value = serde_json::from_str(&r.stdout).expect("the health document");
    assert_eq!(h["healthy"], false);
    assert_eq!(h["store"]["state"], "ok");
    assert_eq!(h["cache"]["state"], "unavailable");
    assert!(h["cache"]["detail"].as_str().is_some_and(|d| !d.is_empty()), "{h}");
    // Everything else works without the cache: it is an optimisation.
    let p = s.run(&["--json", "--cache", &cache, "project", "create", "--org", "o", "--name", "n"]);
    assert_eq!(p.code, 0, "{p:?}");
}

#[test]
fn a_store_file_that_is_not_a_database_exits_1() {
    let s = Setup::bare();
    std::fs::write(s.path("garbage.db"), "this file is not an SQLite database, whatever its name says ".repeat(100))
        .expect("write the file");
    let store = format!("sqlite://{}", s.path("garbage.db").display());
    s.fails(&["--store", &store, "project", "ls"], 1, "INTERNAL");
    let human = s.run(&["--store", &store, "project", "ls"]);
    assert_eq!(human.code, 1);
    assert!(human.stderr.starts_with("error: INTERNAL: "), "{}", human.stderr);
}

#[test]
fn the_default_store_is_lupa_db_in_the_working_directory() {
    let s = Setup::bare();
    assert!(!exists(&s.path("lupa.db")));
    let p = s.ok(&["project", "create", "--org", "o", "--name", "n", "--id", "default1"]);
    assert_eq!(p["id"], "default1");
    assert!(exists(&s.path("lupa.db")), "created when missing");
    let m = s.ok(&["migrate"]);
    assert_eq!(m["store"], "sqlite://lupa.db");
    let h = s.ok(&["health"]);
    assert_eq!(h["cache"]["state"], "disabled", "no cache by default");
    // A second process sees what the first wrote.
    assert_eq!(s.ok(&["project", "ls"])["items"][0]["id"], "default1");
}

#[test]
fn the_environment_names_the_store() {
    let mut s = Setup::bare();
    s.set("LUPA_STORE", format!("sqlite://{}", s.path("from-env.db").display()));
    s.ok(&["project", "create", "--org", "o", "--name", "n", "--id", "fromenv1"]);
    assert!(exists(&s.path("from-env.db")));
    assert!(!exists(&s.path("lupa.db")));
    s.set("LUPA_STORE_TIMEOUT", "soon");
    assert_eq!(s.run(&["project", "ls"]).code, 2, "a malformed LUPA_STORE_TIMEOUT is a usage error");
}
