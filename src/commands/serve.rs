//! `betrace serve`: the server. Receives OTLP, assembles traces, evaluates
//! the packs, exports violations (see `runtime/src/server.rs`).
//!
//! The configuration is built in layers, lowest first: defaults, the TOML
//! file (`--config`), `BETRACE_…` environment variables, then the flags
//! below. Each flag is a config key (named in its help) and so also an
//! environment variable.

use std::path::PathBuf;
use std::time::Duration;

use betrace_runtime::config::{ServeConfig, apply_env};

use crate::exit;

#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML configuration file (every key: `betrace serve --print-config`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Rule packs for the default tenant: pack directories, `.btr` or
    /// `.btpack` files; repeatable [rules.paths]. None: the standard pack.
    #[arg(long, value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// A directory with one pack directory per tenant (`X-Scope-OrgID`) [rules.tenants_dir].
    #[arg(long, value_name = "DIR")]
    tenants_dir: Option<PathBuf>,
    /// OTLP/gRPC listen address; `off` disables [receivers.otlp_grpc].
    #[arg(long, value_name = "ADDR")]
    otlp_grpc: Option<String>,
    /// OTLP/HTTP listen address; `off` disables [receivers.otlp_http].
    #[arg(long, value_name = "ADDR")]
    otlp_http: Option<String>,
    /// Metrics, health and admin API address; `off` disables [admin.addr].
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
    /// Send violation spans to an OTLP endpoint: gRPC (`http://tempo:4317`)
    /// [export.otlp_grpc], or OTLP/HTTP when the URL ends in `/v1/traces` [export.otlp_http].
    #[arg(long, value_name = "URL")]
    export_otlp: Option<String>,
    /// Append violations as JSON lines to this file; `off` disables [export.file].
    #[arg(long, value_name = "PATH")]
    violations_file: Option<PathBuf>,
    /// Complete a trace once no span has arrived for this long (`10s`, `500ms`) [assembly.idle_timeout].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    trace_idle_timeout: Option<Duration>,
    /// `jit` or `interp` [rules.engine].
    #[arg(long, value_name = "jit|interp")]
    engine: Option<String>,
    /// Print the configuration in effect as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

pub fn run(args: &ServeArgs) -> u8 {
    let config = match build_config(args, std::env::vars()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::FAILURE;
        }
    };
    if args.print_config {
        print!("{}", config.to_toml());
        return exit::OK;
    }
    init_logging();
    match betrace_runtime::server::run_until_signal(config) {
        Ok(()) => exit::OK,
        Err(error) => {
            eprintln!("error: {error}");
            exit::FAILURE
        }
    }
}

/// Logs go to standard error (standard output carries violations), at the
/// level `BETRACE_LOG` or `RUST_LOG` sets (`info` by default; Cranelift's own
/// logging, which prints every compiled function at `info`, only at `warn`).
fn init_logging() {
    const DEFAULT: &str = "info,cranelift_jit=warn,cranelift_codegen=warn";
    let filter = std::env::var("BETRACE_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| DEFAULT.into());
    let filter =
        tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Defaults, then the file, then the environment, then the flags.
fn build_config(args: &ServeArgs, env: impl IntoIterator<Item = (String, String)>) -> Result<ServeConfig, String> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            ServeConfig::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => ServeConfig::default(),
    };
    config = apply_env(&config, env)?;
    let off = |value: &str| if value == "off" { String::new() } else { value.to_string() };
    if !args.rules.is_empty() {
        config.rules.paths = args.rules.clone();
    }
    if let Some(dir) = &args.tenants_dir {
        config.rules.tenants_dir = Some(dir.clone());
    }
    if let Some(addr) = &args.otlp_grpc {
        config.receivers.otlp_grpc = off(addr);
    }
    if let Some(addr) = &args.otlp_http {
        config.receivers.otlp_http = off(addr);
    }
    if let Some(addr) = &args.admin {
        config.admin.addr = off(addr);
    }
    if let Some(url) = &args.export_otlp {
        if url.trim_end_matches('/').ends_with("/v1/traces") {
            config.export.otlp_http = Some(url.clone());
        } else {
            config.export.otlp_grpc = Some(url.clone());
        }
    }
    if let Some(path) = &args.violations_file {
        config.export.file = (path.as_os_str() != "off").then(|| path.clone());
    }
    if let Some(timeout) = args.trace_idle_timeout {
        config.assembly.idle_timeout = timeout;
    }
    if let Some(engine) = &args.engine {
        config.rules.engine = engine.clone();
    }
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn flags_override_the_environment_which_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("betrace.toml");
        std::fs::write(
            &file,
            "[assembly]\nidle_timeout = \"3s\"\nmax_traces = 5\n[receivers]\notlp_http = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file),
            otlp_http: Some("127.0.0.1:2".into()),
            trace_idle_timeout: Some(Duration::from_millis(100)),
            ..ServeArgs::default()
        };
        let env = vars(&[("BETRACE_ASSEMBLY_MAX_TRACES", "9"), ("BETRACE_ASSEMBLY_IDLE_TIMEOUT", "7s")]);
        let config = build_config(&args, env).unwrap();
        assert_eq!(config.assembly.idle_timeout, Duration::from_millis(100), "flag over env over file");
        assert_eq!(config.assembly.max_traces, 9, "env over file");
        assert_eq!(config.receivers.otlp_http, "127.0.0.1:2");
    }

    #[test]
    fn export_otlp_picks_the_protocol_from_the_url() {
        let grpc = ServeArgs { export_otlp: Some("http://tempo:4317".into()), ..ServeArgs::default() };
        let config = build_config(&grpc, []).unwrap();
        assert_eq!(config.export.otlp_grpc.as_deref(), Some("http://tempo:4317"));
        let http = ServeArgs { export_otlp: Some("http://tempo:4318/v1/traces".into()), ..ServeArgs::default() };
        let config = build_config(&http, []).unwrap();
        assert_eq!(config.export.otlp_http.as_deref(), Some("http://tempo:4318/v1/traces"));
        assert_eq!(config.export.otlp_grpc, None);
    }

    #[test]
    fn off_switches_a_listener_or_output_off() {
        let args =
            ServeArgs { otlp_grpc: Some("off".into()), violations_file: Some("off".into()), ..ServeArgs::default() };
        let config = build_config(&args, []).unwrap();
        assert_eq!(config.receivers.otlp_grpc, "");
        assert_eq!(config.export.file, None);
    }

    #[test]
    fn a_bad_file_names_itself() {
        let args = ServeArgs { config: Some("/nonexistent/betrace.toml".into()), ..ServeArgs::default() };
        assert!(build_config(&args, []).unwrap_err().contains("/nonexistent/betrace.toml"));
    }
}
