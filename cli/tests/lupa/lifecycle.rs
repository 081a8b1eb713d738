//! Every command end to end, through `--json`, on each store: projects,
//! deployments from creation to deletion, promotion, the environment,
//! rollback, history, resolution with every kind of caller, paging.

use serde_json::Value;

use crate::support::{Setup, cache_get};

const LIVE_KEY: &str = "lupa_sk_live_Zq8Xw7Vu6Ts5Rq4Po3Nm2Lk1Jh0Gf";
const TEST_KEY: &str = "lupa_pk_test_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St";

fn ids(list: &Value) -> Vec<String> {
    list["items"].as_array().expect("items").iter().map(|i| i["id"].as_str().expect("an id").to_owned()).collect()
}

fn is_generated_id(id: &str) -> bool {
    id.len() == 10 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn time(v: &Value) -> lupa_core::Timestamp {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    assert!(text.ends_with('Z'), "{text}");
    lupa_core::parse_timestamp(text).unwrap_or_else(|_| panic!("not RFC 3339: {text}"))
}

/// What `lupa resolve PROJECT ARGS` answers: the deployment and the tier.
fn resolve(s: &Setup, project: &str, args: &[&str]) -> (Option<String>, String) {
    let mut all = vec!["resolve", project];
    all.extend_from_slice(args);
    let r = s.ok(&all);
    assert_eq!(r["project"], project);
    (r["deployment"].as_str().map(str::to_owned), r["source"].as_str().expect("a source").to_owned())
}

fn resolves(s: &Setup, project: &str, args: &[&str]) -> Option<String> {
    resolve(s, project, args).0
}

fn lifecycle(s: &Setup) {
    // ----- projects
    let p = s.ok(&["project", "create", "--org", "org_1", "--name", "Docs", "--id", "prj0000001"]);
    assert_eq!(p["id"], "prj0000001");
    assert_eq!(p["org_id"], "org_1");
    assert_eq!(p["name"], "Docs");
    assert_eq!(time(&p["created_at"]), time(&p["updated_at"]));
    let generated = s.ok(&["project", "create", "--org", "org_2", "--name", "Ünïcode name"]);
    let other = generated["id"].as_str().expect("an id").to_owned();
    assert!(is_generated_id(&other), "{other}");
    assert_eq!(generated["name"], "Ünïcode name");
    s.fails(&["project", "create", "--org", "org_1", "--name", "Again", "--id", "prj0000001"], 3, "PROJECT_EXISTS");
    s.fails(&["project", "create", "--org", "org_1", "--name", "Bad", "--id", "bad id"], 3, "INVALID_ARGUMENT");
    s.fails(&["project", "create", "--org", "org_1", "--name", ""], 3, "INVALID_ARGUMENT");

    let all = s.ok(&["project", "ls"]);
    let mut expected = vec!["prj0000001".to_string(), other.clone()];
    expected.sort();
    assert_eq!(ids(&all), expected, "projects in id order");
    assert!(all["next_cursor"].is_null());
    let first = s.ok(&["project", "ls", "--limit", "1"]);
    assert_eq!(ids(&first), expected[..1]);
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let second = s.ok(&["project", "ls", "--limit", "1", "--cursor", &cursor]);
    assert_eq!(ids(&second), expected[1..]);

    // ----- deployments: creation
    let p = "prj0000001";
    let d1 = s.ok(&[
        "deploy",
        "create",
        p,
        "--snapshot",
        "snp1",
        "--id",
        "dep1",
        "--created-at",
        "2025-10-28T12:01:00+02:00",
    ]);
    assert_eq!(d1["id"], "dep1");
    assert_eq!(d1["project_id"], p);
    assert_eq!(d1["snapshot_id"], "snp1");
    assert_eq!(d1["environment"], "staging");
    assert_eq!(d1["status"], "processing");
    assert_eq!(d1["created_at"], "2025-10-28T10:01:00.000000Z", "normalised to UTC with microseconds");
    assert_eq!(d1["promote_when_ready"], false);
    assert!(d1["failure_message"].is_null());
    assert_eq!(d1["cache_pending"], false);
    s.ok(&["deploy", "create", p, "--snapshot", "snp2", "--id", "dep2", "--created-at", "2025-10-28T10:02:00Z"]);
    let d3 = s.ok(&[
        "deploy",
        "create",
        p,
        "--snapshot",
        "snp3",
        "--id",
        "dep3",
        "--environment",
        "production",
        "--created-at",
        "2025-10-28T10:03:00Z",
    ]);
    assert_eq!(d3["environment"], "staging", "created for production, it waits in staging");
    assert_eq!(d3["promote_when_ready"], true);
    let newest = s.ok(&["deploy", "create", p, "--snapshot", "snp4"]);
    let newest = newest["id"].as_str().expect("an id").to_owned();
    assert!(is_generated_id(&newest), "{newest}");
    s.fails(&["deploy", "create", p, "--snapshot", "snp1", "--id", "dep1"], 3, "DEPLOYMENT_EXISTS");
    s.fails(&["deploy", "create", "nosuchprj", "--snapshot", "snp1"], 3, "PROJECT_NOT_FOUND");

    // Nothing is ready: no caller gets an answer.
    s.fails(&["resolve", p, "--key-env", "live"], 3, "NO_PRODUCTION_DEPLOYMENT");
    s.fails(&["resolve", p, "--key-env", "test"], 3, "NO_STAGING_DEPLOYMENT");
    s.fails(&["deploy", "promote", p, "dep1"], 3, "DEPLOYMENT_NOT_READY");

    // ----- processing finishes
    let ready = s.ok(&["deploy", "ready", "dep1"]);
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["environment"], "staging");
    assert_eq!(s.ok(&["deploy", "ready", "dep1"])["status"], "ready", "ready again is a no-op");
    s.fails(&["deploy", "fail", "dep1"], 3, "INVALID_STATUS_TRANSITION");
    s.fails(&["deploy", "ready", "nosuchdep"], 3, "DEPLOYMENT_NOT_FOUND");
    assert_eq!(resolves(s, p, &["--key", TEST_KEY]).as_deref(), Some("dep1"));
    assert_eq!(resolves(s, p, &["--internal-target", "staging"]).as_deref(), Some("dep1"));
    s.fails(&["resolve", p, "--internal"], 3, "NO_PRODUCTION_DEPLOYMENT");

    // ----- promotion
    let promoted = s.ok(&["deploy", "promote", p, "dep1"]);
    assert_eq!(promoted["success"], true);
    assert_eq!(promoted["deployment"]["id"], "dep1");
    assert_eq!(promoted["deployment"]["environment"], "production");
    assert_eq!(promoted["deployment"]["status"], "ready");
    assert!(promoted["demoted"].is_null());
    assert_eq!(promoted["cache_pending"], false);
    for caller in
        [&["--key-env", "live"][..], &["--key", LIVE_KEY], &["--internal"], &["--internal-target", "production"]]
    {
        assert_eq!(resolves(s, p, caller).as_deref(), Some("dep1"), "{caller:?}");
    }
    assert_eq!(s.ok(&["deploy", "promote", p, "dep1"])["deployment"]["id"], "dep1", "promoting it again is a no-op");

    s.ok(&["deploy", "ready", "dep2"]);
    let promoted = s.ok(&["deploy", "promote", p, "dep2"]);
    assert_eq!(promoted["deployment"]["id"], "dep2");
    assert_eq!(promoted["demoted"], "dep1");
    assert_eq!(resolves(s, p, &["--key-env", "live"]).as_deref(), Some("dep2"));
    assert_eq!(resolves(s, p, &["--key-env", "test"]).as_deref(), Some("dep1"));

    // Created for production: promoted the moment it is ready.
    let d3 = s.ok(&["deploy", "ready", "dep3"]);
    assert_eq!(d3["environment"], "production");
    assert_eq!(d3["status"], "ready");
    assert_eq!(resolves(s, p, &["--key-env", "live"]).as_deref(), Some("dep3"));
    assert_eq!(s.ok(&["deploy", "show", "dep2"])["environment"], "staging");

    // A failure, with its message.
    let failed = s.ok(&["deploy", "fail", &newest, "--message", "the index did not build"]);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failure_message"], "the index did not build");
    let shown = s.ok(&["deploy", "show", &newest]);
    assert_eq!(shown["failure_message"], "the index did not build");
    assert_eq!(shown["project_id"], p);
    s.fails(&["deploy", "show", "nosuchdep"], 3, "DEPLOYMENT_NOT_FOUND");
    s.fails(&["deploy", "promote", p, &newest], 3, "DEPLOYMENT_NOT_READY");

    // ----- listing, newest first, a page at a time
    let all = s.ok(&["deploy", "ls", p]);
    assert_eq!(ids(&all), [newest.as_str(), "dep3", "dep2", "dep1"]);
    assert!(all["next_cursor"].is_null());
    let page = s.ok(&["deploy", "ls", p, "--limit", "3"]);
    assert_eq!(ids(&page), [newest.as_str(), "dep3", "dep2"]);
    let cursor = page["next_cursor"].as_str().expect("a next page").to_owned();
    assert_eq!(ids(&s.ok(&["deploy", "ls", p, "--limit", "3", "--cursor", &cursor])), ["dep1"]);
    s.fails(&["deploy", "ls", p, "--cursor", "not-a-cursor"], 3, "INVALID_ARGUMENT");
    s.fails(&["deploy", "ls", "nosuchprj"], 3, "PROJECT_NOT_FOUND");

    // ----- the environment, without demoting anyone
    s.fails(&["deploy", "env", p, "dep1", "production"], 3, "PRODUCTION_CONFLICT");
    s.fails(&["deploy", "env", p, &newest, "production"], 3, "DEPLOYMENT_NOT_READY");
    assert_eq!(s.ok(&["deploy", "env", p, "dep3", "staging"])["environment"], "staging");
    s.fails(&["resolve", p, "--key-env", "live"], 3, "NO_PRODUCTION_DEPLOYMENT");
    assert_eq!(s.ok(&["deploy", "env", p, "dep1", "production"])["environment"], "production");
    assert_eq!(resolves(s, p, &["--key-env", "live"]).as_deref(), Some("dep1"));

    // ----- rollback: dep3 was production before dep1
    let back = s.ok(&["rollback", p]);
    assert_eq!(back["success"], true);
    assert_eq!(back["deployment"]["id"], "dep3");
    assert_eq!(back["deployment"]["environment"], "production");
    assert_eq!(back["demoted"], "dep1");
    assert_eq!(resolves(s, p, &["--key-env", "live"]).as_deref(), Some("dep3"));
    let again = s.ok(&["rollback", p]);
    assert_eq!(again["deployment"]["id"], "dep1", "two rollbacks in a row swap back");
    assert_eq!(resolves(s, p, &["--key", LIVE_KEY]).as_deref(), Some("dep1"));
    s.fails(&["rollback", &other], 3, "NO_ROLLBACK_TARGET");
    s.fails(&["rollback", "nosuchprj"], 3, "PROJECT_NOT_FOUND");

    // ----- history, newest first, a page at a time
    let history = s.ok(&["deploy", "history", p]);
    let entries = history["items"].as_array().expect("items");
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().expect("a seq")).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).rev().collect::<Vec<_>>(), "every change, numbered, newest first");
    assert_eq!(entries[0]["deployment_id"], "dep1");
    assert_eq!(entries[0]["from"], "staging");
    assert_eq!(entries[0]["to"], "production");
    let last = entries.last().expect("the first change");
    assert_eq!((last["deployment_id"].as_str(), last["to"].as_str()), (Some("dep1"), Some("production")));
    for e in entries {
        time(&e["at"]);
        assert_ne!(e["from"], e["to"], "{e}");
    }
    let first_page = s.ok(&["deploy", "history", p, "--limit", "2"]);
    let seqs_of =
        |v: &Value| v["items"].as_array().expect("items").iter().map(|e| e["seq"].clone()).collect::<Vec<_>>();
    assert_eq!(seqs_of(&first_page), seqs_of(&history)[..2]);
    let cursor = first_page["next_cursor"].as_str().expect("a next page").to_owned();
    let rest = s.ok(&["deploy", "history", p, "--cursor", &cursor]);
    assert_eq!(seqs_of(&rest), seqs_of(&history)[2..]);
    assert!(s.ok(&["deploy", "history", &other])["items"].as_array().expect("items").is_empty());

    // ----- resolution with a Deployment-Id, and routes that need none
    assert_eq!(resolves(s, p, &["--key-env", "live", "--deployment-id", "dep2"]).as_deref(), Some("dep2"));
    assert_eq!(resolves(s, p, &["--key", TEST_KEY, "--deployment-id", "dep3"]).as_deref(), Some("dep3"));
    assert_eq!(resolves(s, p, &["--key-env", "live", "--deployment-id", ""]).as_deref(), Some("dep1"), "empty is none");
    s.fails(&["resolve", p, "--key-env", "live", "--deployment-id", &newest], 3, "DEPLOYMENT_NOT_READY");
    let optional = s.ok(&["resolve", p, "--key-env", "live", "--deployment-id", &newest, "--deployment-optional"]);
    assert_eq!(optional["deployment"], newest.as_str());
    assert_eq!(optional["deployment_id"], newest.as_str());
    assert_eq!(optional["requires_deployment"], false);
    let none = s.ok(&["resolve", &other, "--key-env", "live", "--deployment-optional"]);
    assert!(none["deployment"].is_null(), "{none}");
    assert!(none["deployment_id"].is_null());
    s.fails(&["resolve", p, "--key-env", "live", "--deployment-id", "nosuchdep"], 3, "DEPLOYMENT_NOT_FOUND");
    s.fails(&["resolve", &other, "--key-env", "live", "--deployment-id", "dep2"], 3, "DEPLOYMENT_NOT_FOUND");
    s.fails(&["resolve", "nosuchprj", "--key-env", "live"], 3, "PROJECT_NOT_FOUND");
    s.fails(&["resolve", "bad id", "--key", "not-a-key"], 3, "INVALID_API_KEY");
    s.fails(&["resolve", "bad id", "--key-env", "live"], 3, "INVALID_ARGUMENT");

    // The store answers first; the shared cache, when there is one, next.
    let (_, first_source) = resolve(s, p, &["--key-env", "test"]);
    let (d, second_source) = resolve(s, p, &["--key-env", "test"]);
    assert_eq!(d.as_deref(), Some("dep3"));
    if s.has_cache() {
        assert_eq!(second_source, "cache", "the first resolution filled the shared cache (first: {first_source})");
        assert_eq!(cache_get(s, &format!("project:{p}:staging_deployment")).as_deref(), Some("dep3"));
    } else {
        assert_eq!((first_source.as_str(), second_source.as_str()), ("store", "store"));
    }

    // ----- ownership
    s.fails(&["deploy", "promote", &other, "dep2"], 3, "DEPLOYMENT_NOT_IN_PROJECT");
    s.fails(&["deploy", "rm", &other, "dep2"], 3, "DEPLOYMENT_NOT_IN_PROJECT");
    s.fails(&["deploy", "promote", "nosuchprj", "dep2"], 3, "PROJECT_NOT_FOUND");
    s.fails(&["deploy", "promote", p, "nosuchdep"], 3, "DEPLOYMENT_NOT_FOUND");

    // ----- deletion
    let removed = s.ok(&["deploy", "rm", p, "dep1"]);
    assert_eq!(removed["deleted"], true);
    assert_eq!(removed["id"], "dep1");
    assert_eq!(removed["environment"], "production", "what it was");
    s.fails(&["resolve", p, "--key-env", "live"], 3, "NO_PRODUCTION_DEPLOYMENT");
    s.fails(&["resolve", p, "--key-env", "live", "--deployment-id", "dep1"], 3, "DEPLOYMENT_NOT_FOUND");
    s.fails(&["deploy", "rm", p, "dep1"], 3, "DEPLOYMENT_NOT_FOUND");
    assert_eq!(ids(&s.ok(&["deploy", "ls", p])), [newest.as_str(), "dep3", "dep2"]);

    let removed = s.ok(&["project", "rm", p]);
    assert_eq!(removed["id"], p);
    assert_eq!(removed["deleted"], true);
    assert_eq!(removed["cache_pending"], false);
    assert_eq!(ids(&s.ok(&["project", "ls"])), [other.as_str()]);
    s.fails(&["resolve", p, "--key-env", "test"], 3, "PROJECT_NOT_FOUND");
    s.fails(&["deploy", "show", "dep2"], 3, "DEPLOYMENT_NOT_FOUND");
    s.fails(&["project", "rm", p], 3, "PROJECT_NOT_FOUND");
    if s.has_cache() {
        assert_eq!(cache_get(s, &format!("project:{p}:staging_deployment")), None, "deletion cleared the cache");
    }
}

