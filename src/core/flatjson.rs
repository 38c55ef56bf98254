//! A scanner for the JSON shape that nearly every review message has: one
//! flat object whose values are strings without escapes, plain numbers,
//! booleans or nulls.
//!
//! serde_json parses such a message through a visitor call per key and per
//! value; this walks it once and borrows every string. It gives up on
//! anything else (an escape, a nested value, a control character, trailing
//! text), and the caller then parses with serde_json, which also gives the
//! error. What it accepts is valid JSON, read as serde_json reads it (`tests`
//! hold it to that). A number's syntax is checked; its range is for the
//! caller to check when it reads the number, as `review` does.

/// A member's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// The string's content (it had no escapes).
    Str(&'a str),
    /// The number as written (valid JSON number syntax).
    Num(&'a str),
    Bool(bool),
    Null,
}

/// Call `member` with each key and value of the JSON object `text`, in
/// order. `None` when `text` is not a flat object of that shape, or as soon
/// as `member` returns false.
pub fn members<'a>(
    text: &'a str,
    mut member: impl FnMut(&'a str, Scalar<'a>) -> bool,
) -> Option<()> {
    let mut found = [("", Scalar::Null); MAX_COMPACT_MEMBERS];
    match compact(text, &mut found) {
        Some(n) => found[..n]
            .iter()
            .all(|&(key, value)| member(key, value))
            .then_some(()),
        None => spaced(text, member),
    }
}

/// Most members [`compact`] reads.
const MAX_COMPACT_MEMBERS: usize = 16;
/// Longest text [`compact`] reads: 16 words of quote bits.
const MAX_COMPACT_BYTES: usize = 1024;

/// The members of an object written without white space (as serializers
/// write it) whose text holds no backslash and no control character
/// anywhere: every string then ends at the next quote, so one pass marks all
/// the quotes and each member costs a few comparisons. `None` for any other
/// text ([`spaced`] reads it), before any member is handed on.
fn compact<'a>(
    text: &'a str,
    found: &mut [(&'a str, Scalar<'a>); MAX_COMPACT_MEMBERS],
) -> Option<usize> {
    let b = text.as_bytes();
    if b.len() > MAX_COMPACT_BYTES || b.first() != Some(&b'{') || b.last() != Some(&b'}') {
        return None;
    }
    let mut bits = [0u64; MAX_COMPACT_BYTES / 64];
    if !quote_bits(b, &mut bits) {
        return None;
    }
    // The first quote at or after `from`.
    let next_quote = |from: usize| -> Option<usize> {
        let (mut w, shift) = (from / 64, from % 64);
        let mut word = bits.get(w)? >> shift << shift;
        while word == 0 {
            w += 1;
            word = *bits.get(w)?;
        }
        Some(w * 64 + word.trailing_zeros() as usize)
    };
    if b.len() == 2 {
        return Some(0);
    }
    let (mut i, mut n) = (1, 0);
    loop {
        if b.get(i) != Some(&b'"') || n == MAX_COMPACT_MEMBERS {
            return None;
        }
        let end = next_quote(i + 1)?;
        // Quotes are ASCII, so both ends are character boundaries.
        let key = text.get(i + 1..end)?;
        if b.get(end + 1) != Some(&b':') {
            return None;
        }
        let at = end + 2;
        let (value, after) = if b.get(at) == Some(&b'"') {
            let close = next_quote(at + 1)?;
            (Scalar::Str(text.get(at + 1..close)?), close + 1)
        } else {
            scalar(text, at)?
        };
        found[n] = (key, value);
        n += 1;
        match b.get(after) {
            Some(b',') => i = after + 1,
            Some(b'}') if after + 1 == b.len() => return Some(n),
            _ => return None,
        }
    }
}

/// Mark each quote of `b` in `bits` (bit `i % 64` of word `i / 64` for byte
/// `i`); false when `b` holds a backslash or a control character. `b` fits
/// in `bits`, which start at zero.
fn quote_bits(b: &[u8], bits: &mut [u64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        quote_bits_sse2(b, bits)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        quote_bits_swar(b, bits)
    }
}

