//! The OpenTelemetry semantic-convention attributes (types, enum values,
//! stability, deprecations), shipped as data and parsed on first use, for the
//! compiler's attribute types and its "did you mean" and deprecation warnings.
//!
//! Source: `data/semconv/` (see its `SOURCE.md`): open-telemetry/semantic-conventions
//! at 384d66161 (v1.44.0+22), Apache-2.0, and a supplement of the registries
//! that extraction missed (`server.*`, `client.*`, `source.*`, `destination.*`).

use std::sync::LazyLock;

use crate::Type;

const ATTRIBUTES_TSV: &str = include_str!("../data/semconv/semconv-attributes.tsv");
const EXTRA_TSV: &str = include_str!("../data/semconv/semconv-attributes-extra.tsv");
/// The registries written in the conventions' newer file format, which the
/// extraction above did not read; same columns as [`ATTRIBUTES_TSV`].
const SUPPLEMENT_TSV: &str = include_str!("../data/semconv/semconv-attributes-supplement.tsv");

/// One attribute of the semantic conventions' registry.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: Type,
    /// A `template[…]` attribute: `name` is a prefix, and the keys are
    /// `name.<suffix>` (`http.request.header.content-type`), each of type `ty`.
    pub template: bool,
    /// `stable`, `release_candidate`, `development`, … as the conventions say.
    pub stability: &'static str,
    /// For enums, the listed values (`enum[int]` values as written, `"0"`, `"1"`…).
    /// The conventions allow values beyond these; they are suggestions, not a closed set.
    pub enum_values: Vec<&'static str>,
    /// The first sentence of the conventions' description (markdown).
    pub brief: &'static str,
    pub deprecated: Option<Deprecation>,
}

/// Why and how an attribute was deprecated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deprecation {
    /// `renamed`, `obsoleted` or `uncategorized`.
    pub reason: &'static str,
    /// The replacement, for `renamed`.
    pub renamed_to: Option<&'static str>,
    /// The conventions' note (markdown, cut at 120 characters), for the others.
    pub note: Option<&'static str>,
}

impl Attribute {
    pub fn is_deprecated(&self) -> bool {
        self.deprecated.is_some()
    }
}

static TABLE: LazyLock<Vec<Attribute>> = LazyLock::new(parse_tables);

/// Every attribute, sorted by name.
pub fn all() -> &'static [Attribute] {
    &TABLE
}

/// The attribute for an attribute key: the attribute of exactly that name, else
/// the longest template attribute whose name is a proper prefix of `key`
/// followed by `.` (`http.request.header.content-type` finds
/// `http.request.header`).
pub fn lookup(key: &str) -> Option<&'static Attribute> {
    if let Some(attribute) = find(key) {
        return Some(attribute);
    }
    let mut prefix = key;
    while let Some(dot) = prefix.rfind('.') {
        prefix = &prefix[..dot];
        if let Some(attribute) = find(prefix).filter(|attribute| attribute.template) {
            // The suffix after the template's name must not be empty.
            return (dot + 1 < key.len()).then_some(attribute);
        }
    }
    None
}

fn find(name: &str) -> Option<&'static Attribute> {
    let table = all();
    table.binary_search_by(|attribute| attribute.name.cmp(name)).ok().map(|i| &table[i])
}

/// Attributes other than `key` whose names are within `max_distance` edits
/// (insertions, deletions, substitutions, transpositions of neighbours) of
/// `key`, closest first, ties by name. Deprecated attributes are left out
/// unless no other attribute is that close.
pub fn similar(key: &str, max_distance: usize) -> Vec<&'static Attribute> {
    let key_chars: Vec<char> = key.chars().collect();
    let mut found: Vec<(usize, &'static Attribute)> = all()
        .iter()
        .filter(|attribute| {
            attribute.name != key && attribute.name.chars().count().abs_diff(key_chars.len()) <= max_distance
        })
        .filter_map(|attribute| {
            let name: Vec<char> = attribute.name.chars().collect();
            edit_distance(&key_chars, &name, max_distance).map(|distance| (distance, attribute))
        })
        .collect();
    if found.iter().any(|(_, attribute)| !attribute.is_deprecated()) {
        found.retain(|(_, attribute)| !attribute.is_deprecated());
    }
    found.sort_by(|(d1, a1), (d2, a2)| d1.cmp(d2).then(a1.name.cmp(a2.name)));
    found.into_iter().map(|(_, attribute)| attribute).collect()
}

