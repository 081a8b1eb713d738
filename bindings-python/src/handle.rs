//! The core handle as Python holds it: opened lazily from a saved
//! configuration, and opened again in a forked child.
//!
//! A child of `fork()` inherits the parent's connection pool and Redis
//! connection as memory and shared sockets: using them would mix the two
//! processes' traffic on one socket, and dropping them would send a goodbye
//! on the parent's connections. So a child never touches them: it leaks the
//! inherited core handle and opens its own from the configuration.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use lupa_core::{Config, Error, ErrorCode, Lupa, redact_url};

/// What a forked child does with a handle its parent opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterFork {
    /// Everything lives in process memory (memory store, memory or no
    /// cache): the child's copy is a consistent snapshot that holds no
    /// connection, and keeps being used.
    KeepCopy,
    /// Open again from the configuration (PostgreSQL, an SQLite file,
    /// Redis): the child gets its own connections to the same data.
    Reopen,
    /// An in-process database combined with a connection (SQLite in
    /// memory, whose connections live on threads the child does not have;
    /// or a memory store with Redis): neither copying nor reopening gives
    /// the same data, so the child gets an error telling it to open its
    /// own handle.
    Refuse,
}

fn after_fork(config: &Config) -> AfterFork {
    let store = config.store.as_str();
    let cache = config.cache.as_str();
    let memory_store = store == "memory://" || store == "memory:";
    let memory_cache = matches!(cache, "memory://" | "memory:" | "none" | "");
    let sqlite_in_memory = store.starts_with("sqlite:") && store.contains(":memory:");
    if memory_store && memory_cache {
        AfterFork::KeepCopy
    } else if memory_store || sqlite_in_memory {
        AfterFork::Refuse
    } else {
        AfterFork::Reopen
    }
}

struct Opened {
    pid: u32,
    lupa: Lupa,
}

/// One Python-visible handle: the configuration it was made from and the
/// core handle of the current process.
pub struct Handle {
    config: Config,
    after_fork: AfterFork,
    opened: Mutex<Option<Opened>>,
    /// Serialises opening, so that concurrent first calls open once.
    opening: tokio::sync::Mutex<()>,
    closed: AtomicBool,
}

pub fn closed_error() -> Error {
    Error::new(ErrorCode::StorageUnavailable, "Storage is unavailable: the handle is closed")
}

impl Handle {
    pub fn new(config: Config) -> Handle {
        let after_fork = after_fork(&config);
        Handle {
            config,
            after_fork,
            opened: Mutex::new(None),
            opening: tokio::sync::Mutex::new(()),
            closed: AtomicBool::new(false),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The core handle of this process, without opening one.
    fn current(&self) -> Result<Option<Lupa>, Error> {
        let pid = std::process::id();
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        let Some(o) = opened.as_mut() else { return Ok(None) };
        if o.pid == pid {
            return Ok(Some(o.lupa.clone()));
        }
        match self.after_fork {
            AfterFork::KeepCopy => {
                o.pid = pid;
                Ok(Some(o.lupa.clone()))
            }
            AfterFork::Reopen => {
                // The parent's pool and connections: never used, never
                // dropped here.
                std::mem::forget(opened.take());
                Ok(None)
            }
            AfterFork::Refuse => Err(Error::new(
                ErrorCode::StorageUnavailable,
                format!(
                    "Storage is unavailable: a handle on {} cannot cross fork(); open one in the child process",
                    redact_url(&self.config.store)
                ),
            )),
        }
    }

    /// The core handle of this process, opened on first use.
    pub async fn lupa(&self) -> Result<Lupa, Error> {
        if self.is_closed() {
            return Err(closed_error());
        }
        if let Some(lupa) = self.current()? {
            return Ok(lupa);
        }
        let _guard = self.opening.lock().await;
        if let Some(lupa) = self.current()? {
            return Ok(lupa);
        }
        let lupa = Lupa::open(self.config.clone()).await?;
        if self.is_closed() {
            lupa.close().await;
            return Err(closed_error());
        }
        tracing::debug!(target: "lupa_core::python", store = %redact_url(&self.config.store), "opened");
        *self.opened.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Opened { pid: std::process::id(), lupa: lupa.clone() });
        Ok(lupa)
    }

    /// The core handle of this process if it is open, without opening it
    /// or waiting for anything; a closed handle is an error.
    pub fn opened(&self) -> Result<Option<Lupa>, Error> {
        if self.is_closed() {
            return Err(closed_error());
        }
        self.current()
    }

    /// Closes the core handle of this process; later calls fail. A handle
    /// inherited from a parent process is left alone.
    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let taken = self.opened.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(o) = taken {
            if o.pid == std::process::id() || self.after_fork == AfterFork::KeepCopy {
                o.lupa.close().await;
            } else {
                std::mem::forget(o);
            }
        }
    }

    /// The store URL with any password hidden, and the other options that
    /// identify the handle, for `repr()`.
    pub fn describe(&self) -> String {
        format!(
            "store={:?}, cache={:?}, key_prefix={:?}, schema={:?}{}",
            redact_url(&self.config.store),
            redact_url(&self.config.cache),
            self.config.key_prefix,
            self.config.schema,
            if self.is_closed() { ", closed" } else { "" }
        )
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let Some(o) = self.opened.get_mut().unwrap_or_else(|e| e.into_inner()).take() else { return };
        match crate::runtime::existing_runtime() {
            // Connections are released inside the runtime that made them.
            Some(rt) if o.pid == std::process::id() => {
                let _entered = rt.enter();
                drop(o);
            }
            _ => std::mem::forget(o),
        }
    }
}
