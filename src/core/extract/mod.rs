//! Risk signals per review, from lexicon files (`config/lexicons/*.toml`).
//!
//! A term counts only when the reviewer asserts it happened: not negated
//! (没有拉肚子), not a worry or hypothetical (怕拉肚子), not about another place
//! (隔壁那家). Cues are looked for in the same clause, shortly before the term,
//! after the last scope breaker (吃了不到一小时就拉肚子 is a report).

use crate::core::extract::ngram::SignalModel;
use crate::types::Domain;
use crate::types::category::{Category, CategorySet};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
pub mod ngram;

/// The lexicons shipped in the repository, compiled in so that the binary
/// works anywhere; `lexicons.dir` in the config replaces them.
pub const BUILTIN_COMMON: &str = include_str!("../../../config/lexicons/common.toml");
pub const BUILTIN_FOOD: &str = include_str!("../../../config/lexicons/food.toml");
pub const BUILTIN_TOURISM: &str = include_str!("../../../config/lexicons/tourism.toml");

/// Learned signal models beside the lexicons (`src/ngram.rs`), one per domain,
/// each optional: `signals-food.json`, `signals-tourism.json`.
pub const SIGNAL_MODEL_FILES: [(&str, Domain); 2] = [
    ("signals-food.json", Domain::Food),
    ("signals-tourism.json", Domain::Tourism),
];

