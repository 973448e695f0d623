//! Violations as JSON objects (`betrace eval --format json`, one per line):
//! [`ViolationJson`] is the serde view — ids as lower-case hex, the severity
//! and clause kind as words, every field the signature covers, and the
//! signature itself. It converts back to a [`Violation`], so `betrace verify`
//! can recompute the signature from a line. A violation caused through
//! `novelty` has a `novelty` array of evidence, and the last violation the
//! server reports of a rule past its cap has a `suppressed` count; others
//! have neither key, so their lines are as they were before those existed.

use betrace_compiler::bytecode::CheckKind;
use betrace_compiler::hir::Severity;
use serde::{Deserialize, Serialize};

use super::signature::{clause_kind_word, unhex};
use super::{NoveltyEvidence, PackInfo, Violation, hex};

/// One violation as a JSON object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViolationJson {
    /// 32 hex digits, stable across re-evaluations of the same trace.
    pub id: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// The span bound by `when NAME = …` (16 hex digits), or null.
    pub bound_span: Option<String>,
    /// The span the violation belongs under: the bound span, else the root.
    pub parent_span: Option<String>,
    /// Spans that made the clause fail, in start order.
    pub witnesses: Vec<String>,
    /// `pack/rule`.
    pub rule_id: String,
    pub rule_name: String,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    pub message: String,
    pub clause: String,
    /// `always` or `never`.
    pub clause_kind: String,
    pub tags: Vec<String>,
    pub pack_name: String,
    pub pack_version: String,
    /// When it happened, in nanoseconds since the Unix epoch. Written as a
    /// decimal string (as OTLP/JSON writes 64-bit integers: JSON tools that
    /// hold numbers as doubles would round it); read from a string or a number.
    #[serde(with = "decimal_string")]
    pub time_unix_nano: i64,
    /// The evidence of the `novelty` calls behind it (call, key, score,
    /// p-value, baseline size, worst segments); absent when there is none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub novelty: Vec<NoveltyEvidence>,
    /// How many more violations of this rule in this trace were found and
    /// not reported (the server's `assembly.max_violations_per_rule`);
    /// absent when none were.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suppressed: u32,
    /// HMAC-SHA256 (hex) over the violation's canonical encoding; null when
    /// no signing key was configured.
    pub signature: Option<String>,
}

