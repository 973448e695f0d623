//! The tokenizer: replaces the parts of a text that change from one request
//! to the next — ids, UUIDs, hex hashes, numbers, timestamps, IP addresses,
//! emails and URLs — by fixed tokens before scoring, so that a fresh request id
//! alone is not novel. A hand-written scanner: linear time, no regexes, and a
//! text with nothing to replace is returned borrowed.
//!
//! The text is cut into *chunks*: maximal runs of letters, digits, bytes of
//! non-ASCII characters and the punctuation `._-:/@+%~#`. A chunk that starts
//! with `scheme://` is a URL, which runs on to the next space, quote or
//! bracket. A whole chunk (less trailing `.` or `:`) may be an email, an IPv4
//! or IPv6 address (with a port), a date, a time or a timestamp, or a UUID.
//! Otherwise each run of ASCII letters and digits inside it is looked at on its
//! own: a UUID, a `0x` or a long hex number, a long id mixing letters and
//! digits, or else every run of digits becomes `<num>` (`12ms` → `<num>ms`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;

pub const URL: &str = "<url>";
pub const EMAIL: &str = "<email>";
pub const IP: &str = "<ip>";
pub const TIMESTAMP: &str = "<ts>";
pub const UUID: &str = "<uuid>";
pub const HEX: &str = "<hex>";
pub const ID: &str = "<id>";
pub const NUMBER: &str = "<num>";

/// `text` with ids, UUIDs, hashes, numbers, timestamps, IPs, emails and URLs
/// replaced by fixed tokens (`<id>`, `<uuid>`, `<hex>`, `<num>`, `<ts>`,
/// `<ip>`, `<email>`, `<url>`). Borrowed when nothing was replaced.
pub fn tokenize(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out = Out { text, buf: String::new(), copied: 0, changed: false };
    let mut i = 0;
    while i < bytes.len() {
        if !is_chunk_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let mut end = i;
        let mut may_vary = false;
        while end < bytes.len() && is_chunk_byte(bytes[end]) {
            may_vary |= MAY_VARY[usize::from(bytes[end])];
            end += 1;
        }
        // Every token needs a digit (numbers, hashes, ids, times, IPs, UUIDs
        // in practice), an `@` (emails) or a `:` (URLs): plain words skip the rest.
        if !may_vary {
            i = end;
            continue;
        }
        if let Some(url_end) = url_end(bytes, i, end) {
            out.replace(i, url_end, URL);
            i = url_end;
            continue;
        }
        let mut whole = end;
        while whole > i && matches!(bytes[whole - 1], b'.' | b':') {
            whole -= 1;
        }
        match classify_chunk(&bytes[i..whole]) {
            Some(token) => out.replace(i, whole, token),
            None => parts(bytes, i, end, &mut out),
        }
        i = end;
    }
    out.finish()
}

/// [`tokenize`], answered from the texts this thread tokenized lately when
/// `text` is one of them. What `novelty` scores repeats — a trace's shape
/// for each path through a service, a templated log line — and tokenizing
/// a shape was a fifth of scoring it. Texts outside [`REMEMBERED_LEN`] are
/// tokenized every time.
pub fn tokenize_remembered(text: &str) -> Cow<'_, str> {
    if !REMEMBERED_LEN.contains(&text.len()) {
        return tokenize(text);
    }
    RECENT.with(|recent| recent.borrow_mut().tokenize(text))
}

/// The lengths of texts [`tokenize_remembered`] remembers: shorter ones
/// tokenize about as fast as they hash, longer ones would hold memory.
pub const REMEMBERED_LEN: std::ops::RangeInclusive<usize> = 64..=4096;

/// Slots of the memo, each holding one text: the slot is picked by hash.
const REMEMBERED: usize = 64;

thread_local! {
    static RECENT: RefCell<Recent> = RefCell::new(Recent::default());
}

/// Recently tokenized texts, a slot each.
#[derive(Default)]
struct Recent {
    slots: Vec<Option<Seen>>,
    hasher: RandomState,
}

/// A text and what it became (`None`: nothing replaced).
struct Seen {
    text: Box<str>,
    tokens: Option<Box<str>>,
}

