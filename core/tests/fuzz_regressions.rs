//! Inputs the fuzz targets of fuzz/ found to fail, kept as ordinary tests
//! (scripts/fuzz; each case names its target and what went wrong).

use lupa_core::{ErrorCode, project_from_host};

/// c_abi (through lupa_project_from_host): a Host header that is not ASCII
/// where the root domain would start made project_from_host split a
/// string inside a character, a panic (INTERNAL through the C ABI).
#[test]
fn a_host_that_is_not_ascii_is_no_subdomain() {
    for (host, root) in [
        ("j\u{1}\u{29a};", "$-"),
        ("\u{e9}\u{e9}", "a"),
        ("abc\u{e9}lupa.build", "lupa.build"),
        ("abc1234567.lup\u{e0}.build", "lupa.build"),
        ("\u{1f600}.lupa.build", "lupa.build"),
        ("x\u{1f600}", "ab"),
    ] {
        let e = project_from_host(host, root).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{host:?} under {root:?}: {e}");
    }
    // Non-ASCII around an ASCII root still finds the label, which is then
    // not a valid id.
    let e = project_from_host("\u{e9}t\u{e9}.lupa.build", "lupa.build").unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert_eq!(project_from_host("abc1234567.LUPA.build:443", "lupa.build").unwrap().as_str(), "abc1234567");
    // A root that is itself not ASCII.
    assert_eq!(project_from_host("abc1234567.l\u{fc}pa.build", "l\u{fc}pa.build").unwrap().as_str(), "abc1234567");
    assert!(project_from_host("abc1234567\u{fc}pa.build", "\u{fc}pa.build").is_err());
}
