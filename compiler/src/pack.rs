//! Compiled rule packs: a directory of `.btr` files and its `pack.toml`
//! ([`manifest`]), checked and lowered together into a [`CompiledPack`], and
//! written as a versioned, checksummed `.btpack` file ([`format`]).
//!
//! Like the rest of the compiler this does no I/O: [`build_pack`] takes the
//! manifest's text and the files' text, [`write_pack`] returns bytes, and
//! [`read_pack`] takes bytes. The CLI reads and writes the files.

pub mod format;
pub mod manifest;
#[cfg(test)]
mod tests;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::bytecode::RuleProgram;
use crate::diagnostics::Diagnostic;
use crate::{CheckConfig, SourceFile};

pub use format::{FORMAT_VERSION, MAGIC, PackHeader};
pub use manifest::{Manifest, ManifestError};

/// The version of the BeTrace engine this compiler belongs to; packs state
/// which engine versions they run on.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The engine version as a semver [`Version`].
pub fn engine_version() -> Version {
    Version::parse(ENGINE_VERSION).expect("the crate version is a semantic version")
}

/// Knobs of [`build_pack`].
#[derive(Clone, Debug)]
pub struct PackConfig {
    pub check: CheckConfig,
    /// The engine building the pack (the manifest's requirement must accept it).
    pub engine_version: Version,
}

impl Default for PackConfig {
    fn default() -> Self {
        PackConfig { check: CheckConfig::default(), engine_version: engine_version() }
    }
}

/// A pack's rules, compiled: what a `.btpack` file holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompiledPack {
    pub manifest: Manifest,
    /// The engine version that built it.
    pub engine_version: String,
    /// The source files' names, in build order.
    pub sources: Vec<String>,
    /// SHA-256 over every source file's name and text (see [`sources_digest`]).
    pub sources_digest: [u8; 32],
    /// Every rule of the pack, in file order, then source order.
    pub rules: Vec<RuleProgram>,
}

impl CompiledPack {
    /// The sources digest as lower-case hex.
    pub fn sources_digest_hex(&self) -> String {
        format::hex(&self.sources_digest)
    }
}

/// A pack that built, and the warnings found on the way.
#[derive(Clone, Debug)]
pub struct Built {
    pub pack: CompiledPack,
    /// Warnings only; `file` indexes the files handed to [`build_pack`].
    pub warnings: Vec<Diagnostic>,
}

/// Why a pack did not build.
#[derive(Clone, Debug)]
pub enum BuildError {
    Manifest(ManifestError),
    /// The rules have errors. Every diagnostic (errors and warnings), sorted;
    /// `file` indexes the files handed to [`build_pack`].
    Rules(Vec<Diagnostic>),
    /// The manifest asks for an engine other than the one building it.
    Engine {
        required: String,
        engine: String,
    },
    /// No `.btr` files were given.
    NoSources,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Manifest(e) => write!(f, "pack.toml: {e}"),
            BuildError::Rules(diagnostics) => {
                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                write!(f, "the pack's rules have {errors} error{}", if errors == 1 { "" } else { "s" })
            }
            BuildError::Engine { required, engine } => {
                write!(f, "pack.toml requires engine {required}, but this is BeTrace {engine}")
            }
            BuildError::NoSources => write!(f, "the pack has no .btr files"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Why `.btpack` bytes could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackError {
    /// The bytes do not start with [`MAGIC`].
    NotAPack,
    /// The file ends early: `expected` bytes at least, `found` present.
    Truncated {
        expected: u64,
        found: u64,
    },
    FormatTooNew {
        found: u32,
        supported: u32,
    },
    FormatTooOld {
        found: u32,
        supported: u32,
    },
    /// The body does not hash to the header's checksum (hex digests).
    ChecksumMismatch {
        expected: String,
        actual: String,
    },
    /// Bytes after the body.
    TrailingBytes {
        extra: u64,
    },
    /// The checksum matched but the body does not decode.
    Malformed {
        reason: String,
    },
    /// The pack's engine requirement does not accept this engine.
    EngineMismatch {
        pack: String,
        required: String,
        engine: String,
        built_by: String,
    },
}

impl std::fmt::Display for PackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PackError::NotAPack => {
                write!(f, "not a compiled BeTrace pack (.btpack): the file does not start with the pack magic bytes")
            }
            PackError::Truncated { expected, found } => {
                write!(f, "the pack is truncated: {found} bytes, expected at least {expected}")
            }
            PackError::FormatTooNew { found, supported } => write!(
                f,
                "pack format version {found} is newer than this betrace supports (version {supported}); upgrade betrace or rebuild the pack"
            ),
            PackError::FormatTooOld { found, supported } => write!(
                f,
                "pack format version {found} is older than this betrace supports (version {supported}); rebuild the pack with `betrace build`"
            ),
            PackError::ChecksumMismatch { expected, actual } => write!(
                f,
                "the pack is corrupted: its checksum does not match its contents (header says sha256 {expected}, contents hash to {actual})"
            ),
            PackError::TrailingBytes { extra } => {
                write!(f, "the pack is corrupted: {extra} unexpected bytes after its end")
            }
            PackError::Malformed { reason } => write!(f, "the pack's contents cannot be decoded: {reason}"),
            PackError::EngineMismatch { pack, required, engine, built_by } => write!(
                f,
                "pack `{pack}` requires engine {required}, but this is BeTrace {engine} (the pack was built by {built_by})"
            ),
        }
    }
}

