//! Risk signals per review, from lexicon files (`config/lexicons/*.toml`).
//!
//! A term counts only when the reviewer asserts it happened: not negated
//! (没有拉肚子), not a worry or hypothetical (怕拉肚子), not about another place
//! (隔壁那家). Cues are looked for in the same clause, shortly before the term,
//! after the last scope breaker (吃了不到一小时就拉肚子 is a report).

mod normalise;

use crate::core::extract::learned::{Context, Cues, SignalModel};
use crate::types::Domain;
use crate::types::category::{Category, CategorySet};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
pub use normalise::normalise_chars;
use normalise::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
pub mod learned;

/// The lexicons shipped in the repository, compiled in so that the binary
/// works anywhere; `lexicons.dir` in the config replaces them.
pub const BUILTIN_COMMON: &str = include_str!("../../../config/lexicons/common.toml");
pub const BUILTIN_FOOD: &str = include_str!("../../../config/lexicons/food.toml");
pub const BUILTIN_TOURISM: &str = include_str!("../../../config/lexicons/tourism.toml");

/// Learned signal models beside the lexicons ([`learned`]), one per domain,
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
    /// Regulators' overrides: a term that, found and not negated, a worry
    /// or about another place, reports the category whatever the learned
    /// model says.
    #[serde(default)]
    force: Vec<String>,
    /// Regulators' overrides: a phrase whose presence means the category is
    /// not reported, whatever the lexicons or the model say.
    #[serde(default)]
    block: Vec<String>,
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
    /// The learned decider, where one is loaded.
    model: Option<SignalModel>,
    /// The regulators' `force` and `block` entries: the automaton and, per
    /// pattern, its category and whether it forces (or blocks).
    overrides: Option<(AhoCorasick, Vec<(Category, bool)>)>,
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extraction {
    pub categories: CategorySet,
    pub hits: Vec<Hit>,
    /// Where a learned model decides: each of its categories' calibrated
    /// probability. Empty where the lexicons alone decide.
    pub probabilities: Vec<(Category, f64)>,
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

    /// The risk categories a review asserts, with the terms behind them.
    /// Where the domain has a learned model, it decides, reading the
    /// lexicons' findings and the cues as features; a category it finds
    /// that the lexicons did not must not rest on an n-gram in the scope of
    /// a negation, a worry or another place. Otherwise the lexicons decide.
    pub fn extract(&self, domain: Domain, text: &str) -> Extraction {
        let (norm, mut out) = self.decide(domain, text);
        self.apply_overrides(domain, &norm, &mut out);
        out
    }

    /// The regulators' overrides: `force` entries put their category in
    /// (unless cancelled by a cue), then `block` entries take theirs out.
    fn apply_overrides(&self, domain: Domain, norm: &str, out: &mut Extraction) {
        let Some((automaton, kinds)) = &self.matcher(domain).overrides else {
            return;
        };
        let mut blocked = CategorySet::default();
        for m in automaton.find_overlapping_iter(norm) {
            let (category, force) = kinds[m.pattern().as_usize()];
            if !force {
                blocked.insert(category);
            } else if !out.categories.contains(category) && !self.cancelled_at(norm, m.start(), 0) {
                out.categories.insert(category);
                out.hits.push(Hit {
                    category,
                    term: format!("force:{}", &norm[m.start()..m.end()]),
                });
            }
        }
        if !blocked.is_empty() {
            out.categories = out
                .categories
                .iter()
                .filter(|c| !blocked.contains(*c))
                .collect();
            out.hits.retain(|h| !blocked.contains(h.category));
        }
    }

    /// The decision before overrides: the learned model's where the domain
    /// has one, else the lexicons'.
    fn decide(&self, domain: Domain, text: &str) -> (String, Extraction) {
        let (norm, mut out) = self.lexicons(domain, text);
        let Some(model) = &self.matcher(domain).model else {
            return (norm, out);
        };
        let ctx = Context {
            lexicon: out.categories,
            cues: self.cues_in(&norm),
        };
        let verdict = model.judge(&norm, ctx);
        let lexicon_hits = std::mem::take(&mut out.hits);
        let mut categories = CategorySet::default();
        for (category, pos, why) in verdict.fired {
            let from_lexicon = ctx.lexicon.contains(category);
            if !from_lexicon && why != "model" && self.cancelled_at(&norm, pos, 0) {
                continue;
            }
            categories.insert(category);
            let mut explained = false;
            for h in lexicon_hits.iter().filter(|h| h.category == category) {
                out.hits.push(h.clone());
                explained = true;
            }
            if !explained && out.hits.len() < 16 {
                out.hits.push(Hit {
                    category,
                    term: why,
                });
            }
        }
        // What the model does not cover, the lexicons decide (by the
        // categories they found: their hits are capped at 16).
        for category in ctx.lexicon.iter().filter(|c| !model.covers(*c)) {
            categories.insert(category);
            out.hits.extend(
                lexicon_hits
                    .iter()
                    .filter(|h| h.category == category)
                    .cloned(),
            );
        }
        out.categories = categories;
        out.probabilities = verdict.probabilities;
        (norm, out)
    }

    /// What the learned model reads of a review: its normalised text, and
    /// the categories the lexicons found and the cues it holds. Fitting
    /// reads the same ([`crate::offline::fit_signals`]).
    pub fn model_input(&self, domain: Domain, text: &str) -> (String, Context) {
        let (norm, out) = self.lexicons(domain, text);
        let cues = self.cues_in(&norm);
        (
            norm,
            Context {
                lexicon: out.categories,
                cues,
            },
        )
    }

    /// The cues anywhere in a normalised text.
    fn cues_in(&self, norm: &str) -> Cues {
        let mut bits = 0u8;
        for m in self.cues.find_iter(norm) {
            bits |= match self.cue_kinds[m.pattern().as_usize()] {
                Cue::Negator => Cues::NEGATION,
                Cue::Hypothetical => Cues::WORRY,
                Cue::OtherPlace => Cues::ELSEWHERE,
                Cue::Ignored | Cue::Breaker => 0,
            };
        }
        Cues(bits)
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
    let mut override_names: Vec<String> = Vec::new();
    let mut override_kinds: Vec<(Category, bool)> = Vec::new();
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
        for (list, force) in [(&terms.force, true), (&terms.block, false)] {
            for t in list {
                let t = normalise_chars(t);
                if t.is_empty() {
                    return Err(invalid(
                        path,
                        format!("an empty force or block entry of {name:?}"),
                    ));
                }
                override_names.push(t);
                override_kinds.push((category, force));
            }
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
    let overrides = if override_names.is_empty() {
        None
    } else {
        Some((
            standard(&override_names.iter().collect::<Vec<_>>())?,
            override_kinds,
        ))
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
        overrides,
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

#[cfg(test)]
mod tests;
