//! The tokio runtime behind every call, one per process.
//!
//! A runtime (its worker threads, its I/O driver) does not survive `fork()`:
//! the child has the memory but none of the threads, so waiting on it hangs.
//! The runtime is therefore built lazily and remembered with the process id
//! that built it; a child that sees another pid builds its own and leaks the
//! inherited one (dropping it would wait for threads that do not exist).

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use lupa_core::{Error, ErrorCode};
use pyo3_async_runtimes::TaskLocals;
use pyo3_async_runtimes::generic::{ContextExt, JoinError, Runtime as GenericRuntime};
use tokio::runtime::Runtime;

static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);

/// Calls into Python from the runtime's threads pass this gate.
///
/// A thread that takes the GIL while the interpreter finalizes is ended by
/// CPython with `pthread_exit`, which cannot unwind through Rust frames and
/// aborts the process. So at exit (an `atexit` hook, which runs before
/// finalization) the gate closes and waits for the threads inside; later
/// calls are skipped (their event loop is gone by then).
struct Gate {
    /// Whether the gate is closed, and how many threads are inside.
    state: Mutex<(bool, usize)>,
    left: Condvar,
}

static GATE: Gate = Gate { state: Mutex::new((false, 0)), left: Condvar::new() };

struct Inside;

impl Drop for Inside {
    fn drop(&mut self) {
        let mut state = GATE.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 -= 1;
        GATE.left.notify_all();
    }
}

/// Runs `f` (which takes the GIL) unless the interpreter is shutting down.
pub fn into_python<R>(f: impl FnOnce() -> R) -> Option<R> {
    {
        let mut state = GATE.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 {
            return None;
        }
        state.1 += 1;
    }
    let _inside = Inside;
    Some(f())
}

/// In a forked child: the parent's threads that were inside the gate do not
/// exist here.
pub fn reset_gate_after_fork() {
    GATE.state.lock().unwrap_or_else(|e| e.into_inner()).1 = 0;
}

/// Closes the gate and waits (at most `limit`) for the threads inside.
/// Called without the GIL, so that they can finish.
pub fn close_gate(limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut state = GATE.state.lock().unwrap_or_else(|e| e.into_inner());
    state.0 = true;
    while state.1 > 0 {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        state = GATE.left.wait_timeout(state, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
    }
}

fn build() -> std::io::Result<Runtime> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4);
    tokio::runtime::Builder::new_multi_thread().worker_threads(threads).thread_name("lupa-core").enable_all().build()
}

/// The runtime of this process, built on first use (again in a forked
/// child).
pub fn runtime() -> Result<&'static Runtime, Error> {
    let pid = std::process::id();
    let mut current = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    match *current {
        Some((owner, rt)) if owner == pid => Ok(rt),
        _ => {
            if current.is_some() {
                reset_gate_after_fork();
            }
            // An inherited runtime (another pid) is never dropped: it stays
            // leaked, as it already is by being `'static`.
            let rt: &'static Runtime =
                Box::leak(Box::new(build().map_err(|e| {
                    Error::new(ErrorCode::Internal, format!("could not start the tokio runtime: {e}"))
                })?));
            *current = Some((pid, rt));
            Ok(rt)
        }
    }
}

/// The runtime of this process if this process built one already.
pub fn existing_runtime() -> Option<&'static Runtime> {
    let pid = std::process::id();
    match *RUNTIME.lock().unwrap_or_else(|e| e.into_inner()) {
        Some((owner, rt)) if owner == pid => Some(rt),
        _ => None,
    }
}

/// The bridge `pyo3-async-runtimes` uses to run futures for asyncio: tokio,
/// on the fork-aware runtime above.
pub struct ForkAwareTokio;

/// A task that did not finish.
pub struct TaskFailed(tokio::task::JoinError);

impl JoinError for TaskFailed {
    fn is_panic(&self) -> bool {
        self.0.is_panic()
    }

    fn into_panic(self) -> Box<dyn std::any::Any + Send + 'static> {
        self.0.into_panic()
    }
}

tokio::task_local! {
    static TASK_LOCALS: OnceCell<TaskLocals>;
}

type Joined = Pin<Box<dyn Future<Output = Result<(), TaskFailed>> + Send>>;

fn joined(handle: Option<tokio::task::JoinHandle<()>>) -> Joined {
    Box::pin(async move {
        match handle {
            Some(h) => h.await.map_err(TaskFailed),
            // No runtime could be started: the task never ran, and the
            // awaitable stays pending. Starting a runtime only fails when the
            // process cannot create threads at all.
            None => Ok(()),
        }
    })
}

impl GenericRuntime for ForkAwareTokio {
    type JoinError = TaskFailed;
    type JoinHandle = Joined;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        joined(runtime().ok().map(|rt| rt.spawn(fut)))
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        // pyo3-async-runtimes hands results to the event loop from here,
        // with the GIL: through the gate.
        joined(runtime().ok().map(|rt| {
            rt.spawn_blocking(move || {
                into_python(f);
            })
        }))
    }
}

impl ContextExt for ForkAwareTokio {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS.try_with(|c| c.get().cloned()).unwrap_or_default()
    }
}
