//! Loading packs for the server, hot reload (by call, file watch and SIGHUP)
//! and the admin API, over real files in temporary directories.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use betrace_runtime::admin::{AdminState, METRICS_CONTENT_TYPE, admin_router};
use betrace_runtime::config::RulesConfig;
use betrace_runtime::metrics::Metrics;
use betrace_runtime::packs::{LoadFailure, PackRegistry, Packs, load_packs};
use betrace_runtime::reload::{self, Reloader};
use serde_json::Value;
use tower::ServiceExt;

const RULES: &str = r#"// Server spans answer within 500ms.
rule slow_servers {
  severity: high
  tags: ["latency", "test"]
  message: "{s.name} took {s.duration}"
  when s = { kind = server }
  always s.duration <= 500ms
}

// Traces with a server span have no error span.
rule no_errors {
  severity: critical
  tags: ["errors"]
  when { kind = server }
  never { status = error }
}
"#;

/// `nme` (line 4, column 11) is not a span field.
const BROKEN: &str = "rule broken {\n  severity: high\n  when { kind = server }\n  never { nme = \"x\" }\n}\n";

const MANIFEST: &str = "name = \"tests\"\nversion = \"1.2.3\"\nengine = \">=0.1\"\n";

fn rule(name: &str) -> String {
    format!(
        "// {name}\nrule {name} {{\n  severity: low\n  when {{ kind = server }}\n  never {{ status = error }}\n}}\n"
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn pack_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "pack.toml", MANIFEST);
    write(dir.path(), "rules.btr", RULES);
    dir
}

fn rules_config(paths: &[&Path]) -> RulesConfig {
    RulesConfig { paths: paths.iter().map(|p| p.to_path_buf()).collect(), ..RulesConfig::default() }
}

fn rule_names(packs: &Packs, tenant: &str) -> Vec<String> {
    let mut names: Vec<String> = packs
        .for_tenant(tenant)
        .engines
        .iter()
        .flat_map(|engine| engine.rules.iter().map(|rule| rule.program.name.clone()))
        .collect();
    names.sort();
    names
}

fn reloader_for(rules: RulesConfig) -> (Arc<Reloader>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let registry = Arc::new(PackRegistry::new(load_packs(&rules).unwrap()));
    (Arc::new(Reloader::new(rules, registry, metrics.clone())), metrics)
}

