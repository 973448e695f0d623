//! Signing violations, so compliance evidence can be checked for tampering:
//! HMAC-SHA256 over a canonical encoding of every field a violation shows.
//!
//! The canonical encoding ([`Violation::canonical_bytes`]) is fixed: the
//! domain tag `betrace.violation.v1`, then each field in this order, each
//! written as a u32 big-endian byte length followed by its bytes:
//!
//! | # | field | bytes |
//! |---|-------|-------|
//! | 1 | id | the 32 hex digits, ASCII |
//! | 2 | trace id | 16 raw bytes |
//! | 3 | bound span | 8 raw bytes, or none (length 0) |
//! | 4 | parent span | 8 raw bytes, or none (length 0) |
//! | 5 | rule id | UTF-8 (`pack/rule`) |
//! | 6 | rule name | UTF-8 |
//! | 7 | severity | its word (`high`) |
//! | 8 | message | UTF-8 |
//! | 9 | clause | UTF-8, as written |
//! | 10 | clause kind | `always` or `never` |
//! | 11 | tags | a u32 big-endian count, then each tag length-prefixed |
//! | 12 | witnesses | a u32 big-endian count, then each span id (8 bytes) length-prefixed |
//! | 13 | pack name | UTF-8 |
//! | 14 | pack version | UTF-8 |
//! | 15 | time | i64 big-endian, nanoseconds since the Unix epoch |
//! | 16 | novelty evidence | only when the violation carries some, or field 17 follows (below) |
//! | 17 | suppressed | only when not 0: u64 big-endian, length-prefixed |
//!
//! Field 16 is a u32 big-endian count, then each evidence entry
//! length-prefixed; an entry is these fields, each length-prefixed: the call
//! (UTF-8), the key (UTF-8), the score and the p-value (IEEE-754 f64 bits,
//! big-endian), the recent scores, baseline samples and baseline bytes (u64
//! big-endian), tokenized (one byte, 0 or 1), and the worst segments (a u32
//! count, then each segment length-prefixed: its offset (u64), text (UTF-8)
//! and cost (u64), each length-prefixed).
//!
//! The evidence is signed because it is what the violation claims as its
//! cause: an auditor reading `betrace.novelty.score` must be able to trust
//! it as much as the message. A violation without evidence has no field 16,
//! so its encoding, and every signature made before novelty existed, is
//! unchanged; that is why the domain tag stays `v1`.
//!
//! Field 17 is the count of further violations of the rule in the trace
//! that the server did not report (`assembly.max_violations_per_rule`): it
//! says how much the report leaves out, so it is signed too. When it is
//! there, field 16 is always written before it (a count of 0 when there is
//! no evidence), so the fields after 15 still read one way only; a violation
//! without a count encodes as it did before counts existed.
//!
//! Length prefixes make the encoding injective: no two different violations
//! encode alike, whatever their strings contain. A signature is the lower-case
//! hex of the 32-byte HMAC.

use betrace_compiler::bytecode::CheckKind;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{NoveltyEvidence, Violation, hex};

type HmacSha256 = Hmac<Sha256>;

/// Marks the encoding's version; a new layout gets a new tag.
pub const DOMAIN_TAG: &[u8] = b"betrace.violation.v1";

/// The word a clause kind is written as.
pub fn clause_kind_word(kind: CheckKind) -> &'static str {
    match kind {
        CheckKind::Always => "always",
        CheckKind::Never => "never",
    }
}

