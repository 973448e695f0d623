//! A pack's manifest, `pack.toml`: its name, its version, the engine versions
//! it runs on (a semver requirement), and optional prose. Parsed from text
//! with byte spans on every error, so the CLI can point into the file.
//!
//! ```toml
//! name = "standard"
//! version = "0.1.0"
//! engine = ">=0.1"
//! description = "Invariants most services can deploy as they are"
//! license = "Apache-2.0"
//! ```

use std::ops::Range;

use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};

/// A checked manifest. `version` and `engine` are known to parse as a semver
/// version and requirement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Lower-case letters, digits, `-` and `_`; the first part of rule ids (`name/rule`).
    pub name: String,
    pub version: String,
    /// The BeTrace engine versions this pack runs on, e.g. `>=0.1`.
    pub engine: String,
    pub description: Option<String>,
    pub license: Option<String>,
}

/// What is wrong with a manifest. Spans are byte ranges into its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// Not TOML, or a field missing, unknown or of the wrong type (the TOML
    /// library's own words).
    Invalid {
        reason: String,
        span: Option<Range<usize>>,
    },
    BadName {
        name: String,
        span: Range<usize>,
    },
    BadVersion {
        version: String,
        reason: String,
        span: Range<usize>,
    },
    BadEngine {
        requirement: String,
        reason: String,
        span: Range<usize>,
    },
}

impl ManifestError {
    /// Where in the manifest's text the problem is, when known.
    pub fn span(&self) -> Option<Range<usize>> {
        match self {
            ManifestError::Invalid { span, .. } => span.clone(),
            ManifestError::BadName { span, .. }
            | ManifestError::BadVersion { span, .. }
            | ManifestError::BadEngine { span, .. } => Some(span.clone()),
        }
    }
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestError::Invalid { reason, .. } => write!(f, "{}", reason.trim_end()),
            ManifestError::BadName { name, .. } => write!(
                f,
                "pack name {name:?} is not valid: use lower-case letters, digits, `-` and `_`, starting with a letter"
            ),
            ManifestError::BadVersion { version, reason, .. } => {
                write!(f, "pack version {version:?} is not a semantic version (like \"1.2.0\"): {reason}")
            }
            ManifestError::BadEngine { requirement, reason, .. } => {
                write!(f, "engine requirement {requirement:?} is not a semver requirement (like \">=0.1\"): {reason}")
            }
        }
    }
}

impl std::error::Error for ManifestError {}

/// The manifest as written, before its values are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: toml::Spanned<String>,
    version: toml::Spanned<String>,
    engine: toml::Spanned<String>,
    description: Option<String>,
    license: Option<String>,
}

impl Manifest {
    /// Parses and checks `pack.toml` text.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let raw: RawManifest = toml::from_str(text)
            .map_err(|e| ManifestError::Invalid { reason: e.message().to_string(), span: e.span() })?;
        let name = raw.name.get_ref();
        if !valid_name(name) {
            return Err(ManifestError::BadName { name: name.clone(), span: raw.name.span() });
        }
        let version = raw.version.get_ref();
        if let Err(e) = Version::parse(version) {
            return Err(ManifestError::BadVersion {
                version: version.clone(),
                reason: e.to_string(),
                span: raw.version.span(),
            });
        }
        let engine = raw.engine.get_ref();
        if let Err(e) = VersionReq::parse(engine) {
            return Err(ManifestError::BadEngine {
                requirement: engine.clone(),
                reason: e.to_string(),
                span: raw.engine.span(),
            });
        }
        Ok(Manifest {
            name: raw.name.into_inner(),
            version: raw.version.into_inner(),
            engine: raw.engine.into_inner(),
            description: raw.description,
            license: raw.license,
        })
    }

    /// The manifest of a directory of rules that has none: `local` 0.0.0, any engine.
    pub fn local() -> Manifest {
        Manifest { name: "local".into(), version: "0.0.0".into(), engine: "*".into(), description: None, license: None }
    }

    /// Does `engine` satisfy this pack's engine requirement? A requirement that
    /// does not parse (only possible in a hand-made pack) is never met.
    pub fn runs_on(&self, engine: &Version) -> bool {
        VersionReq::parse(&self.engine).is_ok_and(|req| req.matches(engine))
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_packs_manifest_parses() {
        let text = include_str!("../../../stdlib/packs/standard/pack.toml");
        let manifest = Manifest::parse(text).unwrap();
        assert_eq!(manifest.name, "standard");
        assert_eq!(manifest.license.as_deref(), Some("Apache-2.0"));
        assert!(manifest.runs_on(&Version::new(0, 1, 0)));
        assert!(!manifest.runs_on(&Version::new(0, 0, 9)));
    }

    #[test]
    fn errors_point_at_the_field() {
        let text = "name = \"Bad Name\"\nversion = \"1.0.0\"\nengine = \"*\"\n";
        let error = Manifest::parse(text).unwrap_err();
        assert!(matches!(error, ManifestError::BadName { .. }), "{error:?}");
        assert_eq!(&text[error.span().unwrap()], "\"Bad Name\"");

        let text = "name = \"a\"\nversion = \"1.0\"\nengine = \"*\"\n";
        let error = Manifest::parse(text).unwrap_err();
        assert!(matches!(error, ManifestError::BadVersion { .. }), "{error:?}");
        assert!(error.to_string().contains("not a semantic version"));

        let text = "name = \"a\"\nversion = \"1.0.0\"\nengine = \"at least 1\"\n";
        assert!(matches!(Manifest::parse(text), Err(ManifestError::BadEngine { .. })));
    }

    #[test]
    fn missing_and_unknown_fields_are_reported() {
        let missing = Manifest::parse("name = \"a\"\nversion = \"1.0.0\"\n").unwrap_err();
        assert!(missing.to_string().contains("engine"), "{missing}");
        let unknown =
            Manifest::parse("name = \"a\"\nversion = \"1.0.0\"\nengine = \"*\"\nengin = \"x\"\n").unwrap_err();
        assert!(unknown.to_string().contains("engin"), "{unknown}");
        assert!(unknown.span().is_some());
        let not_toml = Manifest::parse("name = ").unwrap_err();
        assert!(matches!(not_toml, ManifestError::Invalid { .. }));
    }
}
