//! Validated identifiers. An id is 1 to 64 ASCII characters of
//! `[A-Za-z0-9_-]`; holding one of these types proves it.

use std::fmt;

use crate::error::{Error, Result};

/// The longest id accepted.
pub const MAX_ID_LEN: usize = 64;

/// Checks the id rule of `semantics.md`, naming `what` in the error. The
/// message never quotes the value: it may be huge, binary or a secret pasted
/// into the wrong field.
pub(crate) fn validate_id(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid_argument(format!("{what} must not be empty")));
    }
    if value.len() > MAX_ID_LEN {
        return Err(Error::invalid_argument(format!("{what} is longer than {MAX_ID_LEN} characters")));
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(Error::invalid_argument(format!("{what} may only contain A-Z, a-z, 0-9, '_' and '-'")));
    }
    Ok(())
}

/// Ten characters of `[a-z0-9]` from the operating system's cryptographic
/// random source.
pub(crate) fn generate_id() -> Result<String> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(10);
    while out.len() < 10 {
        let mut buf = [0u8; 16];
        getrandom::fill(&mut buf).map_err(|e| Error::internal(&e))?;
        // 252 = 7 * 36: rejecting larger bytes keeps every character equally likely.
        for b in buf.into_iter().filter(|b| *b < 252) {
            if out.len() == 10 {
                break;
            }
            out.push(ALPHABET[(b % 36) as usize] as char);
        }
    }
    Ok(out)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `value` as an id.
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                validate_id($what, &value)?;
                Ok(Self(value))
            }

            /// A fresh random id (10 characters of `[a-z0-9]`).
            pub fn generate() -> Result<Self> {
                generate_id().map(Self)
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(|e| serde::de::Error::custom(e.message()))
            }
        }
    };
}

id_type!(
    /// A project id, such as `abc1234567`.
    ProjectId,
    "project id"
);
id_type!(
    /// A deployment id, such as `stg9876543_456`.
    DeploymentId,
    "deployment id"
);
id_type!(
    /// A snapshot id: the documents a deployment is built from.
    SnapshotId,
    "snapshot id"
);
id_type!(
    /// An organisation id.
    OrgId,
    "org id"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn accepts_the_seed_examples_and_rejects_the_rest() {
        for ok in ["abc1234567", "stg9876543_456", "a", "A-b_9", &"x".repeat(64)] {
            assert!(ProjectId::new(ok).is_ok(), "{ok}");
        }
        let huge = "a".repeat(1 << 20);
        for bad in ["", "bad id", "abc'; DROP TABLE deployment;--", "é", "a\0b", &"x".repeat(65), &huge] {
            let err = DeploymentId::new(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument);
            assert!(err.message().starts_with("deployment id"));
            assert!(err.message().len() < 100, "the message never echoes the value");
        }
    }

    #[test]
    fn generated_ids_are_ten_lowercase_alphanumerics() {
        let a = ProjectId::generate().unwrap();
        let b = ProjectId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 10);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
