//! A canonical text dump of a [`Trace`]: every column, every string with its
//! symbol number, in a fixed order. Two traces are identical exactly when
//! their dumps are; tests and snapshots compare dumps to see the difference.

use std::fmt::Write;

use super::{AttrValue, AttrsRef, NO_PARENT, Strings, Sym, Trace};

impl Trace {
    /// Every field of the trace as text, one span a paragraph.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let strings = &self.strings;
        let _ = writeln!(out, "trace {}", hex(&self.trace_id));
        let _ = writeln!(out, "repairs {:?}", self.repairs);
        let _ = writeln!(out, "strings {}", strings.len());
        for i in 0..strings.len() {
            let _ = writeln!(out, "  #{i} {:?}", strings.text(Sym(i as u32)));
        }
        for (i, resource) in self.resources.iter().enumerate() {
            let service = resource.service_name.map(|sym| sym.0.to_string()).unwrap_or_else(|| "-".into());
            let _ = writeln!(out, "resource {i} service=#{service}{}", attrs(self, self.attrs_of(resource.attrs)));
        }
        for (i, scope) in self.scopes.iter().enumerate() {
            let _ = writeln!(
                out,
                "scope {i} name={} version={}{}",
                sym(strings, scope.name),
                sym(strings, scope.version),
                attrs(self, self.attrs_of(scope.attrs))
            );
        }
        for i in 0..self.len() {
            self.dump_span(i, &mut out);
        }
        out
    }

    fn dump_span(&self, i: usize, out: &mut String) {
        let strings = &self.strings;
        let parent = match self.parent()[i] {
            NO_PARENT => "-".to_string(),
            parent => parent.to_string(),
        };
        let _ = writeln!(
            out,
            "span {i} id={} parent={parent} children={} enter={} exit={} name={}",
            hex(&self.span_id()[i]),
            self.child_count()[i],
            self.enter()[i],
            self.exit()[i],
            sym(strings, self.name()[i]),
        );
        let _ = writeln!(
            out,
            "  kind={:?} status={:?} message={} start={} end={} resource={} scope={}",
            self.kind[i],
            self.status[i],
            sym(strings, self.status_message()[i]),
            self.start()[i],
            self.end()[i],
            self.resource()[i],
            self.scope()[i],
        );
        if !self.attrs.span(i).is_empty() {
            let _ = writeln!(out, "  attrs{}", attrs(self, self.attrs.span(i)));
        }
        for event in &self.events()[i] {
            let _ = writeln!(
                out,
                "  event {} at {}{}",
                sym(strings, event.name),
                event.time,
                attrs(self, self.attrs_of(event.attrs))
            );
        }
        for link in &self.links()[i] {
            let _ = writeln!(
                out,
                "  link {}/{}{}",
                hex(&link.trace_id),
                hex(&link.span_id),
                attrs(self, self.attrs_of(link.attrs))
            );
        }
    }
}

pub(crate) use betrace_stdlib::value::hex;

fn sym(strings: &Strings, sym: Sym) -> String {
    format!("#{}{:?}", sym.0, strings.text(sym))
}

fn attrs(trace: &Trace, attrs: AttrsRef<'_>) -> String {
    let mut out = String::new();
    for (key, value) in attrs.iter() {
        let _ = write!(out, " {}={}", sym(&trace.strings, key), value_text(trace, *value));
    }
    out
}

fn value_text(trace: &Trace, value: AttrValue) -> String {
    match value {
        AttrValue::Str(text) => sym(&trace.strings, text),
        AttrValue::Int(int) => format!("{int}i"),
        AttrValue::Float(float) => format!("{float:?}f"),
        AttrValue::Bool(bool) => bool.to_string(),
        AttrValue::Bytes(index) => format!("0x{}", hex(trace.large().bytes(index))),
        AttrValue::Array(index) => {
            let items: Vec<String> = trace.large().array(index).iter().map(|item| value_text(trace, *item)).collect();
            format!("[{}]", items.join(","))
        }
    }
}
