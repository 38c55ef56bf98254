//! Risk signals per review, from lexicon files (`config/lexicons/*.toml`).
//!
//! A term counts only when the reviewer asserts it happened: not negated
//! (没有拉肚子), not a worry or hypothetical (怕拉肚子), not about another place
//! (隔壁那家). Cues are looked for in the same clause, shortly before the term,
//! after the last scope breaker (吃了不到一小时就拉肚子 is a report).

use crate::category::{Category, CategorySet};
use crate::review::Domain;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The lexicons shipped in the repository, compiled in so that the binary
/// works anywhere; `lexicons.dir` in the config replaces them.
pub const BUILTIN_COMMON: &str = include_str!("../config/lexicons/common.toml");
pub const BUILTIN_FOOD: &str = include_str!("../config/lexicons/food.toml");
pub const BUILTIN_TOURISM: &str = include_str!("../config/lexicons/tourism.toml");

#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    #[error("cannot read lexicon {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("lexicon {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonFile {
    clause_breaks: String,
    window_chars: usize,
    window_chars_latin: usize,
    negators: Vec<String>,
    hypothetical: Vec<String>,
    other_place: Vec<String>,
    not_cues: Vec<String>,
    scope_breakers: Vec<String>,
    #[serde(default)]
    variants: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainFile {
    domain: String,
    categories: BTreeMap<String, CategoryTerms>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryTerms {
    terms: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    pairs: Vec<PairTerms>,
}

/// A two-part pattern: a `first` term followed, within `within` characters
/// of the same sentence, by a `then` term (照片 … 不符, 结账时 … 多收).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PairTerms {
    first: Vec<String>,
    then: Vec<String>,
    within: usize,
}

/// Characters that end a sentence: a pair never spans one.
const SENTENCE_BREAKS: &[char] = &['。', '！', '？', '!', '?', '\n', ';', '；'];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cue {
    Negator,
    Hypothetical,
    OtherPlace,
    Ignored,
    Breaker,
}

#[derive(Debug, Clone, Copy)]
enum TermKind {
    Risk(Category),
    Exclude,
}

struct DomainMatcher {
    terms: AhoCorasick,
    kinds: Vec<TermKind>,
    names: Vec<String>,
    pairs: PairMatcher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairRole {
    First,
    Then,
}

/// All two-part patterns of a domain, in one automaton over their parts.
struct PairMatcher {
    /// Distinct part strings; a string may serve several pairs and roles.
    parts: AhoCorasick,
    /// For each part string, the (pair, role)s it plays.
    roles: Vec<Vec<(usize, PairRole)>>,
    /// Per pair: category, window in characters, display name.
    pairs: Vec<(Category, usize, String)>,
}

/// One risk term found and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub category: Category,
    /// The lexicon term, normalised.
    pub term: String,
}

/// What a review says, as far as risk goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extraction {
    pub categories: CategorySet,
    pub hits: Vec<Hit>,
}

/// A compiled set of lexicons. Build once, share (`Arc`) and swap on reload.
pub struct Extractor {
    clause_breaks: Vec<char>,
    window_chars: usize,
    window_chars_latin: usize,
    cues: AhoCorasick,
    cue_kinds: Vec<Cue>,
    variants: AhoCorasick,
    variant_targets: Vec<String>,
    food: DomainMatcher,
    tourism: DomainMatcher,
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("food_terms", &self.food.names.len())
            .field("tourism_terms", &self.tourism.names.len())
            .finish()
    }
}

