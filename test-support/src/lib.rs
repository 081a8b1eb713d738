//! What Lupa's integration tests and its fault harness share: where the
//! real services are (and the rule that a missing service fails under CI
//! instead of skipping), names no other run uses, a TCP proxy a test can
//! cut in front of a server it must never stop, and a private
//! `redis-server` it may stop.
//!
//! Test code: failures to set up panic with a message.

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

/// `LUPA_TEST_DATABASE_URL`, or the local PostgreSQL.
pub fn database_url() -> String {
    std::env::var("LUPA_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `LUPA_TEST_REDIS_URL`, or the local Redis.
pub fn redis_url() -> String {
    std::env::var("LUPA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn reachable(url: &str, default_port: u16) -> bool {
    use std::net::ToSocketAddrs;
    host_port(url, default_port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

fn require(what: &str, url: &str, port: u16) -> bool {
    if reachable(url, port) {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{what} is not reachable at {} and CI=true: a missing service fails the run",
            lupa_core::redact_url(url)
        );
    }
    eprintln!("SKIPPED: {what} is not reachable at {}", lupa_core::redact_url(url));
    false
}

/// The PostgreSQL URL when the server answers (under CI a missing server
/// panics).
pub fn postgres() -> Option<String> {
    let url = database_url();
    require("PostgreSQL", &url, 5432).then_some(url)
}

/// The Redis URL when the server answers (under CI a missing server panics).
pub fn redis() -> Option<String> {
    let url = redis_url();
    require("Redis", &url, 6379).then_some(url)
}

/// A name no other test run uses: for schemas, prefixes and files.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{tag}_{}_{n}_{nanos}", std::process::id())
}

/// A TCP proxy a test can cut: in front of a shared server (never stopping
/// it) or a private one.
pub mod proxy {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};

    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[repr(u8)]
    pub enum Mode {
        /// Forward bytes both ways.
        Pass = 0,
        /// Accept and never answer: the peer waits until its own timeout.
        Blackhole = 1,
        /// Accept and close at once: the peer sees a reset connection.
        Refuse = 2,
    }

    pub struct Proxy {
        pub port: u16,
        mode: Arc<AtomicU8>,
        cut: watch::Sender<u64>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Proxy {
        /// Listens on a free loopback port and forwards to `upstream`
        /// (`host:port`).
        pub async fn start(upstream: String) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a proxy port");
            let port = listener.local_addr().unwrap().port();
            let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
            let (cut, _) = watch::channel(0u64);
            let task = {
                let mode = mode.clone();
                let cut = cut.clone();
                tokio::spawn(async move {
                    loop {
                        let Ok((client, _)) = listener.accept().await else { continue };
                        let mut cut_rx = cut.subscribe();
                        let current = mode.load(Ordering::Acquire);
                        let upstream = upstream.clone();
                        tokio::spawn(async move {
                            if current == Mode::Refuse as u8 {
                                drop(client);
                                return;
                            }
                            if current == Mode::Blackhole as u8 {
                                // Hold the socket open, silent, until the next cut or restore.
                                let _ = cut_rx.changed().await;
                                drop(client);
                                return;
                            }
                            let Ok(server) = TcpStream::connect(&upstream).await else { return };
                            let (mut c, mut s) = (client, server);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut c, &mut s) => {}
                                _ = cut_rx.changed() => {}
                            }
                        });
                    }
                })
            };
            Proxy { port, mode, cut, task }
        }

        /// Drops every open connection and treats new ones as `mode` says.
        pub fn set(&self, mode: Mode) {
            self.mode.store(mode as u8, Ordering::Release);
            self.cut.send_modify(|n| *n += 1);
        }

        pub fn url_for(&self, url: &str) -> String {
            super::replace_port(url, self.port)
        }
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            self.task.abort();
            self.cut.send_modify(|n| *n += 1);
        }
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
pub fn replace_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let userinfo = authority.rsplit_once('@').map(|(u, _)| format!("{u}@")).unwrap_or_default();
    format!("{scheme}://{userinfo}127.0.0.1:{port}{path}")
}

/// `host:port` of a URL (for a proxy's upstream, or a reachability check).
pub fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let hp = authority.rsplit('@').next().unwrap_or(authority);
    if hp.contains(':') { hp.to_string() } else { format!("{hp}:{default_port}") }
}

/// A private redis-server on a free port, stopped when dropped: fault tests
/// stop this one, never the machine's.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<std::process::Child>,
    dir: PathBuf,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        PrivateRedis::start_on(port)
    }

    /// A new server on a given port (one that a stopped server left free).
    pub fn start_on(port: u16) -> PrivateRedis {
        let dir = std::env::temp_dir().join(unique("lupa_redis"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let started = std::time::Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "private redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        PrivateRedis { port, child: Some(child), dir }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
