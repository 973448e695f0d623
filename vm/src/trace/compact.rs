//! A compact trace notation for tests written by hand: one span a line,
//! indentation for nesting. Pure: text in, [`SpanRecord`]s out.
//!
//! ```text
//! checkout: POST /checkout  server  0ms+120ms  http.response.status_code=500 status=error #req
//!   auth: auth.check  internal  5ms+10ms  status=ok
//!   payments: payment.charge  client  30ms..70ms  payment.amount=1500.0 #charge
//! ```
//!
//! A line is `[SERVICE:] NAME [KIND] [TIMES] [key=value…] [#label]`; a line
//! is a child of the nearest line above it with less indentation. The full
//! description, with every reserved key, is in docs/testing.md. Ids are
//! generated deterministically: the trace is [`TRACE_ID`], span ids count
//! 1, 2, 3… in line order (skipping ids given with `id=`), and times are
//! offsets from [`EPOCH`].

#[cfg(test)]
mod tests;
mod tokens;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use betrace_stdlib::value::{SpanKind, Status};

use super::{RecordValue, SpanRecord, Text};
use tokens::Token;

/// The trace id every span of a compact trace gets.
pub const TRACE_ID: [u8; 16] = *b"compact-trace-id";

/// Time zero of a compact trace: 2024-01-01T00:00:00Z, in ns since the Unix epoch.
pub const EPOCH: i64 = 1_704_067_200_000_000_000;

/// A parsed compact trace: its spans, in line order, and their labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompactTrace {
    pub spans: Vec<SpanRecord>,
    /// `#label` → index into `spans`.
    pub labels: BTreeMap<String, usize>,
    /// The (1-based) line each span was written on.
    pub lines: Vec<usize>,
}

impl CompactTrace {
    /// The index of the span with `id` (the first, if the id repeats).
    pub fn index_of(&self, id: [u8; 8]) -> Option<usize> {
        self.spans.iter().position(|span| span.span_id == id)
    }

    /// The label of span `index`, if it has one.
    pub fn label_of(&self, index: usize) -> Option<&str> {
        self.labels.iter().find(|&(_, &i)| i == index).map(|(label, _)| label.as_str())
    }
}

/// A mistake in a compact trace, at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for CompactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for CompactError {}

/// One line, read but not yet linked to the others.
#[derive(Default)]
struct Line {
    number: usize,
    indent: usize,
    service: Option<String>,
    record: SpanRecord,
    kind_given: bool,
    times: Option<(i64, i64)>,
    id: Option<[u8; 8]>,
    parent: Option<ParentRef>,
    label: Option<(String, usize)>,
    resource: Vec<(Text, RecordValue)>,
    event: Vec<(Text, RecordValue)>,
    link: Vec<(Text, RecordValue)>,
}

/// An explicit `parent=`.
enum ParentRef {
    Root,
    Id([u8; 8]),
    Label(String),
}

/// Parses a compact trace. Every line with a mistake is reported (one
/// mistake per line), in order.
pub fn parse(text: &str) -> Result<CompactTrace, Vec<CompactError>> {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        match parse_line(index + 1, raw) {
            Ok(Some(line)) => lines.push(line),
            Ok(None) => {}
            Err(error) => errors.push(error),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    link(lines)
}

/// Parses a compact trace and returns its spans only.
pub fn parse_spans(text: &str) -> Result<Vec<SpanRecord>, Vec<CompactError>> {
    parse(text).map(|trace| trace.spans)
}

fn error(line: usize, column: usize, message: impl Into<String>) -> CompactError {
    CompactError { line, column: column + 1, message: message.into() }
}

fn parse_line(number: usize, raw: &str) -> Result<Option<Line>, CompactError> {
    let body = raw.trim_start_matches(' ');
    let indent = raw.len() - body.len();
    if body.starts_with('\t') {
        return Err(error(number, indent, "indent with spaces, not tabs"));
    }
    let tokens = tokens::tokenize(raw).map_err(|(column, message)| error(number, column, message))?;
    let Some(first) = tokens.first() else { return Ok(None) };
    let mut line = Line { number, indent, ..Line::default() };
    let mut rest = &tokens[..];
    if let Some(service) = first.text.strip_suffix(':').filter(|s| tokens::assignment(s).is_none()) {
        let service = if service.starts_with('"') || service.starts_with('`') {
            tokens::string(service)
                .ok_or_else(|| error(number, first.column, format!("`{service}` is not a string")))?
        } else {
            service.to_string()
        };
        if service.is_empty() {
            return Err(error(number, first.column, "a service name goes before the `:`"));
        }
        line.service = Some(service);
        rest = &rest[1..];
    }
    let (name, after) = span_name(number, raw, first, rest)?;
    line.record.name = name.into();
    for token in after {
        field(&mut line, token)?;
    }
    Ok(Some(line))
}

/// The span name: one quoted string, or the words up to the first kind
/// word, time range, `key=value` or `#label`.
fn span_name<'t>(
    number: usize,
    raw: &str,
    first: &Token<'_>,
    rest: &'t [Token<'t>],
) -> Result<(String, &'t [Token<'t>]), CompactError> {
    let missing = || {
        let column = rest.first().map_or(raw.len(), |t| t.column);
        error(number, column.max(first.column), "expected a span name: `service: name …` or `name …`")
    };
    let head = rest.first().ok_or_else(missing)?;
    if head.text.starts_with('"') || head.text.starts_with('`') {
        let name = tokens::string(head.text)
            .ok_or_else(|| error(number, head.column, format!("`{}` is not a string", head.text)))?;
        return Ok((name, &rest[1..]));
    }
    let words = rest.iter().take_while(|t| !is_field(t.text)).count();
    if words == 0 {
        return Err(missing());
    }
    let name: Vec<&str> = rest[..words].iter().map(|t| t.text).collect();
    Ok((name.join(" "), &rest[words..]))
}