fn automaton(patterns: &[String], path: &str) -> Result<AhoCorasick, LexiconError> {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostLongest)
        .build(patterns)
        .map_err(|e| LexiconError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

fn invalid(path: &str, message: impl Into<String>) -> LexiconError {
    LexiconError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

impl Extractor {
    /// The lexicons compiled into the binary.
    pub fn builtin() -> Result<Extractor, LexiconError> {
        Extractor::from_sources(
            ("builtin common.toml", BUILTIN_COMMON),
            ("builtin food.toml", BUILTIN_FOOD),
            ("builtin tourism.toml", BUILTIN_TOURISM),
        )
    }

    /// Lexicons from a directory holding `common.toml`, `food.toml` and `tourism.toml`.
    pub fn from_dir(dir: &Path) -> Result<Extractor, LexiconError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map(|s| (path.display().to_string(), s))
                .map_err(|source| LexiconError::Read {
                    path: path.display().to_string(),
                    source,
                })
        };
        let (c, f, t) = (
            read("common.toml")?,
            read("food.toml")?,
            read("tourism.toml")?,
        );
        Extractor::from_sources((&c.0, &c.1), (&f.0, &f.1), (&t.0, &t.1))
    }

    pub fn from_sources(
        common: (&str, &str),
        food: (&str, &str),
        tourism: (&str, &str),
    ) -> Result<Extractor, LexiconError> {
        let c: CommonFile =
            toml::from_str(common.1).map_err(|e| invalid(common.0, e.to_string()))?;
        let variant_keys: Vec<String> = c.variants.keys().map(|k| normalise_chars(k)).collect();
        let variant_targets: Vec<String> =
            c.variants.values().map(|v| normalise_chars(v)).collect();
        if variant_keys.iter().any(String::is_empty) {
            return Err(invalid(common.0, "a variant key is empty"));
        }
        let mut cue_patterns = Vec::new();
        let mut cue_kinds = Vec::new();
        for (list, kind) in [
            (&c.not_cues, Cue::Ignored),
            (&c.negators, Cue::Negator),
            (&c.hypothetical, Cue::Hypothetical),
            (&c.other_place, Cue::OtherPlace),
            (&c.scope_breakers, Cue::Breaker),
        ] {
            for p in list {
                let p = normalise_chars(p);
                if p.is_empty() {
                    return Err(invalid(common.0, "an empty cue"));
                }
                cue_patterns.push(p);
                cue_kinds.push(kind);
            }
        }
        Ok(Extractor {
            clause_breaks: c.clause_breaks.chars().collect(),
            window_chars: c.window_chars,
            window_chars_latin: c.window_chars_latin,
            cues: automaton(&cue_patterns, common.0)?,
            cue_kinds,
            variants: automaton(&variant_keys, common.0)?,
            variant_targets,
            food: domain_matcher(food, Domain::Food)?,
            tourism: domain_matcher(tourism, Domain::Tourism)?,
        })
    }

    fn matcher(&self, domain: Domain) -> &DomainMatcher {
        match domain {
            Domain::Food => &self.food,
            Domain::Tourism => &self.tourism,
        }
    }

    /// Normalise text for matching: see [`normalise_chars`], then fold variants.
    pub fn normalise(&self, text: &str) -> String {
        let chars = normalise_chars(text);
        if self.variant_targets.is_empty() {
            return chars;
        }
        self.variants.replace_all(&chars, &self.variant_targets)
    }

    /// The risk categories a review asserts, with the terms behind them.
    pub fn extract(&self, domain: Domain, text: &str) -> Extraction {
        let norm = self.normalise(text);
        let m = self.matcher(domain);
        let mut out = Extraction::default();
        for clause in norm.split(|ch: char| self.clause_breaks.contains(&ch)) {
            if clause.is_empty() {
                continue;
            }
            for hit in m.terms.find_iter(clause) {
                let TermKind::Risk(category) = m.kinds[hit.pattern().as_usize()] else {
                    continue;
                };
                if !latin_boundaries(clause, hit.start(), hit.end()) {
                    continue;
                }
                if self.cancelled(clause, hit.start()) {
                    continue;
                }
                out.categories.insert(category);
                if out.hits.len() < 16 {
                    out.hits.push(Hit {
                        category,
                        term: m.names[hit.pattern().as_usize()].clone(),
                    });
                }
            }
        }
        self.extract_pairs(&m.pairs, &norm, &mut out);
        out
    }

    /// Two-part patterns: a `then` part counts when a `first` part of the
    /// same pair ends at most `within` characters before it, in the same
    /// sentence, and neither part is negated, hypothetical or elsewhere.
    fn extract_pairs(&self, pm: &PairMatcher, norm: &str, out: &mut Extraction) {
        if pm.pairs.is_empty() {
            return;
        }
        // (end of the first part, start of the first part) per pair, in text order.
        let mut firsts: Vec<Vec<(usize, usize)>> = vec![Vec::new(); pm.pairs.len()];
        let mut found = vec![false; pm.pairs.len()];
        for mat in pm.parts.find_overlapping_iter(norm) {
            if !latin_boundaries(norm, mat.start(), mat.end()) {
                continue;
            }
            for &(pair, role) in &pm.roles[mat.pattern().as_usize()] {
                match role {
                    PairRole::First => {
                        if firsts[pair].len() < 64 {
                            firsts[pair].push((mat.end(), mat.start()));
                        }
                    }
                    PairRole::Then if !found[pair] => {
                        let (category, within, ref name) = pm.pairs[pair];
                        let Some(&(_, first_start)) = firsts[pair]
                            .iter()
                            .rev()
                            .find(|(end, _)| *end <= mat.start())
                            .filter(|(end, _)| {
                                let gap = &norm[*end..mat.start()];
                                !gap.contains(SENTENCE_BREAKS) && gap.chars().count() <= within
                            })
                        else {
                            continue;
                        };
                        if self.cancelled_at(norm, first_start)
                            || self.cancelled_at(norm, mat.start())
                        {
                            continue;
                        }
                        found[pair] = true;
                        out.categories.insert(category);
                        if out.hits.len() < 16 {
                            out.hits.push(Hit {
                                category,
                                term: name.clone(),
                            });
                        }
                    }
                    PairRole::Then => {}
                }
            }
        }
    }

    /// [`Extractor::cancelled`] for a position in the whole text: looks in its clause.
    fn cancelled_at(&self, norm: &str, pos: usize) -> bool {
        let clause_start = norm[..pos]
            .rfind(|ch: char| self.clause_breaks.contains(&ch))
            .map_or(0, |i| {
                i + norm[i..].chars().next().map_or(1, char::len_utf8)
            });
        self.cancelled(&norm[clause_start..], pos - clause_start)
    }

    /// Whether a cue before `start` in `clause` cancels the term there.
    fn cancelled(&self, clause: &str, start: usize) -> bool {
        let before = &clause[..start];
        let latin = clause[start..].starts_with(|c: char| c.is_ascii_alphanumeric());
        let window = if latin {
            self.window_chars_latin
        } else {
            self.window_chars
        };
        let from = before
            .char_indices()
            .rev()
            .nth(window.saturating_sub(1))
            .map_or(0, |(i, _)| i);
        // Another place anywhere earlier in the clause.
        let mut negated = false;
        for cue in self.cues.find_iter(before) {
            if !latin_boundaries(before, cue.start(), cue.end()) {
                continue;
            }
            match self.cue_kinds[cue.pattern().as_usize()] {
                Cue::OtherPlace => return true,
                Cue::Breaker => negated = false,
                Cue::Negator | Cue::Hypothetical if cue.start() >= from => negated = true,
                _ => {}
            }
        }
        negated
    }
}