/// The signal models compiled in (food has none: its lexicons meet the bar).
const BUILTIN_SIGNAL_MODELS: [Option<&str>; 2] = [None, None];

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
    /// The learned complement, asked for what the lexicons did not find.
    model: Option<SignalModel>,
    /// The terms that hold no clause break (the others are never found in
    /// a clause), each with whether it is a risk term: a scan of a whole
    /// text with them finds just what a scan of each of its clauses finds
    /// (see `lexicon_on`). `None` when there are none.
    clause_terms: Option<(AhoCorasick, Vec<bool>)>,
    /// Every risk term, every first part of a pair and every variant key,
    /// found anywhere (standard match kind). A text (after
    /// [`normalise_chars`]) that holds none of them has no variant to fold,
    /// and the lexicons find nothing in it: no risk term, so no clause has
    /// one, and no pair without its first part. Most texts: one scan
    /// instead of three (variants, clause terms, pair parts).
    quiet: AhoCorasick,
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
    clause_breaks: ClauseBreaks,
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
        // A DFA: the quickest search (the same matches as any other kind),
        // for a little more memory; lexicons are small.
        .kind(Some(AhoCorasickKind::DFA))
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
    /// The lexicons and signal models compiled into the binary.
    pub fn builtin() -> Result<Extractor, LexiconError> {
        let mut ex = Extractor::from_sources(
            ("builtin common.toml", BUILTIN_COMMON),
            ("builtin food.toml", BUILTIN_FOOD),
            ("builtin tourism.toml", BUILTIN_TOURISM),
        )?;
        for ((name, domain), src) in SIGNAL_MODEL_FILES.iter().zip(BUILTIN_SIGNAL_MODELS) {
            if let Some(src) = src {
                ex.set_model(*domain, Some((&format!("builtin {name}"), src)))?;
            }
        }
        Ok(ex)
    }

    /// Replace (or with `None` remove) the learned signal model of a domain.
    pub fn set_model(
        &mut self,
        domain: Domain,
        src: Option<(&str, &str)>,
    ) -> Result<(), LexiconError> {
        let model = match src {
            Some((path, text)) => Some(
                SignalModel::parse(path, text, domain).map_err(|e| invalid(path, e.to_string()))?,
            ),
            None => None,
        };
        match domain {
            Domain::Food => self.food.model = model,
            Domain::Tourism => self.tourism.model = model,
        }
        Ok(())
    }

    /// Whether a learned signal model serves `domain`.
    pub fn has_model(&self, domain: Domain) -> bool {
        self.matcher(domain).model.is_some()
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
        let mut ex = Extractor::from_sources((&c.0, &c.1), (&f.0, &f.1), (&t.0, &t.1))?;
        for (name, domain) in SIGNAL_MODEL_FILES {
            if dir.join(name).is_file() {
                let (path, text) = read(name)?;
                ex.set_model(domain, Some((&path, &text)))?;
            }
        }
        Ok(ex)
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
        let clause_breaks = ClauseBreaks::new(&c.clause_breaks);
        let food = domain_matcher(food, Domain::Food, &clause_breaks, &variant_keys)?;
        let tourism = domain_matcher(tourism, Domain::Tourism, &clause_breaks, &variant_keys)?;
        Ok(Extractor {
            clause_breaks,
            window_chars: c.window_chars,
            window_chars_latin: c.window_chars_latin,
            cues: automaton(&cue_patterns, common.0)?,
            cue_kinds,
            variants: automaton(&variant_keys, common.0)?,
            variant_targets,
            food,
            tourism,
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
        self.fold_variants(normalise_chars(text))
    }

    /// `chars` (from [`normalise_chars`]) with its variants folded.
    fn fold_variants(&self, chars: String) -> String {
        // Most texts hold no variant: keep them as they are, uncopied.
        if self.variant_targets.is_empty() || !self.variants.is_match(&chars) {
            return chars;
        }
        self.variants.replace_all(&chars, &self.variant_targets)
    }

    /// The risk categories a review asserts, with the terms behind them:
    /// the lexicons', then the learned model's for what they did not find.
    pub fn extract(&self, domain: Domain, text: &str) -> Extraction {
        let (norm, mut out) = self.lexicons(domain, text);
        if let Some(model) = &self.matcher(domain).model {
            for (category, pos, why) in model.judge(&norm, out.categories).fired {
                // The n-gram that weighs most must not be negated, a worry
                // or about another place.
                if self.cancelled_at(&norm, pos, 0) {
                    continue;
                }
                out.categories.insert(category);
                if out.hits.len() < 16 {
                    out.hits.push(Hit {
                        category,
                        term: why,
                    });
                }
            }
        }
        out
    }

    /// What the lexicons alone find (no learned model).
    pub fn extract_lexicon(&self, domain: Domain, text: &str) -> Extraction {
        self.lexicons(domain, text).1
    }

    /// The normalised text ([`Extractor::normalise`]) and what the lexicons
    /// find in it; a text that holds nothing `quiet` knows is not walked.
    fn lexicons(&self, domain: Domain, text: &str) -> (String, Extraction) {
        let chars = normalise_chars(text);
        if !self.matcher(domain).quiet.is_match(&chars) {
            // No variant: `chars` is the normalised text. Nothing found.
            return (chars, Extraction::default());
        }
        let norm = self.fold_variants(chars);
        let out = self.lexicon_on(domain, &norm);
        (norm, out)
    }

    fn lexicon_on(&self, domain: Domain, norm: &str) -> Extraction {
        let m = self.matcher(domain);
        let mut out = Extraction::default();
        // Most texts name no risk term, and one scan of the whole text tells
        // so: with terms that hold no clause break, no match spans one, so
        // the leftmost-longest matches of the whole text are those of its
        // clauses, one clause after another. Only a text with a risk term is
        // walked clause by clause, with its cues.
        let any_risk = m.clause_terms.as_ref().is_some_and(|(terms, risk)| {
            terms
                .find_iter(norm)
                .any(|hit| risk[hit.pattern().as_usize()])
        });
        let clauses = if any_risk { norm } else { "" };
        let mut cues: Vec<CueMatch> = Vec::new();
        for clause in clauses.split(|ch: char| self.clause_breaks.contains(ch)) {
            if clause.is_empty() {
                continue;
            }
            // Cues are found once per clause and walked alongside the terms,
            // so a clause costs linear time however many terms it holds.
            cues.clear();
            let mut scope = CueScope::default();
            let mut next_cue = 0;
            let mut cues_found = false;
            for hit in m.terms.find_iter(clause) {
                let TermKind::Risk(category) = m.kinds[hit.pattern().as_usize()] else {
                    continue;
                };
                if !latin_boundaries(clause, hit.start(), hit.end()) {
                    continue;
                }
                if !cues_found {
                    self.find_cues(clause, &mut cues);
                    cues_found = true;
                }
                while let Some(c) = cues.get(next_cue).filter(|c| c.end <= hit.start()) {
                    scope.pass(c, hit.start());
                    next_cue += 1;
                }
                if scope.cancels(self.window_from(clause, hit.start())) {
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
        self.extract_pairs(&m.pairs, norm, &mut out);
        out
    }

    /// Two-part patterns: a `then` part counts when a `first` part of the
    /// same pair ends at most `within` characters before it, in the same
    /// sentence, and neither part is negated, hypothetical or elsewhere.
    fn extract_pairs(&self, pm: &PairMatcher, norm: &str, out: &mut Extraction) {
        if pm.pairs.is_empty() {
            return;
        }
        // (end of the first part, start of the first part) per pair, in text
        // order, and whether the pair was found; both made at the first
        // first part (most texts hold none).
        let mut firsts: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut found: Vec<bool> = Vec::new();
        // Each check reads a clause: bounded, so that no text costs quadratic time.
        let mut checks_left = 256u32;
        for mat in pm.parts.find_overlapping_iter(norm) {
            if !latin_boundaries(norm, mat.start(), mat.end()) {
                continue;
            }
            for &(pair, role) in &pm.roles[mat.pattern().as_usize()] {
                match role {
                    PairRole::First => {
                        if firsts.is_empty() {
                            firsts = vec![Vec::new(); pm.pairs.len()];
                            found = vec![false; pm.pairs.len()];
                        }
                        if firsts[pair].len() < 64 {
                            firsts[pair].push((mat.end(), mat.start()));
                        }
                    }
                    // (No first part yet: nothing to pair with.)
                    PairRole::Then if found.get(pair) == Some(&false) => {
                        let (category, within, ref name) = pm.pairs[pair];
                        let Some(&(first_end, first_start)) = firsts[pair]
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
                        if checks_left == 0 {
                            return;
                        }
                        checks_left -= 1;
                        // A cue before the first part cancels it (and so the
                        // pair); the second part answers only to cues after
                        // the first (照片和实物根本不是一回事: 不 is the pair's own).
                        if self.cancelled_at(norm, first_start, 0)
                            || self.cancelled_at(norm, mat.start(), first_end)
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

    /// [`Extractor::cancelled`] for a position in the whole text: looks in its
    /// clause, from byte `from` on at the earliest.
    fn cancelled_at(&self, norm: &str, pos: usize, from: usize) -> bool {
        let clause_start = norm[..pos]
            .rfind(|ch: char| self.clause_breaks.contains(ch))
            .map_or(0, |i| {
                i + norm[i..].chars().next().map_or(1, char::len_utf8)
            })
            .max(from.min(pos));
        self.cancelled(&norm[clause_start..], pos - clause_start)
    }

    /// Whether a cue before `start` in `clause` cancels the term there.
    fn cancelled(&self, clause: &str, start: usize) -> bool {
        let mut cues = Vec::new();
        self.find_cues(&clause[..start], &mut cues);
        let mut scope = CueScope::default();
        for c in &cues {
            scope.pass(c, start);
        }
        scope.cancels(self.window_from(clause, start))
    }

    /// Every cue of `clause`, in order.
    fn find_cues(&self, clause: &str, out: &mut Vec<CueMatch>) {
        for cue in self.cues.find_iter(clause) {
            let (start, end) = (cue.start(), cue.end());
            let word = |c: char| c.is_ascii_alphanumeric();
            let first_latin = clause[start..].chars().next().is_some_and(word);
            let last_latin = clause[..end].chars().next_back().is_some_and(word);
            out.push(CueMatch {
                start,
                end,
                kind: self.cue_kinds[cue.pattern().as_usize()],
                left_ok: !first_latin || !clause[..start].chars().next_back().is_some_and(word),
                right_ok: !last_latin || !clause[end..].chars().next().is_some_and(word),
            });
        }
    }

    /// Where the negation window of a term starting at `start` begins.
    fn window_from(&self, clause: &str, start: usize) -> usize {
        let latin = clause[start..].starts_with(|c: char| c.is_ascii_alphanumeric());
        let window = if latin {
            self.window_chars_latin
        } else {
            self.window_chars
        };
        clause[..start]
            .char_indices()
            .rev()
            .nth(window.saturating_sub(1))
            .map_or(0, |(i, _)| i)
    }
}

/// A cue found in a clause.
struct CueMatch {
    start: usize,
    end: usize,
    kind: Cue,
    /// Stands on a word boundary at its start (Latin script only).
    left_ok: bool,
    /// Stands on a word boundary at its end within the clause.
    right_ok: bool,
}

/// What the cues seen so far in a clause say about the next term.
#[derive(Default)]
struct CueScope {
    /// Another place was named earlier in the clause.
    elsewhere: bool,
    /// Start of the latest negator or hypothetical after the last scope breaker.
    negation: Option<usize>,
}

impl CueScope {
    /// Take in a cue that ends at or before the term starting at `term_start`.
    fn pass(&mut self, c: &CueMatch, term_start: usize) {
        if !(c.left_ok && (c.right_ok || c.end == term_start)) {
            return;
        }
        match c.kind {
            Cue::OtherPlace => self.elsewhere = true,
            Cue::Breaker => self.negation = None,
            Cue::Negator | Cue::Hypothetical => self.negation = Some(c.start),
            Cue::Ignored => {}
        }
    }

    /// Whether the term is cancelled, its window starting at byte `from`.
    fn cancels(&self, from: usize) -> bool {
        self.elsewhere || self.negation.is_some_and(|at| at >= from)
    }
}

fn domain_matcher(
    src: (&str, &str),
    domain: Domain,
    clause_breaks: &ClauseBreaks,
    variant_keys: &[String],
) -> Result<DomainMatcher, LexiconError> {
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
    let standard = |patterns: &[&String]| {
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(patterns)
            .map_err(|e| invalid(path, e.to_string()))
    };
    let parts = standard(&pair_parts.iter().collect::<Vec<_>>())?;
    let quiet = standard(
        &names
            .iter()
            .zip(&kinds)
            .filter(|(_, k)| matches!(k, TermKind::Risk(_)))
            .map(|(n, _)| n)
            .chain(
                pair_parts
                    .iter()
                    .zip(&roles)
                    .filter(|(_, r)| r.iter().any(|(_, role)| *role == PairRole::First))
                    .map(|(p, _)| p),
            )
            .chain(variant_keys)
            .collect::<Vec<_>>(),
    )?;
    let terms = automaton(&names, path)?;
    let (within, risk): (Vec<String>, Vec<bool>) = names
        .iter()
        .zip(&kinds)
        .filter(|(n, _)| !n.chars().any(|ch| clause_breaks.contains(ch)))
        .map(|(n, k)| (n.clone(), matches!(k, TermKind::Risk(_))))
        .unzip();
    let clause_terms = if within.len() == names.len() {
        Some((terms.clone(), risk))
    } else if within.is_empty() {
        None
    } else {
        Some((automaton(&within, path)?, risk))
    };
    Ok(DomainMatcher {
        terms,
        kinds,
        names,
        pairs: PairMatcher {
            parts,
            roles,
            pairs,
        },
        model: None,
        clause_terms,
        quiet,
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
struct Normaliser {
    out: String,
    pending_space: bool,
    /// The two input characters before the next one (after width folding).
    prev: char,
    prev2: char,
}

impl Normaliser {
    fn new(text: &str) -> Self {
        Normaliser {
            out: String::with_capacity(text.len()),
            pending_space: false,
            prev: '\0',
            prev2: '\0',
        }
    }

    /// The character `raw`, at byte `here` of `text`.
    fn push(&mut self, text: &str, here: usize, raw: char) {
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
    fn push_cjk_run(&mut self, run: &str) {
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
    fn space_before(&mut self, cjk: bool) {
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
fn cjk_run_end(b: &[u8], mut i: usize) -> usize {
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
struct ClauseBreaks {
    ascii: u128,
    other: Vec<char>,
    /// Whether `other` holds a character [`is_cjk`] takes.
    any_cjk: bool,
}

impl ClauseBreaks {
    fn new(chars: &str) -> Self {
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

    fn contains(&self, ch: char) -> bool {
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
const SPLITTERS: &[char] = &[
    '.', '-', '*', '_', '·', '•', '/', '|', '~', '+', '^', '#', '、',
];

/// Full-width ASCII to half-width; the ideographic space to a space.
fn fold_width(ch: char) -> char {
    match ch as u32 {
        0xFF01..=0xFF5E => char::from_u32(ch as u32 - 0xFEE0).unwrap_or(ch),
        0x3000 => ' ',
        _ => ch,
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x9FFF | 0xF900..=0xFAFF)
}

fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x034F | 0x115F | 0x1160 | 0x180E | 0x2800 | 0x3164 | 0xFFA0
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0xFEFF | 0xFE00..=0xFE0F
        | 0x00AD | 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0xE0000..=0xE007F)
        || (c.is_control() && !c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Category as C;

    /// [`normalise_chars`] one character at a time, Chinese ones too: the
    /// oracle for the proptest below.
    fn normalise_chars_per_char(text: &str) -> String {
        let mut n = Normaliser::new(text);
        for (i, raw) in text.char_indices() {
            n.push(text, i, raw);
        }
        n.out
    }

    proptest::proptest! {
        /// Copying Chinese runs whole changes nothing: the same text as one
        /// character at a time, on mixes of Chinese (both ends of each
        /// range), full-width forms, splitters, spaces and invisibles.
        #[test]
        fn chinese_runs_copy_as_characters_do(text in
            "[\u{3300}-\u{3500}\u{4e00}-\u{4e10}\u{9ff0}-\u{a010}\u{f8f0}-\u{fb10}\u{ff01}-\u{ff5e}\u{3000}\u{200b}\u{1f600}.·、 \tA-Za-z0-9拉肚子]{0,40}") {
            proptest::prop_assert_eq!(normalise_chars(&text), normalise_chars_per_char(&text));
        }
    }

    /// Every string of the built-in lexicon files (terms, exclusions, cues,
    /// pair parts, variants and their targets), keys of tables included,
    /// and each pair's first parts joined to its second parts.
    fn lexicon_pieces() -> Vec<String> {
        fn walk(v: &toml::Value, out: &mut Vec<String>) {
            match v {
                toml::Value::String(s) => out.push(s.clone()),
                toml::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                toml::Value::Table(t) => {
                    // A pair's parts also side by side (most pieces are terms).
                    if let (Some(toml::Value::Array(first)), Some(toml::Value::Array(then))) =
                        (t.get("first"), t.get("then"))
                    {
                        for (f, t) in first.iter().zip(then.iter().cycle()) {
                            if let (Some(f), Some(t)) = (f.as_str(), t.as_str()) {
                                out.push(format!("{f}{t}"));
                            }
                        }
                    }
                    t.iter().for_each(|(k, v)| {
                        out.push(k.clone());
                        walk(v, out);
                    });
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        for src in [BUILTIN_COMMON, BUILTIN_FOOD, BUILTIN_TOURISM] {
            walk(&toml::from_str::<toml::Value>(src).unwrap(), &mut out);
        }
        out
    }

    proptest::proptest! {
        /// Skipping the texts that hold nothing `quiet` knows changes
        /// nothing: the lexicons find what the full walk over the
        /// normalised text finds, on texts strung from the lexicons' own
        /// pieces, filler and breaks.
        #[test]
        fn the_quiet_check_skips_only_texts_with_nothing_to_find(
            picks in proptest::collection::vec(0usize..1_000_000, 0..8),
            food in proptest::bool::ANY,
        ) {
            use std::sync::LazyLock;
            static EX: LazyLock<(Extractor, Vec<String>)> = LazyLock::new(|| {
                let mut pieces = lexicon_pieces();
                pieces.extend(["今天", "，", "。", "不", " ", "a", "的"].map(String::from));
                (Extractor::builtin().unwrap(), pieces)
            });
            let (ex, pieces) = &*EX;
            let text: String = picks.iter().map(|i| pieces[i % pieces.len()].as_str()).collect();
            let domain = if food { Domain::Food } else { Domain::Tourism };
            proptest::prop_assert_eq!(
                ex.extract_lexicon(domain, &text),
                ex.lexicon_on(domain, &ex.normalise(&text)),
                "{:?}", text
            );
        }
    }

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
    fn a_pair_answers_only_to_cues_after_its_first_part() {
        // 不 belongs to the first part (根本不是), it does not negate 平方.
        assert_eq!(
            tour("进门一看根本不是45平方米的房间"),
            vec!["false_advertising"]
        );
        // A negation between the parts still cancels.
        assert!(tour("照片和实物没有不一样").is_empty());
    }

    /// A hand-made signal model: safety when 蓝鲸 and 鲸鱼 are both there.
    fn with_model() -> Extractor {
        let bits = 10;
        let w = |g: &str| format!("[{},3.0]", crate::core::extract::ngram::bucket_of(g, bits));
        let json = format!(
            r#"{{"format":"{}","domain":"tourism","bits":{bits},"fitted_on":"test",
            "categories":[{{"category":"safety","alpha":1,"intercept":-4,"threshold":0,
            "weights":[{},{}]}}]}}"#,
            crate::core::extract::ngram::FORMAT,
            w("蓝鲸"),
            w("鲸鱼")
        );
        let mut ex = x();
        ex.set_model(Domain::Tourism, Some(("t.json", &json)))
            .unwrap();
        ex
    }

    #[test]
    fn the_learned_model_adds_explained_signals_that_cues_still_cancel() {
        let ex = with_model();
        let e = ex.extract(Domain::Tourism, "窗外有一条蓝鲸鱼");
        assert_eq!(e.categories.sorted_names(), vec!["safety"]);
        assert!(
            e.hits
                .iter()
                .any(|h| h.term.starts_with("ngram:") && h.term.contains("鲸")),
            "{:?}",
            e.hits
        );
        assert!(
            ex.extract(Domain::Tourism, "窗外没有蓝鲸鱼")
                .categories
                .is_empty()
        );
        assert!(
            ex.extract(Domain::Tourism, "怕有蓝鲸鱼")
                .categories
                .is_empty()
        );
        assert!(
            ex.extract_lexicon(Domain::Tourism, "窗外有一条蓝鲸鱼")
                .categories
                .is_empty()
        );
        // Food has no model; the tourism one does not leak into it.
        assert!(
            ex.extract(Domain::Food, "窗外有一条蓝鲸鱼")
                .categories
                .is_empty()
        );
        let mut ex = ex;
        ex.set_model(Domain::Tourism, None).unwrap();
        assert!(
            ex.extract(Domain::Tourism, "窗外有一条蓝鲸鱼")
                .categories
                .is_empty()
        );
    }

    #[test]
    fn a_bad_signal_model_is_refused_with_its_path() {
        let mut ex = x();
        let e = ex
            .set_model(Domain::Tourism, Some(("my/signals-tourism.json", "{")))
            .unwrap_err();
        assert!(e.to_string().contains("my/signals-tourism.json"), "{e}");
        assert!(!ex.has_model(Domain::Tourism));
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
    fn a_lexicon_with_a_term_across_a_clause_break_is_walked_clause_by_clause() {
        // "好吃，头" would take "头" from "头发" in a scan of the whole text;
        // in the clause "头发很多" nothing does, and hair is found.
        let lexicon = "domain = \"food\"\n[categories.foreign_object]\nterms = [\"头发\"]\nexclude = [\"好吃，头\"]\n";
        let ex = Extractor::from_sources(
            ("c", BUILTIN_COMMON),
            ("my/food.toml", lexicon),
            ("t", BUILTIN_TOURISM),
        )
        .unwrap();
        let (terms, risk) = ex.food.clause_terms.as_ref().unwrap();
        assert_eq!((terms.patterns_len(), risk.as_slice()), (1, &[true][..]));
        assert!(
            ex.extract_lexicon(Domain::Food, "好吃，头发很多")
                .categories
                .contains(C::ForeignObject)
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
        // Separators repeated between single characters are dodges...
        assert_eq!(normalise_chars("拉.肚.子"), "拉肚子");
        assert_eq!(normalise_chars("拉．肚．子"), "拉肚子");
        // ...but not ordinary punctuation, whatever its width.
        assert_eq!(normalise_chars("好吃.头发很多"), "好吃.头发很多");
        assert_eq!(normalise_chars("菜品物美价廉～～～"), "菜品物美价廉~~~");
    }
}
