//! `lupa demo`: the story it tells, checked in its text and in its JSON.

use serde_json::Value;

use crate::support::{Setup, closed_port, exists};

/// The lines of step `n` of the demo's text (from its heading to the next).
fn step(text: &str, n: usize) -> Vec<String> {
    let heading = format!("{n}. ");
    let next = format!("{}. ", n + 1);
    text.lines()
        .skip_while(|l| !l.starts_with(&heading))
        .take_while(|l| !l.starts_with(&next) && !l.starts_with("Done."))
        .map(str::to_owned)
        .collect()
}

/// What `label` resolved to in a step's lines: the text after the arrow.
fn answer(lines: &[String], label: &str) -> String {
    let found: Vec<&String> = lines
        .iter()
        .filter(|l| l.trim_start().strip_prefix(label).is_some_and(|r| r.trim_start().starts_with("->")))
        .collect();
    assert_eq!(found.len(), 1, "one answer for {label:?} in {lines:#?}");
    found[0].split_once("->").map(|(_, a)| a.trim().to_owned()).unwrap_or_default()
}

#[test]
fn the_demo_tells_the_story() {
    let s = Setup::bare();
    // It ignores --store and --cache: neither an unreachable server nor a
    // file is touched.
    let store = format!("postgres://postgres@127.0.0.1:{}/postgres", closed_port());
    let r = s.run(&["--store", &store, "--cache", "redis://127.0.0.1:1", "demo"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stderr, "");
    assert!(!exists(&s.path("lupa.db")));
    let out = &r.stdout;
    assert!(!out.contains('\x1b'), "no colour off a terminal");

    let first = step(out, 1);
    assert!(first[0].contains("Create project abc1234567"), "{first:?}");
    assert!(answer(&first, "live key").starts_with("400 NO_PRODUCTION_DEPLOYMENT"), "{first:?}");
    assert!(answer(&first, "test key").starts_with("400 NO_STAGING_DEPLOYMENT"));
    assert!(answer(&first, "live key + Deployment-Id stg9876543").starts_with("404 DEPLOYMENT_NOT_FOUND"));

    let ready = step(out, 3);
    assert!(answer(&ready, "test key").starts_with("def4567890 "), "{ready:?}");

    let promoted = step(out, 4);
    assert!(answer(&promoted, "live key").starts_with("def4567890 "), "{promoted:?}");

    let second = step(out, 5);
    assert!(answer(&second, "live key").starts_with("def4567890 "), "{second:?}");
    assert!(answer(&second, "test key").starts_with("stg9876543 "));
    assert!(answer(&second, "live key + Deployment-Id stg9876543").starts_with("stg9876543 "));

    let swapped = step(out, 6);
    assert!(swapped.iter().any(|l| l.contains("promoted stg9876543; demoted def4567890")), "{swapped:?}");
    assert!(answer(&swapped, "live key").starts_with("stg9876543 "), "live keys reach the promoted deployment");
    assert!(answer(&swapped, "test key").starts_with("def4567890 "));

    let refused = step(out, 7);
    assert!(refused.iter().any(|l| l.contains("refused promote wip0000001: 400 DEPLOYMENT_NOT_READY")), "{refused:?}");
    assert!(answer(&refused, "live key + Deployment-Id wip0000001").starts_with("400 DEPLOYMENT_NOT_READY"));
    assert!(answer(&refused, "live key").starts_with("stg9876543 "), "production kept serving");

    let rolled = step(out, 8);
    assert!(rolled.iter().any(|l| l.contains("rolled back to def4567890; demoted stg9876543")), "{rolled:?}");
    assert!(answer(&rolled, "live key").starts_with("def4567890 "), "{rolled:?}");
    assert!(answer(&rolled, "live key, asked again").starts_with("def4567890 "));

    let history = step(out, 9);
    let rows: Vec<&String> = history.iter().filter(|l| l.trim_start().starts_with('#')).collect();
    assert_eq!(rows.len(), 5, "{history:?}");
    assert!(rows[0].contains("def4567890") && rows[0].trim_end().ends_with("staging     production"), "{rows:?}");
    let counted = step(out, 10);
    assert!(counted[0].contains("What the handle counted"), "{counted:?}");
    assert!(counted.iter().any(|l| l.contains("promotions: 2, rollbacks: 1")), "{counted:?}");
    assert!(counted.iter().any(|l| l.contains("refused with DEPLOYMENT_NOT_READY: 1")), "{counted:?}");
    assert!(out.contains("\nDone."));
    assert!(!out.contains("lupa_sk_live_7x9K") && !out.contains("Aa9Bb8"), "the demo's keys are not printed");
}

fn events(doc: &Value, n: usize) -> &[Value] {
    let steps = doc["steps"].as_array().expect("steps");
    assert_eq!(steps[n - 1]["step"], n);
    assert!(steps[n - 1]["explanation"].as_str().is_some_and(|e| e.len() > 40), "each step explains itself");
    steps[n - 1]["events"].as_array().expect("events")
}

fn resolved<'a>(events: &'a [Value], caller: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| e["kind"] == "resolve" && e["caller"] == caller).collect();
    assert_eq!(found.len(), 1, "{caller}: {events:#?}");
    found[0]
}