fn domain_matcher(src: (&str, &str), domain: Domain) -> Result<DomainMatcher, LexiconError> {
    let (path, text) = src;
    let f: DomainFile = toml::from_str(text).map_err(|e| invalid(path, e.to_string()))?;
    if f.domain != domain.as_str() {
        return Err(invalid(
            path,
            format!("domain is {:?}, expected {:?}", f.domain, domain.as_str()),
        ));
    }
    let mut names = Vec::new();
    let mut kinds = Vec::new();
    let mut pair_parts: Vec<String> = Vec::new();
    let mut roles: Vec<Vec<(usize, PairRole)>> = Vec::new();
    let mut pairs = Vec::new();
    for (name, terms) in &f.categories {
        let category = Category::parse(name)
            .filter(|c| Category::of(domain).contains(c))
            .ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "category {name:?} is not one of {}'s: {:?}",
                        domain.as_str(),
                        Category::of(domain)
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                    ),
                )
            })?;
        for t in &terms.terms {
            names.push(normalise_chars(t));
            kinds.push(TermKind::Risk(category));
        }
        for t in &terms.exclude {
            names.push(normalise_chars(t));
            kinds.push(TermKind::Exclude);
        }
        for pair in &terms.pairs {
            if pair.first.is_empty() || pair.then.is_empty() || pair.within == 0 {
                return Err(invalid(
                    path,
                    format!(
                        "a pair of {name:?} needs non-empty `first` and `then` lists and `within` > 0"
                    ),
                ));
            }
            let idx = pairs.len();
            let display = format!(
                "{}…{}",
                normalise_chars(&pair.first[0]),
                normalise_chars(&pair.then[0])
            );
            pairs.push((category, pair.within, display));
            for (list, role) in [(&pair.first, PairRole::First), (&pair.then, PairRole::Then)] {
                for part in list {
                    let part = normalise_chars(part);
                    if part.is_empty() {
                        return Err(invalid(
                            path,
                            format!("an empty part in a pair of {name:?}"),
                        ));
                    }
                    let at = match pair_parts.iter().position(|p| *p == part) {
                        Some(at) => at,
                        None => {
                            pair_parts.push(part);
                            roles.push(Vec::new());
                            pair_parts.len() - 1
                        }
                    };
                    if !roles[at].contains(&(idx, role)) {
                        roles[at].push((idx, role));
                    }
                }
            }
        }
    }
    if names.iter().any(String::is_empty) {
        return Err(invalid(path, "an empty term"));
    }
    let parts = AhoCorasickBuilder::new()
        .match_kind(MatchKind::Standard)
        .build(&pair_parts)
        .map_err(|e| invalid(path, e.to_string()))?;
    Ok(DomainMatcher {
        terms: automaton(&names, path)?,
        kinds,
        names,
        pairs: PairMatcher {
            parts,
            roles,
            pairs,
        },
    })
}

