//! The C ABI fed arbitrary bytes as NUL-terminated strings (UTF-8 or not):
//! `lupa_parse_api_key`, `lupa_api_key_from_authorization`,
//! `lupa_project_from_host`, and `lupa_resolve` on a `memory://` handle
//! holding one project with a production and a staging deployment. Every
//! call returns a known code, writes a NUL-terminated UTF-8 message, and
//! fills its out-parameters whole.
#![no_main]

use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lupa::*;

struct Handle(*mut lupa_handle);
// SAFETY: a lupa handle may be used from any thread (lupa.h).
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

fn new_error() -> lupa_error {
    // SAFETY: lupa_error is plain data; all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

fn ok(code: lupa_code, err: &lupa_error, what: &str) {
    assert!(code == lupa_code::Ok, "{what}: {:?}", message(err));
}

fn message(err: &lupa_error) -> &str {
    let bytes: Vec<u8> = err.message.iter().map(|&c| c as u8).collect();
    let end = bytes.iter().position(|&b| b == 0).expect("the message is NUL-terminated");
    // SAFETY: err.message holds a NUL within its length (checked above).
    let text = unsafe { CStr::from_ptr(err.message.as_ptr()) };
    assert_eq!(text.to_bytes().len(), end);
    text.to_str().expect("the message is UTF-8")
}

fn check(code: lupa_code, err: &lupa_error) {
    assert!(lupa_code::from_u32(code as u32).is_some());
    assert!(err.code == code, "err.code is the returned code");
    let text = message(err);
    assert_eq!(code == lupa_code::Ok, text.is_empty(), "a message exactly on failure: {text:?}");
    assert!(code != lupa_code::Internal, "INTERNAL: {text}");
}

fn handle() -> *const lupa_handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let c = |s: &str| CString::new(s).unwrap();
            let mut h = ptr::null_mut();
            let mut err = new_error();
            let mut json: *mut c_char = ptr::null_mut();
            // SAFETY: valid strings and out-pointers.
            unsafe {
                let memory = c("memory://");
                ok(lupa_open(memory.as_ptr(), memory.as_ptr(), ptr::null(), 0, &mut h, &mut err), &err, "open");
                let (project, org, name) = (c("abc1234567"), c("org_1"), c("Docs"));
                ok(
                    lupa_create_project(h, project.as_ptr(), org.as_ptr(), name.as_ptr(), 0, &mut json, &mut err),
                    &err,
                    "project",
                );
                lupa_string_free(json);
                for (id, env) in
                    [("def4567890", "production"), ("stg9876543_456", "staging"), ("prc1111111", "staging")]
                {
                    let (id, env, snap) = (c(id), c(env), c("snp2345678"));
                    ok(
                        lupa_create_deployment(
                            h,
                            project.as_ptr(),
                            id.as_ptr(),
                            snap.as_ptr(),
                            env.as_ptr(),
                            ptr::null(),
                            0,
                            &mut json,
                            &mut err,
                        ),
                        &err,
                        "deployment",
                    );
                    lupa_string_free(json);
                    if id.to_bytes() != b"prc1111111" {
                        let ready = c("ready");
                        ok(
                            lupa_set_status(h, id.as_ptr(), ready.as_ptr(), ptr::null(), 0, &mut json, &mut err),
                            &err,
                            "ready",
                        );
                        lupa_string_free(json);
                    }
                }
            }
            Handle(h)
        })
        .0
}

/// The first `N` NUL-separated parts of `data` as C strings (what follows
/// is ignored); a part that is absent is NULL.
fn strings<const N: usize>(data: &[u8]) -> [Option<CString>; N] {
    let mut parts = data.split(|&b| b == 0);
    std::array::from_fn(|_| parts.next().map(|p| CString::new(p).expect("split at NUL")))
}

fn ptr_of(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else { return };
    let h = handle();
    let mut err = new_error();

    let [text] = strings::<1>(data);
    let mut info = lupa_api_key_info { key_type: lupa_key_type::Sk, environment: lupa_key_environment::Live };
    // SAFETY: NUL-terminated string or NULL, valid out-pointers.
    let code = unsafe { lupa_parse_api_key(ptr_of(&text), &mut info, &mut err) };
    check(code, &err);
    if code != lupa_code::Ok {
        assert!(info.key_type == lupa_key_type::Unknown && info.environment == lupa_key_environment::Unknown);
    }

    let mut key: *mut c_char = ptr::null_mut();
    // SAFETY: as above; the key is freed below.
    let code = unsafe { lupa_api_key_from_authorization(ptr_of(&text), &mut key, &mut err) };
    check(code, &err);
    assert_eq!(code == lupa_code::Ok, !key.is_null());
    // SAFETY: key is NULL or the library's own string.
    unsafe { lupa_string_free(key) };

    let [host, root] = strings::<2>(data);
    let mut project: *mut c_char = ptr::null_mut();
    // SAFETY: as above.
    let code = unsafe { lupa_project_from_host(ptr_of(&host), ptr_of(&root), &mut project, &mut err) };
    check(code, &err);
    // SAFETY: as above.
    unsafe { lupa_string_free(project) };

    // Resolution: which caller comes from the flags, the strings from data.
    let [project, deployment, a, b] = strings::<4>(data);
    let request = lupa_resolve_request {
        project: ptr_of(&project),
        deployment_id: ptr_of(&deployment),
        requires_deployment: flags & 1 != 0,
        api_key_environment: if flags & 2 != 0 { ptr_of(&a) } else { ptr::null() },
        api_key: if flags & 4 != 0 { ptr_of(&b) } else { ptr::null() },
        internal: flags & 8 != 0,
        target_environment: if flags & 16 != 0 { ptr_of(&a) } else { ptr::null() },
    };
    // SAFETY: every byte of it is written by the call.
    let mut out: lupa_resolution = unsafe { std::mem::zeroed() };
    out.has_deployment = true;
    out.deployment_id = [b'x' as c_char; LUPA_ID_BUFFER_LEN];
    // SAFETY: a live handle, a request of valid strings or NULLs.
    let code = unsafe { lupa_resolve(h, &request, 0, &mut out, &mut err) };
    check(code, &err);
    // SAFETY: deployment_id must hold a NUL within its length.
    let id = unsafe { CStr::from_ptr(out.deployment_id.as_ptr()) };
    assert!(id.to_bytes().len() < LUPA_ID_BUFFER_LEN);
    assert_eq!(out.has_deployment, !id.to_bytes().is_empty());
    if code != lupa_code::Ok {
        assert!(!out.has_deployment);
    }
});