/// A JSON object that does not describe a violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonFieldError {
    pub field: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl std::fmt::Display for JsonFieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}` is {:?}, expected {}", self.field, self.value, self.expected)
    }
}

impl std::error::Error for JsonFieldError {}

impl ViolationJson {
    /// The JSON view of `violation`, with its signature if there is one.
    pub fn new(violation: &Violation, signature: Option<String>) -> ViolationJson {
        ViolationJson {
            id: violation.id.clone(),
            trace_id: hex(&violation.trace_id),
            bound_span: violation.bound_span.map(|s| hex(&s)),
            parent_span: violation.parent_span.map(|s| hex(&s)),
            witnesses: violation.witnesses.iter().map(|w| hex(w)).collect(),
            rule_id: violation.rule_id.clone(),
            rule_name: violation.rule_name.clone(),
            severity: violation.severity.word().to_string(),
            message: violation.message.clone(),
            clause: violation.clause.clone(),
            clause_kind: clause_kind_word(violation.clause_kind).to_string(),
            tags: violation.tags.clone(),
            pack_name: violation.pack.name.clone(),
            pack_version: violation.pack.version.clone(),
            time_unix_nano: violation.time,
            novelty: violation.novelty.clone(),
            suppressed: violation.suppressed,
            signature,
        }
    }

    /// The violation this object describes (the signature is not part of it).
    pub fn to_violation(&self) -> Result<Violation, JsonFieldError> {
        let span = |field: &'static str, value: &str| -> Result<[u8; 8], JsonFieldError> {
            fixed(value).ok_or_else(|| JsonFieldError { field, value: value.into(), expected: "16 hex digits" })
        };
        let optional_span =
            |field: &'static str, value: &Option<String>| value.as_deref().map(|v| span(field, v)).transpose();
        let trace_id = fixed(&self.trace_id).ok_or_else(|| JsonFieldError {
            field: "trace_id",
            value: self.trace_id.clone(),
            expected: "32 hex digits",
        })?;
        let severity = Severity::from_word(&self.severity).ok_or_else(|| JsonFieldError {
            field: "severity",
            value: self.severity.clone(),
            expected: "info, low, medium, high or critical",
        })?;
        let clause_kind = match self.clause_kind.as_str() {
            "always" => CheckKind::Always,
            "never" => CheckKind::Never,
            other => {
                return Err(JsonFieldError { field: "clause_kind", value: other.into(), expected: "always or never" });
            }
        };
        Ok(Violation {
            id: self.id.clone(),
            trace_id,
            bound_span: optional_span("bound_span", &self.bound_span)?,
            parent_span: optional_span("parent_span", &self.parent_span)?,
            witnesses: self.witnesses.iter().map(|w| span("witnesses", w)).collect::<Result<_, _>>()?,
            rule_id: self.rule_id.clone(),
            rule_name: self.rule_name.clone(),
            severity,
            message: self.message.clone(),
            clause: self.clause.clone(),
            clause_kind,
            tags: self.tags.clone(),
            pack: PackInfo { name: self.pack_name.clone(), version: self.pack_version.clone() },
            time: self.time_unix_nano,
            novelty: self.novelty.clone(),
            suppressed: self.suppressed,
        })
    }
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

fn fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    unhex(text)?.try_into().ok()
}

/// An `i64` as a JSON string, read back from a string or a number.
mod decimal_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(i64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        match Either::deserialize(deserializer)? {
            Either::Number(n) => Ok(n),
            Either::Text(text) => text.parse().map_err(|_| serde::de::Error::custom(format!("bad time {text:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::violation::tests::sample;

    #[test]
    fn ids_are_lower_case_hex_and_words_are_words() {
        let json = ViolationJson::new(&sample(), Some("ab".into()));
        assert_eq!(json.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(json.bound_span.as_deref(), Some("b7ad6b7169203331"));
        assert_eq!(json.witnesses, ["00f067aa0ba902b7", "1111111111111111"]);
        assert_eq!(json.severity, "high");
        assert_eq!(json.clause_kind, "never");
        let value = serde_json::to_value(&json).unwrap();
        assert_eq!(value["signature"], "ab");
        assert_eq!(value["time_unix_nano"], "1700000000123456789");
        assert_eq!(value.as_object().unwrap().len(), 16);
    }

    #[test]
    fn json_round_trips_to_the_same_violation() {
        let violation = sample();
        let text = serde_json::to_string(&ViolationJson::new(&violation, None)).unwrap();
        let back: ViolationJson = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_violation().unwrap(), violation);
        let mut unbound = violation.clone();
        unbound.bound_span = None;
        assert_eq!(ViolationJson::new(&unbound, None).to_violation().unwrap(), unbound);
    }

    #[test]
    fn novelty_evidence_is_an_array_that_round_trips() {
        let violation = crate::violation::tests::sample_with_novelty();
        let value = serde_json::to_value(ViolationJson::new(&violation, None)).unwrap();
        let evidence = &value["novelty"][0];
        assert_eq!(evidence["call"], "novelty(trace:shape, by: trace:rootName)");
        assert_eq!(evidence["key"], "\"GET /\"");
        assert_eq!(evidence["score"], 0.8731884057971014);
        assert_eq!(evidence["p_value"], 0.0078125);
        assert_eq!(evidence["baseline_samples"], 40);
        assert_eq!(evidence["worst"][0]["text"], "payments: refund.issue");
        let back: ViolationJson = serde_json::from_str(&value.to_string()).unwrap();
        assert_eq!(back.to_violation().unwrap(), violation);
        let plain = serde_json::to_value(ViolationJson::new(&sample(), None)).unwrap();
        assert!(plain.get("novelty").is_none(), "no key without evidence");
    }

    #[test]
    fn a_suppressed_count_is_a_key_only_when_there_is_one() {
        let violation = Violation { suppressed: 396, ..sample() };
        let value = serde_json::to_value(ViolationJson::new(&violation, None)).unwrap();
        assert_eq!(value["suppressed"], 396);
        let back: ViolationJson = serde_json::from_str(&value.to_string()).unwrap();
        assert_eq!(back.to_violation().unwrap(), violation);
        let plain = serde_json::to_value(ViolationJson::new(&sample(), None)).unwrap();
        assert!(plain.get("suppressed").is_none(), "no key without a count");
    }

    #[test]
    fn signed_evidence_verifies_after_a_json_round_trip() {
        // Scores are f64s written as JSON numbers: parsing must give back the
        // exact bits, or `betrace verify` would reject honest violations.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut violation = crate::violation::tests::sample_with_novelty();
            violation.novelty[0].evidence.score = (x >> 11) as f64 / (1u64 << 53) as f64 * 1.2;
            violation.novelty[0].evidence.p_value = 1.0 / ((x % 4093) + 1) as f64;
            let signature = violation.sign(b"k");
            let line = serde_json::to_string(&ViolationJson::new(&violation, Some(signature.clone()))).unwrap();
            let back: ViolationJson = serde_json::from_str(&line).unwrap();
            assert!(back.to_violation().unwrap().verify(b"k", &signature), "{line}");
        }
    }

    #[test]
    fn times_read_from_strings_or_numbers() {
        let mut value = serde_json::to_value(ViolationJson::new(&sample(), None)).unwrap();
        value["time_unix_nano"] = serde_json::json!(42);
        assert_eq!(serde_json::from_value::<ViolationJson>(value.clone()).unwrap().time_unix_nano, 42);
        value["time_unix_nano"] = serde_json::json!("soon");
        assert!(serde_json::from_value::<ViolationJson>(value).is_err());
    }

    #[test]
    fn bad_fields_are_named() {
        let mut json = ViolationJson::new(&sample(), None);
        json.severity = "urgent".into();
        assert_eq!(json.to_violation().unwrap_err().field, "severity");
        let mut json = ViolationJson::new(&sample(), None);
        json.witnesses.push("xyz".into());
        let error = json.to_violation().unwrap_err();
        assert_eq!(error.field, "witnesses");
        assert!(error.to_string().contains("16 hex digits"), "{error}");
        let mut json = ViolationJson::new(&sample(), None);
        json.trace_id.pop();
        assert_eq!(json.to_violation().unwrap_err().field, "trace_id");
    }
}