impl Recent {
    fn tokenize<'t>(&mut self, text: &'t str) -> Cow<'t, str> {
        if self.slots.is_empty() {
            self.slots.resize_with(REMEMBERED, || None);
        }
        let slot = &mut self.slots[self.hasher.hash_one(text) as usize % REMEMBERED];
        match slot {
            Some(seen) if *seen.text == *text => match &seen.tokens {
                Some(tokens) => Cow::Owned(tokens.to_string()),
                None => Cow::Borrowed(text),
            },
            _ => {
                let tokenized = tokenize(text);
                let tokens = match &tokenized {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(tokens) => Some(tokens.as_str().into()),
                };
                *slot = Some(Seen { text: text.into(), tokens });
                tokenized
            }
        }
    }
}

struct Out<'a> {
    text: &'a str,
    buf: String,
    copied: usize,
    changed: bool,
}

impl<'a> Out<'a> {
    /// Replaces `text[start..end]` (ASCII boundaries) by `token`.
    fn replace(&mut self, start: usize, end: usize, token: &str) {
        if !self.changed {
            // One allocation for the usual case: tokens are about as long as what they replace.
            self.buf.reserve(self.text.len() + 16);
        }
        self.buf.push_str(&self.text[self.copied..start]);
        self.buf.push_str(token);
        self.copied = end;
        self.changed = true;
    }

    fn finish(mut self) -> Cow<'a, str> {
        if !self.changed {
            return Cow::Borrowed(self.text);
        }
        self.buf.push_str(&self.text[self.copied..]);
        Cow::Owned(self.buf)
    }
}

/// The bytes without which a chunk has nothing to replace: digits, `@`, `:`.
const MAY_VARY: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = b'0';
    while b <= b'9' {
        table[b as usize] = true;
        b += 1;
    }
    table[b'@' as usize] = true;
    table[b':' as usize] = true;
    table
};

/// Which bytes belong to chunks (see the module doc), as a table.
const CHUNK_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric() || byte >= 0x80;
        b += 1;
    }
    let punctuation = b"._-:/@+%~#";
    let mut i = 0;
    while i < punctuation.len() {
        table[punctuation[i] as usize] = true;
        i += 1;
    }
    table
};

fn is_chunk_byte(b: u8) -> bool {
    CHUNK_BYTES[usize::from(b)]
}

/// Where a URL starting at `start` ends, if the chunk starts with `scheme://`.
fn url_end(bytes: &[u8], start: usize, chunk_end: usize) -> Option<usize> {
    let mut i = start;
    if !bytes[i].is_ascii_alphabetic() {
        return None;
    }
    while i < chunk_end && (bytes[i].is_ascii_alphanumeric() || b"+.-".contains(&bytes[i])) {
        i += 1;
    }
    if !bytes[i..chunk_end].starts_with(b"://") {
        return None;
    }
    let mut end = i + 3;
    while end < bytes.len() && !bytes[end].is_ascii_whitespace() && !b"\"'<>()[]{}`".contains(&bytes[end]) {
        end += 1;
    }
    while end > i + 3 && b".,;:!?".contains(&bytes[end - 1]) {
        end -= 1;
    }
    Some(end)
}

/// The token for a whole chunk, if it is one thing.
fn classify_chunk(chunk: &[u8]) -> Option<&'static str> {
    if chunk.is_empty() {
        None
    } else if is_uuid(chunk) {
        Some(UUID)
    } else if is_email(chunk) {
        Some(EMAIL)
    } else if is_timestamp(chunk) {
        Some(TIMESTAMP)
    } else if is_ipv4(chunk) || is_ipv6(chunk) {
        Some(IP)
    } else {
        None
    }
}

