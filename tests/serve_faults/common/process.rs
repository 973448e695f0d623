//! `betrace serve` as a child process: started from a config file with the
//! receiver and admin port on free loopback ports, its log (standard error)
//! kept in a file for failure messages, and killed when the test lets go of
//! it — so a failing test never leaves a server behind.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use betrace_runtime::config::ServeConfig;
use betrace_tests::free_loopback_addr;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::transport::Channel;

use super::Metrics;

/// How long a server may take to become ready (a debug build, on a busy machine).
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(20);

/// Numbers each start's config and log file within a test directory.
static STARTS: AtomicUsize = AtomicUsize::new(0);

/// A running `betrace serve`.
#[derive(Debug)]
pub struct Served {
    child: Child,
    pub grpc: SocketAddr,
    pub admin: SocketAddr,
    log: PathBuf,
    http: reqwest::Client,
}

impl Served {
    /// Starts `betrace serve --config FILE` in `dir` with `config` on fresh
    /// loopback ports (OTLP/gRPC and admin; OTLP/HTTP off), and waits until
    /// `/readyz` answers 200. A port is free when picked but may be taken
    /// (by another test) before the server binds it: then the server is
    /// started again on other ports.
    pub async fn start(dir: &Path, config: ServeConfig) -> Served {
        const ATTEMPTS: usize = 3;
        for attempt in 1.. {
            let mut served = Served::spawn(dir, config.clone());
            match served.wait_ready().await {
                Ok(()) => return served,
                Err(log) if attempt < ATTEMPTS && log.contains("Address already in use") => continue,
                Err(log) => panic!("betrace serve exited before it was ready:\n{log}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn spawn(dir: &Path, mut config: ServeConfig) -> Served {
        let grpc = free_loopback_addr();
        let admin = free_loopback_addr();
        config.receivers.otlp_grpc = grpc.to_string();
        config.receivers.otlp_http = String::new();
        config.admin.addr = admin.to_string();
        let start = STARTS.fetch_add(1, Ordering::SeqCst);
        let config_path = dir.join(format!("betrace-{start}.toml"));
        std::fs::write(&config_path, config.to_toml()).expect("write the config file");
        let log = dir.join(format!("serve-{start}.log"));
        let log_file = std::fs::File::create(&log).expect("create the log file");

        let mut command = Command::new(env!("CARGO_BIN_EXE_betrace"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        // Only the config file speaks: no setting inherited from the environment.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("BETRACE_") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        command.env("BETRACE_LOG", "info");
        let child = command.spawn().expect("start betrace serve");

        betrace_runtime::receiver::install_crypto_provider();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("an HTTP client");
        Served { child, grpc, admin, log, http }
    }

    /// Waits for `/readyz`; the log if the server exited first.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("({status}) {}", self.log()));
            }
            if self.is_ready().await {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "betrace serve was not ready within {READY_TIMEOUT:?}:\n{}", self.log());
            tokio::time::sleep(POLL).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// `/readyz` answers 200.
    pub async fn is_ready(&self) -> bool {
        match self.http.get(self.url("/readyz")).send().await {
            Ok(response) => response.status() == reqwest::StatusCode::OK,
            Err(_) => false,
        }
    }

    pub async fn metrics(&self) -> Metrics {
        let response = self.http.get(self.url("/metrics")).send().await;
        let text = match response {
            Ok(response) => response.text().await.expect("read /metrics"),
            Err(e) => panic!("GET /metrics failed: {e}\n{}", self.log()),
        };
        Metrics::parse(&text)
    }

    /// Scrapes `/metrics` until `holds` is true of them; panics after
    /// `timeout`, saying `what` was awaited and showing the log.
    pub async fn wait_for_metrics(&self, what: &str, timeout: Duration, holds: impl Fn(&Metrics) -> bool) -> Metrics {
        let deadline = Instant::now() + timeout;
        loop {
            let metrics = self.metrics().await;
            if holds(&metrics) {
                return metrics;
            }
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {what}; last scrape: {metrics:?}\n{}",
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// An admin call; returns the status and the JSON body.
    pub async fn admin_call(&self, method: reqwest::Method, path: &str) -> (u16, serde_json::Value) {
        let response = match self.http.request(method, self.url(path)).send().await {
            Ok(response) => response,
            Err(e) => panic!("{path} failed: {e}\n{}", self.log()),
        };
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_else(|e| panic!("{path}: reading the answer: {e}"));
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} did not answer JSON ({e}): {text}"));
        (status, body)
    }

    /// `POST /api/v1/flush`: every open trace is complete and its
    /// violations written once this returns.
    pub async fn flush(&self) {
        let (status, body) = self.admin_call(reqwest::Method::POST, "/api/v1/flush").await;
        assert_eq!(status, 200, "flush: {body}\n{}", self.log());
    }

    /// The names of the rules loaded for the default tenant (`GET /api/v1/rules`).
    pub async fn rule_names(&self) -> Vec<String> {
        let (status, body) = self.admin_call(reqwest::Method::GET, "/api/v1/rules").await;
        assert_eq!(status, 200, "rules: {body}");
        let packs = body["tenants"][0]["packs"].as_array().cloned().unwrap_or_default();
        packs
            .iter()
            .flat_map(|pack| pack["rules"].as_array().cloned().unwrap_or_default())
            .filter_map(|rule| rule["name"].as_str().map(str::to_string))
            .collect()
    }

    /// Waits until the default tenant's rules are `names`.
    pub async fn wait_for_rules(&self, names: &[&str], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let loaded = self.rule_names().await;
            if loaded == names {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for rules {names:?}, have {loaded:?}\n{}",
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// A gRPC client of the OTLP receiver.
    pub async fn client(&self) -> TraceServiceClient<Channel> {
        TraceServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap_or_else(|e| panic!("connect to the OTLP/gRPC receiver: {e}\n{}", self.log()))
    }

    /// `kill -9`: no shutdown of any kind.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL betrace serve");
        self.child.wait().expect("reap betrace serve");
    }

    /// `kill -TERM`, then waits (up to `timeout`) for the process to exit.
    pub async fn terminate(mut self, timeout: Duration) -> (ExitStatus, String) {
        let sent = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status().expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {} failed", self.pid());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll betrace serve") {
                return (status, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "betrace serve did not exit within {timeout:?} of SIGTERM:\n{}",
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
