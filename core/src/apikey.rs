//! API key strings: their type and environment (format only; whether a key
//! exists and is active is the host's own authentication).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::Environment;

/// The longest key accepted.
pub const MAX_API_KEY_LEN: usize = 256;

/// Secret or public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// `sk`: a secret key.
    Sk,
    /// `pk`: a public, read-only key.
    Pk,
}

impl KeyType {
    /// `"sk"` or `"pk"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyType::Sk => "sk",
            KeyType::Pk => "pk",
        }
    }
}

/// The environment an API key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyEnvironment {
    /// `live`: resolves production.
    Live,
    /// `test`: resolves staging.
    Test,
}

impl KeyEnvironment {
    /// `"live"` or `"test"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyEnvironment::Live => "live",
            KeyEnvironment::Test => "test",
        }
    }

    /// The deployment environment this key environment resolves.
    pub const fn target(self) -> Environment {
        match self {
            KeyEnvironment::Live => Environment::Production,
            KeyEnvironment::Test => Environment::Staging,
        }
    }
}

impl FromStr for KeyEnvironment {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "live" => Ok(KeyEnvironment::Live),
            "test" => Ok(KeyEnvironment::Test),
            _ => Err(Error::invalid_argument("API key environment must be \"live\" or \"test\"")),
        }
    }
}

impl fmt::Display for KeyEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a key string says about itself. The secret part is not kept, so
/// this value can be logged and printed freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ApiKeyInfo {
    /// Secret or public.
    pub key_type: KeyType,
    /// Live or test.
    pub environment: KeyEnvironment,
}

fn is_random_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn all_random(s: &str) -> bool {
    s.bytes().all(is_random_char)
}

/// Parses `lupa_{sk|pk}_{live|test}_{random}` or the legacy
/// `lupa_sk_{random of 32 or more}` (a secret live key). Matching is exact:
/// case-sensitive, nothing before or after.
pub fn parse_api_key(key: &str) -> Result<ApiKeyInfo> {
    if key.len() > MAX_API_KEY_LEN {
        return Err(Error::invalid_api_key());
    }
    let rest = key.strip_prefix("lupa_").ok_or_else(Error::invalid_api_key)?;
    let (key_type, rest) = if let Some(r) = rest.strip_prefix("sk_") {
        (KeyType::Sk, r)
    } else if let Some(r) = rest.strip_prefix("pk_") {
        (KeyType::Pk, r)
    } else {
        return Err(Error::invalid_api_key());
    };
    // The current format is tried first, so `lupa_sk_test_...` is a test key
    // even when the legacy form would also match.
    for environment in [KeyEnvironment::Live, KeyEnvironment::Test] {
        if let Some(random) = rest.strip_prefix(environment.as_str()).and_then(|r| r.strip_prefix('_'))
            && !random.is_empty()
            && all_random(random)
        {
            return Ok(ApiKeyInfo { key_type, environment });
        }
    }
    if key_type == KeyType::Sk && rest.len() >= 32 && all_random(rest) {
        return Ok(ApiKeyInfo { key_type, environment: KeyEnvironment::Live });
    }
    Err(Error::invalid_api_key())
}

/// Takes the value of an `Authorization` header: the scheme `Bearer` in any
/// case, one space, then the key. A missing header is an invalid key.
pub fn api_key_from_authorization(header: Option<&str>) -> Result<&str> {
    let header = header.ok_or_else(Error::invalid_api_key)?;
    match header.split_at_checked(7) {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer ") => Ok(key),
        _ => Err(Error::invalid_api_key()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn info(key: &str) -> Option<(KeyType, KeyEnvironment)> {
        parse_api_key(key).ok().map(|i| (i.key_type, i.environment))
    }

    #[test]
    fn formats() {
        assert_eq!(info("lupa_sk_live_abc"), Some((KeyType::Sk, KeyEnvironment::Live)));
        assert_eq!(info("lupa_pk_test_a-b_c"), Some((KeyType::Pk, KeyEnvironment::Test)));
        let legacy = format!("lupa_sk_{}", "A".repeat(32));
        assert_eq!(info(&legacy), Some((KeyType::Sk, KeyEnvironment::Live)));
        assert_eq!(info(&format!("lupa_sk_test_{}", "x".repeat(27))), Some((KeyType::Sk, KeyEnvironment::Test)));
        assert_eq!(info(&format!("lupa_pk_{}", "A".repeat(40))), None, "legacy keys are secret only");
        assert_eq!(info(&format!("lupa_sk_{}", "A".repeat(31))), None);
        for bad in [
            "",
            "lupa_sk_live_",
            "LUPA_sk_live_abc",
            "lupa_SK_live_abc",
            "lupa_sk_Live_abc",
            " lupa_sk_live_abc",
            "lupa_sk_live_abc\n",
            "lupa_sk_live_ab c",
            "lupa_sk_live_ab\0c",
            "lupa_sk_live_abé",
        ] {
            assert_eq!(parse_api_key(bad).unwrap_err().code(), ErrorCode::InvalidApiKey, "{bad:?}");
        }
        let long = format!("lupa_sk_live_{}", "a".repeat(MAX_API_KEY_LEN));
        assert!(parse_api_key(&long).is_err());
        let longest = format!("lupa_sk_live_{}", "a".repeat(MAX_API_KEY_LEN - 13));
        assert!(parse_api_key(&longest).is_ok());
    }

    #[test]
    fn authorization_header() {
        assert_eq!(api_key_from_authorization(Some("Bearer k")).unwrap(), "k");
        assert_eq!(api_key_from_authorization(Some("bEARER k")).unwrap(), "k");
        assert!(api_key_from_authorization(Some("Bearer  k")).unwrap().starts_with(' '));
        assert!(api_key_from_authorization(Some("Basic k")).is_err());
        assert!(api_key_from_authorization(Some("Bearer")).is_err());
        assert!(api_key_from_authorization(Some("Bearé k")).is_err());
        assert!(api_key_from_authorization(None).is_err());
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let i = parse_api_key("lupa_sk_live_SECRETSECRET").unwrap();
        assert!(!format!("{i:?}").contains("SECRET"));
    }
}
