//! `betrace serve`, wired together: load the packs, open the exporters,
//! start the shards, then the receivers and the admin port. [`Server::start`]
//! returns once everything listens; [`Server::stop`] takes it down in the
//! order that loses nothing:
//!
//! 1. receivers stop taking requests (requests in flight finish);
//! 2. shards complete and evaluate every trace they hold; the violations
//!    are written to the outputs and queues before their threads end;
//! 3. delivery gets a moment to drain the queues (what it cannot send stays
//!    queued on disk for the next start);
//! 4. the admin port closes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{AdminState, FlushFn, admin_router};
use crate::assembly::{Budget, ShardContext, ShardHandle, spawn_shards};
use crate::config::ServeConfig;
use crate::export::{DeliveryHandle, Dispatcher, Tee, ViolationSink};
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::packs::{PackRegistry, load_packs};
use crate::receiver::{ReceiverOptions, serve_grpc, serve_http};
use crate::reload::{Reloader, Watch};

/// How long file changes must be quiet before a reload.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(250);

/// Extras for embedding the server (tests, benchmarks).
#[derive(Default)]
pub struct ServerOptions {
    /// Also hand every violation to this sink.
    pub extra_sink: Option<Arc<dyn ViolationSink>>,
}

/// A running server.
pub struct Server {
    /// Where each part listens (`None`: switched off).
    pub grpc_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    pub metrics: Arc<Metrics>,
    pub reloader: Arc<Reloader>,
    config: ServeConfig,
    shards: Arc<[ShardHandle]>,
    shard_threads: Vec<std::thread::JoinHandle<()>>,
    dispatcher: Arc<Dispatcher>,
    delivery: DeliveryHandle,
    stop_receivers: watch::Sender<bool>,
    receivers: Vec<JoinHandle<()>>,
    stop_admin: watch::Sender<bool>,
    admin: Option<JoinHandle<()>>,
    ready: Arc<AtomicBool>,
    background: Vec<JoinHandle<()>>,
    _watch: Option<Watch>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts a server; must be called inside a multi-threaded tokio runtime.
    pub async fn start(config: ServeConfig) -> Result<Server, String> {
        Server::start_with(config, ServerOptions::default()).await
    }

    pub async fn start_with(config: ServeConfig, options: ServerOptions) -> Result<Server, String> {
        config.validate()?;
        crate::receiver::install_crypto_provider();
        let metrics = Arc::new(Metrics::new());

        let rules = config.rules.clone();
        let packs = tokio::task::spawn_blocking(move || load_packs(&rules))
            .await
            .map_err(|e| format!("loading the packs stopped: {e}"))?
            .map_err(|failure| match failure.report.is_empty() {
                true => failure.message,
                false => format!("{}\n{}", failure.report.trim_end(), failure.message),
            })?;
        if let Some(dir) = &config.rules.state_dir {
            let restored = packs.restore_novelty(dir);
            if restored > 0 {
                tracing::info!(packs = restored, dir = %dir.display(), "restored novelty baselines");
            }
        }
        let registry = Arc::new(PackRegistry::new(packs));
        metrics.report_rule_costs(registry.clone());
        let reloader = Arc::new(Reloader::new(config.rules.clone(), registry.clone(), metrics.clone()));

        let signing_key = read_signing_key(&config)?;
        let dispatcher = Arc::new(Dispatcher::new(&config.export, metrics.clone(), signing_key)?);
        let delivery = dispatcher.start(&tokio::runtime::Handle::current())?;
        let sink: Arc<dyn ViolationSink> = match options.extra_sink {
            Some(extra) => Arc::new(Tee(vec![dispatcher.clone() as Arc<dyn ViolationSink>, extra])),
            None => dispatcher.clone(),
        };

        let budget = Arc::new(Budget::new(config.assembly.max_bytes, metrics.bytes_held.clone()));
        let context = ShardContext {
            config: config.assembly.clone(),
            packs: registry,
            sink,
            metrics: metrics.clone(),
            budget: budget.clone(),
        };
        let (shards, shard_threads) = spawn_shards(config.shard_count(), context);
        let retry_after = config.receivers.retry_after;
        let ingest = Ingest::new(shards.clone(), budget, metrics.clone(), retry_after, config.assembly.max_traces);

        let receiver_options =
            ReceiverOptions::from_config(&config.receivers, metrics.clone()).map_err(|e| e.to_string())?;
        let (stop_receivers, stopping) = watch::channel(false);
        let mut receivers = Vec::new();
        let grpc_addr = match bind(&config.receivers.otlp_grpc, "receivers.otlp_grpc").await? {
            Some(listener) => {
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                let serving = serve_grpc(listener, ingest.clone(), receiver_options.clone(), stopped(stopping.clone()));
                receivers.push(tokio::spawn(log_failure(serving)));
                Some(addr)
            }
            None => None,
        };
        let http_addr = match bind(&config.receivers.otlp_http, "receivers.otlp_http").await? {
            Some(listener) => {
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                let serving = serve_http(listener, ingest.clone(), receiver_options, stopped(stopping.clone()));
                receivers.push(tokio::spawn(log_failure(serving)));
                Some(addr)
            }
            None => None,
        };
        drop(ingest);

        let ready = Arc::new(AtomicBool::new(false));
        let (stop_admin, admin_stopping) = watch::channel(false);
        let (admin_addr, admin) = match bind(&config.admin.addr, "admin.addr").await? {
            Some(listener) => {
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                let state = AdminState {
                    ready: ready.clone(),
                    token: config.admin.token.as_deref().filter(|t| !t.is_empty()).map(Arc::from),
                    flush: Some(flush_fn(Arc::downgrade(&shards))),
                    ..AdminState::new(metrics.clone(), reloader.clone())
                };
                let router = admin_router(state);
                let task = tokio::spawn(async move {
                    let serving = axum::serve(listener, router).with_graceful_shutdown(stopped(admin_stopping.clone()));
                    if let Err(error) = serving.await {
                        tracing::error!("the admin port failed: {error}");
                    }
                });
                (Some(addr), Some(task))
            }
            None => (None, None),
        };

        let mut background = vec![tokio::spawn(report_novelty_bytes(reloader.clone(), metrics.clone()))];
        #[cfg(unix)]
        background.push(crate::reload::on_sighup(reloader.clone()).map_err(|e| format!("cannot catch SIGHUP: {e}"))?);
        let watch = match config.rules.watch {
            true => crate::reload::watch(reloader.clone(), WATCH_DEBOUNCE)
                .map_err(|e| format!("cannot watch the rule paths: {e}"))?,
            false => None,
        };
        ready.store(true, Ordering::SeqCst);
        tracing::info!(
            grpc = ?grpc_addr,
            http = ?http_addr,
            admin = ?admin_addr,
            rules = reloader.registry().current().default.rule_count(),
            "betrace is serving"
        );
        Ok(Server {
            grpc_addr,
            http_addr,
            admin_addr,
            metrics,
            reloader,
            config,
            shards,
            shard_threads,
            dispatcher,
            delivery,
            stop_receivers,
            receivers,
            stop_admin,
            admin,
            ready,
            background,
            _watch: watch,
        })
    }