async fn eventually(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- Loading ----

#[test]
fn no_paths_load_the_standard_pack() {
    let packs = load_packs(&RulesConfig::default()).unwrap();
    assert_eq!(packs.default.engines.len(), 1);
    assert_eq!(packs.default.engines[0].pack.name, "standard");
    assert!(packs.default.rule_count() >= 12, "{} rules", packs.default.rule_count());
    assert!(packs.tenants.is_empty());
}

#[test]
fn a_pack_directory_loads_with_its_manifest() {
    let dir = pack_dir();
    let packs = load_packs(&rules_config(&[dir.path()])).unwrap();
    let engine = &packs.default.engines[0];
    assert_eq!((engine.pack.name.as_str(), engine.pack.version.as_str()), ("tests", "1.2.3"));
    assert_eq!(rule_names(&packs, ""), ["no_errors", "slow_servers"]);
}

#[test]
fn each_tenant_directory_is_one_tenants_packs() {
    let default = pack_dir();
    let tenants = tempfile::tempdir().unwrap();
    for (tenant, rule_name) in [("acme", "acme_rule"), ("globex", "globex_rule")] {
        let dir = tenants.path().join(tenant);
        std::fs::create_dir(&dir).unwrap();
        write(&dir, &format!("{rule_name}.btr"), &rule(rule_name));
    }
    write(tenants.path(), "README", "plain files are not tenants");
    let rules = RulesConfig { tenants_dir: Some(tenants.path().to_path_buf()), ..rules_config(&[default.path()]) };
    let packs = load_packs(&rules).unwrap();
    assert_eq!(packs.tenants.len(), 2);
    assert_eq!(rule_names(&packs, "acme"), ["acme_rule"]);
    assert_eq!(rule_names(&packs, "globex"), ["globex_rule"]);
    assert_eq!(rule_names(&packs, "initech"), ["no_errors", "slow_servers"], "tenants without a directory");
    assert_eq!(rule_names(&packs, ""), ["no_errors", "slow_servers"]);
}

#[test]
fn a_broken_rule_is_a_failure_with_coded_diagnostics() {
    let dir = pack_dir();
    write(dir.path(), "broken.btr", BROKEN);
    let failure: LoadFailure = load_packs(&rules_config(&[dir.path()])).unwrap_err();
    assert!(failure.message.contains("the pack's rules have 1 error"), "{failure}");
    assert!(failure.message.contains(&dir.path().display().to_string()), "{failure}");
    let diagnostic = &failure.diagnostics[0];
    assert!(diagnostic["code"].as_str().unwrap().starts_with("E1"), "{diagnostic}");
    assert_eq!(diagnostic["severity"], "error");
    assert!(diagnostic["file"].as_str().unwrap().ends_with("broken.btr"), "{diagnostic}");
    assert_eq!(diagnostic["range"]["start"]["line"], 4, "{diagnostic}");
    assert_eq!(diagnostic["range"]["start"]["column"], 11, "{diagnostic}");
    assert!(failure.report.contains("nme"), "the log report shows the source: {}", failure.report);
}

// ---- Reload ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_pack_keeps_the_running_one_until_it_is_fixed() {
    let dir = pack_dir();
    let (reloader, metrics) = reloader_for(rules_config(&[dir.path()]));
    assert!(metrics.encode().contains("betrace_rules_loaded{tenant=\"\"} 2"), "{}", metrics.encode());

    write(dir.path(), "broken.btr", BROKEN);
    let failure = reloader.reload().await.unwrap_err();
    assert!(!failure.diagnostics.is_empty());
    let running = reloader.registry().current();
    assert_eq!(running.generation, 1, "the running packs stay");
    assert_eq!(rule_names(&running, ""), ["no_errors", "slow_servers"]);
    let status = reloader.status();
    let last = status.last_reload.as_ref().unwrap();
    assert!(!last.ok);
    assert_eq!(last.failure.as_ref().unwrap().diagnostics, failure.diagnostics);
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["generation"], 1);
    assert_eq!(json["last_reload"]["failure"]["diagnostics"][0]["range"]["start"]["line"], 4);
    assert!(metrics.encode().contains("betrace_reloads_total{result=\"failed\"} 1"));

    write(dir.path(), "broken.btr", &rule("fixed"));
    assert_eq!(reloader.reload().await.unwrap(), 2);
    assert_eq!(rule_names(&reloader.registry().current(), ""), ["fixed", "no_errors", "slow_servers"]);
    let status = reloader.status();
    assert!(status.last_reload.as_ref().unwrap().ok && status.generation == 2);
    let text = metrics.encode();
    assert!(text.contains("betrace_reloads_total{result=\"ok\"} 1"), "{text}");
    assert!(text.contains("betrace_rules_loaded{tenant=\"\"} 3"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_under_a_watched_directory_reload_the_packs() {
    let dir = pack_dir();
    let tenants = tempfile::tempdir().unwrap();
    let rules = RulesConfig { tenants_dir: Some(tenants.path().to_path_buf()), ..rules_config(&[dir.path()]) };
    let (reloader, _) = reloader_for(rules);
    let _watch = reload::watch(reloader.clone(), Duration::from_millis(50)).unwrap().expect("paths to watch");

    write(dir.path(), "more.btr", &rule("added"));
    let registry = reloader.registry().clone();
    eventually("the new rule", Duration::from_secs(3), || {
        rule_names(&registry.current(), "").contains(&"added".into())
    })
    .await;

    // A tenant appears: its directory is moved in whole.
    let staging = tempfile::tempdir().unwrap();
    let acme = staging.path().join("acme");
    std::fs::create_dir(&acme).unwrap();
    write(&acme, "acme.btr", &rule("acme_rule"));
    std::fs::rename(&acme, tenants.path().join("acme")).unwrap();
    eventually("the new tenant", Duration::from_secs(3), || rule_names(&registry.current(), "acme") == ["acme_rule"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_rule_file_reloads_when_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.btr");
    write(dir.path(), "one.btr", &rule("first"));
    let (reloader, _) = reloader_for(rules_config(&[&file]));
    let _watch = reload::watch(reloader.clone(), Duration::from_millis(50)).unwrap().expect("a file to watch");
    // Editors save by writing a temporary file and renaming it over the old one.
    write(dir.path(), ".one.btr.swp", &rule("second"));
    std::fs::rename(dir.path().join(".one.btr.swp"), &file).unwrap();
    let registry = reloader.registry().clone();
    eventually("the replaced rule", Duration::from_secs(3), || rule_names(&registry.current(), "") == ["second"]).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads() {
    let dir = pack_dir();
    let (reloader, _) = reloader_for(rules_config(&[dir.path()]));
    let task = reload::on_sighup(reloader.clone()).unwrap();
    let status = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status().unwrap();
    assert!(status.success());
    eventually("a reload", Duration::from_secs(3), || reloader.registry().current().generation == 2).await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_compilations_and_none_is_lost() {
    let running = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let hold = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let loader = {
        let (running, most_at_once, hold) = (running.clone(), most_at_once.clone(), hold.clone());
        Arc::new(move |_: &RulesConfig| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most_at_once.fetch_max(now, Ordering::SeqCst);
            while hold.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(Packs::default())
        })
    };
    let registry = Arc::new(PackRegistry::new(Packs::default()));
    let reloader = Arc::new(Reloader::with_loader(RulesConfig::default(), registry, Arc::new(Metrics::new()), loader));

    // A first reload starts compiling and is held there…
    let first = tokio::spawn({
        let reloader = reloader.clone();
        async move { reloader.reload().await }
    });
    eventually("the first compilation", Duration::from_secs(3), || running.load(Ordering::SeqCst) == 1).await;
    // …while ten more requests arrive.
    let later: Vec<_> = (0..10)
        .map(|_| {
            let reloader = reloader.clone();
            tokio::spawn(async move { reloader.reload().await })
        })
        .collect();
    eventually("every request", Duration::from_secs(3), || reloader.requests() == 11).await;
    hold.store(false, Ordering::SeqCst);

    assert_eq!(first.await.unwrap().unwrap(), 2);
    for request in later {
        assert_eq!(request.await.unwrap().unwrap(), 3, "requests made during a compilation get one more, shared");
    }
    assert_eq!(reloader.compilations(), 2);
    assert_eq!(most_at_once.load(Ordering::SeqCst), 1, "never two compilations at once");
}

// ---- Admin API ----

struct Admin {
    state: AdminState,
    _dir: tempfile::TempDir,
}

fn admin() -> Admin {
    let dir = pack_dir();
    let (reloader, metrics) = reloader_for(rules_config(&[dir.path()]));
    Admin { state: AdminState::new(metrics, reloader), _dir: dir }
}

impl Admin {
    fn dir(&self) -> &Path {
        self._dir.path()
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, String, Option<String>) {
        let response = admin_router(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let content_type =
            response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or_default().to_string());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned(), content_type)
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let (status, body, _) = self.call(Request::get(path).body(Body::empty()).unwrap()).await;
        (status, body)
    }

    async fn post(&self, path: &str, content_type: &str, body: &str) -> (StatusCode, Value) {
        let request = Request::post(path).header(header::CONTENT_TYPE, content_type).body(Body::from(body.to_string()));
        let (status, body, _) = self.call(request.unwrap()).await;
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
    }
}

#[tokio::test]
async fn metrics_and_health_are_served() {
    let admin = admin();
    let (status, body, content_type) = admin.call(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some(METRICS_CONTENT_TYPE));
    assert!(body.contains("betrace_rules_loaded{tenant=\"\"} 2"), "{body}");
    assert_eq!(admin.get("/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn readyz_follows_the_ready_flag() {
    let admin = admin();
    assert_eq!(admin.get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    admin.state.ready.store(true, Ordering::SeqCst);
    assert_eq!(admin.get("/readyz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn rules_lists_every_tenants_packs_and_rules() {
    let admin = admin();
    let (status, body) = admin.get("/api/v1/rules").await;
    assert_eq!(status, StatusCode::OK);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["generation"], 1);
    let tenant = &json["tenants"][0];
    assert_eq!(tenant["tenant"], "");
    let pack = &tenant["packs"][0];
    assert_eq!((pack["name"].as_str(), pack["version"].as_str()), (Some("tests"), Some("1.2.3")));
    let slow = pack["rules"].as_array().unwrap().iter().find(|r| r["name"] == "slow_servers").unwrap();
    assert_eq!(slow["id"], "tests/slow_servers");
    assert_eq!(slow["severity"], "high");
    assert_eq!(slow["tags"], serde_json::json!(["latency", "test"]));
    assert_eq!(slow["cost_degree"], 1);
    assert!(slow["native"].is_boolean() && slow["early"].is_boolean(), "{slow}");
    let no_errors = pack["rules"].as_array().unwrap().iter().find(|r| r["name"] == "no_errors").unwrap();
    assert_eq!(no_errors["early"], true, "a `never` can fire before its trace completes");
}

#[tokio::test]
async fn validate_returns_diagnostics_and_never_touches_the_packs() {
    let admin = admin();
    let (status, json) = admin.post("/api/v1/validate", "text/plain", BROKEN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["ok"], false);
    let diagnostic = &json["diagnostics"][0];
    assert!(diagnostic["code"].as_str().unwrap().starts_with("E1"), "{json}");
    assert_eq!(diagnostic["range"]["start"]["line"], 4);

    let (_, json) = admin.post("/api/v1/validate", "text/plain", RULES).await;
    assert_eq!((json["ok"].as_bool(), json["rules"].as_u64()), (Some(true), Some(2)), "{json}");
    assert_eq!(json["diagnostics"], serde_json::json!([]));

    let body = serde_json::json!({ "source": BROKEN, "file": "editor.btr" }).to_string();
    let (_, json) = admin.post("/api/v1/validate", "application/json", &body).await;
    assert_eq!(json["diagnostics"][0]["file"], "editor.btr");

    let (status, json) = admin.post("/api/v1/validate", "application/json", "{\"text\": 1}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["error"].is_string());

    let binary =
        admin.call(Request::post("/api/v1/validate").body(Body::from(vec![0u8, 0xff, 0xfe, 0])).unwrap()).await;
    let json: Value = serde_json::from_str(&binary.1).unwrap();
    assert_eq!(json["ok"], false, "binary input gets a diagnostic: {json}");
    assert!(json["diagnostics"][0]["code"].is_string());
    assert_eq!(admin.state.reloader.registry().current().generation, 1);
}

#[tokio::test]
async fn reload_and_status_report_failures_with_diagnostics() {
    let admin = admin();
    let (status, body) = admin.get("/api/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((json["generation"].as_u64(), json["last_reload"].is_null()), (Some(1), true));

    write(admin.dir(), "broken.btr", BROKEN);
    let (status, json) = admin.post("/api/v1/reload", "text/plain", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json["generation"], 1);
    assert_eq!(json["diagnostics"][0]["range"]["start"]["column"], 11, "{json}");
    let json: Value = serde_json::from_str(&admin.get("/api/v1/status").await.1).unwrap();
    assert_eq!(json["last_reload"]["ok"], false);
    assert!(json["last_reload"]["failure"]["message"].as_str().unwrap().contains("1 error"), "{json}");
    assert!(json["last_reload"]["at"].as_str().unwrap().ends_with('Z'), "{json}");

    std::fs::remove_file(admin.dir().join("broken.btr")).unwrap();
    let (status, json) = admin.post("/api/v1/reload", "text/plain", "").await;
    assert_eq!((status, json["generation"].as_u64()), (StatusCode::OK, Some(2)));
    let json: Value = serde_json::from_str(&admin.get("/api/v1/status").await.1).unwrap();
    assert_eq!((json["generation"].as_u64(), json["last_reload"]["ok"].as_bool()), (Some(2), Some(true)));
}

#[tokio::test]
async fn flush_calls_the_servers_callback() {
    let mut admin = admin();
    let (status, _) = admin.post("/api/v1/flush", "text/plain", "").await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    admin.state.flush = Some(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }));
    let (status, json) = admin.post("/api/v1/flush", "text/plain", "").await;
    assert_eq!((status, json["ok"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_api_needs_the_token_when_one_is_set() {
    let mut admin = admin();
    admin.state.token = Some("s3cret".into());
    let with = |auth: Option<&str>| {
        let mut request = Request::get("/api/v1/rules");
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        request.body(Body::empty()).unwrap()
    };
    for auth in [None, Some("Bearer wrong"), Some("s3cret"), Some("Basic czNjcmV0")] {
        let (status, body, _) = admin.call(with(auth)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    }
    assert_eq!(admin.call(with(Some("Bearer s3cret"))).await.0, StatusCode::OK);
    let (status, _) = admin.post("/api/v1/reload", "text/plain", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(admin.get("/metrics").await.0, StatusCode::OK, "metrics stay open");
    assert_eq!(admin.get("/healthz").await.0, StatusCode::OK, "health stays open");
}

#[tokio::test]
async fn unknown_paths_are_404_with_a_json_error() {
    let admin = admin();
    let (status, body) = admin.get("/api/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert!(json["error"].as_str().unwrap().contains("/api/v1/nothing"), "{json}");
}