#[test]
fn every_command_on_sqlite() {
    lifecycle(&Setup::sqlite());
}

#[test]
fn every_command_on_postgres_and_redis() {
    let Some(s) = Setup::postgres_redis() else { return };
    lifecycle(&s);
}

fn migrate_and_health(s: &Setup) {
    let m = s.ok(&["migrate"]);
    assert_eq!(m["migrated"], true);
    let again = s.ok(&["migrate"]);
    assert_eq!(again["migrated"], true, "migrating twice is harmless");
    let h = s.ok(&["health"]);
    assert_eq!(h["healthy"], true);
    assert_eq!(h["store"]["state"], "ok");
    assert_eq!(h["breaker"], "closed");
    assert_eq!(h["pending_cache_updates"], 0);
    if let Some(services) = &s.services {
        assert_eq!(m["schema"], services.schema.as_str());
        assert_eq!(h["cache"]["state"], "ok");
        assert_eq!(h["cache"]["url"], lupa_core::redact_url(&services.cache).as_str());
    } else {
        assert!(m["schema"].is_null(), "no schema outside PostgreSQL: {m}");
        assert_eq!(h["cache"]["state"], "disabled");
        assert_eq!(h["cache"]["url"], "none");
    }
    let text = s.run(&["health"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.lines().any(|l| l.starts_with("store ") && l.contains(" ok")), "{}", text.stdout);
    assert!(text.stdout.trim_end().ends_with("healthy"), "{}", text.stdout);
    let text = s.run(&["migrate"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stdout.starts_with("migrations applied"), "{}", text.stdout);
}

#[test]
fn migrate_and_health_on_sqlite() {
    let s = Setup::sqlite();
    migrate_and_health(&s);
    assert!(crate::support::exists(&s.path("test.db")), "migrate created the store file");
}

#[test]
fn migrate_and_health_on_postgres_and_redis() {
    let Some(s) = Setup::postgres_redis() else { return };
    migrate_and_health(&s);
}

#[test]
fn flags_win_over_the_environment_on_sqlite() {
    let s = Setup::sqlite();
    s.ok(&["project", "create", "--org", "o", "--name", "n", "--id", "inenvfile"]);
    let flag = format!("sqlite://{}", s.path("flag.db").display());
    assert_eq!(ids(&s.ok(&["--store", &flag, "project", "ls"])), Vec::<String>::new());
    s.ok(&["--store", &flag, "project", "create", "--org", "o", "--name", "n", "--id", "inflagfile"]);
    assert_eq!(ids(&s.ok(&["--store", &flag, "project", "ls"])), ["inflagfile"]);
    assert_eq!(ids(&s.ok(&["project", "ls"])), ["inenvfile"]);
}

#[test]
fn a_schema_of_its_own_is_a_store_of_its_own() {
    let Some(s) = Setup::postgres_redis() else { return };
    let Some(other) = Setup::postgres_redis() else { return };
    s.ok(&["project", "create", "--org", "o", "--name", "n", "--id", "inschema1"]);
    assert_eq!(ids(&other.ok(&["project", "ls"])), Vec::<String>::new(), "another schema sees nothing");
    let schema = s.services.as_ref().map(|x| x.schema.clone()).expect("services");
    assert_eq!(
        ids(&other.ok(&["--schema", &schema, "project", "ls"])),
        ["inschema1"],
        "--schema wins over LUPA_SCHEMA"
    );
}

#[test]
fn a_change_made_while_the_cache_is_down_reaches_it_with_the_next_command() {
    let Some(s) = Setup::postgres_redis() else { return };
    let p = "pending001";
    s.ok(&["project", "create", "--org", "o", "--name", "n", "--id", p]);
    s.ok(&["deploy", "create", p, "--snapshot", "snp1", "--id", "first01", "--created-at", "2025-10-28T10:01:00Z"]);
    s.ok(&["deploy", "ready", "first01"]);
    s.ok(&["deploy", "promote", p, "first01"]);
    s.ok(&["deploy", "create", p, "--snapshot", "snp2", "--id", "second01", "--created-at", "2025-10-28T10:02:00Z"]);
    s.ok(&["deploy", "ready", "second01"]);
    assert_eq!(resolves(&s, p, &["--key-env", "live"]).as_deref(), Some("first01"));
    assert_eq!(resolve(&s, p, &["--key-env", "live"]), (Some("first01".into()), "cache".into()));

    // The same store, a cache that does not answer.
    let down = format!("redis://127.0.0.1:{}", crate::support::closed_port());
    let promoted = s.ok(&["--cache", &down, "deploy", "promote", p, "second01"]);
    assert_eq!(promoted["deployment"]["id"], "second01", "the change stands: the store is the truth");
    assert_eq!(promoted["cache_pending"], true);
    assert_eq!(cache_get(&s, &format!("project:{p}:production_deployment")).as_deref(), Some("first01"), "stale");
    let health = s.run(&["--json", "--cache", &down, "health"]);
    let health: Value = serde_json::from_str(&health.stdout).expect("the health document");
    assert!(health["pending_cache_updates"].as_u64().is_some_and(|n| n >= 1), "{health}");

    // People are told.
    s.ok(&["deploy", "create", p, "--snapshot", "snp3", "--id", "third01"]);
    let r = s.run(&["--cache", &down, "deploy", "rm", p, "third01"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.starts_with("note: the shared cache could not be reached"), "{}", r.stderr);

    // The next command with the cache back applies the recorded update
    // before it reads: no stale answer.
    assert_eq!(resolves(&s, p, &["--key-env", "live"]).as_deref(), Some("second01"));
    let h = s.ok(&["health"]);
    assert_eq!(h["pending_cache_updates"], 0);
}