/// Looks at each run of ASCII letters and digits of `bytes[start..end]`.
fn parts(bytes: &[u8], start: usize, end: usize, out: &mut Out<'_>) {
    let mut i = start;
    while i < end {
        if !bytes[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        if i + 36 <= end && is_uuid(&bytes[i..i + 36]) && (i + 36 == end || !bytes[i + 36].is_ascii_alphanumeric()) {
            out.replace(i, i + 36, UUID);
            i += 36;
            continue;
        }
        let mut run_end = i;
        while run_end < end && bytes[run_end].is_ascii_alphanumeric() {
            run_end += 1;
        }
        let run = &bytes[i..run_end];
        match classify_run(run) {
            Some(token) => out.replace(i, run_end, token),
            None => {
                let mut j = i;
                while j < run_end {
                    if bytes[j].is_ascii_digit() {
                        let digits_start = j;
                        while j < run_end && bytes[j].is_ascii_digit() {
                            j += 1;
                        }
                        out.replace(digits_start, j, NUMBER);
                    } else {
                        j += 1;
                    }
                }
            }
        }
        i = run_end;
    }
}

/// The token for a run of ASCII letters and digits that is one thing.
fn classify_run(run: &[u8]) -> Option<&'static str> {
    let digits = run.iter().filter(|b| b.is_ascii_digit()).count();
    if digits == run.len() {
        return Some(NUMBER);
    }
    if run.len() > 2 && (run.starts_with(b"0x") || run.starts_with(b"0X")) && run[2..].iter().all(u8::is_ascii_hexdigit)
    {
        return Some(HEX);
    }
    if run.len() >= 8 && digits > 0 && run.iter().all(u8::is_ascii_hexdigit) {
        return Some(HEX);
    }
    let digit_runs = run.windows(2).filter(|w| !w[0].is_ascii_digit() && w[1].is_ascii_digit()).count()
        + usize::from(run[0].is_ascii_digit());
    if run.len() >= 8 && digits > 0 && (digit_runs >= 2 || run.len() >= 16) {
        return Some(ID);
    }
    None
}

fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter()
            .enumerate()
            .all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { *b == b'-' } else { b.is_ascii_hexdigit() })
}

fn is_email(s: &[u8]) -> bool {
    let Some(at) = s.iter().position(|&b| b == b'@') else { return false };
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if local.is_empty() || !local.iter().all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(b)) {
        return false;
    }
    let labels: Vec<&[u8]> = domain.split(|&b| b == b'.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty() && l.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-'))
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic))
}

/// A cursor over a chunk for the small grammars below.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, min: usize, max: usize) -> bool {
        let start = self.pos;
        while self.pos < self.s.len() && self.pos - start < max && self.s[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        self.pos - start >= min
    }

    fn byte(&mut self, allowed: &[u8]) -> bool {
        let ok = self.pos < self.s.len() && allowed.contains(&self.s[self.pos]);
        self.pos += usize::from(ok);
        ok
    }

    fn done(&self) -> bool {
        self.pos == self.s.len()
    }
}

/// `2024-01-02`, `2024-01-02T03:04:05.123Z`, `03:04:05+02:00`, `2024/01/02_03:04`.
fn is_timestamp(s: &[u8]) -> bool {
    let mut c = Cursor { s, pos: 0 };
    let date = c.digits(4, 4) && c.byte(b"-/") && c.digits(2, 2) && c.byte(b"-/") && c.digits(2, 2);
    if date {
        if c.done() {
            return true;
        }
        if !c.byte(b"T_") {
            return false;
        }
    } else {
        c.pos = 0;
    }
    let time = c.digits(1, 2) && c.byte(b":") && c.digits(2, 2);
    if !time {
        return false;
    }
    if c.byte(b":") && !c.digits(2, 2) {
        return false;
    }
    if c.byte(b".,") && !c.digits(1, 9) {
        return false;
    }
    if c.byte(b"Z") {
        return c.done();
    }
    if c.byte(b"+-") {
        let zone = c.digits(2, 2);
        c.byte(b":");
        return zone && c.digits(2, 2) && c.done();
    }
    c.done()
}

/// `10.0.0.1` or `10.0.0.1:8080`.
fn is_ipv4(s: &[u8]) -> bool {
    let mut c = Cursor { s, pos: 0 };
    for part in 0..4 {
        if part > 0 && !c.byte(b".") {
            return false;
        }
        let start = c.pos;
        if !c.digits(1, 3) || std::str::from_utf8(&s[start..c.pos]).ok().and_then(|t| t.parse::<u16>().ok()) > Some(255)
        {
            return false;
        }
    }
    c.done() || (c.byte(b":") && c.digits(1, 5) && c.done())
}

