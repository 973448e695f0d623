//! The evidence a novelty score carries into a violation: the score, the
//! baseline's size, an empirical p-value against the recent scores at the call
//! site, and the parts of the value that compressed worst against the
//! baseline. Computed only when asked (a violation is being reported), so
//! scoring itself stays O(|value|).

use std::ops::Range;

use serde::{Deserialize, Serialize};
use zstd::zstd_safe::CDict;

use super::scorer::Compressor;
use crate::Value;

/// The longest segment of a value that the evidence scores on its own.
pub const SEGMENT_BYTES: usize = 64;

/// Why a value scored as it did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The novelty score: `C(value | baseline) / C(value)`.
    pub score: f64,
    /// The share of the recent scores at this call site (this one included)
    /// that were at least as high: small means rare.
    pub p_value: f64,
    /// How many recent scores the p-value was computed over.
    pub recent_scores: usize,
    /// Samples and sample bytes in the key's baseline.
    pub baseline_samples: usize,
    pub baseline_bytes: usize,
    /// Whether the value was tokenized before scoring (segments show tokens).
    pub tokenized: bool,
    /// The segments that cost the most compressed bytes against the baseline,
    /// worst first.
    pub worst: Vec<Segment>,
}

/// A part of the scored value: a line, or a piece of at most
/// [`SEGMENT_BYTES`] of a long line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Byte offset in the scored (possibly tokenized) value.
    pub offset: usize,
    pub text: String,
    /// Compressed bytes this segment needs given the baseline.
    pub cost: usize,
}

impl Evidence {
    /// The evidence as violation attributes, all named `betrace.novelty.*`.
    pub fn attributes(&self) -> Vec<(&'static str, Value)> {
        let int = |n: usize| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        vec![
            ("betrace.novelty.score", Value::Float(self.score)),
            ("betrace.novelty.p_value", Value::Float(self.p_value)),
            ("betrace.novelty.recent_scores", int(self.recent_scores)),
            ("betrace.novelty.baseline.samples", int(self.baseline_samples)),
            ("betrace.novelty.baseline.bytes", int(self.baseline_bytes)),
            ("betrace.novelty.tokenized", Value::Bool(self.tokenized)),
            ("betrace.novelty.worst", Value::list(self.worst.iter().map(|s| Value::str(&s.text)))),
        ]
    }

    /// One line for people: `novelty 0.82 (p=0.004 of 1024 recent) against 256 samples (30.1 KB); worst: "…"`.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "novelty {:.2} (p={:.3} of {} recent) against {} samples ({:.1} KB)",
            self.score,
            self.p_value,
            self.recent_scores,
            self.baseline_samples,
            self.baseline_bytes as f64 / 1000.0
        );
        if let Some(worst) = self.worst.first() {
            text.push_str(&format!("; worst: {:?}", worst.text));
        }
        text
    }
}

/// The most recent scores at one call site, for empirical p-values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreWindow {
    scores: Vec<f64>,
    next: usize,
    capacity: usize,
}

impl ScoreWindow {
    pub fn new(capacity: usize) -> ScoreWindow {
        ScoreWindow { scores: Vec::new(), next: 0, capacity: capacity.max(1) }
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn push(&mut self, score: f64) {
        if self.scores.len() < self.capacity {
            self.scores.push(score);
        } else {
            self.scores[self.next] = score;
            self.next = (self.next + 1) % self.capacity;
        }
    }

    /// The share of the window's scores that are at least `score` (1.0 for an
    /// empty window), and the window's size. O(window), paid only for evidence.
    pub fn p_value(&self, score: f64) -> (f64, usize) {
        if self.scores.is_empty() {
            return (1.0, 0);
        }
        let at_least = self.scores.iter().filter(|&&s| s >= score).count().max(1);
        (at_least as f64 / self.scores.len() as f64, self.scores.len())
    }

    /// The scores, oldest first.
    pub fn in_order(&self) -> Vec<f64> {
        let (newer, older) = self.scores.split_at(self.next.min(self.scores.len()));
        older.iter().chain(newer).copied().collect()
    }

    /// A window holding `scores` (oldest first), keeping the last `capacity`.
    pub fn from_scores(scores: Vec<f64>, capacity: usize) -> ScoreWindow {
        let mut window = ScoreWindow::new(capacity);
        for score in scores {
            window.push(score);
        }
        window
    }
}

/// The `k` segments of `text` that cost the most given `dict`, worst first
/// (ties: the earlier segment first).
pub fn worst_segments(text: &[u8], dict: &CDict<'_>, compressor: &mut Compressor, k: usize) -> Vec<Segment> {
    let mut scored: Vec<(usize, Range<usize>)> =
        segments(text).into_iter().map(|range| (compressor.size_given(&text[range.clone()], dict), range)).collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.start.cmp(&b.1.start)));
    scored
        .into_iter()
        .take(k)
        .map(|(cost, range)| Segment {
            offset: range.start,
            text: String::from_utf8_lossy(&text[range]).into_owned(),
            cost,
        })
        .collect()
}

