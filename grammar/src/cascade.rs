//! Cascade suppression: after a syntax error, the errors that follow within a
//! few tokens are usually echoes of the first (recovery resumed at a bad place,
//! or a stray character left a hole), so they are dropped — yacc's rule of
//! "no new message until three tokens were read cleanly".
//!
//! Lexer errors are always kept and count as errors for the rule, so a stray
//! `#` gives one error, not one per confused token after it. At least one error
//! of every cascade is kept, so a file with errors never looks clean. A new
//! top-level item (`rule`, `let`, `attributes`) starts afresh.

use crate::lexer::Spanned;
use crate::parser::{SyntaxError, SyntaxErrorKind};

/// Tokens that must be read without error before a new error is reported.
const TOKENS_TO_RECOVER: usize = 3;

pub(crate) struct Cascades {
    /// Start offset of every token, in order.
    starts: Vec<usize>,
    /// Start offsets of the tokens error recovery skipped (they were not read cleanly).
    skipped: Vec<usize>,
    /// Start offsets of the top-level items, in order.
    items: Vec<usize>,
}

impl Cascades {
    pub(crate) fn new(tokens: &[Spanned<'_>]) -> Cascades {
        Cascades { starts: tokens.iter().map(|(start, _, _)| *start).collect(), skipped: Vec::new(), items: Vec::new() }
    }

    /// Records that a top-level item starts at `offset` (in increasing order).
    pub(crate) fn item_starts(&mut self, offset: usize) {
        self.items.push(offset);
    }

    /// Records tokens that error recovery dropped.
    pub(crate) fn skipped<T>(&mut self, dropped: &[(usize, T, usize)]) {
        self.skipped.extend(dropped.iter().map(|(start, _, _)| *start));
    }

    /// Drops the echoes from `errors` (sorted by position).
    pub(crate) fn suppress(mut self, errors: Vec<SyntaxError>) -> Vec<SyntaxError> {
        self.skipped.sort_unstable();
        self.skipped.dedup();
        // Index of the token from which clean reading counts, after the last error.
        let mut resume: Option<usize> = None;
        let mut item = 0;
        let mut kept = Vec::with_capacity(errors.len());
        for error in errors {
            let at = self.starts.partition_point(|&start| start < error.span.start as usize);
            let error_item = self.items.partition_point(|&start| start <= error.span.start as usize);
            if error_item != item {
                (item, resume) = (error_item, None);
            }
            match error.kind {
                SyntaxErrorKind::TooDeep { .. } => kept.push(error),
                SyntaxErrorKind::Lex(_) => {
                    resume = Some(resume.map_or(at, |r| r.max(at)));
                    kept.push(error);
                }
                _ => {
                    let echo = resume.is_some_and(|r| at < r || self.read_cleanly(r, at) < TOKENS_TO_RECOVER);
                    // The offending token counts as read unless recovery skipped it.
                    resume = Some(resume.map_or(at, |r| r.max(at)));
                    if !echo {
                        kept.push(error);
                    }
                }
            }
        }
        kept
    }

    /// Tokens `from..to` (by index) that recovery did not skip.
    fn read_cleanly(&self, from: usize, to: usize) -> usize {
        let offset = |index: usize| self.starts.get(index).copied().unwrap_or(usize::MAX);
        let (low, high) = (offset(from), offset(to));
        let skipped = self.skipped.partition_point(|&s| s < high) - self.skipped.partition_point(|&s| s < low);
        (to - from).saturating_sub(skipped)
    }
}
