//! Loading packs from disk: one pack from a path ([`load_pack`], what the
//! command line's `--rules` reads) and every tenant's packs for the server
//! ([`load_packs`]). Failures are data — the compiler's diagnostics and the
//! files they point into — so the command line can print them in colour and
//! the server can log them and hand them to the admin API as JSON
//! ([`LoadFailure`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use betrace_compiler::SourceFile;
use betrace_compiler::diagnostics::{self, Diagnostic};
use betrace_compiler::line_index::LineIndex;
use betrace_compiler::pack::{self, BuildError, Built, CompiledPack, Manifest, PackConfig, PackError};
use betrace_compiler::render::{self, HumanStyle};
use betrace_vm::{Engine, EngineKind, EvalConfig, PackInfo};
use serde::Serialize;

use super::sources::{self, PackSources};
use super::{Packs, TenantPacks};
use crate::config::RulesConfig;
use crate::tenant::{Tenant, parse_tenant};

/// Why a pack's sources did not compile.
#[derive(Debug)]
pub enum CompileError {
    /// Some files are not text; `file` indexes [`PackSources::shown`].
    Unreadable(Vec<Diagnostic>),
    Build(BuildError),
}

impl CompileError {
    /// The one-line summary printed after the diagnostics (`the pack's rules
    /// have 2 errors`), with the manifest's location for manifest errors.
    pub fn summary(&self, sources: &PackSources) -> String {
        match self {
            CompileError::Unreadable(files) => {
                format!("{} file{} not rule text", files.len(), if files.len() == 1 { " is" } else { "s are" })
            }
            CompileError::Build(BuildError::Manifest(error)) => {
                let Some((path, text)) = &sources.manifest else { return format!("pack.toml: {error}") };
                match error.span() {
                    Some(span) => {
                        let at = LineIndex::new(text).line_col(text, u32::try_from(span.start).unwrap_or(u32::MAX));
                        format!("{}:{}:{}: {error}", path.display(), at.line + 1, at.col + 1)
                    }
                    None => format!("{}: {error}", path.display()),
                }
            }
            CompileError::Build(BuildError::NoSources) => "no .btr rule files found".into(),
            CompileError::Build(error) => error.to_string(),
        }
    }

    /// The compiler's diagnostics (errors and warnings), sorted; `file`
    /// indexes [`PackSources::shown`].
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            CompileError::Unreadable(all) | CompileError::Build(BuildError::Rules(all)) => all,
            CompileError::Build(_) => &[],
        }
    }
}

/// Compiles sources into a pack: with `manifest` when given, else with the
/// directory's `pack.toml`, else as the `local` pack ([`Manifest::local`]).
pub fn compile(sources: &PackSources, manifest: Option<Manifest>, config: &PackConfig) -> Result<Built, CompileError> {
    if !sources.unreadable.is_empty() {
        return Err(CompileError::Unreadable(sources.unreadable.clone()));
    }
    let result = match (manifest, &sources.manifest) {
        (Some(manifest), _) => pack::build_pack_with(manifest, &sources.files, config),
        (None, Some((_, text))) => pack::build_pack(text, &sources.files, config),
        (None, None) => pack::build_pack_with(Manifest::local(), &sources.files, config),
    };
    result.map_err(CompileError::Build)
}

/// A pack loaded from a path, and the warnings its sources gave.
#[derive(Debug)]
pub struct LoadedPack {
    pub pack: CompiledPack,
    /// Warnings; `file` indexes `files`. Empty for a `.btpack`.
    pub warnings: Vec<Diagnostic>,
    /// The source files as the user names them (for reports).
    pub files: Vec<SourceFile>,
}

/// Why [`load_pack`] failed.
#[derive(Debug)]
pub enum PackLoadError {
    Missing(PathBuf),
    /// A file or directory could not be read.
    Read(String),
    /// A `.btpack` that is not a usable pack.
    Pack {
        path: PathBuf,
        error: PackError,
    },
    Compile {
        sources: PackSources,
        error: CompileError,
    },
}

impl std::fmt::Display for PackLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PackLoadError::Missing(path) => write!(f, "no such file or directory: {}", path.display()),
            PackLoadError::Read(message) => f.write_str(message),
            PackLoadError::Pack { path, error } => write!(f, "{}: {error}", path.display()),
            PackLoadError::Compile { sources, error } => f.write_str(&error.summary(sources)),
        }
    }
}

/// Loads the pack a path names: a compiled `.btpack` (any file not ending in
/// `.btr`), a pack directory (with or without `pack.toml`), or a `.btr` file.
pub fn load_pack(path: &Path, config: &PackConfig) -> Result<LoadedPack, PackLoadError> {
    if !path.exists() {
        return Err(PackLoadError::Missing(path.to_path_buf()));
    }
    if path.is_file() && path.extension().is_none_or(|ext| ext != "btr") {
        let bytes =
            std::fs::read(path).map_err(|e| PackLoadError::Read(format!("cannot read {}: {e}", path.display())))?;
        let pack = pack::read_pack_for(&bytes, &config.engine_version)
            .map_err(|error| PackLoadError::Pack { path: path.to_path_buf(), error })?;
        return Ok(LoadedPack { pack, warnings: Vec::new(), files: Vec::new() });
    }
    let sources = sources::read_sources(path).map_err(PackLoadError::Read)?;
    match compile(&sources, None, config) {
        Ok(built) => Ok(LoadedPack { pack: built.pack, warnings: built.warnings, files: sources.shown }),
        Err(error) => Err(PackLoadError::Compile { sources, error }),
    }
}

