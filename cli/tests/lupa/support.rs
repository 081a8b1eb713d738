//! What the CLI tests share: where the real services are (a missing one
//! fails under CI instead of skipping), a store of its own for every test,
//! and running the built `lupa` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub use lupa_test_support::{database_url, host_port, postgres, redis, redis_url, unique};

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// The outcome of one `lupa` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams, for checks that look at everything printed.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// PostgreSQL and Redis behind a test's own schema and key prefix.
pub struct Services {
    pub store: String,
    pub cache: String,
    pub schema: String,
    pub key_prefix: String,
}

/// One test's world: a directory to run in and the store and cache it
/// points `lupa` at through the environment.
pub struct Setup {
    pub dir: tempfile::TempDir,
    vars: Vec<(&'static str, String)>,
    pub services: Option<Services>,
}

/// Every variable `lupa` reads: a test sets its own and inherits none.
const VARIABLES: [&str; 7] = [
    "LUPA_STORE",
    "LUPA_CACHE",
    "LUPA_SCHEMA",
    "LUPA_KEY_PREFIX",
    "LUPA_STORE_TIMEOUT",
    "LUPA_CACHE_TIMEOUT",
    "NO_COLOR",
];

impl Setup {
    /// Nothing configured: `lupa` uses its defaults, in a fresh directory.
    pub fn bare() -> Setup {
        Setup { dir: tempfile::tempdir().expect("a temporary directory"), vars: Vec::new(), services: None }
    }

    /// An SQLite file of the test's own, no cache.
    pub fn sqlite() -> Setup {
        let mut s = Setup::bare();
        let store = format!("sqlite://{}", s.dir.path().join("test.db").display());
        s.vars.push(("LUPA_STORE", store));
        s
    }

    /// PostgreSQL and Redis, in a schema and key prefix of the test's own
    /// (dropped and deleted when the setup is dropped); none when the
    /// services are not running (under CI that panics instead).
    pub fn postgres_redis() -> Option<Setup> {
        let (store, cache) = (postgres()?, redis()?);
        let schema = unique("lupa_cli").to_lowercase();
        let key_prefix = format!("{schema}:");
        let mut s = Setup::bare();
        s.vars.push(("LUPA_STORE", store.clone()));
        s.vars.push(("LUPA_CACHE", cache.clone()));
        s.vars.push(("LUPA_SCHEMA", schema.clone()));
        s.vars.push(("LUPA_KEY_PREFIX", key_prefix.clone()));
        s.services = Some(Services { store, cache, schema, key_prefix });
        Some(s)
    }

    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.vars.retain(|(n, _)| *n != name);
        self.vars.push((name, value.into()));
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn has_cache(&self) -> bool {
        self.services.is_some()
    }

    /// `lupa` in this setup's directory with this setup's variables.
    pub fn command(&self) -> assert_cmd::Command {
        self.command_of(assert_cmd::cargo::cargo_bin!("lupa"))
    }

    /// Any program in this setup's directory with this setup's variables.
    pub fn command_of(&self, program: impl AsRef<std::ffi::OsStr>) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(program);
        for v in VARIABLES {
            cmd.env_remove(v);
        }
        for (name, value) in &self.vars {
            cmd.env(name, value);
        }
        cmd.current_dir(self.dir.path()).timeout(Duration::from_secs(120));
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command().args(args).output().expect("lupa runs");
        Run {
            // A signal has no code: -1 fails every check of an exit code.
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }

    /// `lupa --json ARGS`, which must succeed with one JSON document on
    /// stdout and nothing on stderr.
    pub fn ok(&self, args: &[&str]) -> Value {
        let r = self.run(&with_json(args));
        assert_eq!(r.code, 0, "lupa {args:?} failed: {r:?}");
        assert_eq!(r.stderr, "", "lupa {args:?} printed on stderr");
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("lupa {args:?}: not JSON ({e}): {}", r.stdout))
    }

    /// `lupa --json ARGS`, which must exit `code` with the error document
    /// `{"error": {"code": error, "message"}}` on stderr and nothing on
    /// stdout. Gives the message.
    pub fn fails(&self, args: &[&str], code: i32, error: &str) -> String {
        let r = self.run(&with_json(args));
        assert_eq!(r.code, code, "lupa {args:?}: wrong exit code: {r:?}");
        assert_eq!(r.stdout, "", "lupa {args:?} printed a result");
        let doc: Value = serde_json::from_str(&r.stderr)
            .unwrap_or_else(|e| panic!("lupa {args:?}: the error is not JSON ({e}): {}", r.stderr));
        assert_eq!(doc["error"]["code"], error, "lupa {args:?}: {doc}");
        let message = doc["error"]["message"].as_str().unwrap_or_else(|| panic!("no message: {doc}"));
        assert!(!message.is_empty());
        message.to_owned()
    }
}

fn with_json<'a>(args: &[&'a str]) -> Vec<&'a str> {
    std::iter::once("--json").chain(args.iter().copied()).collect()
}

impl Drop for Setup {
    fn drop(&mut self) {
        let Some(s) = &self.services else { return };
        let mut config = lupa_core::Config::new(s.store.clone(), s.cache.clone());
        config.schema = s.schema.clone();
        config.key_prefix = s.key_prefix.clone();
        config.local_cache = false;
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async {
            match lupa_core::Lupa::open(config).await {
                Ok(lupa) => {
                    // Updates a test left pending would be applied by this
                    // handle's background task, writing keys again: apply
                    // them, drop their records with the schema, then delete
                    // the keys.
                    let _ = lupa.apply_pending_cache_updates().await;
                    if let Err(e) = lupa.drop_storage().await {
                        eprintln!("could not drop schema {}: {e}", s.schema);
                    }
                    if let Some(probe) = lupa.cache_probe()
                        && let Err(e) = probe.clear().await
                    {
                        eprintln!("could not delete the test's cache keys: {e}");
                    }
                    lupa.close().await;
                }
                Err(e) => eprintln!("could not open the test's store to drop it: {e}"),
            }
        });
    }
}

/// The value of a cache key (a seed name, under the setup's prefix).
pub fn cache_get(setup: &Setup, key: &str) -> Option<String> {
    let s = setup.services.as_ref()?;
    let mut config = lupa_core::Config::new(s.store.clone(), s.cache.clone());
    config.schema = s.schema.clone();
    config.key_prefix = s.key_prefix.clone();
    config.local_cache = false;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let lupa = lupa_core::Lupa::open(config).await.expect("open the test's store");
        let value = lupa.cache_probe().expect("a cache").get(key).await.expect("read the cache");
        lupa.close().await;
        value
    })
}

/// Whether a path exists, for checks that a command did or did not create a
/// file.
pub fn exists(path: &Path) -> bool {
    path.try_exists().unwrap_or(false)
}
