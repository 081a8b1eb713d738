//! Keeping secrets out of errors and logs: passwords in connection URLs and
//! API keys are replaced before any text leaves the library.

/// Replaces the password of every `scheme://user:password@host` in `text`
/// with `***`, and the secret part of every `lupa_sk_…`/`lupa_pk_…` key.
pub fn redact_text(text: &str) -> String {
    redact_api_keys(&redact_url_passwords(text))
}

/// A URL as it may be shown: the password (and a query's `password=`) hidden.
pub fn redact_url(url: &str) -> String {
    redact_text(url)
}

fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = tail.find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace()).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    redact_query_password(&out)
}

fn redact_query_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("password=") {
        let (head, tail) = rest.split_at(pos + "password=".len());
        out.push_str(head);
        out.push_str("***");
        let end = tail.find(|c: char| c == '&' || c.is_whitespace()).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn redact_api_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let found = ["lupa_sk_", "lupa_pk_"].iter().filter_map(|p| rest.find(p)).min();
        let Some(pos) = found else { break };
        let (head, tail) = rest.split_at(pos + "lupa_sk_".len());
        out.push_str(head);
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(tail.len());
        let secret = &tail[..end];
        let shown = ["live_", "test_"].into_iter().find(|e| secret.starts_with(e)).unwrap_or("");
        out.push_str(shown);
        if end > shown.len() {
            out.push_str("***");
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_and_keys() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db.example:5432/lupa?sslmode=require"),
            "postgres://app:***@db.example:5432/lupa?sslmode=require"
        );
        assert_eq!(redact_url("redis://:s3cret@127.0.0.1:6379/0"), "redis://:***@127.0.0.1:6379/0");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact_url("postgres://h/db?user=a&password=pw&x=1"), "postgres://h/db?user=a&password=***&x=1");
        let t = redact_text("bad key lupa_sk_live_ABCDEF123 and lupa_sk_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
        assert_eq!(t, "bad key lupa_sk_live_*** and lupa_sk_***");
        assert_eq!(redact_text("connect p://u:p@ss@h failed"), "connect p://u:***@h failed");
    }
}