    /// Completes and evaluates every open trace now (blocking).
    pub fn flush(&self) -> Result<(), String> {
        flush_shards(&self.shards)
    }

    /// Stops the server without losing an accepted span or a violation.
    pub async fn stop(self) {
        self.ready.store(false, Ordering::SeqCst);
        let _ = self.stop_receivers.send(true);
        for receiver in self.receivers {
            let _ = receiver.await;
        }
        drop(self.shards);
        let threads = self.shard_threads;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
        if let Some(dir) = &self.config.rules.state_dir {
            match self.reloader.registry().current().save_novelty(dir) {
                Ok(0) => {}
                Ok(saved) => tracing::info!(packs = saved, dir = %dir.display(), "saved novelty baselines"),
                Err(error) => tracing::error!("cannot save the novelty baselines in {}: {error}", dir.display()),
            }
        }
        drain(&self.dispatcher, self.config.export.timeout).await;
        self.delivery.stop().await;
        for task in self.background {
            task.abort();
        }
        let _ = self.stop_admin.send(true);
        if let Some(admin) = self.admin {
            let _ = admin.await;
        }
        tracing::info!("betrace stopped");
    }
}

/// The name of the tokio runtime's threads (receivers, exporters, admin), by
/// which `betrace_thread_cpu_seconds_total` tells them from the shards.
pub const IO_THREAD_NAME: &str = "betrace-io";

/// Runs a server until SIGINT or SIGTERM, on a tokio runtime of its own.
pub fn run_until_signal(config: ServeConfig) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.io_thread_count())
        .enable_all()
        .thread_name(IO_THREAD_NAME)
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let server = Server::start(config).await?;
        wait_for_signal().await;
        tracing::info!("stopping: completing open traces and writing their violations");
        server.stop().await;
        Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Binds `addr` (empty: the part is switched off).
async fn bind(addr: &str, key: &str) -> Result<Option<TcpListener>, String> {
    if addr.is_empty() {
        return Ok(None);
    }
    TcpListener::bind(addr).await.map(Some).map_err(|e| format!("{key}: cannot listen on {addr}: {e}"))
}

/// Completes once the watched flag turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn log_failure<E: std::fmt::Display>(serving: impl Future<Output = Result<(), E>>) {
    if let Err(error) = serving.await {
        tracing::error!("{error}");
    }
}

fn read_signing_key(config: &ServeConfig) -> Result<Option<Vec<u8>>, String> {
    let Some(path) = &config.export.signing_key_file else { return Ok(None) };
    let text =
        std::fs::read(path).map_err(|e| format!("export.signing_key_file: cannot read {}: {e}", path.display()))?;
    let key = text.trim_ascii().to_vec();
    if key.is_empty() {
        return Err(format!("export.signing_key_file: {} is empty", path.display()));
    }
    Ok(Some(key))
}

/// The admin flush: holds the shards weakly, so it never keeps them alive
/// past [`Server::stop`].
fn flush_fn(shards: Weak<[ShardHandle]>) -> FlushFn {
    Arc::new(move || match shards.upgrade() {
        Some(shards) => flush_shards(&shards),
        None => Err("the server is stopping".into()),
    })
}

fn flush_shards(shards: &[ShardHandle]) -> Result<(), String> {
    for shard in shards {
        shard.flush().map_err(|_| "a shard has stopped".to_string())?;
    }
    Ok(())
}

/// Keeps `betrace_novelty_bytes` current (the baselines live in the engines,
/// behind their locks; reading them every few seconds costs nothing).
async fn report_novelty_bytes(reloader: Arc<Reloader>, metrics: Arc<Metrics>) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        let bytes = reloader.registry().current().novelty_bytes();
        metrics.novelty_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

/// Waits (up to `timeout`) for the export queues to empty.
async fn drain(dispatcher: &Dispatcher, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while dispatcher.queue_stats().iter().any(|(_, stats)| stats.records > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