impl std::error::Error for PackError {}

/// Parses `manifest_text` and builds the pack from `files`.
pub fn build_pack(manifest_text: &str, files: &[SourceFile], config: &PackConfig) -> Result<Built, BuildError> {
    let manifest = Manifest::parse(manifest_text).map_err(BuildError::Manifest)?;
    build_pack_with(manifest, files, config)
}

/// Builds a pack from a manifest already in hand (e.g. [`Manifest::local`]).
pub fn build_pack_with(manifest: Manifest, files: &[SourceFile], config: &PackConfig) -> Result<Built, BuildError> {
    if !manifest.runs_on(&config.engine_version) {
        return Err(BuildError::Engine { required: manifest.engine, engine: config.engine_version.to_string() });
    }
    if files.is_empty() {
        return Err(BuildError::NoSources);
    }
    let reports = crate::check_files(files, &config.check);
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut rules = Vec::new();
    for (report, file) in reports.iter().zip(files) {
        diagnostics.extend(report.diagnostics.iter().cloned());
        rules.extend(report.checked.rules.iter().map(|rule| crate::lower::lower_rule(rule, &file.text)));
    }
    crate::diagnostics::sort(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(BuildError::Rules(diagnostics));
    }
    let pack = CompiledPack {
        manifest,
        engine_version: config.engine_version.to_string(),
        sources: files.iter().map(|f| f.name.clone()).collect(),
        sources_digest: sources_digest(files),
        rules,
    };
    Ok(Built { pack, warnings: diagnostics })
}

/// SHA-256 over each file's name and text, in order, each length-prefixed
/// (u64 little-endian) so no two different file lists hash alike.
pub fn sources_digest(files: &[SourceFile]) -> [u8; 32] {
    let mut bytes = Vec::with_capacity(files.iter().map(|f| f.name.len() + f.text.len() + 16).sum());
    for file in files {
        for part in [file.name.as_bytes(), file.text.as_bytes()] {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part);
        }
    }
    format::sha256(&bytes)
}

/// Encodes a pack as `.btpack` bytes.
pub fn write_pack(pack: &CompiledPack) -> Vec<u8> {
    format::encode(pack)
}

/// Reads `.btpack` bytes for this engine.
pub fn read_pack(bytes: &[u8]) -> Result<CompiledPack, PackError> {
    read_pack_for(bytes, &engine_version())
}

/// Reads `.btpack` bytes for engine version `engine`: checks the magic, the
/// format version, the length and the checksum, decodes the body, and checks
/// the pack's engine requirement.
pub fn read_pack_for(bytes: &[u8], engine: &Version) -> Result<CompiledPack, PackError> {
    let (_, body) = format::split(bytes)?;
    let pack = format::decode_body(body)?;
    if !pack.manifest.runs_on(engine) {
        return Err(PackError::EngineMismatch {
            pack: pack.manifest.name.clone(),
            required: pack.manifest.engine.clone(),
            engine: engine.to_string(),
            built_by: pack.engine_version.clone(),
        });
    }
    Ok(pack)
}

/// Reads only the header (format version, builder, checksum) of `.btpack`
/// bytes, checking the checksum but not decoding the body.
pub fn read_header(bytes: &[u8]) -> Result<PackHeader, PackError> {
    format::split(bytes).map(|(header, _)| header)
}
