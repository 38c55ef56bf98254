//! PII redaction for evidence snippets: whatever leaves the process in a flag
//! has phone numbers, ID-card numbers, e-mail addresses and introduced
//! WeChat/QQ ids masked.

use regex::Regex;
use std::sync::LazyLock;

struct Pattern {
    re: Regex,
    mask: &'static str,
    /// Whether it can only match a text with an `@` or a decimal digit
    /// (every pattern but the introduced WeChat/QQ ids).
    needs_digit_or_at: bool,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |re: &str, mask| Pattern {
        // The patterns are literals of this file; a bad one is a bug caught by the tests.
        re: Regex::new(re).unwrap_or_else(|e| panic!("redaction pattern {re}: {e}")),
        mask,
        needs_digit_or_at: true,
    };
    vec![
        p(
            r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+",
            "[email]",
        ),
        // 18-digit resident ID: 17 digits then a digit or X.
        p(
            r"(?:^|[^0-9])([1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx])(?:$|[^0-9])",
            "[id]",
        ),
        // Mainland mobile, optionally +86 / 0086, with spaces or dashes between groups.
        p(
            r"(?:(?:\+|00)\s?86[\s\-]?)?1[3-9]\d[\s\-]?\d{4}[\s\-]?\d{4}",
            "[phone]",
        ),
        // Landline: area code 0xx(x) then 7-8 digits, with an optional extension.
        p(
            r"(?:0\d{2,3}[\s\-]|[(（]0\d{2,3}[)）]\s?)\d{7,8}(?:[\-转]\d{1,5})?",
            "[phone]",
        ),
        // WeChat / QQ ids introduced as such (also the usual dodges: 薇信, V信, 扣扣).
        // An id may be all letters.
        Pattern {
            needs_digit_or_at: false,
            ..p(
                r"(?i)(?:微信号?|薇信|威信|vx|v信|wx|wechat|weixin|qq号?|扣扣|企鹅号?)\s*(?:号码|账号|号)?[\s:：是为]{0,4}[A-Za-z0-9_\-]{5,20}",
                "[contact]",
            )
        },
        // Any other long run of digits (bare landlines, old 15-digit IDs, order
        // and card numbers): better masked than leaked.
        p(r"\d{10,}", "[number]"),
    ]
});

/// An `@` or a decimal digit (`\d` is Unicode's: any script's digits).
static DIGIT_OR_AT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[@\d]").unwrap_or_else(|e| panic!("redaction guard pattern: {e}"))
});

/// Mask personal data in `text`.
pub fn redact(text: &str) -> String {
    // Most texts hold neither an `@` nor a digit: then only the introduced
    // ids can match (the masks hold neither either, so this stays true as
    // the patterns apply one after another). One scan instead of five.
    let numeric = DIGIT_OR_AT.is_match(text);
    apply(text, |p| numeric || !p.needs_digit_or_at)
}

/// `text` with the patterns `include` takes applied, in order.
fn apply(text: &str, include: impl Fn(&Pattern) -> bool) -> String {
    let mut out = text.to_owned();
    for p in PATTERNS.iter().filter(|p| include(p)) {
        if p.re.captures_len() > 1 {
            // Only the captured group is masked; the boundary characters stay.
            let mut result = String::with_capacity(out.len());
            let mut last = 0;
            for caps in p.re.captures_iter(&out) {
                if let Some(m) = caps.get(1) {
                    result.push_str(&out[last..m.start()]);
                    result.push_str(p.mask);
                    last = m.end();
                }
            }
            result.push_str(&out[last..]);
            out = result;
        } else {
            out = p.re.replace_all(&out, p.mask).into_owned();
        }
    }
    out
}

/// Undo the disguises that would let an identifier slip past the patterns:
/// full-width digits and letters become ASCII (１３８… -> 138…), and invisible characters
/// (zero-width, bidi controls, word joiners, soft hyphens, variation
/// selectors) are dropped. Snippets are for reading, so nothing is lost.
fn undisguise(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c as u32 {
            // Full-width digits, letters and @ . + - _ (not the CJK
            // punctuation people write: ，stays ，).
            0xFF10..=0xFF19
            | 0xFF21..=0xFF3A
            | 0xFF41..=0xFF5A
            | 0xFF20
            | 0xFF0E
            | 0xFF0B
            | 0xFF0D
            | 0xFF3F => char::from_u32(c as u32 - 0xFEE0),
            0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x2069
            | 0xFEFF
            | 0x00AD
            | 0xFE00..=0xFE0F => None,
            _ => Some(c),
        })
        .collect()
}

