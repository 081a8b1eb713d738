//! `redact_text`, which keeps passwords and API keys out of every message
//! and log: it never panics, and a password in a store or cache URL built
//! from the input never survives it, whatever text surrounds the URL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lupa_core::redact_text;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = redact_text(text);

    // before \n password \n after: the password (its letters and digits)
    // inside a URL between the surrounding texts.
    let mut parts = text.splitn(3, '\n');
    let (before, password, after) =
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let password: String = password.chars().filter(char::is_ascii_alphanumeric).collect();
    if password.len() < 8 || before.contains(&password) || after.contains(&password) {
        return;
    }
    for url in [
        format!("postgres://user:{password}@127.0.0.1:1/db"),
        format!("redis://:{password}@127.0.0.1:1"),
        format!("rediss://default:{password}@h:6380/0"),
        format!("postgres://u@h/db?sslmode=require&password={password}"),
    ] {
        // A password that is a word of the rest of the URL may show.
        if url.replacen(&password, "***", 1).contains(&password) {
            continue;
        }
        for shown in [redact_text(&url), redact_text(&format!("{before} {url} {after}"))] {
            assert!(!shown.contains(&password), "the password of {url:?} survives: {shown:?}");
        }
    }
});