impl Violation {
    /// The canonical encoding signatures are computed over (see the module docs).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Encoder(Vec::with_capacity(256 + self.message.len() + self.clause.len()));
        out.field(DOMAIN_TAG);
        out.field(self.id.as_bytes());
        out.field(&self.trace_id);
        out.field(self.bound_span.as_ref().map_or(&[][..], |s| &s[..]));
        out.field(self.parent_span.as_ref().map_or(&[][..], |s| &s[..]));
        out.field(self.rule_id.as_bytes());
        out.field(self.rule_name.as_bytes());
        out.field(self.severity.word().as_bytes());
        out.field(self.message.as_bytes());
        out.field(self.clause.as_bytes());
        out.field(clause_kind_word(self.clause_kind).as_bytes());
        out.list(self.tags.iter().map(String::as_bytes));
        out.list(self.witnesses.iter().map(|w| &w[..]));
        out.field(self.pack.name.as_bytes());
        out.field(self.pack.version.as_bytes());
        out.field(&self.time.to_be_bytes());
        if !self.novelty.is_empty() || self.suppressed > 0 {
            let entries: Vec<Vec<u8>> = self.novelty.iter().map(evidence_bytes).collect();
            out.list(entries.iter().map(Vec::as_slice));
        }
        if self.suppressed > 0 {
            out.field(&u64::from(self.suppressed).to_be_bytes());
        }
        out.0
    }

    /// HMAC-SHA256 of [`canonical_bytes`](Self::canonical_bytes) under `key`, as lower-case hex.
    pub fn sign(&self, key: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(&self.canonical_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Does `signature` (hex, either case) sign this violation under `key`?
    /// Compared in constant time.
    pub fn verify(&self, key: &[u8], signature: &str) -> bool {
        let Some(expected) = unhex(signature) else { return false };
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(&self.canonical_bytes());
        mac.verify_slice(&expected).is_ok()
    }
}

/// Bytes from hex digits (either case); `None` if any pair is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.chunks_exact(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

/// One evidence entry of field 16 (see the module docs).
fn evidence_bytes(entry: &NoveltyEvidence) -> Vec<u8> {
    let evidence = &entry.evidence;
    let count = |n: usize| (n as u64).to_be_bytes();
    let mut out = Encoder(Vec::new());
    out.field(entry.call.as_bytes());
    out.field(entry.key.as_bytes());
    out.field(&evidence.score.to_bits().to_be_bytes());
    out.field(&evidence.p_value.to_bits().to_be_bytes());
    out.field(&count(evidence.recent_scores));
    out.field(&count(evidence.baseline_samples));
    out.field(&count(evidence.baseline_bytes));
    out.field(&[u8::from(evidence.tokenized)]);
    let segments: Vec<Vec<u8>> = evidence
        .worst
        .iter()
        .map(|segment| {
            let mut bytes = Encoder(Vec::new());
            bytes.field(&count(segment.offset));
            bytes.field(segment.text.as_bytes());
            bytes.field(&count(segment.cost));
            bytes.0
        })
        .collect();
    out.list(segments.iter().map(Vec::as_slice));
    out.0
}

struct Encoder(Vec<u8>);

impl Encoder {
    fn field(&mut self, bytes: &[u8]) {
        let length = u32::try_from(bytes.len()).expect("a violation field is under 4 GiB");
        self.0.extend_from_slice(&length.to_be_bytes());
        self.0.extend_from_slice(bytes);
    }

    fn list<'a>(&mut self, items: impl ExactSizeIterator<Item = &'a [u8]>) {
        let count = u32::try_from(items.len()).expect("fewer than 2^32 items");
        self.0.extend_from_slice(&count.to_be_bytes());
        for item in items {
            self.field(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::violation::tests::sample;

    #[test]
    fn the_encoding_is_length_prefixed_in_a_fixed_order() {
        let bytes = sample().canonical_bytes();
        assert_eq!(&bytes[..4], &(DOMAIN_TAG.len() as u32).to_be_bytes());
        assert_eq!(&bytes[4..4 + DOMAIN_TAG.len()], DOMAIN_TAG);
        let id_at = 4 + DOMAIN_TAG.len();
        assert_eq!(&bytes[id_at..id_at + 4], &32u32.to_be_bytes());
        assert_eq!(&bytes[id_at + 4..id_at + 36], sample().id.as_bytes());
        assert!(bytes.ends_with(&sample().time.to_be_bytes()));
    }

    #[test]
    fn moving_text_between_fields_changes_the_encoding() {
        let mut a = sample();
        a.message = "ab".into();
        a.clause = "c".into();
        let mut b = sample();
        b.message = "a".into();
        b.clause = "bc".into();
        assert_ne!(a.canonical_bytes(), b.canonical_bytes());
        let mut c = sample();
        c.tags = vec!["a,b".into()];
        let mut d = sample();
        d.tags = vec!["a".into(), "b".into()];
        assert_ne!(c.canonical_bytes(), d.canonical_bytes());
    }

    #[test]
    fn signatures_verify_only_with_the_key_and_the_same_fields() {
        let violation = sample();
        let signature = violation.sign(b"secret");
        assert_eq!(signature.len(), 64);
        assert!(signature.chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert!(violation.verify(b"secret", &signature));
        assert!(violation.verify(b"secret", &signature.to_uppercase()));
        assert!(!violation.verify(b"other", &signature));
        assert!(!violation.verify(b"secret", "zz"));
        assert!(!violation.verify(b"secret", &signature[..62]));
        let tampered: [fn(&mut Violation); 8] = [
            |v| v.message.push('!'),
            |v| v.severity = betrace_compiler::hir::Severity::Low,
            |v| v.witnesses.pop().map(drop).unwrap_or(()),
            |v| v.bound_span = None,
            |v| v.time += 1,
            |v| v.pack.version = "9.9.9".into(),
            |v| v.tags.push("extra".into()),
            |v| v.clause_kind = CheckKind::Always,
        ];
        for (index, tamper) in tampered.iter().enumerate() {
            let mut changed = violation.clone();
            tamper(&mut changed);
            assert!(!changed.verify(b"secret", &signature), "change {index} went unnoticed");
        }
    }

    #[test]
    fn a_known_signature_stays_stable() {
        // The encoding is a published format: changing it breaks every stored
        // signature. If this fails, the layout changed: give it a new DOMAIN_TAG.
        assert_eq!(sample().sign(b"key"), KNOWN_SIGNATURE);
    }

    /// Computed independently of this code (Python's `hmac` over the encoding
    /// in the module docs, built by hand).
    const KNOWN_SIGNATURE: &str = "bd25c8ba95c5fed91830d6815cd53be3c2b3e868388ace12341b3f65505111ed";

    #[test]
    fn novelty_evidence_is_signed_and_plain_violations_encode_as_before() {
        let plain = sample();
        let with = crate::violation::tests::sample_with_novelty();
        assert!(with.canonical_bytes().starts_with(&plain.canonical_bytes()), "field 16 is appended");
        assert_eq!(with.sign(b"key"), KNOWN_NOVELTY_SIGNATURE);
        let signature = with.sign(b"secret");
        let tampered: [fn(&mut Violation); 5] = [
            |v| v.novelty[0].evidence.score = 0.9,
            |v| v.novelty[0].evidence.p_value *= 2.0,
            |v| v.novelty[0].evidence.worst[0].text.push('!'),
            |v| v.novelty[0].key.clear(),
            |v| v.novelty.clear(),
        ];
        for (index, tamper) in tampered.iter().enumerate() {
            let mut changed = with.clone();
            tamper(&mut changed);
            assert!(!changed.verify(b"secret", &signature), "change {index} went unnoticed");
        }
    }

    /// [`KNOWN_SIGNATURE`]'s violation with `sample_with_novelty`'s evidence,
    /// computed the same way.
    const KNOWN_NOVELTY_SIGNATURE: &str = "8035c2b6c75dc5ba5a8a1af862b40ac3e2cd485e834b4b7642d838006d847aab";

    #[test]
    fn a_suppressed_count_is_field_17_after_a_field_16_and_is_signed() {
        let plain = sample();
        let counted = Violation { suppressed: 396, ..sample() };
        let mut expected = plain.canonical_bytes();
        expected.extend_from_slice(&0u32.to_be_bytes()); // field 16: no evidence
        expected.extend_from_slice(&8u32.to_be_bytes());
        expected.extend_from_slice(&396u64.to_be_bytes());
        assert_eq!(counted.canonical_bytes(), expected);
        let with_evidence = Violation { suppressed: 396, ..crate::violation::tests::sample_with_novelty() };
        let evidence = crate::violation::tests::sample_with_novelty().canonical_bytes();
        assert_eq!(with_evidence.canonical_bytes()[..evidence.len()], evidence[..]);
        assert_eq!(with_evidence.canonical_bytes().len(), evidence.len() + 12);
        let signature = counted.sign(b"secret");
        assert!(!plain.verify(b"secret", &signature), "dropping the count goes unnoticed");
        assert!(!Violation { suppressed: 395, ..sample() }.verify(b"secret", &signature));
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(unhex("00ff0A"), Some(vec![0, 255, 10]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("0g"), None);
    }
}