/// Optimal-string-alignment distance (Damerau–Levenshtein without repeated
/// edits of one substring), or `None` once it must exceed `max`.
fn edit_distance(a: &[char], b: &[char], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        if current.iter().all(|&distance| distance > max) {
            return None;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    Some(previous[b.len()]).filter(|&distance| distance <= max)
}

/// The static type and template flag for a type column.
fn parse_type(ty: &str) -> (Type, bool) {
    match ty {
        "string" | "enum" => (Type::String, false),
        "int" | "enum[int]" => (Type::Int, false),
        "double" => (Type::Float, false),
        "boolean" => (Type::Bool, false),
        "string[]" => (Type::list_of(Type::String), false),
        "int[]" => (Type::list_of(Type::Int), false),
        "double[]" => (Type::list_of(Type::Float), false),
        "boolean[]" => (Type::list_of(Type::Bool), false),
        _ => match ty.strip_prefix("template[").and_then(|rest| rest.strip_suffix(']')) {
            Some(inner) => (parse_type(inner).0, true),
            None => (Type::Any, false),
        },
    }
}

/// `renamed:new.name`, `obsoleted:note`, `uncategorized:note`, or empty.
fn parse_deprecation(field: &'static str) -> Option<Deprecation> {
    if field.is_empty() {
        return None;
    }
    let (reason, detail) = match field.split_once(':') {
        Some((reason, detail)) => (reason, Some(detail).filter(|detail| !detail.is_empty())),
        None => (field, None),
    };
    Some(if reason == "renamed" {
        Deprecation { reason, renamed_to: detail, note: None }
    } else {
        Deprecation { reason, renamed_to: None, note: detail }
    })
}

/// The data rows of a TSV (header skipped), each split into its columns.
fn rows(tsv: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    tsv.lines().skip(1).filter(|line| !line.is_empty()).map(|line| line.split('\t').collect())
}

fn parse_tables() -> Vec<Attribute> {
    let mut deprecations: Vec<(&'static str, &'static str)> =
        rows(EXTRA_TSV).map(|columns| (columns[0], columns.get(1).copied().unwrap_or(""))).collect();
    deprecations.sort_unstable();
    let column = |columns: &[&'static str], i: usize| columns.get(i).copied().unwrap_or("");
    let mut table: Vec<Attribute> = rows(ATTRIBUTES_TSV)
        .chain(rows(SUPPLEMENT_TSV))
        .map(|columns| {
            let name = column(&columns, 0);
            let (ty, template) = parse_type(column(&columns, 1));
            let enum_values = column(&columns, 3).split(',').filter(|value| !value.is_empty()).collect();
            let deprecated = deprecations
                .binary_search_by(|(other, _)| other.cmp(&name))
                .ok()
                .and_then(|i| parse_deprecation(deprecations[i].1));
            Attribute {
                name,
                ty,
                template,
                stability: column(&columns, 2),
                enum_values,
                brief: column(&columns, 4),
                deprecated,
            }
        })
        .collect();
    table.sort_by(|a, b| a.name.cmp(b.name));
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete_and_typed() {
        assert_eq!(all().len(), 931 + 8, "the extraction and its supplement");
        assert_eq!(all().iter().filter(|a| a.template).count(), 41);
        assert_eq!(all().iter().filter(|a| a.is_deprecated()).count(), 207);
        let any: Vec<&str> = all().iter().filter(|a| a.ty == Type::Any).map(|a| a.name).collect();
        assert_eq!(any.len(), 10, "only the conventions' `any` attributes are untyped: {any:?}");
        assert!(all().windows(2).all(|pair| pair[0].name < pair[1].name));
    }

    #[test]
    fn looks_up_exact_names() {
        let status = lookup("http.response.status_code").unwrap();
        assert_eq!(status.ty, Type::Int);
        assert_eq!(status.stability, "stable");
        assert!(!status.template && status.deprecated.is_none());
        let method = lookup("http.request.method").unwrap();
        assert_eq!(method.ty, Type::String);
        assert!(method.enum_values.contains(&"GET"));
        assert_eq!(lookup("rpc.grpc.status_code").unwrap().ty, Type::Int);
        assert_eq!(lookup("pprof.scope.sample_type_order").unwrap().ty, Type::list_of(Type::Int));
        assert_eq!(lookup("db.system.name").unwrap().ty, Type::String);
        assert!(lookup("http.response.status_cod").is_none());
    }

    #[test]
    fn the_supplement_types_the_address_and_port_registries() {
        for side in ["server", "client", "source", "destination"] {
            let address = lookup(&format!("{side}.address")).unwrap();
            assert_eq!(address.ty, Type::String);
            assert!(!address.is_deprecated());
            assert_eq!(lookup(&format!("{side}.port")).unwrap().ty, Type::Int);
        }
        assert_eq!(lookup("server.port").unwrap().stability, "stable");
        assert_eq!(lookup("source.port").unwrap().stability, "development");
        // A deprecated name now points at an attribute the table knows.
        let renamed = lookup("net.host.port").unwrap().deprecated.as_ref().unwrap().renamed_to;
        assert_eq!(renamed.and_then(lookup).map(|a| a.ty), Some(Type::Int));
    }

    #[test]
    fn looks_up_template_keys_by_prefix() {
        let header = lookup("http.request.header.content-type").unwrap();
        assert_eq!(header.name, "http.request.header");
        assert!(header.template);
        assert_eq!(header.ty, Type::list_of(Type::String));
        assert_eq!(lookup("http.request.header").unwrap().name, "http.request.header");
        assert!(lookup("http.request.header.").is_none());
        // A template attribute is only a prefix at a dot.
        assert!(lookup("http.request.headers").is_none());
        assert!(lookup("http.route.extra").is_none(), "http.route is not a template");
    }

    #[test]
    fn deprecations_carry_their_replacement_or_note() {
        let old = lookup("http.status_code").unwrap();
        assert_eq!(old.ty, Type::Int);
        assert_eq!(
            old.deprecated,
            Some(Deprecation { reason: "renamed", renamed_to: Some("http.response.status_code"), note: None })
        );
        let db_system = lookup("db.system").unwrap().deprecated.as_ref().unwrap();
        assert_eq!(db_system.renamed_to, Some("db.system.name"));
        let user = lookup("db.user").unwrap().deprecated.as_ref().unwrap();
        assert_eq!(user.reason, "obsoleted");
        assert_eq!(user.note, Some("Removed, no replacement at this time."));
        let reasons: std::collections::BTreeSet<&str> =
            all().iter().filter_map(|a| a.deprecated.as_ref()).map(|d| d.reason).collect();
        assert_eq!(reasons.into_iter().collect::<Vec<_>>(), ["obsoleted", "renamed", "uncategorized"]);
        // Every replacement named is in the table (the supplement holds the
        // `server.*` and `client.*` ones the extraction missed).
        let unknown_targets: Vec<&str> = all()
            .iter()
            .filter_map(|a| a.deprecated.as_ref()?.renamed_to)
            .filter(|new| lookup(new).is_none())
            .collect();
        assert_eq!(unknown_targets, Vec::<&str>::new());
    }

    #[test]
    fn similar_names_closest_first() {
        let names: Vec<&str> = similar("http.response.status_cod", 2).iter().map(|a| a.name).collect();
        assert_eq!(names.first(), Some(&"http.response.status_code"));
        // Deprecated `http.status_code` is far; deprecated ones only come when nothing else does.
        assert!(names.iter().all(|name| !lookup(name).unwrap().is_deprecated()));
        let swapped: Vec<&str> = similar("http.reponse.status_code", 1).iter().map(|a| a.name).collect();
        assert_eq!(swapped, ["http.response.status_code"]);
        let transposed: Vec<&str> = similar("http.response.statsu_code", 1).iter().map(|a| a.name).collect();
        assert_eq!(transposed, ["http.response.status_code"]);
        assert!(similar("completely.unrelated.name", 2).is_empty());
        assert!(similar("http.response.status_code", 0).is_empty(), "the key itself is not similar");
    }

    #[test]
    fn deprecated_names_only_when_nothing_else_is_close() {
        // `db.statement` was renamed; a typo of it is closest to it alone.
        let names: Vec<&str> = similar("db.statment", 1).iter().map(|a| a.name).collect();
        assert_eq!(names, ["db.statement"]);
    }

    #[test]
    fn edit_distance_counts_edits() {
        let d = |a: &str, b: &str| {
            let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            edit_distance(&a, &b, 10)
        };
        assert_eq!(d("kitten", "sitting"), Some(3));
        assert_eq!(d("ab", "ba"), Some(1));
        assert_eq!(d("", "abc"), Some(3));
        assert_eq!(d("same", "same"), Some(0));
        let chars = |s: &str| s.chars().collect::<Vec<char>>();
        assert_eq!(edit_distance(&chars("abcdef"), &chars("uvwxyz"), 2), None);
    }
}
