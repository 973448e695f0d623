//! Random well-typed rules (as text) and random traces, for differential
//! testing of the JIT against the interpreter. Shared by
//! `vm/tests/differential.rs` (driven by proptest) and the cargo-fuzz target
//! `fuzz/fuzz_targets/jit_vs_interp.rs` (driven by libFuzzer's bytes).
//!
//! Every choice reads a number from an [`Entropy`]; choice `0` is always the
//! simplest option (a literal, a leaf, no attributes), and an exhausted source
//! gives zeros, so shrinking the numbers toward zero shrinks the rule.

#![allow(dead_code)]

use betrace_vm::trace::{RecordScope, RecordValue, SpanKind, SpanRecord, Status, Text, Trace, TraceBuilder};

/// Where choices come from.
pub trait Entropy {
    fn next(&mut self) -> u64;
}

/// A fixed list of numbers, then zeros (proptest shrinks the list).
pub struct Numbers<'a> {
    numbers: &'a [u64],
    at: usize,
}

impl<'a> Numbers<'a> {
    pub fn new(numbers: &'a [u64]) -> Self {
        Numbers { numbers, at: 0 }
    }
}

impl Entropy for Numbers<'_> {
    fn next(&mut self) -> u64 {
        let n = self.numbers.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        n
    }
}

/// Bytes, two at a time, then zeros (libFuzzer).
pub struct Bytes<'a> {
    bytes: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Bytes { bytes }
    }
}

impl Entropy for Bytes<'_> {
    fn next(&mut self) -> u64 {
        let take = self.bytes.len().min(2);
        let (head, rest) = self.bytes.split_at(take);
        self.bytes = rest;
        head.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b))
    }
}

/// SplitMix64, for many traces from one seed.
pub struct Seeded(pub u64);

impl Entropy for Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

pub struct Gen<'e> {
    entropy: &'e mut dyn Entropy,
}

/// What an expression may read where it stands.
#[derive(Clone, Copy)]
struct Ctx {
    /// A current span (inside a selector or an aggregate's expression).
    span: bool,
    /// The bound span `x`.
    bound: bool,
    /// How much nesting is left.
    depth: u32,
}

impl Ctx {
    fn down(self) -> Ctx {
        Ctx { depth: self.depth.saturating_sub(1), ..self }
    }

    fn in_span(self) -> Ctx {
        Ctx { span: true, depth: self.depth.saturating_sub(1), ..self }
    }
}

const STRINGS: [&str; 6] = ["a", "b", "", "checkout", "GET /x", "db"];
const NAMES: [&str; 5] = ["a", "b", "checkout", "db", "GET /x"];
const PATTERNS: [&str; 5] = ["a", ".*", "[a-c].*", "GET .*", "(?i)CHECK.*"];
const CMP: [&str; 7] = ["=", "!=", "<", "<=", ">", ">=", "=="];
const STRUCTURAL: [&str; 10] = [">", ">>", "<", "<<", "~", "!>", "!>>", "!<", "!<<", "!~"];

impl<'e> Gen<'e> {
    pub fn new(entropy: &'e mut dyn Entropy) -> Self {
        Gen { entropy }
    }

