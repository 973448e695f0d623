//! The `NAME.test.toml` format: `[[test]]` entries with a compact trace and
//! the violations expected from it, read with serde, and the expectations
//! resolved against the trace (labels to span ids).

use serde::Deserialize;
use toml::Spanned;

use crate::trace::compact::CompactTrace;

/// A whole test file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// The rules every test of the file runs, unless the test says otherwise.
    pub rules: Option<Vec<String>>,
    #[serde(rename = "test", default)]
    pub tests: Vec<CaseSpec>,
}

/// One `[[test]]`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    pub name: Spanned<String>,
    pub trace: Spanned<String>,
    pub rules: Option<Vec<String>>,
    /// Traces evaluated before `trace`, in order, their violations ignored:
    /// what rules that keep state (`novelty`) have seen before.
    #[serde(default)]
    pub history: Vec<HistorySpec>,
    pub expect: Vec<ExpectSpec>,
}

/// One entry of a test's `history`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct HistorySpec {
    pub trace: Spanned<String>,
    /// How many times the trace is evaluated (default 1).
    #[serde(default = "once")]
    pub repeat: Spanned<u32>,
}

fn once() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}

/// The most times a history trace may repeat: a warm-up, not a load test.
pub const MAX_REPEAT: u32 = 10_000;

/// One expected violation, as written.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    pub rule: String,
    /// The bound span: `#label`, or a span name. Absent: the rule binds no span.
    pub span: Option<String>,
    /// `always`, `never`, or the clause as written.
    pub clause: Option<String>,
    /// The whole rendered message.
    pub message: Option<String>,
    /// The witness spans, `#label`s or span names, in any order.
    pub witnesses: Option<Vec<String>>,
}

/// A reference to a span of the test's trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpanRef {
    /// `#label`: exactly that span.
    Id([u8; 8]),
    /// A span name: any span of that name.
    Name(String),
}

/// An expectation with its labels resolved.
#[derive(Clone, Debug)]
pub struct Expected {
    pub spec: ExpectSpec,
    pub span: Option<SpanRef>,
    pub witnesses: Option<Vec<SpanRef>>,
}

/// Reads a test file's text.
pub fn parse_file(text: &str) -> Result<FileSpec, String> {
    toml::from_str(text).map_err(|error| error.to_string().trim_end().to_string())
}

/// Resolves `#label`s; a name stays a name.
pub fn span_ref(text: &str, trace: &CompactTrace) -> Result<SpanRef, String> {
    match text.strip_prefix('#') {
        Some(label) => trace
            .labels
            .get(label)
            .map(|&index| SpanRef::Id(trace.spans[index].span_id))
            .ok_or_else(|| format!("no span of the trace has the label `#{label}`")),
        None if trace.spans.iter().any(|span| span.name == text) => Ok(SpanRef::Name(text.to_string())),
        None => Err(format!("no span of the trace is named `{text}` (use `#label` to name one span)")),
    }
}

pub fn resolve(spec: &ExpectSpec, trace: &CompactTrace) -> Result<Expected, String> {
    let span = spec.span.as_deref().map(|text| span_ref(text, trace)).transpose()?;
    let witnesses = spec
        .witnesses
        .as_ref()
        .map(|list| list.iter().map(|text| span_ref(text, trace)).collect::<Result<Vec<_>, _>>())
        .transpose()?;
    if let Some(clause) = &spec.clause
        && clause.trim().is_empty()
    {
        return Err("`clause` is `always`, `never`, or the clause as written".into());
    }
    Ok(Expected { spec: spec.clone(), span, witnesses })
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The file line where line 1 of a string value starting at byte `offset`
/// is: the line after the opening quotes for a `"""` string that starts
/// with a line break (TOML drops that break), else the quotes' own line.
pub fn first_content_line(text: &str, offset: usize) -> usize {
    let rest = &text[offset.min(text.len())..];
    let multi_line = ["\"\"\"\n", "'''\n", "\"\"\"\r\n", "'''\r\n"].iter().any(|open| rest.starts_with(open));
    line_of(text, offset) + usize::from(multi_line)
}
