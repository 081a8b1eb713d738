//! What people see: aligned tables, no colour off a terminal, notes on
//! stderr, names that cannot drive the terminal.

use crate::support::Setup;

/// The column of each header word in a table's first line.
fn columns(header: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in header.char_indices().chain(std::iter::once((header.len(), ' '))) {
        match (c == ' ', start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((header[s..i].to_string(), s));
                start = None;
            }
            _ => {}
        }
    }
    out
}

#[test]
fn listings_are_aligned_tables_without_colour_off_a_terminal() {
    let s = Setup::sqlite();
    for (id, name) in [("p1", "A"), ("a-much-longer-project-id", "Second project")] {
        s.ok(&["project", "create", "--org", "org_1", "--name", name, "--id", id]);
    }
    for (id, at) in [("d1", "2025-10-28T10:01:00Z"), ("deployment-two", "2025-10-28T10:02:00Z")] {
        s.ok(&["deploy", "create", "p1", "--snapshot", "snp1", "--id", id, "--created-at", at]);
    }
    s.ok(&["deploy", "fail", "d1", "--message", "parse error"]);

    let r = s.run(&["deploy", "ls", "p1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains('\x1b'), "no colour when stdout is not a terminal");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    let cols = columns(lines[0]);
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["ID", "ENVIRONMENT", "STATUS", "SNAPSHOT", "CREATED", "NOTE"]);
    let status = cols[2].1;
    assert!(lines[1].starts_with("deployment-two "), "newest first: {}", lines[1]);
    assert_eq!(&lines[1][status..status + "processing".len()], "processing", "{}", r.stdout);
    assert_eq!(&lines[2][status..status + "failed".len()], "failed", "{}", r.stdout);
    let note = cols[5].1;
    assert_eq!(&lines[2][note..], "parse error");
    assert!(lines.iter().all(|l| !l.ends_with(' ')), "no trailing spaces");

    let r = s.run(&["project", "ls", "--limit", "1"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(columns(lines[0]).iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["ID", "ORG", "NAME", "CREATED"]);
    assert!(lines[1].starts_with("a-much-longer-project-id  org_1"), "{}", r.stdout);
    assert_eq!(lines[2], "more: repeat with --cursor a-much-longer-project-id");

    let r = s.run(&["deploy", "history", "p1"]);
    assert_eq!(r.stdout, "project p1 has no environment changes yet\n");
}

#[test]
fn single_results_are_labelled_fields() {
    let s = Setup::sqlite();
    s.ok(&["project", "create", "--org", "org_1", "--name", "Docs", "--id", "p1"]);
    let r = s.run(&["deploy", "create", "p1", "--snapshot", "snp1", "--id", "d1", "--environment", "production"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.starts_with("created deployment d1 in project p1: processing, staging\n"), "{}", r.stdout);
    assert!(r.stdout.contains("promoted to production the moment it is ready"), "{}", r.stdout);
    let field = |out: &str, name: &str| {
        out.lines()
            .find_map(|l| l.trim_start().strip_prefix(name).filter(|rest| rest.starts_with(' ')).map(str::trim))
            .map(str::to_owned)
    };
    assert_eq!(field(&r.stdout, "status").as_deref(), Some("processing"));
    assert_eq!(field(&r.stdout, "promote_when_ready").as_deref(), Some("yes"));
    let r = s.run(&["deploy", "ready", "d1"]);
    assert!(r.stdout.contains("it is production now"), "{}", r.stdout);
    assert_eq!(field(&r.stdout, "environment").as_deref(), Some("production"));
    let r = s.run(&["resolve", "p1", "--key-env", "live"]);
    assert_eq!(r.stdout, "p1 -> d1 (answered by the store)\n");
    let r = s.run(&["resolve", "p1", "--key-env", "live", "--deployment-optional"]);
    assert!(r.stdout.starts_with("p1 -> no deployment"), "{}", r.stdout);
}

#[test]
fn names_cannot_drive_the_terminal() {
    let s = Setup::sqlite();
    let name = "Docs\x1b[2J\nforged line";
    let p = s.ok(&["project", "create", "--org", "org_1", "--name", name, "--id", "p1"]);
    assert_eq!(p["name"], name, "JSON keeps the name exactly");
    let r = s.run(&["project", "ls"]);
    assert!(!r.stdout.contains('\x1b'), "{:?}", r.stdout);
    assert_eq!(r.stdout.lines().count(), 2, "the newline is shown escaped: {:?}", r.stdout);
    assert!(r.stdout.contains("Docs\\u{1b}[2J\\nforged line"), "{:?}", r.stdout);
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let s = Setup::sqlite();
    s.ok(&["project", "create", "--org", "org_1", "--name", "Docs", "--id", "p1"]);
    // util-linux `script` runs a command on a pseudo-terminal.
    if s.command_of("script").arg("--version").output().map_or(true, |o| !o.status.success()) {
        eprintln!("SKIPPED: no `script` to give lupa a terminal");
        return;
    }
    let lupa = assert_cmd::cargo::cargo_bin!("lupa").display().to_string();
    assert!(!lupa.contains('\''), "the path goes into a shell command: {lupa}");
    let on_a_terminal = |env: &str, args: &str| {
        let command = format!("env TERM=xterm {env} '{lupa}' {args}");
        let out = s.command_of("script").args(["-qec", &command, "/dev/null"]).output().expect("script runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = on_a_terminal("", "project ls");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\x1b[1mp1\x1b[0m"), "ids in bold on a terminal: {out:?}");
    let (_, out) = on_a_terminal("NO_COLOR=1", "project ls");
    assert!(out.contains("p1") && !out.contains('\x1b'), "NO_COLOR: {out:?}");
    let (code, out) = on_a_terminal("", "resolve nosuchprj --key-env live");
    assert_eq!(code, Some(3));
    assert!(out.contains("\x1b[31merror:\x1b[0m PROJECT_NOT_FOUND"), "a red label on a terminal: {out:?}");
    let (_, out) = on_a_terminal("", "--json project ls");
    assert!(!out.contains('\x1b'), "JSON is never coloured: {out:?}");
}
