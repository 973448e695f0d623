//! `novelty(value, by: key)`: how new a value looks against a rolling baseline
//! of earlier values for the same key (stateful, compression-based; the
//! implementation is `crate::compression`).

use crate::Type;
use crate::builtins::{Builtin, BuiltinKind, Example, Returns, SCALARS_AND_LISTS, optional, param};


pub const BUILTIN: Builtin = Builtin {
    name: "novelty",
    kind: BuiltinKind::Stateful,
    params: &[param("value", &[Type::String, Type::Bytes])],
    named: &[
        param("by", SCALARS_AND_LISTS),
        optional("samples", &[Type::Int]),
        optional("bytes", &[Type::Int]),
        optional("warmup", &[Type::Int]),
        optional("tokenize", &[Type::Bool]),
        optional("learn_flagged", &[Type::Bool]),
        optional("flag", &[Type::Float, Type::Int]),
        optional("hold", &[Type::Duration]),
    ],
    returns: Returns::Type(Type::Float),
    doc: "How new `value` looks against a rolling baseline of earlier values seen at this \
          call site for the same `by:` key: `(C(v|B) - f) / (C(v) - f)`, the compressed \
          bytes `value` needs given the baseline `B` (zstd, the baseline as a prepared \
          dictionary) over those it needs alone, less `f`, the few bytes any value found \
          whole in the baseline costs — `0.0` for the familiar, near `1.0` (or a little \
          above) for the unseen. Each call costs O(|value|), not O(|baseline|). `nil` \
          while the key's baseline warms up (`warmup:` values, default 32), and for a \
          value that is not a string or bytes or a `nil` key. `samples:` (default 256) and \
          `bytes:` (default 32 KiB) bound the baseline, which keeps the most recent \
          values. Strings are tokenized first (`tokenize: false` turns it off): ids, \
          UUIDs, hashes, numbers, timestamps, IPs, emails and URLs become fixed tokens, so \
          fresh ids alone are not novel. A value scoring at least `flag:` (default 0.5; set \
          it to the rule's threshold) joins the baseline only `hold:` later (trace time, \
          default 1m), so a burst of one anomaly stays novel for at least that long while a \
          lasting change then becomes the new normal; `learn_flagged: true` lets flagged \
          values in at once. A violation caused through `novelty` carries its evidence as \
          `betrace.novelty.*` attributes: the score, the baseline's size, an empirical \
          p-value against the recent scores at the call site, and the segments that \
          compressed worst. Stateful: the VM keeps the bounded per-key state (see \
          `betrace_stdlib::compression`), so it has no `eval` here; the example results \
          are illustrative.",
    examples: &[
        Example { call: "novelty(trace:shape, by: trace:rootName)", result: "0.82" },
        Example {
            call: "novelty(span.gen_ai.output.messages, by: span.gen_ai.request.model, flag: 0.6, hold: 5m)",
            result: "0.71",
        },
        Example {
            call: r#"novelty(span.db.query.text, by: [resource.service.name, span.db.system.name], tokenize: true)"#,
            result: "0.04",
        },
        Example {
            call: "novelty(span.url.path, by: resource.service.name, warmup: 500, samples: 2000, bytes: 65536)",
            result: "nil",
        },
    ],
    eval: None,
};
