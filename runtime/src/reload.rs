//! Hot reload: recompile every tenant's packs and swap them in whole, or keep
//! the running packs when the new ones fail. Three triggers share one
//! [`Reloader`]: changes under the rule paths ([`watch`], debounced), SIGHUP
//! ([`on_sighup`]) and the admin API.
//!
//! Compilations run one at a time, on the blocking pool. Requests coalesce
//! without being lost: each request takes a ticket; a compilation covers the
//! tickets taken before it started reading files, so a request made during a
//! compilation gets one more after it, and every request waiting meanwhile
//! shares that one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde::{Serialize, Serializer};

use crate::config::RulesConfig;
use crate::metrics::{Metrics, ResultLabel, TenantLabel};
use crate::packs::{LoadFailure, PackRegistry, Packs, load_packs};

/// Builds every tenant's packs from the rules configuration: [`load_packs`]
/// unless a test hands in another.
pub type PackLoader = Arc<dyn Fn(&RulesConfig) -> Result<Packs, LoadFailure> + Send + Sync>;

/// The last reload attempt, for the admin API.
#[derive(Clone, Debug, Serialize)]
pub struct ReloadAttempt {
    /// When it started (RFC 3339, UTC).
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    #[serde(rename = "took_ms", serialize_with = "millis")]
    pub took: Duration,
    pub ok: bool,
    /// The generation it made current (when ok).
    pub generation: Option<u64>,
    pub failure: Option<LoadFailure>,
}

/// The packs' generation and the last reload attempt.
#[derive(Clone, Debug, Serialize)]
pub struct ReloadStatus {
    pub generation: u64,
    pub last_reload: Option<ReloadAttempt>,
}

/// Tickets covered by the last compilation and what it gave.
struct LastRun {
    covered: u64,
    outcome: Option<Result<u64, LoadFailure>>,
}

/// Reloads the server's packs; shared by every trigger.
pub struct Reloader {
    rules: RulesConfig,
    registry: Arc<PackRegistry>,
    metrics: Arc<Metrics>,
    loader: PackLoader,
    /// Requests made so far; a request's ticket is its number.
    requests: AtomicU64,
    compilations: AtomicU64,
    /// Held for the whole of a compilation, so only one runs at a time.
    running: tokio::sync::Mutex<LastRun>,
    last_attempt: Mutex<Option<ReloadAttempt>>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").field("rules", &self.rules).finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader for the packs in `registry`, which were loaded from
    /// `rules`; records their per-tenant rule gauges.
    pub fn new(rules: RulesConfig, registry: Arc<PackRegistry>, metrics: Arc<Metrics>) -> Reloader {
        Reloader::with_loader(rules, registry, metrics, Arc::new(load_packs))
    }

    /// As [`Reloader::new`], building packs with `loader`.
    pub fn with_loader(
        rules: RulesConfig,
        registry: Arc<PackRegistry>,
        metrics: Arc<Metrics>,
        loader: PackLoader,
    ) -> Reloader {
        record_rule_gauges(&metrics, None, &registry.current());
        Reloader {
            rules,
            registry,
            metrics,
            loader,
            requests: AtomicU64::new(0),
            compilations: AtomicU64::new(0),
            running: tokio::sync::Mutex::new(LastRun { covered: 0, outcome: None }),
            last_attempt: Mutex::new(None),
        }
    }

    pub fn registry(&self) -> &Arc<PackRegistry> {
        &self.registry
    }

    pub fn rules(&self) -> &RulesConfig {
        &self.rules
    }

    /// Reload requests made so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Compilations run so far (requests coalesce, so at most as many).
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::SeqCst)
    }

    pub fn status(&self) -> ReloadStatus {
        let last_reload = self.last_attempt.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        ReloadStatus { generation: self.registry.current().generation, last_reload }
    }

    /// Recompiles every pack and swaps them in; on failure the running packs
    /// stay. Returns the generation now current, or why loading failed.
    /// Concurrent calls share compilations (see the module's documentation).
    pub async fn reload(&self) -> Result<u64, LoadFailure> {
        let ticket = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let mut last = self.running.lock().await;
        if last.covered >= ticket
            && let Some(outcome) = &last.outcome
        {
            return outcome.clone();
        }
        let covered = self.requests.load(Ordering::SeqCst);
        let outcome = self.compile_and_swap().await;
        *last = LastRun { covered, outcome: Some(outcome.clone()) };
        outcome
    }

    async fn compile_and_swap(&self) -> Result<u64, LoadFailure> {
        self.compilations.fetch_add(1, Ordering::SeqCst);
        let at = SystemTime::now();
        let started = Instant::now();
        let (loader, rules) = (self.loader.clone(), self.rules.clone());
        let loaded = tokio::task::spawn_blocking(move || loader(&rules)).await.unwrap_or_else(|panic| {
            Err(LoadFailure {
                path: PathBuf::new(),
                message: format!("loading the packs panicked: {panic}"),
                diagnostics: Vec::new(),
                report: String::new(),
            })
        });
        let outcome = match loaded {
            Ok(packs) => {
                let previous = self.registry.current();
                packs.carry_novelty_from(&previous);
                let generation = self.registry.swap(packs);
                record_rule_gauges(&self.metrics, Some(&previous), &self.registry.current());
                self.metrics.reloads.get_or_create(&ResultLabel { result: "ok" }).inc();
                tracing::info!(generation, took = ?started.elapsed(), "packs reloaded");
                Ok(generation)
            }
            Err(failure) => {
                self.metrics.reloads.get_or_create(&ResultLabel { result: "failed" }).inc();
                tracing::error!(
                    generation = self.registry.current().generation,
                    "reload failed, the running packs stay: {}\n{}",
                    failure.message,
                    failure.report
                );
                Err(failure)
            }
        };
        let attempt = ReloadAttempt {
            at,
            took: started.elapsed(),
            ok: outcome.is_ok(),
            generation: outcome.as_ref().ok().copied(),
            failure: outcome.as_ref().err().cloned(),
        };
        *self.last_attempt.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(attempt);
        outcome
    }
}

