//! The admin port: Prometheus `/metrics`, `/healthz` and `/readyz`, and the
//! admin API under `/api/v1` — the loaded rules, the reload status, rule
//! text validation (diagnostics as JSON, for an editor in a web UI), reload
//! and flush. With `admin.token` set, `/api/*` needs `Authorization: Bearer
//! <token>`; metrics and health stay open for scrapers and probes.
//!
//! Every answer of the API, errors included, is JSON.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use betrace_compiler::{CheckConfig, SourceFile};
use betrace_vm::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::metrics::Metrics;
use crate::packs::load::diagnostics_json;
use crate::packs::{Packs, TenantPacks};
use crate::reload::Reloader;

/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Completes every open trace, blocking until done (`POST /api/v1/flush`).
pub type FlushFn = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    /// Reloads, and holds the pack registry and the reload status.
    pub reloader: Arc<Reloader>,
    /// Set once packs are loaded and receivers listen: `/readyz` answers 200.
    pub ready: Arc<AtomicBool>,
    /// When set, `/api/*` needs this bearer token.
    pub token: Option<Arc<str>>,
    /// `None`: `POST /api/v1/flush` answers 501.
    pub flush: Option<FlushFn>,
    /// How `POST /api/v1/validate` checks rule text (as the server compiles packs).
    pub check: CheckConfig,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl AdminState {
    /// Not ready, no token, no flush.
    pub fn new(metrics: Arc<Metrics>, reloader: Arc<Reloader>) -> AdminState {
        AdminState {
            metrics,
            reloader,
            ready: Arc::new(AtomicBool::new(false)),
            token: None,
            flush: None,
            check: CheckConfig::default(),
        }
    }
}

/// The admin port's routes.
pub fn admin_router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/status", get(status))
        .route("/api/v1/validate", post(validate))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/flush", post(flush))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .merge(api)
        .fallback(not_found)
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn not_found(request: Request) -> Response {
    error(StatusCode::NOT_FOUND, format!("no such endpoint: {} {}", request.method(), request.uri().path()))
}

async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let Some(token) = &state.token else { return next.run(request).await };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if given.is_some_and(|given| crate::receiver::constant_time_eq(given.trim().as_bytes(), token.as_bytes())) {
        return next.run(request).await;
    }
    let mut response = error(StatusCode::UNAUTHORIZED, "the admin API needs `Authorization: Bearer <admin.token>`");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}

async fn metrics(State(state): State<AdminState>) -> Response {
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], state.metrics.encode()).into_response()
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn status(State(state): State<AdminState>) -> Response {
    axum::Json(state.reloader.status()).into_response()
}

async fn reload(State(state): State<AdminState>) -> Response {
    match state.reloader.reload().await {
        Ok(generation) => axum::Json(json!({ "ok": true, "generation": generation })).into_response(),
        Err(failure) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({
                "ok": false,
                "generation": state.reloader.registry().current().generation,
                "error": failure.message,
                "path": failure.path,
                "diagnostics": failure.diagnostics,
            })),
        )
            .into_response(),
    }
}

async fn flush(State(state): State<AdminState>) -> Response {
    let Some(flush) = state.flush.clone() else {
        return error(StatusCode::NOT_IMPLEMENTED, "this server cannot flush traces");
    };
    match tokio::task::spawn_blocking(move || flush()).await {
        Ok(Ok(())) => axum::Json(json!({ "ok": true })).into_response(),
        Ok(Err(message)) => error(StatusCode::SERVICE_UNAVAILABLE, message),
        Err(panic) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("flush failed: {panic}")),
    }
}

/// `POST /api/v1/validate` as JSON (any other body is the rule text itself).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateRequest {
    source: String,
    /// The name diagnostics give the text.
    file: Option<String>,
}

/// The name of rule text posted without one.
const VALIDATED_FILE: &str = "input.btr";

