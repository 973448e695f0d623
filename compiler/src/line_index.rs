//! Byte offsets to line and column, in characters (for people) and in UTF-16
//! code units (what editors speak over LSP), and back.

/// The starts of every line of a text, for `O(log n)` position lookups.
#[derive(Clone, Debug)]
pub struct LineIndex {
    line_starts: Vec<u32>,
}

/// A zero-based line and column.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LineCol {
    pub line: u32,
    pub col: u32,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut line_starts = vec![0];
        line_starts.extend(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i as u32 + 1));
        LineIndex { line_starts }
    }

    /// The line holding byte `offset` and the byte offset of that line's start.
    fn line_of(&self, offset: u32) -> (u32, u32) {
        let line = self.line_starts.partition_point(|&start| start <= offset).saturating_sub(1);
        (line as u32, self.line_starts[line])
    }

    /// Line and column in Unicode scalar values.
    pub fn line_col(&self, text: &str, offset: u32) -> LineCol {
        let offset = clamp_to_char_boundary(text, offset);
        let (line, start) = self.line_of(offset);
        LineCol { line, col: text[start as usize..offset as usize].chars().count() as u32 }
    }

    /// Line and column in UTF-16 code units (LSP's default encoding).
    pub fn line_col_utf16(&self, text: &str, offset: u32) -> LineCol {
        let offset = clamp_to_char_boundary(text, offset);
        let (line, start) = self.line_of(offset);
        LineCol { line, col: text[start as usize..offset as usize].encode_utf16().count() as u32 }
    }

    /// The byte offset of a UTF-16 line and column; positions past the end of a
    /// line or of the text are clamped to it, as LSP asks.
    pub fn offset_utf16(&self, text: &str, position: LineCol) -> u32 {
        let Some(&start) = self.line_starts.get(position.line as usize) else { return text.len() as u32 };
        let end = self.line_starts.get(position.line as usize + 1).map_or(text.len() as u32, |&next| next - 1);
        let line = &text[start as usize..end as usize];
        let mut units = 0;
        for (byte, ch) in line.char_indices() {
            if units >= position.col {
                return start + byte as u32;
            }
            units += ch.len_utf16() as u32;
        }
        end
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }
}

fn clamp_to_char_boundary(text: &str, offset: u32) -> u32 {
    let mut offset = (offset as usize).min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_and_utf16_units() {
        let text = "ab\né😀x\n";
        let index = LineIndex::new(text);
        let x = text.find('x').unwrap() as u32;
        assert_eq!(index.line_col(text, x), LineCol { line: 1, col: 2 });
        assert_eq!(index.line_col_utf16(text, x), LineCol { line: 1, col: 3 });
        assert_eq!(index.offset_utf16(text, LineCol { line: 1, col: 3 }), x);
        assert_eq!(index.offset_utf16(text, LineCol { line: 1, col: 99 }), text.len() as u32 - 1);
        assert_eq!(index.offset_utf16(text, LineCol { line: 9, col: 0 }), text.len() as u32);
    }
}
