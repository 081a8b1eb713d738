//! What every export shares: the panic boundary, the library's runtime,
//! C strings in and out.

use std::ffi::{CStr, CString, c_char};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

use crate::error_c::{Failure, lupa_code, lupa_error, write_error};

/// Runs `f`, turning a panic into `INTERNAL`, and writes the outcome into
/// `err` (when not NULL). Every fallible export goes through here.
pub(crate) fn guard(err: *mut lupa_error, f: impl FnOnce() -> Result<(), Failure>) -> lupa_code {
    let failure = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            // SAFETY: err is NULL or writable (every export's contract).
            unsafe { write_error(err, lupa_code::Ok, "") };
            return lupa_code::Ok;
        }
        Ok(Err(f)) => f,
        Err(_) => Failure::internal("Internal error; a panic was caught at the C boundary"),
    };
    // SAFETY: as above.
    unsafe { write_error(err, failure.code, &failure.message) };
    failure.code
}

/// Runs an infallible export, giving `fallback` if it panics.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The runtime every call blocks on: created on first use, shared by every
/// handle, never shut down (its threads end with the process).
///
/// A runtime's threads do not survive `fork()`: a child process gets a
/// runtime of its own on its first call (the parent's, unusable there, is
/// left alone, never dropped). Handles opened before the fork belong to the
/// parent; the child opens its own.
fn runtime() -> Result<&'static tokio::runtime::Runtime, Failure> {
    /// A runtime and the process that started it.
    struct Owned {
        pid: u32,
        rt: tokio::runtime::Runtime,
    }
    static CURRENT: AtomicPtr<Owned> = AtomicPtr::new(std::ptr::null_mut());
    static START: Mutex<()> = Mutex::new(());
    let pid = std::process::id();
    let mine = || {
        // SAFETY: every pointer stored in CURRENT comes from Box::leak and
        // is never freed.
        unsafe { CURRENT.load(Ordering::Acquire).as_ref() }.filter(|o| o.pid == pid).map(|o| &o.rt)
    };
    if let Some(rt) = mine() {
        return Ok(rt);
    }
    let _starting = START.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = mine() {
        return Ok(rt);
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("lupa-worker")
        .enable_all()
        .build()
        .map_err(|_| Failure::internal("the library could not start its runtime"))?;
    let owned: &'static Owned = Box::leak(Box::new(Owned { pid, rt }));
    CURRENT.store(std::ptr::from_ref(owned).cast_mut(), Ordering::Release);
    Ok(&owned.rt)
}

/// Blocks the calling thread on `fut`, within `timeout`. A call from a
/// thread that is running an async runtime (the library's own, or a host's
/// tokio) is refused: blocking there would deadlock or panic.
pub(crate) fn block_on<T>(timeout: Duration, fut: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Failure::new(
            lupa_code::ReentrantCall,
            "a blocking Lupa call was made from inside an async runtime; call it from a plain thread",
        ));
    }
    runtime()?.block_on(async {
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Failure::new(
                lupa_code::Timeout,
                format!("the call did not finish within {} ms", timeout.as_millis()),
            )),
        }
    })
}

/// Runs `fut` in the background on the library's runtime.
pub(crate) fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> Result<(), Failure> {
    runtime()?.spawn(fut);
    Ok(())
}

/// Runs `f` with the library's runtime entered (for drops that may need it).
pub(crate) fn with_runtime_entered<T>(f: impl FnOnce() -> T) -> T {
    match runtime() {
        Ok(rt) if tokio::runtime::Handle::try_current().is_err() => {
            let _guard = rt.enter();
            f()
        }
        _ => f(),
    }
}

/// A required C string argument.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
pub(crate) unsafe fn arg<'a>(p: *const c_char, name: &str) -> Result<&'a str, Failure> {
    // SAFETY: forwarded contract.
    unsafe { opt_arg(p, name) }?.ok_or_else(|| Failure::null(name))
}

/// An optional C string argument (NULL means none).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
pub(crate) unsafe fn opt_arg<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: p is non-NULL and NUL-terminated (the caller's contract).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map(Some).map_err(|_| Failure::invalid(format!("{name} is not valid UTF-8")))
}

/// Hands a string to the caller, who frees it with `lupa_string_free`.
pub(crate) fn give_string(s: String) -> Result<*mut c_char, Failure> {
    CString::new(s).map(CString::into_raw).map_err(|_| Failure::internal("a result held a NUL byte"))
}

/// Serialises a result for the caller.
pub(crate) fn give_json(value: &impl serde::Serialize) -> Result<*mut c_char, Failure> {
    let text =
        serde_json::to_string(value).map_err(|e| Failure::internal(format!("could not encode the result: {e}")))?;
    give_string(text)
}

/// A timeout argument in milliseconds; 0 means `default`.
pub(crate) fn timeout(ms: u64, default: Duration) -> Duration {
    if ms == 0 { default } else { Duration::from_millis(ms) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_c::LUPA_ERROR_MESSAGE_LEN;

    #[test]
    fn a_panic_becomes_internal() {
        let mut err = lupa_error { code: lupa_code::Ok, http_status: 0, message: [0; LUPA_ERROR_MESSAGE_LEN] };
        let code = guard(&mut err, || panic!("boom"));
        assert_eq!(code, lupa_code::Internal);
        assert_eq!(err.code, lupa_code::Internal);
        assert_eq!(err.http_status, 500);
        assert_eq!(guard_value(7, || panic!("boom")), 7);
    }

    #[test]
    fn a_call_from_inside_a_runtime_is_refused() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let r = rt.block_on(async { block_on(Duration::from_secs(1), async { Ok(()) }) });
        assert_eq!(r.unwrap_err().code, lupa_code::ReentrantCall);
        // From the library's own runtime, too.
        let inner = runtime().unwrap().block_on(async {
            tokio::task::spawn(async { block_on(Duration::from_secs(1), async { Ok(()) }) }).await.unwrap()
        });
        assert_eq!(inner.unwrap_err().code, lupa_code::ReentrantCall);
    }
}