async fn validate(State(state): State<AdminState>, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(';').next().is_some_and(|media| media.trim() == "application/json"));
    let (name, bytes) = if is_json {
        match serde_json::from_slice::<ValidateRequest>(&body) {
            Ok(request) => {
                (request.file.unwrap_or_else(|| VALIDATED_FILE.into()), Bytes::from(request.source.into_bytes()))
            }
            Err(e) => {
                return error(StatusCode::BAD_REQUEST, format!("expected {{\"source\": \"…\", \"file\": \"…\"}}: {e}"));
            }
        }
    } else {
        (VALIDATED_FILE.to_string(), body)
    };
    let check = state.check.clone();
    match tokio::task::spawn_blocking(move || validate_text(&name, &bytes, &check)).await {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(panic) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("checking failed: {panic}")),
    }
}

#[derive(Serialize)]
struct Validation {
    /// No errors (warnings allowed).
    ok: bool,
    /// Rules that checked without errors.
    rules: usize,
    diagnostics: Vec<serde_json::Value>,
}

/// Checks one file of rule text, as `betrace check --format json` would.
fn validate_text(name: &str, bytes: &[u8], config: &CheckConfig) -> Validation {
    let text = match betrace_compiler::syntax::decode_source(bytes) {
        Ok(text) => text,
        Err(diagnostic) => {
            let shown = SourceFile { name: name.into(), text: String::from_utf8_lossy(bytes).into_owned() };
            return Validation { ok: false, rules: 0, diagnostics: diagnostics_json(&[diagnostic], &[shown]) };
        }
    };
    let files = [SourceFile { name: name.into(), text: text.into() }];
    let reports = betrace_compiler::check_files(&files, config);
    let ok = !reports.iter().any(|report| report.has_errors());
    let rules = reports.iter().map(|report| report.checked.rules.len()).sum();
    let all: Vec<_> = reports.into_iter().flat_map(|report| report.diagnostics).collect();
    Validation { ok, rules, diagnostics: diagnostics_json(&all, &files) }
}

async fn rules(State(state): State<AdminState>) -> Response {
    axum::Json(RulesView::of(&state.reloader.registry().current())).into_response()
}

/// `GET /api/v1/rules`: every tenant's packs and rules.
#[derive(Serialize)]
struct RulesView {
    generation: u64,
    /// The default tenant (`""`) first, then the others by name.
    tenants: Vec<TenantView>,
}

#[derive(Serialize)]
struct TenantView {
    tenant: String,
    packs: Vec<PackView>,
}

#[derive(Serialize)]
struct PackView {
    name: String,
    version: String,
    /// `jit` or `interp`: the engine in effect.
    engine: &'static str,
    rules: Vec<RuleView>,
}

#[derive(Serialize)]
struct RuleView {
    /// `pack/rule`, as violations carry it.
    id: String,
    name: String,
    description: Option<String>,
    severity: &'static str,
    tags: Vec<String>,
    /// Runs as native code (the JIT), not on the interpreter.
    native: bool,
    /// Can fire before its trace is complete.
    early: bool,
    /// Costs `O(n^cost_degree)` in the trace's span count.
    cost_degree: u32,
}

impl RulesView {
    fn of(packs: &Packs) -> RulesView {
        let mut tenants: Vec<(&str, &TenantPacks)> =
            packs.tenants.iter().map(|(name, tenant)| (&**name, &**tenant)).collect();
        tenants.sort_by_key(|(name, _)| *name);
        tenants.insert(0, ("", &packs.default));
        RulesView {
            generation: packs.generation,
            tenants: tenants
                .into_iter()
                .map(|(tenant, packs)| TenantView {
                    tenant: tenant.into(),
                    packs: packs.engines.iter().map(|engine| PackView::of(engine)).collect(),
                })
                .collect(),
        }
    }
}

impl PackView {
    fn of(engine: &Engine) -> PackView {
        PackView {
            name: engine.pack.name.clone(),
            version: engine.pack.version.clone(),
            engine: engine.kind.name(),
            rules: (0..engine.rules.len())
                .map(|index| {
                    let rule = &engine.rules[index];
                    let program = &rule.program;
                    RuleView {
                        id: engine.rule_id(index).to_string(),
                        name: program.name.clone(),
                        description: program.description.clone(),
                        severity: program.severity.word(),
                        tags: program.tags.clone(),
                        native: rule.native.is_some(),
                        early: program.early,
                        cost_degree: program.cost_degree,
                    }
                })
                .collect(),
        }
    }
}