/// A Latin-script match must stand on word boundaries ("rat" is not in "rating").
fn latin_boundaries(s: &str, start: usize, end: usize) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric();
    let first_latin = s[start..].chars().next().is_some_and(word);
    let last_latin = s[..end].chars().next_back().is_some_and(word);
    (!first_latin || !s[..start].chars().next_back().is_some_and(word))
        && (!last_latin || !s[end..].chars().next().is_some_and(word))
}

/// Character-level normalisation: lower case, full-width ASCII to half-width,
/// zero-width, bidi and emoji characters removed, spaces between Chinese
/// characters removed (拉 肚 子 -> 拉肚子), runs of white space folded.
pub fn normalise_chars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for ch in text.chars() {
        let ch = match ch as u32 {
            0xFF01..=0xFF5E => char::from_u32(ch as u32 - 0xFEE0).unwrap_or(ch),
            0x3000 => ' ',
            _ => ch,
        };
        if is_invisible(ch) {
            continue;
        }
        if ch.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            pending_space = false;
            let prev_cjk = out.chars().next_back().is_some_and(is_cjk);
            if !(prev_cjk && is_cjk(ch)) {
                out.push(' ');
            }
        }
        for lc in ch.to_lowercase() {
            out.push(lc);
        }
    }
    out
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x9FFF | 0xF900..=0xFAFF)
}

fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0xFEFF | 0xFE00..=0xFE0F
        | 0x00AD | 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0xE0000..=0xE007F)
        || (c.is_control() && !c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Category as C;

    fn x() -> Extractor {
        Extractor::builtin().unwrap()
    }

    fn food(text: &str) -> Vec<&'static str> {
        x().extract(Domain::Food, text).categories.sorted_names()
    }

    fn tour(text: &str) -> Vec<&'static str> {
        x().extract(Domain::Tourism, text).categories.sorted_names()
    }

    #[test]
    fn reports_count_whatever_the_sentiment() {
        assert_eq!(food("好吃，就是汤里有根头发"), vec!["foreign_object"]);
        assert_eq!(food("吃完拉肚子了，还吐了"), vec!["illness"]);
        assert_eq!(food("太难吃了"), Vec::<&str>::new());
        assert_eq!(
            food("Found a cockroach in the soup and got sick after"),
            vec!["foreign_object", "illness"]
        );
    }

    #[test]
    fn negation_worry_and_other_places_do_not_count() {
        assert!(food("吃了没有拉肚子，放心").is_empty());
        assert!(food("就怕拉肚子").is_empty());
        assert!(food("担心会不会食物中毒").is_empty());
        assert!(food("隔壁那家吃了拉肚子").is_empty());
        assert!(food("We did not get sick at all").is_empty());
        assert!(tour("房间很干净").is_empty());
        assert!(tour("房间不脏").is_empty());
    }

    #[test]
    fn scope_ends_at_breakers_and_pseudo_cues() {
        assert_eq!(food("吃了不到一小时就拉肚子"), vec!["illness"]);
        assert_eq!(food("无语了吃出头发"), vec!["foreign_object"]);
        assert_eq!(food("没想到吃完拉肚子"), vec!["illness"]);
    }

    #[test]
    fn figurative_and_lookalike_phrases_do_not_count() {
        assert!(food("难吃得快吐了").is_empty());
        assert!(food("送来的塑料袋破了").is_empty());
        assert!(food("The ratings lie").is_empty());
    }

    #[test]
    fn evasions_are_folded() {
        assert_eq!(food("吃完拉\u{200b}肚子"), vec!["illness"]);
        assert_eq!(food("吃完拉 肚 子"), vec!["illness"]);
        assert_eq!(food("吃完拉杜子"), vec!["illness"]);
        assert_eq!(food("湯裡有頭髮"), vec!["foreign_object"]);
        assert_eq!(food("FOOD POISONING"), vec!["illness"]);
        assert_eq!(food("吃完拉😭肚子"), vec!["illness"]);
    }

    #[test]
    fn tourism_categories() {
        assert_eq!(tour("前台乱收费，押金不退"), vec!["price_fraud"]);
        assert_eq!(tour("导游强制购物，不买不让走"), vec!["forced_consumption"]);
        assert_eq!(tour("床单有污渍，卫生很差"), vec!["hygiene"]);
        let e = x().extract(Domain::Tourism, "浴室漏电，差点触电");
        assert!(e.categories.contains(C::Safety));
        assert!(e.hits.iter().any(|h| h.term == "漏电"));
    }

    #[test]
    fn two_part_patterns_need_both_parts_in_one_sentence() {
        assert_eq!(
            tour("网上的照片看着很新，实际完全不一样"),
            vec!["false_advertising"]
        );
        assert_eq!(tour("结账时竟然要收两天的钱"), vec!["price_fraud"]);
        assert_eq!(tour("退房的时候硬是要我赔偿毛巾"), vec!["price_fraud"]);
        // The parts in different sentences, in the wrong order, or negated.
        assert!(tour("照片拍得很好。房间布局不一样").is_empty());
        assert!(tour("房间不一样，照片也好看").is_empty());
        assert!(tour("实物和图片没有不一样").is_empty());
        let e = x().extract(Domain::Tourism, "携程上的图片和实物差太多");
        assert!(e.hits.iter().any(|h| h.term == "照片…不符"), "{:?}", e.hits);
    }

    #[test]
    fn a_pair_without_parts_is_refused() {
        let bad = "domain = \"tourism\"\n[categories.safety]\nterms = [\"x\"]\n[[categories.safety.pairs]]\nfirst = []\nthen = [\"y\"]\nwithin = 3\n";
        let e = Extractor::from_sources(
            ("c", BUILTIN_COMMON),
            ("f", BUILTIN_FOOD),
            ("my/t.toml", bad),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("my/t.toml") && e.to_string().contains("first"),
            "{e}"
        );
    }

    #[test]
    fn domain_categories_stay_in_their_domain() {
        // "price_fraud" is not a food category, whatever the text says.
        assert!(food("乱收费").is_empty());
    }

    #[test]
    fn a_bad_lexicon_is_refused_with_its_path() {
        let bad = "domain = \"food\"\n[categories.fashion]\nterms = [\"x\"]\n";
        let e = Extractor::from_sources(
            ("c", BUILTIN_COMMON),
            ("my/food.toml", bad),
            ("t", BUILTIN_TOURISM),
        )
        .unwrap_err();
        assert!(e.to_string().contains("my/food.toml") && e.to_string().contains("fashion"));
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalise_chars("ＡＢＣ　拉 肚"), "abc 拉肚");
        assert_eq!(normalise_chars("a\u{202e}b"), "ab");
    }
}