/// Diagnostics as `betrace check --format json` prints them, sorted.
pub fn diagnostics_json(all: &[Diagnostic], files: &[SourceFile]) -> Vec<serde_json::Value> {
    let mut all = all.to_vec();
    diagnostics::sort(&mut all);
    let indexes: Vec<LineIndex> = files.iter().map(|f| LineIndex::new(&f.text)).collect();
    all.iter().filter_map(|d| serde_json::to_value(render::to_json(d, files, &indexes)).ok()).collect()
}

/// Diagnostics as plain (uncoloured) reports, sorted, for logs.
pub fn diagnostics_report(all: &[Diagnostic], files: &[SourceFile]) -> String {
    let mut all = all.to_vec();
    diagnostics::sort(&mut all);
    render::render_human(&all, files, HumanStyle { color: false, ascii: false })
}

/// Why the server's packs could not be loaded; the running packs stay.
#[derive(Clone, Debug, Serialize)]
pub struct LoadFailure {
    /// The rule path, tenant directory or setting that failed.
    pub path: PathBuf,
    /// What went wrong, in one line.
    pub message: String,
    /// The compiler's diagnostics, each in the JSON shape `betrace check
    /// --format json` prints (code, severity, message, file, range, fixes).
    pub diagnostics: Vec<serde_json::Value>,
    /// The same diagnostics as human-readable reports, for the log.
    #[serde(skip)]
    pub report: String,
}

impl LoadFailure {
    fn new(path: &Path, message: String) -> LoadFailure {
        LoadFailure { path: path.to_path_buf(), message, diagnostics: Vec::new(), report: String::new() }
    }

    fn from_pack_error(path: &Path, error: PackLoadError) -> LoadFailure {
        let mut failure = LoadFailure::new(path, error.to_string());
        if let PackLoadError::Compile { sources, error } = &error {
            if !matches!(error, CompileError::Build(BuildError::Manifest(_))) {
                failure.message = format!("{}: {}", path.display(), failure.message);
            }
            failure.diagnostics = diagnostics_json(error.diagnostics(), &sources.shown);
            failure.report = diagnostics_report(error.diagnostics(), &sources.shown);
        }
        failure
    }

    fn for_tenant(mut self, tenant: &str) -> LoadFailure {
        self.message = format!("tenant `{tenant}`: {}", self.message);
        self
    }
}

impl std::fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadFailure {}

/// Loads every tenant's packs as `rules` configures them. The default
/// tenant runs the packs of `rules.paths` (the standard pack when there are
/// none); each sub-directory of `rules.tenants_dir` is a tenant, named by the
/// directory, running only the packs in it. Hidden directories (`.git`) and
/// plain files there are skipped.
///
/// A path may be a `.btpack`, a `.btr` file or a directory: a directory with
/// `.btr` files (at any depth) is one pack, compiled; a directory without
/// any is the `.btpack` files directly in it. Warnings are logged.
pub fn load_packs(rules: &RulesConfig) -> Result<Packs, LoadFailure> {
    let loader = Loader::new(rules)?;
    let default = if rules.paths.is_empty() {
        vec![loader.standard()?]
    } else {
        let mut engines = Vec::new();
        for path in &rules.paths {
            engines.extend(loader.load_path(path)?);
        }
        engines
    };
    let mut tenants = HashMap::new();
    if let Some(dir) = &rules.tenants_dir {
        for (tenant, path) in tenant_dirs(dir)? {
            let engines = loader.load_path(&path).map_err(|failure| failure.for_tenant(&tenant))?;
            tenants.insert(tenant, Arc::new(TenantPacks { engines }));
        }
    }
    Ok(Packs { default: Arc::new(TenantPacks { engines: default }), tenants, generation: 0 })
}

/// The sub-directories of `dir` as tenants, sorted by name.
fn tenant_dirs(dir: &Path) -> Result<Vec<(Tenant, PathBuf)>, LoadFailure> {
    let unreadable =
        |e: std::io::Error| LoadFailure::new(dir, format!("cannot read tenants directory {}: {e}", dir.display()));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !path.is_dir() || name.starts_with('.') {
            continue;
        }
        let tenant = match parse_tenant(Some(&name)) {
            Ok(tenant) if !tenant.is_empty() && *tenant == *name => tenant,
            Ok(_) => {
                let why = "a tenant id has no spaces around it";
                return Err(LoadFailure::new(&path, format!("tenant directory `{name}`: {why}")));
            }
            Err(why) => return Err(LoadFailure::new(&path, format!("tenant directory `{name}`: {why}"))),
        };
        out.push((tenant, path));
    }
    out.sort();
    Ok(out)
}

