//! The intrinsics: fields every span (or trace) has, named without a scope
//! (`duration`) or with one (`span:duration`, `trace:rootName`). One table, used
//! by the checker, hover and completion.

use betrace_stdlib::Type;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
pub enum SpanIntrinsic {
    Name,
    Status,
    StatusMessage,
    Kind,
    Duration,
    Start,
    End,
    ChildCount,
    Id,
    ParentId,
    ScopeName,
    ScopeVersion,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
pub enum TraceIntrinsic {
    Duration,
    RootName,
    RootService,
    SpanCount,
    /// A canonical text of the trace's structure, for `novelty`.
    Shape,
    Id,
    Start,
}

/// One row of the intrinsics table.
#[derive(Debug)]
pub struct IntrinsicInfo<T: 'static> {
    /// Names it is written as: bare (`duration`) and/or scoped (`span:duration`).
    pub names: &'static [&'static str],
    pub which: T,
    pub ty: Type,
    pub doc: &'static str,
}

pub const SPAN_INTRINSICS: &[IntrinsicInfo<SpanIntrinsic>] = &[
    IntrinsicInfo {
        names: &["name", "span:name"],
        which: SpanIntrinsic::Name,
        ty: Type::String,
        doc: "The span's name.",
    },
    IntrinsicInfo {
        names: &["status", "span:status"],
        which: SpanIntrinsic::Status,
        ty: Type::Status,
        doc: "The span's status: `ok`, `error` or `unset`.",
    },
    IntrinsicInfo {
        names: &["statusMessage", "span:statusMessage"],
        which: SpanIntrinsic::StatusMessage,
        ty: Type::String,
        doc: "The status description; empty when none was set.",
    },
    IntrinsicInfo {
        names: &["kind", "span:kind"],
        which: SpanIntrinsic::Kind,
        ty: Type::Kind,
        doc: "The span's kind: `server`, `client`, `producer`, `consumer`, `internal` or `unspecified`.",
    },
    IntrinsicInfo {
        names: &["duration", "span:duration"],
        which: SpanIntrinsic::Duration,
        ty: Type::Duration,
        doc: "End minus start.",
    },
    IntrinsicInfo {
        names: &["start", "span:start"],
        which: SpanIntrinsic::Start,
        ty: Type::Time,
        doc: "When the span started.",
    },
    IntrinsicInfo {
        names: &["end", "span:end"],
        which: SpanIntrinsic::End,
        ty: Type::Time,
        doc: "When the span ended.",
    },
    IntrinsicInfo {
        names: &["childCount", "span:childCount"],
        which: SpanIntrinsic::ChildCount,
        ty: Type::Int,
        doc: "How many direct children the span has in the trace.",
    },
    IntrinsicInfo {
        names: &["span:id"],
        which: SpanIntrinsic::Id,
        ty: Type::String,
        doc: "The span id, lower-case hex.",
    },
    IntrinsicInfo {
        names: &["span:parentID"],
        which: SpanIntrinsic::ParentId,
        ty: Type::String,
        doc: "The parent span's id, lower-case hex; empty for a root span.",
    },
    IntrinsicInfo {
        names: &["instrumentation:name"],
        which: SpanIntrinsic::ScopeName,
        ty: Type::String,
        doc: "The name of the instrumentation scope that made the span.",
    },
    IntrinsicInfo {
        names: &["instrumentation:version"],
        which: SpanIntrinsic::ScopeVersion,
        ty: Type::String,
        doc: "The version of the instrumentation scope that made the span.",
    },
];

pub const TRACE_INTRINSICS: &[IntrinsicInfo<TraceIntrinsic>] = &[
    IntrinsicInfo {
        names: &["trace:duration"],
        which: TraceIntrinsic::Duration,
        ty: Type::Duration,
        doc: "From the earliest span start to the latest span end.",
    },
    IntrinsicInfo {
        names: &["trace:rootName"],
        which: TraceIntrinsic::RootName,
        ty: Type::String,
        doc: "The root span's name; empty while the root has not arrived.",
    },
    IntrinsicInfo {
        names: &["trace:rootService"],
        which: TraceIntrinsic::RootService,
        ty: Type::String,
        doc: "The root span's `service.name`.",
    },
    IntrinsicInfo {
        names: &["trace:spanCount"],
        which: TraceIntrinsic::SpanCount,
        ty: Type::Int,
        doc: "How many spans the trace holds.",
    },
    IntrinsicInfo {
        names: &["trace:shape"],
        which: TraceIntrinsic::Shape,
        ty: Type::String,
        doc: "A canonical text of the trace's structure (service and span names in tree order), for `novelty`.",
    },
    IntrinsicInfo {
        names: &["trace:id"],
        which: TraceIntrinsic::Id,
        ty: Type::String,
        doc: "The trace id, lower-case hex.",
    },
    IntrinsicInfo {
        names: &["trace:start"],
        which: TraceIntrinsic::Start,
        ty: Type::Time,
        doc: "When the earliest span started.",
    },
];

/// A span intrinsic by one of its names (`duration`, `span:duration`).
pub fn span_intrinsic(name: &str) -> Option<&'static IntrinsicInfo<SpanIntrinsic>> {
    SPAN_INTRINSICS.iter().find(|info| info.names.contains(&name))
}

pub fn trace_intrinsic(name: &str) -> Option<&'static IntrinsicInfo<TraceIntrinsic>> {
    TRACE_INTRINSICS.iter().find(|info| info.names.contains(&name))
}

/// Every name an intrinsic can be written as, for suggestions and completion.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    SPAN_INTRINSICS
        .iter()
        .flat_map(|info| info.names.iter().copied())
        .chain(TRACE_INTRINSICS.iter().flat_map(|info| info.names.iter().copied()))
}

/// The scopes of scoped intrinsics (`span:`, `trace:`, …).
pub const SCOPES: &[&str] = &["span", "trace", "instrumentation"];

/// Status and kind words, which read as values wherever a name is expected.
pub fn value_word(name: &str) -> Option<Type> {
    if betrace_stdlib::value::Status::from_word(name).is_some() {
        Some(Type::Status)
    } else if betrace_stdlib::value::SpanKind::from_word(name).is_some() {
        Some(Type::Kind)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_scoped_names_use_known_scopes() {
        let names: Vec<_> = all_names().collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
        for name in names {
            if let Some((scope, _)) = name.split_once(':') {
                assert!(SCOPES.contains(&scope), "{name}");
            }
        }
    }
}