#[test]
fn the_demo_as_json() {
    let s = Setup::bare();
    let doc = s.ok(&["demo"]);
    assert_eq!(doc["store"], "sqlite::memory:");
    assert_eq!(doc["project"], "abc1234567");
    assert_eq!(doc["steps"].as_array().map(Vec::len), Some(10));

    let first = events(&doc, 1);
    assert_eq!(resolved(first, "live key")["error"]["code"], "NO_PRODUCTION_DEPLOYMENT");
    assert_eq!(resolved(first, "live key")["error"]["http_status"], 400);
    assert!(resolved(first, "live key")["deployment"].is_null());

    let swapped = events(&doc, 6);
    assert_eq!(resolved(swapped, "live key")["deployment"], "stg9876543");
    assert!(resolved(swapped, "live key")["error"].is_null());
    let explicit = resolved(swapped, "live key + Deployment-Id stg9876543");
    assert_eq!(explicit["deployment_id"], "stg9876543");
    assert_eq!(explicit["deployment"], "stg9876543");

    let refused = events(&doc, 7);
    let refusal: Vec<&Value> = refused.iter().filter(|e| e["kind"] == "refused").collect();
    assert_eq!(refusal.len(), 1, "{refused:#?}");
    assert_eq!(refusal[0]["action"], "promote wip0000001");
    assert_eq!(refusal[0]["error"]["code"], "DEPLOYMENT_NOT_READY");
    assert_eq!(refusal[0]["error"]["http_status"], 400);

    let rolled = events(&doc, 8);
    assert_eq!(resolved(rolled, "live key")["deployment"], "def4567890");
    let asked_again = resolved(rolled, "live key, asked again");
    assert_eq!(asked_again["deployment"], "def4567890");
    assert_eq!(asked_again["source"], "local", "the second answer comes from process memory");

    let history = events(&doc, 9);
    let entries = history[0]["entries"].as_array().expect("the history");
    let seqs: Vec<i64> = entries.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(seqs, [5, 4, 3, 2, 1]);
    assert_eq!(entries[0]["deployment_id"], "def4567890");
    assert_eq!(entries[0]["to"], "production");

    // The counts follow from the story: 24 resolutions, 8 of them answered
    // by a tier below process memory before the one answered from it.
    let texts: Vec<&str> = events(&doc, 10).iter().filter_map(|e| e["text"].as_str()).collect();
    let total = texts.iter().find_map(|t| t.strip_suffix(" of them refused; answered by:")).expect("the total");
    let (all, refused) = total.split_once(" resolutions, ").expect("n resolutions, m");
    let (all, refused): (u64, u64) = (all.parse().unwrap(), refused.parse().unwrap());
    assert_eq!(all, 24, "{texts:?}");
    let by_code: u64 = texts
        .iter()
        .filter_map(|t| t.strip_prefix("refused with ").and_then(|r| r.rsplit_once(": ")))
        .map(|(_, n)| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!(by_code, refused, "refusals by code add up: {texts:?}");
    assert!(texts.contains(&"promotions: 2, rollbacks: 1"), "{texts:?}");
}