/// What every pack of one load shares: how to compile and how to run it.
struct Loader {
    pack: PackConfig,
    eval: EvalConfig,
    kind: EngineKind,
}

impl Loader {
    fn new(rules: &RulesConfig) -> Result<Loader, LoadFailure> {
        let kind = rules
            .engine
            .parse()
            .map_err(|e: String| LoadFailure::new(Path::new("rules.engine"), format!("rules.engine: {e}")))?;
        Ok(Loader { pack: PackConfig::default(), eval: EvalConfig { fuel: rules.fuel, ..EvalConfig::default() }, kind })
    }

    /// The standard pack, compiled from the sources shipped inside BeTrace.
    fn standard(&self) -> Result<Arc<Engine>, LoadFailure> {
        let path = Path::new("<standard pack>");
        let files: Vec<SourceFile> = betrace_stdlib::packs::STANDARD
            .iter()
            .map(|file| SourceFile { name: format!("standard/{}", file.path), text: file.source.to_string() })
            .collect();
        let built =
            pack::build_pack(betrace_stdlib::packs::STANDARD_MANIFEST, &files, &self.pack).map_err(|error| {
                let sources =
                    PackSources { manifest: None, shown: files.clone(), files: files.clone(), unreadable: vec![] };
                LoadFailure::from_pack_error(
                    path,
                    PackLoadError::Compile { sources, error: CompileError::Build(error) },
                )
            })?;
        self.engine(path, built.pack)
    }

    fn load_path(&self, path: &Path) -> Result<Vec<Arc<Engine>>, LoadFailure> {
        let mut engines = Vec::new();
        for pack_path in pack_paths(path)? {
            let loaded =
                load_pack(&pack_path, &self.pack).map_err(|error| LoadFailure::from_pack_error(&pack_path, error))?;
            if !loaded.warnings.is_empty() {
                tracing::warn!(
                    "{}: {} warning{}\n{}",
                    pack_path.display(),
                    loaded.warnings.len(),
                    if loaded.warnings.len() == 1 { "" } else { "s" },
                    diagnostics_report(&loaded.warnings, &loaded.files)
                );
            }
            engines.push(self.engine(&pack_path, loaded.pack)?);
        }
        Ok(engines)
    }

    fn engine(&self, path: &Path, pack: CompiledPack) -> Result<Arc<Engine>, LoadFailure> {
        let info = PackInfo { name: pack.manifest.name.clone(), version: pack.manifest.version.clone() };
        Engine::with_kind(info, pack.rules, self.eval, self.kind)
            .map(Arc::new)
            .map_err(|e| LoadFailure::new(path, format!("{}: {e}", path.display())))
    }
}

/// The packs one rule path holds (see [`load_packs`]).
fn pack_paths(path: &Path) -> Result<Vec<PathBuf>, LoadFailure> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let rule_files = sources::collect(&[path.to_path_buf()]).map_err(|message| LoadFailure::new(path, message))?;
    if !rule_files.is_empty() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| LoadFailure::new(path, format!("cannot read directory {}: {e}", path.display())))?;
    let mut packs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|ext| ext == "btpack"))
        .collect();
    packs.sort();
    if packs.is_empty() {
        return Err(LoadFailure::new(path, format!("{}: no .btr or .btpack files found", path.display())));
    }
    Ok(packs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(paths: &[&Path]) -> RulesConfig {
        RulesConfig { paths: paths.iter().map(|p| p.to_path_buf()).collect(), ..RulesConfig::default() }
    }

    #[test]
    fn a_directory_of_compiled_packs_loads_each_of_them() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a", "b"] {
            let files = [SourceFile {
                name: "r.btr".into(),
                text: format!(
                    "rule {name}_rule {{\n  severity: high\n  when {{ kind = server }}\n  never {{ status = error }}\n}}\n"
                ),
            }];
            let manifest = format!("name = \"{name}\"\nversion = \"1.0.0\"\nengine = \">=0.1\"\n");
            let built = pack::build_pack(&manifest, &files, &PackConfig::default()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.btpack")), pack::write_pack(&built.pack)).unwrap();
        }
        let packs = load_packs(&config(&[dir.path()])).unwrap();
        let names: Vec<&str> = packs.default.engines.iter().map(|e| e.pack.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn a_directory_without_rules_is_a_failure_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let failure = load_packs(&config(&[dir.path()])).unwrap_err();
        assert!(failure.message.contains("no .btr or .btpack files"), "{failure}");
        assert_eq!(failure.path, dir.path());
    }

    #[test]
    fn an_unknown_engine_is_a_failure() {
        let rules = RulesConfig { engine: "turbo".into(), ..RulesConfig::default() };
        assert!(load_packs(&rules).unwrap_err().message.contains("rules.engine"));
    }

    #[test]
    fn tenant_directories_with_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bad name")).unwrap();
        let rules = RulesConfig { tenants_dir: Some(dir.path().to_path_buf()), ..RulesConfig::default() };
        let failure = load_packs(&rules).unwrap_err();
        assert!(failure.message.contains("tenant directory `bad name`"), "{failure}");
    }
}
