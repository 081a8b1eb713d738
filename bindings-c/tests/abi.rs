//! What only a host with its own async runtime can do to the C ABI: call a
//! blocking export from a thread that is running a runtime. It must get
//! `REENTRANT_CALL`, never the "runtime within a runtime" panic.

use std::ptr;

use lupa::*;

fn new_error() -> lupa_error {
    lupa_error { code: lupa_code::Ok, http_status: 0, message: [0; LUPA_ERROR_MESSAGE_LEN] }
}

#[test]
fn a_blocking_call_from_inside_a_host_runtime_is_an_error() {
    // A handle opened on a plain thread, used from inside a runtime.
    let mut h: *mut lupa_handle = ptr::null_mut();
    let mut err = new_error();
    let code = unsafe { lupa_open(c"memory://".as_ptr(), c"memory://".as_ptr(), ptr::null(), 0, &mut h, &mut err) };
    assert_eq!(code, lupa_code::Ok);
    let handle = h as usize;

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async move {
        let h = handle as *mut lupa_handle;
        let mut err = new_error();
        let mut out: *mut std::ffi::c_char = ptr::null_mut();
        let code = unsafe { lupa_get_project(h, c"p1".as_ptr(), 0, &mut out, &mut err) };
        assert_eq!(code, lupa_code::ReentrantCall);
        assert_eq!(err.code, lupa_code::ReentrantCall);
        assert!(out.is_null());
        let mut h2: *mut lupa_handle = ptr::null_mut();
        let code = unsafe { lupa_open(c"memory://".as_ptr(), c"none".as_ptr(), ptr::null(), 0, &mut h2, &mut err) };
        assert_eq!(code, lupa_code::ReentrantCall);
        assert!(h2.is_null());
        // Functions that do not block still work there.
        let mut info =
            lupa_api_key_info { key_type: lupa_key_type::Unknown, environment: lupa_key_environment::Unknown };
        let code = unsafe { lupa_parse_api_key(c"lupa_sk_live_x".as_ptr(), &mut info, &mut err) };
        assert_eq!(code, lupa_code::Ok);
        // Closing from there is allowed (the connections are released in the
        // background) and does not panic.
        assert_eq!(unsafe { lupa_close(h) }, lupa_code::Ok);
    });
    drop(rt);
    unsafe { lupa_free(h) };
}

#[test]
fn stats_and_metrics_text_never_block_and_work_inside_a_host_runtime() {
    let mut h: *mut lupa_handle = ptr::null_mut();
    let mut err = new_error();
    let code = unsafe { lupa_open(c"memory://".as_ptr(), c"memory://".as_ptr(), ptr::null(), 0, &mut h, &mut err) };
    assert_eq!(code, lupa_code::Ok);
    let handle = h as usize;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let h = handle as *mut lupa_handle;
        let mut err = new_error();
        let mut out: *mut std::ffi::c_char = ptr::null_mut();
        assert_eq!(unsafe { lupa_stats(h, &mut out, &mut err) }, lupa_code::Ok);
        let json = unsafe { std::ffi::CStr::from_ptr(out) }.to_str().unwrap().to_owned();
        unsafe { lupa_string_free(out) };
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["resolutions"]["store"], 0, "{json}");
        assert_eq!(v["cache"]["breaker"], "closed", "{json}");
        assert_eq!(
            v["latency"]["counts"].as_array().unwrap().len(),
            v["latency"]["bounds_us"].as_array().unwrap().len() + 1
        );

        out = ptr::null_mut();
        assert_eq!(unsafe { lupa_metrics_text(h, &mut out, &mut err) }, lupa_code::Ok);
        let text = unsafe { std::ffi::CStr::from_ptr(out) }.to_str().unwrap().to_owned();
        unsafe { lupa_string_free(out) };
        assert!(text.contains("# TYPE lupa_resolutions_total counter\n"), "{text}");
        assert!(text.contains("lupa_resolutions_total{source=\"store\"} 0\n"), "{text}");
    });
    drop(rt);
    unsafe { lupa_close(h) };
    let mut out: *mut std::ffi::c_char = ptr::dangling_mut();
    assert_eq!(unsafe { lupa_stats(h, &mut out, &mut err) }, lupa_code::HandleClosed);
    assert!(out.is_null());
    assert_eq!(unsafe { lupa_metrics_text(h, &mut out, ptr::null_mut()) }, lupa_code::HandleClosed);
    assert!(out.is_null());
    unsafe { lupa_free(h) };
}
