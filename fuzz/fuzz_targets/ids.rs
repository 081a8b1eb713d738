//! Id validation and `ResolveRequest::from_headers` on any text: an id is
//! accepted exactly when it is 1 to 64 characters of `[A-Za-z0-9_-]`, and a
//! request's Debug never shows the API key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lupa_core::{DeploymentId, ErrorCode, OrgId, ProjectId, ResolveRequest, SnapshotId};

fn valid(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check<T>(s: &str, result: lupa_core::Result<T>, as_str: impl Fn(&T) -> &str) {
    match result {
        Ok(id) => {
            assert!(valid(s), "{s:?} was accepted as an id");
            assert_eq!(as_str(&id), s);
        }
        Err(e) => {
            assert!(!valid(s), "{s:?} was rejected: {e}");
            assert_eq!(e.code(), ErrorCode::InvalidArgument);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    check(text, ProjectId::new(text), |i| i.as_str());
    check(text, DeploymentId::new(text), |i| i.as_str());
    check(text, SnapshotId::new(text), |i| i.as_str());
    check(text, OrgId::new(text), |i| i.as_str());

    // from_headers: the text split into project, Authorization and
    // Deployment-Id at the first two newlines.
    let mut parts = text.splitn(3, '\n');
    let project = parts.next().unwrap_or_default();
    let authorization = parts.next();
    let deployment = parts.next();
    let requires = data.first().is_some_and(|b| b & 1 == 1);
    match ResolveRequest::from_headers(project, authorization, deployment, requires) {
        Ok(request) => {
            assert!(lupa_core::api_key_from_authorization(authorization).is_ok());
            // The key, whatever it holds, shows as *** only.
            assert_eq!(format!("{:?}", request.caller), "ApiKey(***)");
            assert_eq!(request.project, project);
        }
        Err(e) => assert_eq!(e.code(), ErrorCode::InvalidApiKey),
    }
});