/// [`quote_bits`] sixteen bytes at a time (SSE2, which every x86_64 has).
#[cfg(target_arch = "x86_64")]
fn quote_bits_sse2(b: &[u8], bits: &mut [u64]) -> bool {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // One block's quotes, and whether it holds a refused byte.
    let block = |bytes: &[u8; 16]| -> (u64, bool) {
        // SAFETY: SSE2 is part of the x86_64 baseline, and the load reads
        // the 16 bytes of `bytes` (unaligned loads are allowed).
        unsafe {
            let v = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
            let quotes = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // Unsigned v <= 0x1f: min(v, 0x1f) == v.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
            let refused = _mm_movemask_epi8(_mm_or_si128(backslash, control));
            (u64::from(_mm_movemask_epi8(quotes) as u16), refused != 0)
        }
    };
    let mut refused = false;
    let mut blocks = b.chunks_exact(16);
    let mut k = 0;
    for chunk in &mut blocks {
        let mut bytes = [0; 16];
        bytes.copy_from_slice(chunk);
        let (quotes, bad) = block(&bytes);
        bits[k / 4] |= quotes << (k % 4 * 16);
        refused |= bad;
        k += 1;
    }
    // The tail, padded with a letter (neither a quote nor refused). None
    // when the length is a multiple of 16: at the longest text, `bits` has
    // no word for one more block.
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut bytes = [b'a'; 16];
        bytes[..tail.len()].copy_from_slice(tail);
        let (quotes, bad) = block(&bytes);
        bits[k / 4] |= quotes << (k % 4 * 16);
        refused |= bad;
    }
    !refused
}

/// [`quote_bits`] eight bytes at a time, in plain integer arithmetic.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn quote_bits_swar(b: &[u8], bits: &mut [u64]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const LOW7: u64 = ONES * 0x7f;
    const HIGH: u64 = ONES * 0x80;
    let mut bad = 0;
    let mut mark = |k: usize, w: u64| {
        // Exactly the zero bytes of `w ^ "`, by their high bit, gathered
        // into one bit per byte (byte j to bit j).
        let x = w ^ (ONES * u64::from(b'"'));
        let zero = !(((x & LOW7) + LOW7) | x) & HIGH;
        let quotes = (zero >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        bits[k / 8] |= quotes << (k % 8 * 8);
        // "Any byte below 0x20, any backslash": exact as a yes or no.
        let y = w ^ (ONES * u64::from(b'\\'));
        bad |= (w.wrapping_sub(ONES * 0x20) & !w) | (y.wrapping_sub(ONES) & !y);
    };
    let mut words = b.chunks_exact(8);
    let mut k = 0;
    for chunk in &mut words {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        mark(k, u64::from_le_bytes(word));
        k += 1;
    }
    // (As in the SSE2 version: no tail word when there is no tail.)
    let tail = words.remainder();
    if !tail.is_empty() {
        let mut word = [b'a'; 8];
        word[..tail.len()].copy_from_slice(tail);
        mark(k, u64::from_le_bytes(word));
    }
    bad & HIGH == 0
}

/// [`members`] for any flat object (white space allowed between tokens),
/// one token at a time.
fn spaced<'a>(text: &'a str, mut member: impl FnMut(&'a str, Scalar<'a>) -> bool) -> Option<()> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let (key, next) = string(text, i)?;
            i = skip_ws(b, next);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            let (value, next) = scalar(text, i)?;
            if !member(key, value) {
                return None;
            }
            i = skip_ws(b, next);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some(())
}

/// The index of the first byte from `i` on that is not JSON white space.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The string that opens at `text[i]` (a quote), and the index after it.
#[inline]
fn string(text: &str, i: usize) -> Option<(&str, usize)> {
    let start = i + 1;
    let rest = text.as_bytes().get(start..)?;
    // A backslash (an escape) is left to serde_json, and JSON forbids
    // control characters in strings.
    let len = stop(rest).filter(|&at| rest[at] == b'"')?;
    // Both ends are ASCII quotes, so on character boundaries.
    Some((text.get(start..start + len)?, start + len + 1))
}