/// A redacted excerpt of at most `max_chars` characters, cut on a character
/// boundary, with an ellipsis when shortened.
pub fn snippet(text: &str, max_chars: usize) -> String {
    let redacted = redact(&undisguise(text));
    // Control characters read as spaces, and like spaces are trimmed at
    // either end; then the cut. One pass.
    let clean = redacted.trim_matches(|c: char| c.is_whitespace() || c.is_control());
    let mut s = String::with_capacity(clean.len().min(4 * max_chars) + '…'.len_utf8());
    for (i, c) in clean.chars().enumerate() {
        if i == max_chars {
            s.push('…');
            break;
        }
        s.push(if c.is_control() { ' ' } else { c });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masks_the_usual_identifiers() {
        let r = redact(
            "电话13812345678，或 +86 138-1234-5678，邮箱 a.b@example.com，身份证110105199003071234，座机 021-12345678，微信：abc_12345",
        );
        for leaked in [
            "13812345678",
            "1234-5678",
            "a.b@example.com",
            "110105199003071234",
            "12345678",
            "abc_12345",
        ] {
            assert!(!r.contains(leaked), "{leaked} leaked in {r}");
        }
        assert!(
            r.contains("[phone]")
                && r.contains("[email]")
                && r.contains("[id]")
                && r.contains("[contact]")
        );
    }

    #[test]
    fn id_with_x_and_plain_text_kept() {
        assert_eq!(redact("证件11010519900307123X丢了"), "证件[id]丢了");
        assert_eq!(redact("汤里有头发，差评"), "汤里有头发，差评");
    }

    #[test]
    fn snippet_is_short_and_redacted() {
        let s = snippet(
            "吃完拉肚子，老板电话13812345678不接，再也不来了再也不来了",
            12,
        );
        assert!(s.chars().count() <= 13);
        assert!(!s.contains("1381234"));
    }

    proptest! {
        #[test]
        fn any_mobile_number_is_masked(prefix in "[a-z\u{4e00}-\u{4e10} ]{0,10}", n in 3u8..=9, rest in 100_000_000u64..999_999_999) {
            let phone = format!("1{n}{rest}");
            let r = redact(&format!("{prefix}{phone}好"));
            prop_assert!(!r.contains(&phone));
        }

        #[test]
        fn mobiles_in_every_usual_format_are_masked(
            prefix in "[a-z\u{4e00}-\u{4e20}，。 ]{0,12}",
            suffix in "[a-z\u{4e00}-\u{4e20}，。 ]{0,12}",
            n in 3u8..=9,
            a in 0u32..10,
            b in 0u32..10_000,
            c in 0u32..10_000,
            style in 0usize..6,
        ) {
            let digits = format!("1{n}{a}{b:04}{c:04}");
            let shown = match style {
                0 => digits.clone(),
                1 => format!("1{n}{a} {b:04} {c:04}"),
                2 => format!("1{n}{a}-{b:04}-{c:04}"),
                3 => format!("+86 1{n}{a}{b:04}{c:04}"),
                4 => format!("+86-1{n}{a}-{b:04}-{c:04}"),
                _ => format!("0086 1{n}{a} {b:04} {c:04}"),
            };
            let r = redact(&format!("{prefix}{shown}{suffix}"));
            prop_assert!(!r.replace([' ', '-'], "").contains(&digits), "{} -> {}", shown, r);
            prop_assert!(!r.contains(&format!("{b:04}{c:04}")) && !r.contains(&format!("{b:04} {c:04}")) && !r.contains(&format!("{b:04}-{c:04}")), "{} -> {}", shown, r);
        }

        #[test]
        fn landlines_are_masked(
            prefix in "[\u{4e00}-\u{4e20}，]{0,8}",
            area in prop::sample::select(vec!["010", "021", "0571", "0755", "0898"]),
            number in 2_000_000u32..99_999_999,
            style in 0usize..5,
        ) {
            let shown = match style {
                0 => format!("{area}-{number}"),
                1 => format!("{area} {number}"),
                2 => format!("({area}){number}"),
                3 => format!("（{area}）{number}"),
                _ => format!("{area}{number}"),
            };
            let r = redact(&format!("{prefix}前台电话{shown}，"));
            prop_assert!(!r.contains(&number.to_string()), "{} -> {}", shown, r);
        }

        #[test]
        fn id_card_numbers_are_masked(
            region in 110_000u32..659_999,
            year in 1930u32..2020,
            month in 1u32..=12,
            day in 1u32..=28,
            seq in 0u32..1000,
            check in prop::sample::select(vec!['0', '5', '9', 'X', 'x']),
            prefix in "[\u{4e00}-\u{4e20}：]{0,6}",
        ) {
            let id = format!("{region}{year}{month:02}{day:02}{seq:03}{check}");
            let r = redact(&format!("{prefix}{id}丢在房间了"));
            prop_assert!(!r.contains(&id[..17]), "{} -> {}", id, r);
        }

        #[test]
        fn emails_are_masked(
            user in "[a-z][a-z0-9._+\\-]{0,15}",
            host in "[a-z0-9]{1,10}",
            tld in prop::sample::select(vec!["com", "cn", "com.cn", "net", "org"]),
            prefix in "[\u{4e00}-\u{4e20}：]{0,6}",
        ) {
            let email = format!("{user}@{host}.{tld}");
            let r = redact(&format!("{prefix}{email}，有事联系"));
            prop_assert!(!r.contains(&email) && !r.contains(&format!("{user}@")), "{} -> {}", email, r);
        }

        #[test]
        fn introduced_wechat_and_qq_ids_are_masked(
            intro in prop::sample::select(vec!["微信", "微信号", "薇信", "VX", "vx:", "wechat ", "QQ", "qq号", "扣扣", "V信："]),
            sep in prop::sample::select(vec!["", " ", "：", ":", "是"]),
            id in "[a-zA-Z][a-zA-Z0-9_]{5,15}",
        ) {
            let r = redact(&format!("老板让加他{intro}{sep}{id}返现"));
            prop_assert!(!r.contains(&id), "{}{}{} -> {}", intro, sep, id, r);
        }

        #[test]
        fn text_without_identifiers_is_unchanged(s in "[\u{4e00}-\u{9fa5}，。！a-z ]{0,80}") {
            prop_assert_eq!(redact(&s), s);
        }

        /// Skipping the patterns that need an `@` or a digit when the
        /// text has neither changes nothing, whatever the text (digits of
        /// other scripts, full-width forms, masks-like text included).
        #[test]
        fn the_guard_skips_only_patterns_that_cannot_match(
            s in "([\u{4e00}-\u{4e10}a-zA-Z_ \\-:：，。@.+()（）Xx\t\n]|[0-9]{1,12}|[\u{0660}-\u{0669}]{1,12}|[\u{0966}-\u{096f}]{1,12}|[\u{ff10}-\u{ff19}]{1,12}|微信|qq号|扣扣|\\[number\\]){0,30}",
        ) {
            prop_assert_eq!(redact(&s), apply(&s, |_| true));
        }

        /// The one-pass snippet says what its definition says: control
        /// characters read as spaces, trimmed, then cut with an ellipsis.
        #[test]
        fn snippet_is_the_trimmed_redacted_text_cut(
            s in "([\u{4e00}-\u{4e10}a-z ，]|[\u{0}-\u{1f}]|[\u{7f}-\u{9f}]|\u{3000}|\u{200b}|[0-9]){0,40}",
            max in 0usize..30,
        ) {
            let spaced: String = redact(&undisguise(&s))
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let clean = spaced.trim();
            let want = if clean.chars().count() <= max {
                clean.to_owned()
            } else {
                clean.chars().take(max).chain(['…']).collect()
            };
            prop_assert_eq!(snippet(&s, max), want);
        }

        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = snippet(&s, 40);
        }
    }
}