/// Sets `rules_loaded` and `rules_native` per tenant (`""` is the default
/// tenant), and removes the gauges of tenants `previous` had and `current`
/// has not.
pub fn record_rule_gauges(metrics: &Metrics, previous: Option<&Packs>, current: &Packs) {
    if let Some(previous) = previous {
        for tenant in previous.tenants.keys().filter(|t| !current.tenants.contains_key(*t)) {
            let label = TenantLabel { tenant: tenant.to_string() };
            metrics.rules_loaded.remove(&label);
            metrics.rules_native.remove(&label);
        }
    }
    let tenants = current.tenants.iter().map(|(name, packs)| (name.to_string(), packs));
    for (tenant, packs) in std::iter::once((String::new(), &current.default)).chain(tenants) {
        let label = TenantLabel { tenant };
        metrics.rules_loaded.get_or_create(&label).set(gauge_value(packs.rule_count()));
        metrics.rules_native.get_or_create(&label).set(gauge_value(packs.native_count()));
    }
}

fn gauge_value(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Reloads on every SIGHUP until the returned task is aborted.
#[cfg(unix)]
pub fn on_sighup(reloader: Arc<Reloader>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the packs");
            // A failure is logged and kept in the status by the reloader.
            let _ = reloader.reload().await;
        }
    }))
}

/// Watches the rule paths; dropping it stops watching.
pub struct Watch {
    _watcher: RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What one watch covers: a directory, recursively, or one file (watched
/// through its directory, since editors replace files by renaming).
#[derive(Debug)]
struct Target {
    watched: PathBuf,
    file: Option<PathBuf>,
}

impl Target {
    fn of(path: &Path) -> Target {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if path.is_dir() {
            return Target { watched: path, file: None };
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        Target { watched: dir, file: Some(path) }
    }

    fn covers(&self, changed: &Path) -> bool {
        match &self.file {
            Some(file) => changed == file,
            None => changed.starts_with(&self.watched) && is_rule_path(changed),
        }
    }
}

/// Rule files, packs, manifests and directories (a tenant added or removed);
/// not editors' swap and backup files.
fn is_rule_path(path: &Path) -> bool {
    let hidden = path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.'));
    match path.extension() {
        Some(ext) => !hidden && (ext == "btr" || ext == "btpack" || ext == "toml"),
        None => !hidden,
    }
}

/// Watches every rule path and the tenants directory, and reloads once
/// changes have been quiet for `debounce`. `None` when there is nothing to
/// watch (the standard pack only).
pub fn watch(reloader: Arc<Reloader>, debounce: Duration) -> notify::Result<Option<Watch>> {
    let rules = reloader.rules();
    let targets: Arc<Vec<Target>> =
        Arc::new(rules.paths.iter().chain(rules.tenants_dir.as_ref()).map(|path| Target::of(path)).collect());
    if targets.is_empty() {
        return Ok(None);
    }
    let (changed, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let filter = targets.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
        Ok(event) => {
            if event.paths.iter().any(|path| filter.iter().any(|target| target.covers(path))) {
                let _ = changed.send(());
            }
        }
        Err(error) => tracing::warn!("watching the rule paths: {error}"),
    })?;
    for target in targets.iter() {
        let mode = if target.file.is_some() { RecursiveMode::NonRecursive } else { RecursiveMode::Recursive };
        watcher.watch(&target.watched, mode)?;
    }
    let task = tokio::spawn(async move {
        while changes.recv().await.is_some() {
            // Wait for the changes to stop: an editor or `cp -r` writes many files.
            loop {
                match tokio::time::timeout(debounce, changes.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_quiet) => break,
                }
            }
            tracing::info!("rule files changed: reloading the packs");
            let _ = reloader.reload().await;
        }
    });
    Ok(Some(Watch { _watcher: watcher, task }))
}

fn rfc3339<S: Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_millis(*at))
}

fn millis<S: Serializer>(took: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(took.as_millis()).unwrap_or(u64::MAX))
}
