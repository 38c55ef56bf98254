//! Text normalisation before matching: characters folded, invisible ones
//! dropped, clause breaks found.

/// Character-level normalisation: lower case, full-width ASCII to half-width,
/// zero-width, bidi and emoji characters removed, spaces between Chinese
/// characters removed (拉 肚 子 -> 拉肚子), runs of white space folded.
pub fn normalise_chars(text: &str) -> String {
    let b = text.as_bytes();
    let mut n = Normaliser::new(text);
    let mut i = 0;
    while i < b.len() {
        // A run of Chinese characters (most of the text) is copied as it is:
        // none is folded, invisible, a splitter or white space.
        let run = cjk_run_end(b, i);
        if run > i {
            n.push_cjk_run(&text[i..run]);
            i = run;
            continue;
        }
        let Some(raw) = text[i..].chars().next() else {
            break;
        };
        n.push(text, i, raw);
        i += raw.len_utf8();
    }
    n.out
}

/// [`normalise_chars`]'s output so far, and what it remembers of the input.
pub(super) struct Normaliser {
    pub(super) out: String,
    pub(super) pending_space: bool,
    /// The two input characters before the next one (after width folding).
    pub(super) prev: char,
    prev2: char,
}

impl Normaliser {
    pub(super) fn new(text: &str) -> Self {
        Normaliser {
            out: String::with_capacity(text.len()),
            pending_space: false,
            prev: '\0',
            prev2: '\0',
        }
    }

    /// The character `raw`, at byte `here` of `text`.
    pub(super) fn push(&mut self, text: &str, here: usize, raw: char) {
        let ch = fold_width(raw);
        // A Chinese character (most of the text) is not invisible, a
        // splitter or white space: it skips those checks.
        let cjk = is_cjk(ch);
        if !cjk && is_invisible(ch) {
            return;
        }
        let (before, before2) = (self.prev, self.prev2);
        (self.prev2, self.prev) = (self.prev, ch);
        if !cjk {
            // 拉.肚.子, 拉-肚-子: a separator repeated between single Chinese
            // characters is a dodge, not punctuation.
            if SPLITTERS.contains(&ch) && is_cjk(before) {
                let mut ahead = text[here + raw.len_utf8()..].chars().map(fold_width);
                let (next, next2) = (ahead.next(), ahead.next());
                if next.is_some_and(is_cjk) && (next2 == Some(ch) || before2 == ch) {
                    return;
                }
            }
            if ch.is_whitespace() {
                self.pending_space = !self.out.is_empty();
                return;
            }
        }
        self.space_before(cjk);
        if ch.is_ascii() {
            self.out.push(ch.to_ascii_lowercase());
        } else if cjk {
            self.out.push(ch);
        } else {
            self.out.extend(ch.to_lowercase());
        }
    }

    /// Characters that are all [`is_cjk`]: what [`Normaliser::push`] does
    /// with each, in one copy.
    pub(super) fn push_cjk_run(&mut self, run: &str) {
        self.space_before(true);
        let mut back = run.chars().rev();
        (self.prev, self.prev2) = match (back.next(), back.next()) {
            (Some(last), Some(before)) => (last, before),
            (Some(last), None) => (last, self.prev),
            _ => (self.prev, self.prev2),
        };
        self.out.push_str(run);
    }

    /// A pending space goes out, unless it falls between Chinese characters.
    pub(super) fn space_before(&mut self, cjk: bool) {
        if std::mem::take(&mut self.pending_space)
            && !(cjk && self.out.chars().next_back().is_some_and(is_cjk))
        {
            self.out.push(' ');
        }
    }
}

/// The end of the run of characters [`is_cjk`] takes that starts at `b[i]`
/// (`i` itself when none does), read from the UTF-8 bytes: each is three
/// bytes, led by E3 (U+3400 and up), E4 to E9, or EF (U+F900 to U+FAFF).
pub(super) fn cjk_run_end(b: &[u8], mut i: usize) -> usize {
    while let [lead, second, _, ..] = b[i..] {
        let cjk = match lead {
            0xE4..=0xE9 => true,
            0xE3 => second >= 0x90,
            0xEF => (0xA4..=0xAB).contains(&second),
            _ => false,
        };
        if !cjk {
            break;
        }
        i += 3;
    }
    i
}

/// The characters that end a clause, tested once per character of every
/// review: a bit per ASCII character, and a short list for the others that
/// a Chinese character (most of the text) skips.
#[derive(Debug, Clone)]
pub(super) struct ClauseBreaks {
    pub(super) ascii: u128,
    pub(super) other: Vec<char>,
    /// Whether `other` holds a character [`is_cjk`] takes.
    pub(super) any_cjk: bool,
}

impl ClauseBreaks {
    pub(super) fn new(chars: &str) -> Self {
        let mut breaks = ClauseBreaks {
            ascii: 0,
            other: Vec::new(),
            any_cjk: false,
        };
        for ch in chars.chars() {
            if ch.is_ascii() {
                breaks.ascii |= 1 << (ch as u32);
            } else if !breaks.other.contains(&ch) {
                breaks.other.push(ch);
                breaks.any_cjk |= is_cjk(ch);
            }
        }
        breaks
    }

    pub(super) fn contains(&self, ch: char) -> bool {
        if ch.is_ascii() {
            self.ascii & (1 << (ch as u32)) != 0
        } else if is_cjk(ch) && !self.any_cjk {
            false
        } else {
            self.other.contains(&ch)
        }
    }
}

/// Characters used to split a word so that filters miss it.
pub(super) const SPLITTERS: &[char] = &[
    '.', '-', '*', '_', '·', '•', '/', '|', '~', '+', '^', '#', '、',
];

/// Full-width ASCII to half-width; the ideographic space to a space.
pub(super) fn fold_width(ch: char) -> char {
    match ch as u32 {
        0xFF01..=0xFF5E => char::from_u32(ch as u32 - 0xFEE0).unwrap_or(ch),
        0x3000 => ' ',
        _ => ch,
    }
}

pub(super) fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x9FFF | 0xF900..=0xFAFF)
}

pub(super) fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x034F | 0x115F | 0x1160 | 0x180E | 0x2800 | 0x3164 | 0xFFA0
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0xFEFF | 0xFE00..=0xFE0F
        | 0x00AD | 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0xE0000..=0xE007F)
        || (c.is_control() && !c.is_whitespace())
}
