//! Values travel as bound parameters, never in SQL text (semantics.md,
//! "Storage"). This test reads the store sources and fails when SQL text is
//! assembled from anything but the few validated identifiers allowed below.
//!
//! The rule, for `core/src/store/*.rs` (code only: comments and the inside
//! of string literals are skipped):
//! 1. The argument of every `AssertSqlSafe(..)` (the one way sqlx accepts a
//!    non-literal query) is a string literal, a `format!` checked by rule 2,
//!    or an expression of [`SAFE_QUERY_EXPRESSIONS`] for that file.
//! 2. Every `format!`, `format_args!`, `write!` or `writeln!` whose format
//!    string reads like SQL, or that is an `AssertSqlSafe` argument,
//!    interpolates only the names of [`ALLOWED_INTERPOLATIONS`] for that
//!    file, and every format string that interpolates one of those names is
//!    checked the same way (it builds SQL from an identifier).
//! 3. No `push_str`, `concat!`, `.join(` or `+` on strings: SQL is never
//!    concatenated.
//!
//! The allowlist is narrow on purpose: a new interpolation fails this test
//! until someone adds it here with the reason it cannot carry a value.

use std::path::{Path, PathBuf};

/// (file, interpolated expression, why it is not a value).
const ALLOWED_INTERPOLATIONS: &[(&str, &str, &str)] = &[
    ("postgres.rs", "DEPLOYMENT_COLUMNS", "a const column list of this file"),
    ("postgres.rs", "schema", "the configured schema, checked by validate_schema, quoted"),
    ("postgres.rs", "self.schema", "the configured schema, checked by validate_schema"),
    ("sqlite.rs", "DEPLOYMENT_COLUMNS", "a const column list of this file"),
];

/// (file, expression given to `AssertSqlSafe` directly).
const SAFE_QUERY_EXPRESSIONS: &[(&str, &str)] = &[
    // The embedded migrations: `include_str!` of files in migrations/.
    ("postgres.rs", "*script"),
    ("sqlite.rs", "*script"),
];

/// Words that make a format string SQL.
const SQL_WORDS: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "WHERE",
    "VALUES",
    "FROM",
    "SET ",
    "LISTEN",
    "NOTIFY",
    "TRUNCATE",
    "GRANT",
    "SCHEMA",
    "TABLE",
    "INDEX",
    "search_path",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Code,
    Str,
}

/// The source as code and string-literal spans, comments removed. Each
/// string span keeps its quotes.
fn spans(src: &str) -> Vec<(Kind, String)> {
    let b = src.as_bytes();
    let mut out: Vec<(Kind, String)> = Vec::new();
    let mut code = String::new();
    let mut i = 0;
    let flush = |code: &mut String, out: &mut Vec<(Kind, String)>| {
        if !code.is_empty() {
            out.push((Kind::Code, std::mem::take(code)));
        }
    };
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if let Some(hashes) = raw_string_start(rest) {
            let open = 2 + hashes; // r, hashes, quote
            let close = format!("\"{}", "#".repeat(hashes));
            let end = rest[open..].find(&close).map_or(rest.len(), |e| open + e + close.len());
            flush(&mut code, &mut out);
            out.push((Kind::Str, rest[..end].to_string()));
            i += end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            flush(&mut code, &mut out);
            out.push((Kind::Str, src[i..=j.min(b.len() - 1)].to_string()));
            i = j + 1;
        } else if b[i] == b'\'' && is_char_literal(rest) {
            let len = rest[1..].find('\'').map_or(1, |e| e + 2);
            code.push_str("' '");
            i += len;
        } else {
            let c = rest.chars().next().unwrap();
            code.push(c);
            i += c.len_utf8();
        }
    }
    flush(&mut code, &mut out);
    out
}

fn raw_string_start(rest: &str) -> Option<usize> {
    let r = rest.strip_prefix('r').or_else(|| rest.strip_prefix("br"))?;
    let hashes = r.bytes().take_while(|&c| c == b'#').count();
    (r.as_bytes().get(hashes) == Some(&b'"')).then_some(hashes + usize::from(rest.starts_with("br")))
}

/// `'a'`, `'\n'`, `'"'`, not a lifetime (`'a`, `'static`).
fn is_char_literal(rest: &str) -> bool {
    let b = rest.as_bytes();
    (b.len() > 2 && b[1] == b'\\') || (b.len() > 2 && b[2] == b'\'') || rest[1..].chars().nth(1) == Some('\'')
}

