//! A tiny reader for the text of builtin examples (tests only): a call of a
//! builtin with literal arguments, and literal results, written as the language
//! writes them — strings with escapes, ints, floats, durations (`250ms`, `1.5s`,
//! `1h30m`), `true`/`false`/`nil`, status and kind words, and lists.

use crate::value::{SpanKind, Status, Value};

/// Reads `name(arg, …)` into the builtin's name and its argument values.
pub fn parse_call(text: &str) -> Result<(&str, Vec<Value>), String> {
    let mut reader = Reader { text, pos: 0 };
    let name = reader.word();
    if name.is_empty() {
        return Err(format!("expected a function name in `{text}`"));
    }
    reader.expect('(')?;
    let args = reader.sequence(')')?;
    reader.end()?;
    Ok((name, args))
}

/// Reads one literal.
pub fn parse_literal(text: &str) -> Result<Value, String> {
    let mut reader = Reader { text, pos: 0 };
    let value = reader.value()?;
    reader.end()?;
    Ok(value)
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_space();
        self.rest().chars().next()
    }

    fn expect(&mut self, ch: char) -> Result<(), String> {
        if self.peek() == Some(ch) {
            self.pos += ch.len_utf8();
            Ok(())
        } else {
            Err(format!("expected `{ch}` at {} in `{}`", self.pos, self.text))
        }
    }

    fn end(&mut self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(format!("trailing text `{}` in `{}`", self.rest(), self.text)),
        }
    }

    /// A run of identifier characters (possibly empty).
    fn word(&mut self) -> &'a str {
        self.skip_space();
        let rest = self.rest();
        let len = rest.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// Comma-separated values up to `close` (a trailing comma is allowed).
    fn sequence(&mut self, close: char) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            if self.peek() == Some(',') {
                self.pos += 1;
            } else {
                self.expect(close)?;
                return Ok(items);
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some('"') => {
                self.pos += 1;
                self.string()
            }
            Some('`') => {
                self.pos += 1;
                let end = self.rest().find('`').ok_or("unterminated raw string")?;
                let value = Value::str(&self.rest()[..end]);
                self.pos += end + 1;
                Ok(value)
            }
            Some('[') => {
                self.pos += 1;
                Ok(Value::list(self.sequence(']')?))
            }
            Some('-') => {
                self.pos += 1;
                match self.value()? {
                    Value::Int(i) => Ok(Value::Int(-i)),
                    Value::Float(x) => Ok(Value::Float(-x)),
                    Value::Duration(ns) => Ok(Value::Duration(-ns)),
                    other => Err(format!("cannot negate {other:?}")),
                }
            }
            Some(ch) if ch.is_ascii_digit() => self.number(),
            Some(_) => {
                let word = self.word();
                match word {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "nil" => Ok(Value::Nil),
                    _ => Status::from_word(word)
                        .map(Value::Status)
                        .or_else(|| SpanKind::from_word(word).map(Value::Kind))
                        .ok_or_else(|| format!("unknown word `{word}` in `{}`", self.text)),
                }
            }
            None => Err(format!("expected a value at the end of `{}`", self.text)),
        }
    }

    /// The body of a `"…"` string, after the opening quote.
    fn string(&mut self) -> Result<Value, String> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((offset, ch)) = chars.next() {
            match ch {
                '"' => {
                    self.pos += offset + 1;
                    return Ok(Value::str(&out));
                }
                '\\' => {
                    let (_, escaped) = chars.next().ok_or("unterminated escape")?;
                    out.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        '\\' | '"' | '\'' | '{' | '}' => escaped,
                        'u' => {
                            let hex: String = chars.by_ref().map(|(_, c)| c).take_while(|&c| c != '}').collect();
                            let hex = hex.strip_prefix('{').ok_or("expected `{` after `\\u`")?;
                            let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            char::from_u32(code).ok_or("invalid code point")?
                        }
                        other => return Err(format!("unknown escape `\\{other}`")),
                    });
                }
                ch => out.push(ch),
            }
        }
        Err(format!("unterminated string in `{}`", self.text))
    }

    /// An int, a float, or a duration (possibly compound, `1h30m`).
    fn number(&mut self) -> Result<Value, String> {
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|&(i, ch)| {
                let exponent_sign = (ch == '+' || ch == '-') && rest[..i].ends_with(['e', 'E']);
                !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '.' || ch == 'µ' || exponent_sign)
            })
            .map_or(rest.len(), |(i, _)| i);
        let token = rest[..len].replace('_', "");
        self.pos += len;
        if token.bytes().all(|b| b.is_ascii_digit()) {
            return token.parse().map(Value::Int).map_err(|e| format!("`{token}`: {e}"));
        }
        if let Some(ns) = parse_duration(&token) {
            return Ok(Value::Duration(ns));
        }
        token.parse().map(Value::Float).map_err(|_| format!("bad number `{token}`"))
    }
}

/// `250ms`, `1.5s`, `1h30m` in nanoseconds.
fn parse_duration(text: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))?;
        let (number, after) = rest.split_at(number_len);
        let (unit_name, unit) =
            UNITS.iter().filter(|(name, _)| after.starts_with(name)).max_by_key(|(name, _)| name.len())?;
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let mut ns = whole.parse::<i64>().ok()?.checked_mul(*unit)?;
        let mut scale = *unit;
        for digit in frac.bytes() {
            scale /= 10;
            ns = ns.checked_add(i64::from(digit - b'0') * scale)?;
        }
        total = total.checked_add(ns)?;
        rest = &after[unit_name.len()..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_calls_and_literals() {
        let (name, args) =
            parse_call(r#"replace("a\tb", `\d`, ["x", 1, -2.5, 1.5s, 1h30m, ok, server, nil])"#).unwrap();
        assert_eq!(name, "replace");
        assert_eq!(args[0], Value::str("a\tb"));
        assert_eq!(args[1], Value::str("\\d"));
        assert_eq!(
            args[2],
            Value::list([
                Value::str("x"),
                Value::Int(1),
                Value::Float(-2.5),
                Value::Duration(1_500_000_000),
                Value::Duration(5_400_000_000_000),
                Value::Status(Status::Ok),
                Value::Kind(SpanKind::Server),
                Value::Nil,
            ])
        );
        assert_eq!(parse_literal("1e3"), Ok(Value::Float(1000.0)));
        assert_eq!(parse_literal("1_000"), Ok(Value::Int(1000)));
        assert_eq!(parse_literal(r#""\u{1F600}""#), Ok(Value::str("😀")));
        assert!(parse_literal("lower(").is_err());
        assert!(parse_literal("12 13").is_err());
    }
}