/// The index of the first quote, backslash or control character in `s`,
/// eight bytes at a time (strings are short: a call costs more than
/// vector code gains).
#[inline]
fn stop(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    // The high bit of each byte of `x` that is zero (the lowest one set is
    // always right; bytes above it can be wrong, and are not looked at).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut at = 0;
    for chunk in s.chunks_exact(8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let hits =
            zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\'))) | below_space;
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    s[at..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| at + p)
}

/// The value that starts at `text[i]`, and the index after it.
#[inline]
fn scalar(text: &str, i: usize) -> Option<(Scalar<'_>, usize)> {
    let b = text.as_bytes();
    let word = |w: &str, v: Scalar<'static>| {
        b.get(i..i + w.len())
            .filter(|s| *s == w.as_bytes())
            .map(|_| (v, i + w.len()))
    };
    match *b.get(i)? {
        b'"' => string(text, i).map(|(s, next)| (Scalar::Str(s), next)),
        b'n' => word("null", Scalar::Null),
        b't' => word("true", Scalar::Bool(true)),
        b'f' => word("false", Scalar::Bool(false)),
        b'-' | b'0'..=b'9' => {
            let end = number_end(b, i)?;
            Some((Scalar::Num(text.get(i..end)?), end))
        }
        _ => None,
    }
}