fn is_field(text: &str) -> bool {
    SpanKind::from_word(text).is_some()
        || tokens::looks_like_times(text)
        || tokens::is_duration(text)
        || tokens::assignment(text).is_some()
        || text.starts_with('#')
}

/// Reads one token after the name into `line`.
fn field(line: &mut Line, token: &Token<'_>) -> Result<(), CompactError> {
    let (number, column, text) = (line.number, token.column, token.text);
    let fail = |message: String| error(number, column, message);
    if let Some(kind) = SpanKind::from_word(text) {
        if std::mem::replace(&mut line.kind_given, true) {
            return Err(fail("the kind is given twice".into()));
        }
        line.record.kind = kind;
    } else if tokens::looks_like_times(text) {
        if line.times.is_some() {
            return Err(fail("the times are given twice".into()));
        }
        line.times = Some(tokens::times(text).map_err(fail)?);
    } else if let Some(label) = tokens::label(text) {
        if !tokens::valid_label(label) {
            return Err(fail(format!(
                "`{text}` is not a label: write `#` and a name of letters, digits, `_`, `-`, `.`"
            )));
        }
        if line.label.is_some() {
            return Err(fail("a span has at most one label".into()));
        }
        line.label = Some((label.to_string(), column));
    } else if let Some((key, value)) = tokens::assignment(text) {
        attribute(line, key, value).map_err(|message| error(number, column, message))?;
    } else if tokens::is_duration(text) {
        return Err(fail(format!("a time range is `START+DURATION` or `START..END`, as in `{text}+10ms`")));
    } else {
        return Err(fail(format!(
            "`{text}` is not a kind, a time range (`0ms+5ms`), an attribute (`key=value`) or a label (`#name`); \
             a name with such words in it goes in quotes: `svc: \"my name\"`"
        )));
    }
    Ok(())
}

/// `key=value`: the reserved keys, then scoped and span attributes.
fn attribute(line: &mut Line, key: &str, value: &str) -> Result<(), String> {
    let record = &mut line.record;
    if key.starts_with('"') || key.starts_with('`') {
        let key = tokens::string(key).map(Text::from).ok_or_else(|| format!("`{key}` is not a string"))?;
        return push_unique(&mut record.attrs, key, tokens::value(value)?);
    }
    if key.is_empty() {
        return Err("an attribute needs a key before `=`".into());
    }
    match key {
        "status" => {
            record.status = Status::from_word(value).ok_or_else(|| match tokens::string(value) {
                Some(word) => format!("write `status={word}`: a status is a word, not a string"),
                None => format!("`{value}` is not a status: write `status=ok`, `status=error` or `status=unset`"),
            })?;
        }
        "message" => {
            record.status_message = tokens::string(value)
                .map(Text::from)
                .ok_or_else(|| format!("`message` is a string in quotes, not `{value}`"))?;
        }
        "id" => line.id = Some(tokens::span_id(value)?),
        "parent" => {
            line.parent = Some(match (value, tokens::label(value)) {
                ("0", _) => ParentRef::Root,
                (_, Some(label)) => ParentRef::Label(label.to_string()),
                _ => ParentRef::Id(tokens::span_id(value)?),
            });
        }
        "instrumentation:name" => Arc::make_mut(&mut record.scope).name = scope_text(value)?,
        "instrumentation:version" => Arc::make_mut(&mut record.scope).version = scope_text(value)?,
        _ => {
            let value = tokens::value(value)?;
            let scoped = |prefix: &str| key.strip_prefix(prefix).filter(|k| !k.is_empty()).map(Text::from);
            if let Some(k) = scoped("resource.") {
                line.resource.push((k, value));
            } else if let Some(k) = scoped("event.") {
                push_unique(&mut line.event, k, value)?;
            } else if let Some(k) = scoped("link.") {
                push_unique(&mut line.link, k, value)?;
            } else if let Some(k) = scoped("instrumentation.") {
                push_unique(&mut Arc::make_mut(&mut record.scope).attrs, k, value)?;
            } else {
                let k = scoped("span.").unwrap_or_else(|| Text::from(key));
                push_unique(&mut record.attrs, k, value)?;
            }
        }
    }
    Ok(())
}