    fn below(&mut self, n: usize) -> usize {
        (self.entropy.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// A choice among `leaves` options at depth 0, else among `all`.
    fn choose(&mut self, c: Ctx, leaves: usize, all: usize) -> usize {
        self.below(if c.depth == 0 { leaves } else { all })
    }

    /// A prefix naming a span: the current one (``), its parent, or the bound span.
    fn span(&mut self, c: Ctx) -> Option<&'static str> {
        let mut options: Vec<&'static str> = Vec::new();
        if c.span {
            options.extend(["", "parent."]);
        }
        if c.bound {
            options.extend(["x.", "x.parent."]);
        }
        if c.span {
            options.push("parent.parent.");
        }
        if options.is_empty() { None } else { Some(self.pick(&options)) }
    }

    /// The whole rule file.
    pub fn rule_file(&mut self) -> String {
        let mut out = String::from(
            "attributes {\n  span.a.int: int\n  span.a.float: float\n  span.a.str: string\n  span.a.bool: bool\n  span.a.list: [string]\n  resource.r.str: string\n  resource.r.int: int\n}\n\n",
        );
        let rules = 1 + self.below(2);
        for i in 0..rules {
            out.push_str(&self.rule(i));
        }
        out
    }

    fn rule(&mut self, index: usize) -> String {
        let depth = 1 + self.below(3) as u32;
        let bound = self.below(2) == 1;
        let top = Ctx { span: false, bound: false, depth };
        let mut text = format!("rule r{index} {{\n  severity: low\n");
        if self.below(3) == 2 {
            text.push_str(&format!("  message: \"{}\"\n", self.message(bound)));
        }
        if bound {
            text.push_str(&format!("  when x = {}\n", self.set(top)));
        } else {
            // Parenthesized: `when NAME = …` would be a binding.
            text.push_str(&format!("  when ({})\n", self.condition(top)));
        }
        let clauses = 1 + self.below(3);
        let inner = Ctx { bound, ..top };
        for _ in 0..clauses {
            let kind = if self.below(2) == 0 { "never" } else { "always" };
            text.push_str(&format!("  {kind} {}\n", self.condition(inner)));
        }
        text.push_str("}\n\n");
        text
    }

    fn message(&mut self, bound: bool) -> String {
        let holes: &[&str] = if bound {
            &[
                "{x.name}",
                "{x.duration}",
                "{x.span.a.int}",
                "{x.status}",
                "{x.duration > 1us}",
                "{trace:spanCount}",
                "{x.span.a.list}",
                "{x.start}",
            ]
        } else {
            &["{trace:spanCount}", "{trace:rootName}", "{trace:duration}"]
        };
        let mut text = String::from("m");
        for _ in 0..1 + self.below(2) {
            text.push(' ');
            text.push_str(self.pick(holes));
        }
        text
    }

    /// A condition: a boolean, or a spanset (non-empty).
    fn condition(&mut self, c: Ctx) -> String {
        if self.below(3) == 0 { self.set(c) } else { self.boolean(c) }
    }

    fn boolean(&mut self, c: Ctx) -> String {
        match self.choose(c, 16, 22) {
            0 => self.pick(&["true", "false"]).to_string(),
            1 => {
                let op = self.pick(&CMP);
                format!("{} {op} {}", self.int(c), self.int(c))
            }
            2 => {
                let op = self.pick(&CMP);
                format!("{} {op} {}", self.duration(c), self.duration(c))
            }
            3 => {
                let op = self.pick(&["=", "!="]);
                format!("{} {op} {}", self.status(c), self.status(c))
            }
            4 => {
                let op = self.pick(&["=", "!="]);
                format!("{} {op} {}", self.kind(c), self.kind(c))
            }
            5 => {
                let op = self.pick(&CMP);
                format!("{} {op} {}", self.string(c), self.string(c))
            }
            6 => {
                let op = self.pick(&["=~", "!~"]);
                format!("{} {op} \"{}\"", self.string(c), self.pick(&PATTERNS))
            }
            7 => match self.span(c) {
                Some(p) => {
                    let op = self.pick(&CMP);
                    let literal = self.any_literal();
                    let key = self.pick(&[
                        "span.x.any",
                        "resource.x.any",
                        "event.e.any",
                        "link.l.any",
                        "instrumentation.i.any",
                    ]);
                    let key = if p.is_empty() && key == "span.x.any" && self.below(2) == 0 { ".x.any" } else { key };
                    format!("{p}{key} {op} {literal}")
                }
                None => "trace:spanCount > 2".to_string(),
            },
            8 => match self.span(c) {
                Some(p) => {
                    let op = self.pick(&["=", "!="]);
                    let key = self.pick(&["span.a.str", "span.x.any", "resource.r.str", "span.a.int"]);
                    format!("{p}{key} {op} nil")
                }
                None => "trace:rootName = \"a\"".to_string(),
            },
            9 => self.set(c),
            10 => {
                let op = self.pick(&CMP);
                format!("{} {op} {}", self.float(c), self.number(c))
            }
            11 => {
                let op = self.pick(&CMP);
                format!("{} {op} {}", self.time(c), self.time(c))
            }
            12 => match self.below(4) {
                0 => format!("{} in [1, 2, 3]", self.int(c)),
                1 => format!("{} in [\"a\", \"db\", \"\"]", self.string(c)),
                2 => format!("{} in [ok, error]", self.status(c)),
                _ => match self.span(c) {
                    Some(p) => format!("{} in {p}span.a.list", self.string(c)),
                    None => format!("{} in [server, client]", self.kind(c)),
                },
            },
            13 => match self.span(c) {
                Some(p) => {
                    if self.below(2) == 0 {
                        format!("{p}span.a.bool")
                    } else {
                        format!("{p}span.a.bool = {}", self.pick(&["true", "false"]))
                    }
                }
                None => "true".to_string(),
            },
            14 => {
                let f = self.pick(&["contains", "starts_with", "ends_with"]);
                format!("{f}({}, {})", self.string(c), self.string(c))
            }
            15 => match self.span(c) {
                Some(p) if p.ends_with("parent.") => format!("{}{}", self.pick(&["", "!"]), p.trim_end_matches('.')),
                _ => self.pick(&["true", "false"]).to_string(),
            },
            16 => format!("!({})", self.boolean(c.down())),
            17 => format!("({} && {})", self.condition(c.down()), self.boolean(c.down())),
            18 => format!("({} || {})", self.boolean(c.down()), self.condition(c.down())),
            19 => {
                let op = self.pick(&[">", ">=", "<", "="]);
                format!("count({}) {op} {}", self.set(c.down()), self.below(4))
            }
            20 => {
                let agg = self.pick(&["sum", "avg", "min", "max"]);
                let op = self.pick(&[">", "<", "="]);
                let set = self.set(c.down());
                let value = self.duration(c.in_span());
                format!("{agg}({set}, {value}) {op} {}", self.duration_literal())
            }
            _ => {
                let agg = self.pick(&["sum", "avg", "min", "max"]);
                let op = self.pick(&[">", "<", "!="]);
                let set = self.set(c.down());
                let value = self.int(c.in_span());
                format!("{agg}({set}, {value}) {op} {}", self.below(5))
            }
        }
    }

    fn set(&mut self, c: Ctx) -> String {
        match self.choose(c, 4, 8) {
            0 => "{ }".to_string(),
            1 | 2 => format!("{{ {} }}", self.condition(c.in_span())),
            3 => match (c.bound, c.span) {
                (true, _) if self.below(2) == 0 => "x".to_string(),
                (_, true) => "parent".to_string(),
                _ => format!("{{ name = \"{}\" }}", self.pick(&NAMES)),
            },
            4 | 5 => {
                let op = self.pick(&STRUCTURAL);
                format!("({} {op} {})", self.set(c.down()), self.set(c.down()))
            }
            6 => format!("({} && {})", self.set(c.down()), self.set(c.down())),
            _ => format!("({} || {})", self.set(c.down()), self.set(c.down())),
        }
    }

    fn int_literal(&mut self) -> String {
        match self.below(8) {
            7 => "9223372036854775807".to_string(),
            n => n.to_string(),
        }
    }

    fn int(&mut self, c: Ctx) -> String {
        match self.choose(c, 6, 12) {
            0 => self.int_literal(),
            1 => match self.span(c) {
                Some(p) => format!("{p}span.a.int"),
                None => self.int_literal(),
            },
            2 => match self.span(c) {
                Some(p) => format!("{p}childCount"),
                None => "trace:spanCount".to_string(),
            },
            3 => "trace:spanCount".to_string(),
            4 => match self.span(c) {
                Some(p) => format!("{p}resource.r.int"),
                None => self.int_literal(),
            },
            5 => match self.span(c) {
                Some(p) => format!("len({p}name)"),
                None => "len(trace:rootName)".to_string(),
            },
            6 | 7 => {
                let op = self.pick(&["+", "-", "*"]);
                format!("({} {op} {})", self.int(c.down()), self.int(c.down()))
            }
            8 => {
                let op = self.pick(&["/", "%"]);
                let divisor = match self.span(c) {
                    Some(p) if self.below(2) == 0 => format!("{p}span.a.int"),
                    _ => (1 + self.below(3)).to_string(),
                };
                format!("({} {op} {divisor})", self.int(c.down()))
            }
            9 => format!("(-{})", self.int(c.down())),
            10 => format!("count({})", self.set(c.down())),
            _ => format!("sum({}, {})", self.set(c.down()), self.int(c.in_span())),
        }
    }

    fn float(&mut self, c: Ctx) -> String {
        match self.choose(c, 2, 5) {
            0 => self.pick(&["1.5", "0.0", "2e3", "0.25"]).to_string(),
            1 => match self.span(c) {
                Some(p) => format!("{p}span.a.float"),
                None => "1.5".to_string(),
            },
            2 => format!("({} * 1.5)", self.int(c.down())),
            3 => format!("avg({}, {})", self.set(c.down()), self.int(c.in_span())),
            _ => format!("({} / {})", self.number(c.down()), self.pick(&["2.0", "0.5", "3"])),
        }
    }

    fn number(&mut self, c: Ctx) -> String {
        if self.below(2) == 0 { self.int(c) } else { self.float(c) }
    }

    fn duration_literal(&mut self) -> String {
        self.pick(&["0ns", "5ns", "100ns", "1us", "1s", "250ns"]).to_string()
    }

    fn duration(&mut self, c: Ctx) -> String {
        match self.choose(c, 4, 11) {
            0 => self.duration_literal(),
            1 => match self.span(c) {
                Some(p) => format!("{p}duration"),
                None => "trace:duration".to_string(),
            },
            2 => "trace:duration".to_string(),
            3 => match self.span(c) {
                Some(p) => format!("({p}end - {p}start)"),
                None => self.duration_literal(),
            },
            4 => {
                let op = self.pick(&["+", "-", "%"]);
                format!("({} {op} {})", self.duration(c.down()), self.duration(c.down()))
            }
            5 => format!("({} * {})", self.duration(c.down()), self.int(c.down())),
            6 => format!("({} / {})", self.duration(c.down()), self.pick(&["2", "0.5", "3"])),
            7 => format!("(-{})", self.duration(c.down())),
            8 => format!("({} - {})", self.time(c.down()), self.time(c.down())),
            _ => {
                let agg = self.pick(&["sum", "avg", "min", "max"]);
                format!("{agg}({}, {})", self.set(c.down()), self.duration(c.in_span()))
            }
        }
    }

    fn time(&mut self, c: Ctx) -> String {
        match self.choose(c, 2, 4) {
            0 => match self.span(c) {
                Some(p) => format!("{p}{}", self.pick(&["start", "end"])),
                None => "trace:start".to_string(),
            },
            1 => "trace:start".to_string(),
            2 => format!("({} + {})", self.time(c.down()), self.duration(c.down())),
            _ => format!("({} - {})", self.time(c.down()), self.duration(c.down())),
        }
    }

    fn string(&mut self, c: Ctx) -> String {
        match self.choose(c, 6, 9) {
            0 => format!("\"{}\"", self.pick(&STRINGS)),
            1 => match self.span(c) {
                Some(p) => format!("{p}name"),
                None => "trace:rootName".to_string(),
            },
            2 => match self.span(c) {
                Some(p) => format!("{p}{}", self.pick(&["span.a.str", "resource.r.str", "statusMessage"])),
                None => "trace:rootService".to_string(),
            },
            3 => "trace:rootName".to_string(),
            4 => match (c.span, self.below(3)) {
                (true, 0) => "span:id".to_string(),
                (true, 1) => "span:parentID".to_string(),
                (true, _) => "instrumentation:name".to_string(),
                _ => "trace:id".to_string(),
            },
            5 => match self.span(c) {
                Some("") => ".x.any".to_string(),
                Some(p) => format!("{p}span.x.any"),
                None => "\"b\"".to_string(),
            },
            6 => format!("lower({})", self.string(c.down())),
            7 => format!("string({})", self.int(c.down())),
            _ => format!("trim({})", self.string(c.down())),
        }
    }

    fn status(&mut self, c: Ctx) -> String {
        match (self.below(2), self.span(c)) {
            (1, Some(p)) => format!("{p}status"),
            _ => self.pick(&["ok", "error", "unset"]).to_string(),
        }
    }

    fn kind(&mut self, c: Ctx) -> String {
        match (self.below(2), self.span(c)) {
            (1, Some(p)) => format!("{p}kind"),
            _ => self.pick(&["server", "client", "internal", "producer", "consumer", "unspecified"]).to_string(),
        }
    }

    fn any_literal(&mut self) -> String {
        match self.below(6) {
            0 => self.int_literal(),
            1 => format!("\"{}\"", self.pick(&STRINGS)),
            2 => "1.5".to_string(),
            3 => "true".to_string(),
            4 => self.duration_literal(),
            _ => "error".to_string(),
        }
    }

    // ---- traces ----

    fn value(&mut self, want: &str) -> Option<RecordValue> {
        // Mostly the declared type; sometimes another, sometimes missing.
        let kind = match self.below(10) {
            0 => return None,
            1 => self.below(6),
            _ => match want {
                "int" => 0,
                "float" => 1,
                "str" => 2,
                "bool" => 3,
                "list" => 4,
                _ => self.below(6),
            },
        };
        Some(match kind {
            0 => RecordValue::Int(match self.below(8) {
                7 => i64::MAX,
                6 => -1,
                n => n as i64,
            }),
            1 => RecordValue::Float(match self.below(5) {
                4 => f64::NAN,
                3 => -0.0,
                n => n as f64 * 0.75,
            }),
            2 => RecordValue::Str(self.pick(&STRINGS).into()),
            3 => RecordValue::Bool(self.below(2) == 1),
            4 => RecordValue::Array((0..self.below(3)).map(|_| RecordValue::Str(self.pick(&STRINGS).into())).collect()),
            _ => RecordValue::Bytes(vec![1, 2]),
        })
    }

    fn attrs(&mut self, keys: &[(&str, &str)]) -> Vec<(Text, RecordValue)> {
        keys.iter().filter_map(|(key, want)| self.value(want).map(|v| ((*key).into(), v))).collect()
    }

    /// A trace of 0–`max_spans` spans: a forest with orphans, odd times and
    /// attributes of the declared type, of another type, or missing.
    pub fn trace(&mut self, max_spans: usize) -> Trace {
        let n = if self.below(20) == 0 { 0 } else { 1 + self.below(max_spans.max(1)) };
        let mut builder = TraceBuilder::new([7; 16]);
        for i in 0..n {
            let id = (i + 1) as u8;
            let parent = match self.below(6) {
                0 => 0,
                1 => 200, // not in the trace: an orphan
                _ if i > 0 => 1 + self.below(i) as u8,
                _ => 0,
            };
            let start = match self.below(30) {
                0 => i64::MIN + 3,
                1 => i64::MAX - 3,
                _ => self.below(50) as i64 * 10,
            };
            let end = match self.below(30) {
                0 => i64::MAX,
                1 => i64::MIN,
                2 | 3 => start.saturating_sub(5),
                _ => start.saturating_add(self.below(40) as i64 * 10),
            };
            let events = if self.below(4) == 0 {
                vec![(Text::from("ev"), start, self.attrs(&[("e.any", "?")]))]
            } else {
                vec![]
            };
            let links =
                if self.below(5) == 0 { vec![([3; 16], [4; 8], self.attrs(&[("l.any", "?")]))] } else { vec![] };
            builder.add(SpanRecord {
                trace_id: [7; 16],
                span_id: [0, 0, 0, 0, 0, 0, 0, id],
                parent_id: [0, 0, 0, 0, 0, 0, 0, parent],
                name: self.pick(&NAMES).into(),
                kind: SpanKind::ALL[self.below(6)],
                status: Status::ALL[self.below(3)],
                status_message: self.pick(&["", "a", "boom"]).into(),
                start,
                end,
                attrs: self.attrs(&[
                    ("a.int", "int"),
                    ("a.float", "float"),
                    ("a.str", "str"),
                    ("a.bool", "bool"),
                    ("a.list", "list"),
                    ("x.any", "?"),
                ]),
                resource: {
                    let mut r = self.attrs(&[("r.str", "str"), ("r.int", "int"), ("x.any", "?")]);
                    r.push(("service.name".into(), RecordValue::Str(self.pick(&["a", "checkout"]).into())));
                    r.into()
                },
                scope: RecordScope {
                    name: self.pick(&["", "a"]).into(),
                    version: Text::default(),
                    attrs: self.attrs(&[("i.any", "?")]),
                }
                .into(),
                events,
                links,
            });
        }
        builder.build()
    }
}
