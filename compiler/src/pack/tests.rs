//! Pack building and the `.btpack` format: round trips, and every way reading
//! can fail naming what went wrong.

use betrace_stdlib::packs::{STANDARD, STANDARD_MANIFEST};
use semver::Version;

use super::*;

const MANIFEST: &str = "name = \"demo\"\nversion = \"1.2.3\"\nengine = \">=0.1\"\ndescription = \"test pack\"\n";

fn file(name: &str, text: &str) -> SourceFile {
    SourceFile { name: name.into(), text: text.into() }
}

fn demo_files() -> Vec<SourceFile> {
    vec![
        file("a.btr", "rule slow { severity: high\n  when { kind = server }\n  never { duration > 2s } }\n"),
        file(
            "b.btr",
            "rule errors { severity: low tags: [\"x\"]\n  when e = { status = error }\n  always e > { name = \"retry\" } }\n",
        ),
    ]
}

fn demo_pack() -> CompiledPack {
    build_pack(MANIFEST, &demo_files(), &PackConfig::default()).expect("demo pack builds").pack
}

#[test]
fn a_pack_round_trips_through_bytes() {
    let pack = demo_pack();
    assert_eq!(pack.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["slow", "errors"]);
    assert_eq!(pack.sources, ["a.btr", "b.btr"]);
    assert_eq!(pack.engine_version, ENGINE_VERSION);
    let bytes = write_pack(&pack);
    assert!(bytes.starts_with(&MAGIC));
    assert_eq!(read_pack(&bytes), Ok(pack.clone()));
    let header = read_header(&bytes).unwrap();
    assert_eq!(header.format_version, FORMAT_VERSION);
    assert_eq!(header.built_by, ENGINE_VERSION);
    // Building is deterministic: the same sources give the same bytes.
    assert_eq!(write_pack(&demo_pack()), bytes);
}

#[test]
fn the_standard_pack_builds_and_round_trips() {
    let files: Vec<SourceFile> = STANDARD.iter().map(|f| file(f.path, f.source)).collect();
    let built = build_pack(STANDARD_MANIFEST, &files, &PackConfig::default()).expect("standard pack builds");
    assert!(built.pack.rules.len() >= 10, "{}", built.pack.rules.len());
    let bytes = write_pack(&built.pack);
    assert_eq!(read_pack(&bytes).unwrap(), built.pack);
}

#[test]
fn the_sources_digest_covers_names_and_text() {
    let files = demo_files();
    let digest = sources_digest(&files);
    let mut renamed = files.clone();
    renamed[0].name = "c.btr".into();
    let mut edited = files.clone();
    edited[1].text.push(' ');
    assert_ne!(sources_digest(&renamed), digest);
    assert_ne!(sources_digest(&edited), digest);
    assert_eq!(demo_pack().sources_digest, digest);
    assert_eq!(demo_pack().sources_digest_hex().len(), 64);
}

#[test]
fn any_flipped_body_byte_is_a_checksum_error() {
    let bytes = write_pack(&demo_pack());
    let body_start = bytes.len() - postcard::to_stdvec(&demo_pack()).unwrap().len();
    for at in (body_start..bytes.len()).step_by(7) {
        let mut corrupted = bytes.clone();
        corrupted[at] ^= 0x01;
        assert!(matches!(read_pack(&corrupted), Err(PackError::ChecksumMismatch { .. })), "byte {at}");
    }
    let mut corrupted = bytes.clone();
    corrupted[body_start - 1] ^= 0x80; // inside the stored checksum
    let error = read_pack(&corrupted).unwrap_err();
    assert!(error.to_string().contains("corrupted"), "{error}");
}

#[test]
fn other_bytes_are_not_a_pack() {
    assert_eq!(read_pack(b""), Err(PackError::NotAPack));
    assert_eq!(read_pack(b"rule r { }"), Err(PackError::NotAPack));
    assert_eq!(read_pack(b"\x89BTPACX\n\x01\0\0\0"), Err(PackError::NotAPack));
    assert!(PackError::NotAPack.to_string().contains("not a compiled BeTrace pack"));
}

