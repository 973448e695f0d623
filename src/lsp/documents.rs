//! The open documents: their text, version and line index, edits applied as
//! the editor sends them, and positions converted between LSP's UTF-16
//! line/column pairs and the compiler's byte offsets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use betrace_compiler::line_index::{LineCol, LineIndex};
use betrace_grammar::ast::Span;
use lsp_types::{Position, Range, TextDocumentContentChangeEvent};

/// One open document.
#[derive(Debug)]
pub struct Document {
    pub text: String,
    pub version: i32,
    pub index: LineIndex,
    /// The file behind a `file:` URI, if any: its directory is its pack.
    pub path: Option<PathBuf>,
}

impl Document {
    pub fn new(uri: &str, text: String, version: i32) -> Document {
        let index = LineIndex::new(&text);
        Document { text, version, index, path: file_path(uri) }
    }

    /// The byte offset of an LSP position. Positions past the end of a line or
    /// of the text, and columns inside a character (half of a surrogate pair),
    /// are clamped to the nearest character boundary after them, never before
    /// a line's `\r\n`.
    pub fn offset(&self, position: Position) -> usize {
        let at = LineCol { line: position.line, col: position.character };
        let mut offset = self.index.offset_utf16(&self.text, at) as usize;
        if offset > 0 && self.text[..offset].ends_with('\r') && self.text[offset..].starts_with('\n') {
            offset -= 1;
        }
        offset
    }

    pub fn position(&self, offset: u32) -> Position {
        let at = self.index.line_col_utf16(&self.text, offset);
        Position { line: at.line, character: at.col }
    }

    pub fn range(&self, span: Span) -> Range {
        Range { start: self.position(span.start), end: self.position(span.end) }
    }

    /// Applies one change: a replacement of a range, or of the whole text.
    /// A range whose ends are swapped is read in order.
    pub fn apply(&mut self, change: TextDocumentContentChangeEvent) {
        match change.range {
            Some(range) => {
                let (a, b) = (self.offset(range.start), self.offset(range.end));
                let (start, end) = (a.min(b), a.max(b));
                self.text.replace_range(start..end, &change.text);
            }
            None => self.text = change.text,
        }
        self.index = LineIndex::new(&self.text);
    }
}

/// Open documents by URI.
#[derive(Debug, Default)]
pub struct Store {
    pub documents: BTreeMap<String, Document>,
}

impl Store {
    pub fn get(&self, uri: &str) -> Option<&Document> {
        self.documents.get(uri)
    }

    /// The open document for a path on disk.
    pub fn by_path(&self, path: &Path) -> Option<(&String, &Document)> {
        self.documents.iter().find(|(_, doc)| doc.path.as_deref() == Some(path))
    }
}

/// The path of a `file:` URI (`file:///a/b%20c.btr` is `/a/b c.btr`).
pub fn file_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let path = match rest.find('/') {
        Some(0) => rest,
        Some(slash) if &rest[..slash] == "localhost" => &rest[slash..],
        _ => return None,
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).ok().map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(range: Option<((u32, u32), (u32, u32))>, text: &str) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: range.map(|((l1, c1), (l2, c2))| Range { start: Position::new(l1, c1), end: Position::new(l2, c2) }),
            range_length: None,
            text: text.to_string(),
        }
    }

    #[test]
    fn edits_use_utf16_columns() {
        let mut doc = Document::new("file:///x.btr", "a😀b\né\n".to_string(), 1);
        // `b` is at UTF-16 column 3 (😀 is two units).
        doc.apply(change(Some(((0, 3), (0, 4))), "B"));
        assert_eq!(doc.text, "a😀B\né\n");
        // Column 2 falls inside 😀: it is read as the boundary after it.
        doc.apply(change(Some(((0, 2), (0, 2))), "!"));
        assert_eq!(doc.text, "a😀!B\né\n");
        assert_eq!(doc.position(doc.text.find('!').unwrap() as u32), Position::new(0, 3));
        // Past the end of a line, of the text, and swapped ends.
        doc.apply(change(Some(((1, 40), (1, 99))), "x"));
        assert_eq!(doc.text, "a😀!B\néx\n");
        doc.apply(change(Some(((99, 0), (99, 5))), "end"));
        assert_eq!(doc.text, "a😀!B\néx\nend");
        doc.apply(change(Some(((0, 1), (0, 0))), ""));
        assert_eq!(doc.text, "😀!B\néx\nend");
        doc.apply(change(None, "new"));
        assert_eq!(doc.text, "new");
    }

    #[test]
    fn crlf_line_ends_stay_whole() {
        let mut doc = Document::new("untitled:1", "ab\r\ncd".to_string(), 1);
        doc.apply(change(Some(((0, 9), (0, 9))), "!"));
        assert_eq!(doc.text, "ab!\r\ncd");
    }

    #[test]
    fn file_uris_become_paths() {
        assert_eq!(file_path("file:///a/b%20c.btr"), Some(PathBuf::from("/a/b c.btr")));
        assert_eq!(file_path("file://localhost/a.btr"), Some(PathBuf::from("/a.btr")));
        assert_eq!(file_path("untitled:Untitled-1"), None);
        assert_eq!(file_path("file://host/a.btr"), None);
        assert_eq!(file_path("file:///%E2%9C%93%zz"), Some(PathBuf::from("/✓%zz")));
    }
}
