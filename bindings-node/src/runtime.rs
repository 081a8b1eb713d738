//! The addon's tokio runtime, and the bridge from a Rust future to a
//! JavaScript Promise.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::LazyLock;

use futures_util::FutureExt;
use napi::bindgen_prelude::*;

use crate::errors;

/// One runtime per process, created on first use and never shut down: a
/// worker thread that exits takes nothing with it that other threads (or
/// its own in-flight calls) still need.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lupa-node")
        .enable_all()
        .build()
        .expect("the lupa-core runtime could not start")
});

/// Runs `fut` on the runtime without waiting for it.
pub fn spawn_detached(fut: impl Future<Output = ()> + Send + 'static) {
    RUNTIME.spawn(fut);
}

type Resolver<T> = Box<dyn FnOnce(Env) -> Result<T> + Send>;

/// Runs `fut` on the runtime and returns a Promise of its outcome: a value
/// made by `to_js` on the JavaScript thread, or a Lupa error. A panic in the
/// future rejects the Promise with an `INTERNAL` error instead of leaving it
/// pending.
pub fn promise<'e, T, Out, F, C>(env: &'e Env, fut: F, to_js: C) -> Result<Object<'e>>
where
    T: Send + 'static,
    Out: ToNapiValue + 'static,
    F: Future<Output = lupa_core::Result<T>> + Send + 'static,
    C: FnOnce(T) -> Out + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<Out, Resolver<Out>>()?;
    RUNTIME.spawn(async move {
        let outcome = match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(result) => result,
            Err(_) => {
                Err(lupa_core::Error::new(lupa_core::ErrorCode::Internal, "Internal error; details are in the logs"))
            }
        };
        deferred.resolve(Box::new(move |env: Env| match outcome {
            Ok(value) => Ok(to_js(value)),
            Err(e) => Err(errors::lupa_error(&env, &e)),
        }));
    });
    Ok(promise)
}

/// A Promise rejected with a TypeError: wrong JavaScript types reject like
/// every other failure of an async method instead of throwing.
pub fn rejected_type_error<'e>(env: &'e Env, message: String) -> Result<Object<'e>> {
    let (deferred, promise) = env.create_deferred::<(), Resolver<()>>()?;
    deferred.resolve(Box::new(move |env: Env| Err(errors::type_error(&env, &message))));
    Ok(promise)
}

/// A Promise rejected with a Lupa error known at once (a malformed request,
/// a negative answer held in process memory).
pub fn rejected<'e>(env: &'e Env, error: lupa_core::Error) -> Result<Object<'e>> {
    let (deferred, promise) = env.create_deferred::<(), Resolver<()>>()?;
    deferred.resolve(Box::new(move |env: Env| Err(errors::lupa_error(&env, &error))));
    Ok(promise)
}
