//! API key parsing: `parse_api_key` and `api_key_from_authorization` on any
//! text. Neither may panic; what they accept must follow the key format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lupa_core::{ErrorCode, KeyEnvironment, KeyType, api_key_from_authorization, parse_api_key};

fn alphabet(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    match parse_api_key(text) {
        Ok(info) => {
            assert!(text.len() <= 256, "a key longer than 256 characters was accepted");
            let rest = text.strip_prefix("lupa_").expect("an accepted key starts with lupa_");
            let typed = match info.key_type {
                KeyType::Sk => rest.strip_prefix("sk_"),
                KeyType::Pk => rest.strip_prefix("pk_"),
            }
            .expect("the type is the key's own");
            let new_format = match info.environment {
                KeyEnvironment::Live => typed.strip_prefix("live_"),
                KeyEnvironment::Test => typed.strip_prefix("test_"),
            };
            let secret = match new_format {
                Some(random) if alphabet(random) => random,
                _ => {
                    // Only the legacy form remains: a secret live key.
                    assert_eq!((info.key_type, info.environment), (KeyType::Sk, KeyEnvironment::Live));
                    assert!(alphabet(typed) && typed.len() >= 32, "legacy key accepted: {text:?}");
                    typed
                }
            };
            // What the parsed key shows never holds its secret part (a
            // short one may be a word of the output by chance).
            let shown = format!("{info:?} {info:#?}");
            if secret.len() >= 16 {
                assert!(!shown.contains(secret), "the key shows its secret: {shown}");
            }
        }
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::InvalidApiKey);
            // The fixed message: nothing of the key is echoed.
            assert_eq!(e.message(), "API Key is not valid");
        }
    }

    match api_key_from_authorization(Some(text)) {
        Ok(key) => {
            assert!(text.ends_with(key));
            let scheme = &text[..text.len() - key.len()];
            assert!(scheme.eq_ignore_ascii_case("bearer "), "scheme {scheme:?} was accepted");
        }
        Err(e) => assert_eq!(e.code(), ErrorCode::InvalidApiKey),
    }
});