/// The source with every string literal replaced by a placeholder
/// `\u{1}N\u{2}`, and the literals by index.
fn masked(src: &str) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut strings = Vec::new();
    for (kind, s) in spans(src) {
        match kind {
            Kind::Code => text.push_str(&s),
            Kind::Str => {
                text.push_str(&format!("\u{1}{}\u{2}", strings.len()));
                strings.push(s);
            }
        }
    }
    (text, strings)
}

/// The text inside the parentheses opening at `open`.
fn balanced(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in a store source");
}

/// Top-level comma-separated parts.
fn split_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in args.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn literal_index(part: &str) -> Option<usize> {
    part.strip_prefix('\u{1}')?.strip_suffix('\u{2}')?.parse().ok()
}

/// The names a format string interpolates inline (`{name}`, `{name:?}`)
/// and how many positional `{}` it has.
fn placeholders(fmt: &str) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut positional = 0;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '{' {
            if chars.peek() == Some(&'{') {
                chars.next();
                continue;
            }
            let mut inner = String::new();
            for d in chars.by_ref() {
                if d == '}' {
                    break;
                }
                inner.push(d);
            }
            let name = inner.split(':').next().unwrap_or_default().trim().to_string();
            if name.is_empty() || name.chars().all(|c| c.is_ascii_digit()) {
                positional += 1;
            } else {
                names.push(name);
            }
        }
    }
    (names, positional)
}

fn looks_like_sql(fmt: &str) -> bool {
    SQL_WORDS.iter().any(|w| fmt.contains(w))
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// Every violation of the rule in one file's source.
fn violations(file: &str, src: &str) -> Vec<String> {
    let (text, strings) = masked(src);
    let allowed = |expr: &str| ALLOWED_INTERPOLATIONS.iter().any(|(f, e, _)| *f == file && *e == expr);
    let mut found = Vec::new();

    // Rule 2 (and the format! arguments of rule 1).
    let mut sql_formats = Vec::new();
    for mac in ["format!", "format_args!", "write!", "writeln!"] {
        for (at, _) in text.match_indices(mac) {
            if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let open = at + mac.len();
            if !text[open..].starts_with('(') {
                continue;
            }
            let args = split_args(balanced(&text, open));
            // write!(target, "..", ..): the format string is the second.
            let skip = usize::from(mac.starts_with("write"));
            let Some(fmt) = args.get(skip).and_then(|a| literal_index(a)).map(|i| strings[i].as_str()) else {
                found.push(format!("{file}:{}: {mac} without a literal format string", line_of(&text, at)));
                continue;
            };
            let (names, positional) = placeholders(fmt);
            let mut interpolated = names;
            let rest: Vec<&String> = args.iter().skip(skip + 1).collect();
            for a in &rest {
                let expr =
                    a.split_once('=').filter(|(n, _)| !n.contains(['(', '.', '"'])).map_or(a.as_str(), |(_, e)| e);
                interpolated.push(expr.trim().trim_start_matches('&').to_string());
            }
            let builds_sql = looks_like_sql(fmt)
                || text[..at].trim_end().ends_with("AssertSqlSafe(")
                || interpolated.iter().any(|e| allowed(e));
            if builds_sql {
                sql_formats.push(at);
                for e in &interpolated {
                    if !allowed(e) {
                        found.push(format!(
                            "{file}:{}: SQL text interpolates `{e}` ({positional} positional): bind it as a parameter",
                            line_of(&text, at)
                        ));
                    }
                }
            }
        }
    }

    // Rule 1.
    for (at, _) in text.match_indices("AssertSqlSafe(") {
        if text[..at].trim_end().ends_with("use sqlx::{") || text[..at].ends_with(|c: char| c.is_alphanumeric()) {
            continue;
        }
        let open = at + "AssertSqlSafe".len();
        let inner = balanced(&text, open);
        let arg = inner.trim();
        let arg_at = open + 1 + (inner.len() - inner.trim_start().len());
        let ok = literal_index(arg).is_some()
            || (arg.starts_with("format!(") && sql_formats.contains(&arg_at))
            || SAFE_QUERY_EXPRESSIONS.iter().any(|(f, e)| *f == file && *e == arg);
        if !ok {
            found.push(format!(
                "{file}:{}: AssertSqlSafe({arg}) is not a literal or checked format!",
                line_of(&text, at)
            ));
        }
    }

    // Rule 3.
    for pattern in [".push_str(", "concat!(", ".join(", "\u{2} +", "+ \u{1}", "+ &", "+= &", "+= \u{1}"] {
        for (at, _) in text.match_indices(pattern) {
            found.push(format!("{file}:{}: string concatenation (`{}`)", line_of(&text, at), pattern.trim()));
        }
    }
    found
}

fn store_sources() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("core/src/store")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    files
}