#[test]
fn format_versions_other_than_ours_are_named() {
    let bytes = write_pack(&demo_pack());
    let with_version = |v: u32| {
        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&v.to_le_bytes());
        b
    };
    let newer = read_pack(&with_version(FORMAT_VERSION + 1)).unwrap_err();
    assert_eq!(newer, PackError::FormatTooNew { found: FORMAT_VERSION + 1, supported: FORMAT_VERSION });
    let text = newer.to_string();
    assert!(text.contains(&format!("{}", FORMAT_VERSION + 1)) && text.contains("newer"), "{text}");
    let older = read_pack(&with_version(0)).unwrap_err();
    assert_eq!(older, PackError::FormatTooOld { found: 0, supported: FORMAT_VERSION });
    assert!(older.to_string().contains("rebuild"), "{older}");
}

#[test]
fn truncation_anywhere_is_reported() {
    let bytes = write_pack(&demo_pack());
    for len in [3, 8, 10, 12, 20, 40, bytes.len() - 1] {
        let error = read_pack(&bytes[..len]).unwrap_err();
        assert!(matches!(error, PackError::Truncated { .. }), "length {len}: {error:?}");
        assert!(error.to_string().contains("truncated"));
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"junk");
    assert_eq!(read_pack(&longer), Err(PackError::TrailingBytes { extra: 4 }));
}

#[test]
fn the_engine_requirement_is_checked_when_reading() {
    let future = "name = \"future\"\nversion = \"1.0.0\"\nengine = \">=99\"\n";
    let config = PackConfig { engine_version: Version::new(99, 0, 0), ..PackConfig::default() };
    let pack = build_pack(future, &demo_files(), &config).unwrap().pack;
    let bytes = write_pack(&pack);
    let error = read_pack(&bytes).unwrap_err();
    assert!(matches!(&error, PackError::EngineMismatch { required, .. } if required == ">=99"), "{error:?}");
    assert!(error.to_string().contains("requires engine >=99"), "{error}");
    assert!(read_pack_for(&bytes, &Version::new(99, 1, 0)).is_ok());
}

#[test]
fn building_reports_manifest_rule_and_engine_errors() {
    let config = PackConfig::default();
    assert!(matches!(build_pack("name = 1", &demo_files(), &config), Err(BuildError::Manifest(_))));
    let needs_future = "name = \"p\"\nversion = \"1.0.0\"\nengine = \">=99\"\n";
    assert!(matches!(build_pack(needs_future, &demo_files(), &config), Err(BuildError::Engine { .. })));
    assert!(matches!(build_pack(MANIFEST, &[], &config), Err(BuildError::NoSources)));

    let mut files = demo_files();
    files.push(file("c.btr", "rule slow { severity: low when { } never { nme = \"x\" } }\n"));
    let Err(BuildError::Rules(diagnostics)) = build_pack(MANIFEST, &files, &config) else {
        panic!("rules have errors")
    };
    assert!(diagnostics.iter().all(|d| d.file == 2), "{diagnostics:#?}");
    assert!(diagnostics.iter().filter(|d| d.is_error()).count() >= 2, "{diagnostics:#?}");
}

#[test]
fn warnings_do_not_stop_a_build() {
    let files = [file("w.btr", "rule r { severity: low when { } never { span.http.status_code = 500 } }\n")];
    let built = build_pack(MANIFEST, &files, &PackConfig::default()).unwrap();
    assert_eq!(built.pack.rules.len(), 1);
    assert_eq!(built.warnings.len(), 1);
    assert!(!built.warnings[0].is_error());
}

#[test]
fn local_packs_run_anywhere() {
    let built = build_pack_with(Manifest::local(), &demo_files(), &PackConfig::default()).unwrap();
    assert_eq!(built.pack.manifest.name, "local");
    assert!(read_pack(&write_pack(&built.pack)).is_ok());
}
