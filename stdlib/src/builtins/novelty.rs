//! `novelty(value, by: key)`: how new a value looks against a rolling baseline
//! of earlier values for the same key (stateful, compression-based).

use crate::Type;
use crate::builtins::{Builtin, BuiltinKind, Example, Returns, optional, param};

/// The types a `by:` key may have: any scalar, or a list of them (a compound key).
const KEY_TYPES: &[Type] = &[
    Type::String,
    Type::Int,
    Type::Float,
    Type::Bool,
    Type::Duration,
    Type::Time,
    Type::Status,
    Type::Kind,
    Type::Bytes,
    Type::list_of(Type::Any),
];

pub const BUILTIN: Builtin = Builtin {
    name: "novelty",
    kind: BuiltinKind::Stateful,
    params: &[param("value", &[Type::String, Type::Bytes])],
    named: &[
        param("by", KEY_TYPES),
        optional("samples", &[Type::Int]),
        optional("warmup", &[Type::Int]),
        optional("tokenize", &[Type::Bool]),
        optional("learn_flagged", &[Type::Bool]),
    ],
    returns: Returns::Type(Type::Float),
    doc: "How new `value` looks against a rolling baseline of earlier values seen at this \
          call site for the same `by:` key: the extra compressed bytes `value` needs given \
          the baseline (zstd, the baseline as dictionary), divided by its compressed size \
          alone — near `0.0` for the familiar, near `1.0` or above for the unseen. Each \
          call costs O(|value|), not O(|baseline|). `nil` while the key's baseline warms \
          up (`warmup:` values, by default the engine's), and for a `nil` value or key. \
          `samples:` bounds the baseline (most recent values kept); `tokenize: true` \
          replaces ids, numbers, hashes and timestamps by placeholders before scoring, so \
          fresh ids alone are not novel; `learn_flagged: false` keeps values that scored \
          as novel out of the baseline. Stateful: the VM keeps the bounded per-key state \
          and implements it (with zstd) in a later issue, so it has no `eval` here; the \
          example results are illustrative.",
    examples: &[
        Example { call: "novelty(trace:shape, by: trace:rootName)", result: "0.82" },
        Example {
            call: r#"novelty(span.db.query.text, by: [resource.service.name, span.db.system.name], tokenize: true)"#,
            result: "0.04",
        },
        Example {
            call: "novelty(span.url.path, by: resource.service.name, warmup: 500, samples: 2000)",
            result: "nil",
        },
    ],
    eval: None,
};