/// Where the JSON number at `b[i]` ends:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, and no digit or sign
/// right after it.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > from).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(i)?;
    }
    // "01", "1.5.2", "1-": not one number.
    match b.get(i) {
        Some(b'0'..=b'9' | b'.' | b'-' | b'+' | b'e' | b'E') => None,
        _ => Some(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan(text: &str) -> Option<Vec<(String, Scalar<'_>)>> {
        let mut out = Vec::new();
        members(text, |k, v| {
            out.push((k.to_owned(), v));
            true
        })?;
        Some(out)
    }

    #[test]
    fn reads_a_flat_object() {
        let text = " { \"a\" : \"文本\",\"b\":-1.5e3, \"c\":null,\"d\":true,\"e\":false,\"f\":0}\n";
        assert_eq!(
            scan(text).unwrap(),
            vec![
                ("a".into(), Scalar::Str("文本")),
                ("b".into(), Scalar::Num("-1.5e3")),
                ("c".into(), Scalar::Null),
                ("d".into(), Scalar::Bool(true)),
                ("e".into(), Scalar::Bool(false)),
                ("f".into(), Scalar::Num("0")),
            ]
        );
        assert_eq!(scan("{}").unwrap(), vec![]);
    }

    #[test]
    fn gives_up_on_what_it_does_not_handle() {
        for text in [
            "{\"a\":\"x\\\"y\"}",
            "{\"a\":{}}",
            "{\"a\":[1]}",
            "{\"a\":\"tab\there\"}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":1e}",
            "{\"a\":-}",
            "{\"a\":nul}",
            "{\"a\":1,}",
            "{,}",
            "{\"a\" 1}",
            "{\"a\":1} x",
            "{\"a\":1}}",
            "[1]",
            "{\"a\":\"open",
            "{\"a\":1",
            "\u{3000}{}",
        ] {
            assert_eq!(scan(text), None, "{text}");
        }
    }

    #[test]
    fn stops_when_the_caller_refuses() {
        assert_eq!(members("{\"a\":1,\"b\":2}", |k, _| k != "b"), None);
    }

    /// JSON-like text: mostly valid objects, with the pieces that break them.
    fn object() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "\"[a-z\u{4e00}-\u{4e03}]{0,4}\"",
            "\"[a-z\\\\\"\t]{0,3}\"",
            "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
            "[-+.eE0-9]{1,5}",
            prop::sample::select(vec!["null", "true", "false", "nul", "[]", "{}", "[1,2]"])
                .prop_map(String::from),
        ];
        // Mostly none (the compact shape), sometimes some.
        let ws = prop_oneof![
            3 => Just(""),
            1 => prop::sample::select(vec![" ", "\n", "\t", "\r\n"]),
        ];
        let member = (piece.clone(), ws.clone(), piece, ws.clone())
            .prop_map(|(k, w1, v, w2)| format!("{k}{w1}:{w2}{v}"));
        (
            prop::collection::vec(member, 0..6),
            ws,
            prop::sample::select(vec!["", ",", " x", "}"]),
        )
            .prop_map(|(ms, w, tail)| format!("{w}{{{}}}{w}{tail}", ms.join(",")))
    }

    #[test]
    fn quote_bits_mark_every_quote_and_only_quotes() {
        let text = "{\"键\":\"值 with \"\"quotes\",\"n\":1}\"";
        let mut bits = [0u64; 16];
        assert!(quote_bits(text.as_bytes(), &mut bits));
        for (i, c) in text.bytes().enumerate() {
            assert_eq!(bits[i / 64] >> (i % 64) & 1 == 1, c == b'"', "byte {i}");
        }
        for refused in ["{\"a\":\"x\\y\"}", "{\"a\":\"x\ty\"}", "{\"a\":1}\n"] {
            assert!(
                !quote_bits(refused.as_bytes(), &mut [0u64; 16]),
                "{refused:?}"
            );
        }
    }

    /// Objects of every length around the longest the compact scanner
    /// reads (a multiple of its blocks among them) are read whole, as
    /// serde_json reads them, or handed on; never a panic.
    #[test]
    fn reads_objects_of_every_length_near_the_limit() {
        for len in MAX_COMPACT_BYTES - 40..=MAX_COMPACT_BYTES + 40 {
            let pad = len - "{\"k\":1,\"text\":\"\"}".len();
            let text = format!("{{\"k\":1,\"text\":\"{}\"}}", "x".repeat(pad));
            assert_eq!(text.len(), len);
            let members = scan(&text).unwrap_or_else(|| panic!("{len} bytes not read"));
            assert_eq!(members.len(), 2, "{len} bytes");
            assert_eq!(
                members[1].1,
                Scalar::Str(&text[15..15 + pad]),
                "{len} bytes"
            );
        }
    }

    proptest! {
        /// The compact reading and the token-at-a-time one agree on every
        /// text the compact one takes.
        #[test]
        fn compact_reads_as_spaced_does(text in object()) {
            let mut found = [("", Scalar::Null); MAX_COMPACT_MEMBERS];
            if let Some(n) = compact(&text, &mut found) {
                let mut spaced_found = Vec::new();
                prop_assert!(spaced(&text, |k, v| { spaced_found.push((k, v)); true }).is_some(), "{:?}", text);
                prop_assert_eq!(&found[..n], spaced_found.as_slice(), "{:?}", text);
            }
        }

        /// Quote bits are those of a byte-at-a-time look, at any length and
        /// alignment; a backslash or control character anywhere refuses.
        #[test]
        fn quote_bits_are_per_byte(
            (mut b, refused) in (
                // Short texts, and texts near the longest compact reads.
                prop_oneof![0..200usize, 1000..=MAX_COMPACT_BYTES].prop_flat_map(|n| {
                    prop::collection::vec(prop_oneof![Just(b'"'), 0x20u8..0x24, 0x5du8..=0xff], n)
                }),
                prop::option::of((any::<prop::sample::Index>(), prop_oneof![Just(b'\\'), 0u8..0x20])),
            )
        ) {
            // One refused byte, at any place, or none.
            if let Some((at, c)) = refused {
                b.insert(at.index(b.len() + 1), c);
            }
            // (No more than the longest text compact reads: what `bits` holds.)
            b.truncate(MAX_COMPACT_BYTES);
            let clean = !b.iter().any(|&c| c == b'\\' || c < 0x20);
            type Way = fn(&[u8], &mut [u64]) -> bool;
            let mut both: Vec<Way> = vec![quote_bits_swar];
            #[cfg(target_arch = "x86_64")]
            both.push(quote_bits_sse2);
            for way in both {
                let mut bits = [0u64; 16];
                prop_assert_eq!(way(&b, &mut bits), clean);
                for (i, &c) in b.iter().enumerate() {
                    prop_assert_eq!(bits[i / 64] >> (i % 64) & 1 == 1, c == b'"');
                }
                for i in b.len()..1024 {
                    prop_assert_eq!(bits[i / 64] >> (i % 64) & 1, 0);
                }
            }
        }

        /// Whatever the scanner reads, serde_json reads the same way.
        #[test]
        fn agrees_with_serde_json(text in object()) {
            let parsed = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text);
            if let Some(members) = scan(&text) {
                let Ok(map) = parsed else {
                    return Err(TestCaseError::fail(format!("serde_json refuses {text:?}")));
                };
                // (serde_json keeps the last of duplicate keys.)
                let mut last = serde_json::Map::new();
                for (k, v) in members {
                    let v = match v {
                        Scalar::Str(s) => serde_json::Value::String(s.to_owned()),
                        Scalar::Num(n) => serde_json::from_str(n).unwrap(),
                        Scalar::Bool(b) => serde_json::Value::Bool(b),
                        Scalar::Null => serde_json::Value::Null,
                    };
                    last.insert(k, v);
                }
                prop_assert_eq!(last, map, "{:?}", text);
            }
        }
    }
}