#[test]
fn store_sql_binds_every_value() {
    let files = store_sources();
    assert!(files.len() >= 4, "the store sources moved: {files:?}");
    let mut all = Vec::new();
    let mut checked_sql = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let src = std::fs::read_to_string(path).unwrap();
        checked_sql += src.matches("AssertSqlSafe(").count();
        all.extend(violations(name, &src));
    }
    assert!(checked_sql > 5, "no AssertSqlSafe left to check: has the rule's entry point moved?");
    assert!(all.is_empty(), "SQL built from values:\n{}", all.join("\n"));
}

#[test]
fn allowed_identifiers_are_what_they_claim() {
    for name in ["postgres.rs", "sqlite.rs"] {
        let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store").join(name)).unwrap();
        // DEPLOYMENT_COLUMNS: a const made of one literal.
        let at = src.find("const DEPLOYMENT_COLUMNS: &str =").expect(name);
        let value = src[at..].split_once('=').unwrap().1.split_once(';').unwrap().0.trim();
        assert!(
            value.starts_with('"')
                && value.ends_with('"')
                && value[1..value.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b',' || b == b' '),
            "{name}: {value}"
        );
        // *script: the migrations are include_str! of files, nothing else.
        let at = src.find("const MIGRATIONS").expect(name);
        let def = src[at..].split_once(";\n").unwrap().0;
        let mut entries = def.split_once("= &[").expect(name).1.to_string();
        while let Some(i) = entries.find("include_str!(\"../../migrations/") {
            let end = i + entries[i..].find(".sql\")").expect(name) + ".sql\")".len();
            entries.replace_range(i..end, "");
        }
        assert!(entries.chars().all(|c| "(),] ".contains(c) || c.is_ascii_digit()), "{name}: {def}");
    }
    // schema / self.schema: validated when the store opens.
    let pg = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/postgres.rs")).unwrap();
    let open = pg.find("validate_schema(&config.schema)?").expect("the postgres store validates its schema");
    assert!(open < pg.find("PostgresStore { pool, schema: config.schema.clone()").unwrap());
}

#[test]
fn the_rule_catches_values_in_sql() {
    let planted = [
        (
            r#"sqlx::query(AssertSqlSafe(format!("SELECT * FROM deployment WHERE id = '{}'", id.as_str())))"#,
            "interpolates",
        ),
        (
            r#"sqlx::query(AssertSqlSafe(format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE id = '{id}'")))"#,
            "`id`",
        ),
        (
            r#"let q = format!("DELETE FROM project WHERE id = '{}'", p); sqlx::query(AssertSqlSafe(q))"#,
            "AssertSqlSafe(q)",
        ),
        (r#"let mut q = String::from("SELECT 1 "); q.push_str(name); sqlx::query(AssertSqlSafe(q))"#, "push_str"),
        (
            r#"sqlx::query(AssertSqlSafe("SELECT * FROM project WHERE name = '".to_string() + name + "'"))"#,
            "concatenation",
        ),
        (r#"let sql = format!("UPDATE deployment SET status = '{status}'");"#, "`status`"),
    ];
    for (code, expect) in planted {
        let found = violations("postgres.rs", code);
        assert!(found.iter().any(|v| v.contains(expect)), "not caught: {code}\n{found:?}");
    }
    // What the rule allows.
    for code in [
        r#"sqlx::query(AssertSqlSafe(format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployment WHERE id = $1"))).bind(id)"#,
        r#"sqlx::query("SELECT id FROM project WHERE id = $1").bind(id) // format!("{x}")"#,
        r#"Error::internal(&format!("{} is production already", other.id))"#,
        r#"sqlx::raw_sql(AssertSqlSafe(*script))"#,
    ] {
        assert_eq!(violations("postgres.rs", code), Vec::<String>::new(), "{code}");
    }
}