/// `fe80::1`, `::1`, `2001:db8:0:0:0:0:2:1` (groups of up to four hex digits,
/// with `::` or eight groups, and at least one digit), possibly ending in an
/// IPv4 address.
fn is_ipv6(s: &[u8]) -> bool {
    let colons = s.iter().filter(|&&b| b == b':').count();
    let compressed = s.windows(2).any(|w| w == b"::");
    if colons < 2 || !(compressed || colons == 7) || !s.iter().any(u8::is_ascii_digit) {
        return false;
    }
    let groups: Vec<&[u8]> = s.split(|&b| b == b':').collect();
    let last = groups.len() - 1;
    groups
        .iter()
        .enumerate()
        .all(|(i, g)| (g.len() <= 4 && g.iter().all(u8::is_ascii_hexdigit)) || (i == last && is_ipv4(g)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: &str) {
        assert_eq!(tokenize(input), expected, "{input}");
    }

    proptest::proptest! {
        /// Texts seen again, texts sharing a slot, and texts too short or
        /// too long to remember all come out as `tokenize` makes them, and
        /// borrowed where it borrows.
        #[test]
        fn remembered_tokens_are_the_tokens(
            pool in proptest::collection::vec("[a-z0-9 /:.@{}-]{0,300}", 1..(REMEMBERED * 2)),
            picks in proptest::collection::vec(proptest::num::usize::ANY, 1..200),
        ) {
            for pick in picks {
                let text = &pool[pick % pool.len()];
                let (remembered, made) = (tokenize_remembered(text), tokenize(text));
                proptest::prop_assert_eq!(&remembered, &made);
                proptest::prop_assert_eq!(matches!(remembered, Cow::Borrowed(_)), matches!(made, Cow::Borrowed(_)));
            }
        }
    }

    #[test]
    fn a_shape_seen_again_is_remembered() {
        let shape = "frontend GET /api/v1/orders/{id}\n orders SELECT orders\n  orders-db SELECT 1\n";
        assert_eq!(tokenize_remembered(shape), tokenize(shape));
        let remembered = RECENT.with(|recent| {
            let recent = recent.borrow();
            recent.slots.iter().flatten().any(|seen| *seen.text == *shape && seen.tokens.is_some())
        });
        assert!(remembered, "the shape and its tokens are in a slot");
        assert_eq!(
            tokenize_remembered(shape),
            "frontend GET /api/v<num>/orders/{id}\n orders SELECT orders\n  orders-db SELECT <num>\n"
        );
    }

    #[test]
    fn plain_words_are_borrowed() {
        let text = "GET /api/orders from checkout (ok)";
        assert!(matches!(tokenize(text), Cow::Borrowed(_)));
        assert!(matches!(tokenize(""), Cow::Borrowed(_)));
        assert!(matches!(tokenize("été à Zürich"), Cow::Borrowed(_)));
    }

    #[test]
    fn each_kind_of_token() {
        check("user 12345 took 12ms", "user <num> took <num>ms");
        check("id=550e8400-e29b-41d4-a716-446655440000.", "id=<uuid>.");
        check("order/550e8400-e29b-41d4-a716-446655440000/items", "order/<uuid>/items");
        check("sha d41d8cd98f00b204e9800998ecf8427e", "sha <hex>");
        check("addr 0x7ffee3b0 len 0x2a", "addr <hex> len <hex>");
        check("req_8f3kd92xq7 done", "req_<id> done");
        check("token AbCdEfGhIj1KlMnOp", "token <id>");
        check("from 10.0.0.1:8080 and 192.168.1.20", "from <ip> and <ip>");
        check("addr fe80::1ff:fe23:4567:890a and ::1", "addr <ip> and <ip>");
        check("path a::b std::fmt ::", "path a::b std::fmt ::");
        check("mail ana.lopez+x@example.co.uk, thanks", "mail <email>, thanks");
        check("see https://example.com/a?b=c&d=1 (docs)", "see <url> (docs)");
        check("at 2024-01-02T03:04:05.123Z ok", "at <ts> ok");
        check("at 2024-01-02 03:04:05,123 ok", "at <ts> <ts>,<num> ok");
        check("[2024/01/02_03:04:05+02:00]", "[<ts>]");
        check("took 1.5s", "took <num>.<num>s");
        check("http2 v1 x86_64", "http<num> v<num> x<num>_<num>");
    }

    #[test]
    fn keeps_what_is_not_variable() {
        check("deadbeef cafe", "deadbeef cafe");
        check("a:b:c", "a:b:c");
        check("internationalization", "internationalization");
        check("ab@cd", "ab@cd");
        check("ftp:/x", "ftp:/x");
    }

    #[test]
    fn non_ascii_text_keeps_its_characters() {
        check("café 42 €", "café <num> €");
        check("naïve-3x", "naïve-<num>x");
    }

    #[test]
    fn long_input_is_linear() {
        // A pathological mix scanned in one pass; quadratic scanning would time out.
        let text = "a.".repeat(200_000) + &"1:".repeat(200_000) + &"x@".repeat(200_000);
        let out = tokenize(&text);
        assert!(out.len() >= text.len());
    }
}