/// The lines of `text` without their indentation and line ends (blank lines
/// left out), long lines cut into pieces of at most [`SEGMENT_BYTES`], at a
/// space when one is near the end, never inside a UTF-8 character.
pub fn segments(text: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut line_start = 0;
    while line_start < text.len() {
        let line_end = text[line_start..].iter().position(|&b| b == b'\n').map_or(text.len(), |i| line_start + i);
        let mut start = line_start;
        let mut end = line_end;
        while start < end && text[start].is_ascii_whitespace() {
            start += 1;
        }
        while end > start && text[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        while start < end {
            let mut cut = end.min(start + SEGMENT_BYTES);
            if cut < end {
                if let Some(space) = text[start + SEGMENT_BYTES / 2..cut].iter().rposition(|&b| b == b' ') {
                    cut = start + SEGMENT_BYTES / 2 + space + 1;
                }
                while cut > start + 1 && text[cut] & 0xC0 == 0x80 {
                    cut -= 1;
                }
            }
            out.push(start..cut);
            start = cut;
        }
        line_start = line_end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_lines_and_bounded_pieces() {
        let text = b"  svc-a GET /orders\n\n    svc-b db.query\n";
        let parts: Vec<&[u8]> = segments(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(parts, vec![&b"svc-a GET /orders"[..], b"svc-b db.query"]);
        let long = "word ".repeat(100);
        let ranges = segments(long.as_bytes());
        assert!(ranges.iter().all(|r| r.len() <= SEGMENT_BYTES && !r.is_empty()));
        assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), long.trim_end().len());
        let accents = "é".repeat(100);
        for range in segments(accents.as_bytes()) {
            assert!(std::str::from_utf8(&accents.as_bytes()[range]).is_ok());
        }
    }

    #[test]
    fn p_values_count_the_scores_at_least_as_high() {
        let mut window = ScoreWindow::new(4);
        assert_eq!(window.p_value(0.5), (1.0, 0));
        for score in [0.1, 0.2, 0.3, 0.9, 0.4] {
            window.push(score);
        }
        assert_eq!(window.in_order(), vec![0.2, 0.3, 0.9, 0.4]);
        assert_eq!(window.p_value(0.9), (0.25, 4));
        assert_eq!(window.p_value(0.25), (0.75, 4));
        assert_eq!(window.p_value(5.0), (0.25, 4), "never below one in the window");
        let rebuilt = ScoreWindow::from_scores(window.in_order(), 4);
        assert_eq!(rebuilt.in_order(), window.in_order());
        assert_eq!(rebuilt.p_value(0.3), window.p_value(0.3));
    }

    #[test]
    fn worst_segments_point_at_the_new_line() {
        let base = "api GET /orders\n db SELECT orders\n cache GET order\n".repeat(20);
        let dict = CDict::create(base.as_bytes(), 1);
        let value = b"api GET /orders\n db SELECT orders\n payments.charge card\n cache GET order\n";
        let worst = worst_segments(value, &dict, &mut Compressor::new(), 2);
        assert_eq!(worst[0].text, "payments.charge card");
        assert!(worst[0].cost > worst[1].cost);
        let evidence = Evidence {
            score: 0.4,
            p_value: 0.01,
            recent_scores: 100,
            baseline_samples: 20,
            baseline_bytes: base.len(),
            tokenized: true,
            worst,
        };
        assert!(evidence.summary().contains("worst: \"payments.charge card\""));
        let attrs = evidence.attributes();
        assert_eq!(attrs[0], ("betrace.novelty.score", Value::Float(0.4)));
        assert!(attrs.iter().all(|(name, _)| name.starts_with("betrace.novelty.")));
    }
}