fn scope_text(value: &str) -> Result<Text, String> {
    tokens::string(value)
        .map(Text::from)
        .ok_or_else(|| format!("an instrumentation name or version is a string in quotes, not `{value}`"))
}

fn push_unique(list: &mut Vec<(Text, RecordValue)>, key: Text, value: RecordValue) -> Result<(), String> {
    if list.iter().any(|(k, _)| *k == key) {
        return Err(format!("`{key}` is given twice"));
    }
    list.push((key, value));
    Ok(())
}

/// Links the lines into a trace: ids, parents, times, labels and resources.
fn link(lines: Vec<Line>) -> Result<CompactTrace, Vec<CompactError>> {
    let mut errors = Vec::new();
    let mut labels = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        if let Some((label, column)) = &line.label
            && labels.insert(label.clone(), index).is_some()
        {
            errors.push(error(line.number, *column, format!("the label `#{label}` is used twice")));
        }
    }
    let ids = span_ids(&lines);
    let resources: BTreeMap<_, Arc<[_]>> = match resources(&lines) {
        // One shared resource per service, as an OTLP reader hands them over.
        Ok(resources) => resources.into_iter().map(|(service, attrs)| (service, attrs.into())).collect(),
        Err(error) => {
            errors.push(error);
            BTreeMap::new()
        }
    };
    let mut spans = Vec::with_capacity(lines.len());
    let mut open: Vec<usize> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        while open.last().is_some_and(|&above| lines[above].indent >= line.indent) {
            open.pop();
        }
        let parent_id = match &line.parent {
            None => open.last().map_or([0; 8], |&above| ids[above]),
            Some(ParentRef::Root) => [0; 8],
            Some(ParentRef::Id(id)) => *id,
            Some(ParentRef::Label(label)) => match labels.get(label) {
                Some(&target) => ids[target],
                None => {
                    errors.push(error(line.number, line.indent, format!("`parent=#{label}`: no span has that label")));
                    [0; 8]
                }
            },
        };
        open.push(index);
        let (start, end) = line.times.unwrap_or((index as i64 * 1_000_000, index as i64 * 1_000_000 + 1_000_000));
        let mut record = line.record.clone();
        record.trace_id = TRACE_ID;
        record.span_id = ids[index];
        record.parent_id = parent_id;
        record.start = EPOCH + start;
        record.end = EPOCH + end;
        record.resource = resources.get(&line.service).cloned().unwrap_or_default();
        if !line.event.is_empty() {
            record.events.push((Text::from("event"), record.start, line.event.clone()));
        }
        if !line.link.is_empty() {
            record.links.push((TRACE_ID, [0; 8], line.link.clone()));
        }
        spans.push(record);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(CompactTrace { spans, labels, lines: lines.iter().map(|line| line.number).collect() })
}

/// Explicit ids as given; the others 1, 2, 3… in line order, skipping those.
fn span_ids(lines: &[Line]) -> Vec<[u8; 8]> {
    let taken: std::collections::HashSet<[u8; 8]> = lines.iter().filter_map(|line| line.id).collect();
    let mut next = 0u64;
    lines
        .iter()
        .map(|line| {
            line.id.unwrap_or_else(|| {
                loop {
                    next += 1;
                    if !taken.contains(&next.to_be_bytes()) {
                        break next.to_be_bytes();
                    }
                }
            })
        })
        .collect()
}

/// Resource attributes by service (`None`: lines without a service).
type Resources = BTreeMap<Option<String>, Vec<(Text, RecordValue)>>;

/// One resource per service: `service.name`, then every `resource.` key
/// given on any of its lines, in the order first given.
fn resources(lines: &[Line]) -> Result<Resources, CompactError> {
    let mut out = Resources::new();
    let mut first_line: BTreeMap<(Option<String>, Text), usize> = BTreeMap::new();
    for line in lines {
        let attrs = out.entry(line.service.clone()).or_insert_with(|| {
            line.service.iter().map(|s| (Text::from("service.name"), RecordValue::Str(s.as_str().into()))).collect()
        });
        for (key, value) in &line.resource {
            match attrs.iter().find(|(k, _)| k == key) {
                Some((_, existing)) if existing == value => {}
                Some(_) => {
                    let service = line
                        .service
                        .as_deref()
                        .map_or("spans without a service".to_string(), |s| format!("service `{s}`"));
                    let first = first_line
                        .get(&(line.service.clone(), key.clone()))
                        .map_or(String::new(), |l| format!(" (line {l})"));
                    return Err(error(
                        line.number,
                        line.indent,
                        format!(
                            "`resource.{key}` of {service} already has another value{first}: a service has one resource"
                        ),
                    ));
                }
                None => {
                    attrs.push((key.clone(), value.clone()));
                    first_line.insert((line.service.clone(), key.clone()), line.number);
                }
            }
        }
    }
    Ok(out)
}
