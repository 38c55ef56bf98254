//! A seeded synthetic world: businesses with a hidden hygiene state that
//! changes over time, the reviews their customers (and others) write, and the
//! outcomes of inspections. Deterministic for a seed: every business draws
//! from its own ChaCha8 stream, seeded from (seed, domain, index).
//!
//! # The generative story
//! 1. **Popularity.** Each business has a base review rate (reviews per day,
//!    log-normal around [`SimConfig::median_rate`], spread and cap per
//!    [`Profile`]: at most 25 in the standard world); the day's
//!    rate is higher on Friday to Sunday. Popular businesses get more reviews
//!    of every kind, so more false alarms too.
//! 2. **Hidden hygiene state.** A few businesses are *chronic offenders*
//!    ([`SimConfig::chronic_share`]): bad all year, at a lower intensity. The
//!    others are clean but fall into *bad episodes* of 7–30 days at a small
//!    daily hazard ([`SimConfig::episode_hazard`]), with at least 10 clean
//!    days between episodes. [`Truth`] records both.
//! 3. **What customers write.** While a business is bad, 22% more of its
//!    reviews (13% for a chronic one) report a risk of the domain (category
//!    mix per domain), mostly with low ratings and often with photos. While
//!    it is clean, 1% of a restaurant's and 15% of a hotel's reviews still
//!    do, the rates of the hand-labelled real corpora (*false alarms*: a stomach ache from
//!    elsewhere, a misunderstanding). 3% of all reviews mention a risk only to
//!    deny it or worry about it (没有拉肚子, 担心会拉肚子, 隔壁那家很脏), which
//!    must not count. The rest praise or complain about taste, price or
//!    service: sentiment, not risk.
//! 4. **Competitors' attacks.** A clean business is attacked at a small daily
//!    hazard ([`SimConfig::attack_hazard`], at most once a month): 3–8 fake
//!    risk reports within 1–3 days, from fresh accounts, rated 1, almost
//!    never with photos.
//!    They read like real reports (the extractor finds them), so they are
//!    risk reports in the text but not in the truth ([`SimReview::fake`]).
//! 5. **Review farms.** A bad business buys bursts of fake praise at a daily
//!    hazard ([`SimConfig::farm_hazard`]) while bad, bursts at least 14 days
//!    apart: 8–25 five-star reviews within 2–4 days, diluting the share of
//!    risk reports.
//! 6. **Inspections.** Partly random (each business about every 4 months)
//!    and partly complaint-driven: 8% of risk reports, fake ones included,
//!    lead to a visit 2–10 days later.
//! 7. **Noisy outcomes.** An inspection of a bad business finds violations
//!    with probability 0.85 (0.75 for a chronic one: it knows how to tidy
//!    up); of a clean one, 0.08 (minor findings).
//! 8. **Real texts (optional).** With [`SimConfig::texts`], 30% of the
//!    praise and complaints are replaced by real review texts of the domain
//!    (e.g. a public corpus), rated by their sentiment label: background
//!    whose risk is unknown, so the extractor meets real phrasing.
mod texts;

use crate::types::Domain;
use crate::types::category::Category;
use crate::types::time::rfc3339;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use texts::{business_name, complaint_text, denial_text, praise_text, risk_text};

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub businesses: usize,
    pub days: u32,
    pub domains: Vec<Domain>,
    /// Unix seconds of day 0, 00:00 China Standard Time.
    pub start: i64,
    /// Reviews per business per day, median.
    pub median_rate: f64,
    /// Share of businesses that are chronic offenders.
    pub chronic_share: f64,
    /// Daily chance that a good business starts a bad episode.
    pub episode_hazard: f64,
    /// Daily chance that a clean business is attacked with fake risk reports.
    pub attack_hazard: f64,
    /// Daily chance, while bad, that a business buys a burst of fake praise.
    pub farm_hazard: f64,
    /// Real review texts mixed in as background (see [`Texts`]).
    pub texts: Option<Arc<Texts>>,
    /// Share of reviews that give their business another name or region
    /// than the others do (a branch suffix, a neighbouring district): the
    /// labels a business's state keeps then change back and forth. 0 by
    /// default; when 0 the world is exactly what it was without this.
    pub relabel_share: f64,
    /// How the world behaves: rates, noise and phrasing ([`Profile`]).
    pub profile: Profile,
}

/// The rates, volumes, noise and phrasing of a world. [`Profile::standard`]
/// is the world the default models are fitted on; [`Profile::stress`] is a
/// deliberately different one they are judged on: other rates, other
/// phrasing, heavier tails, more attacks, noisier outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    /// Share of a clean business's reviews that report a risk, per domain
    /// (food, tourism): real reviews carry risk labels at these rates in
    /// the hand-labelled random samples of the corpora (one hotel review in
    /// seven; about one delivery review in a hundred, counting the ones the
    /// extractor also finds).
    pub clean_risk: [f64; 2],
    /// Added to that share while a business is bad (less for a chronic one).
    pub bad_risk: f64,
    pub chronic_intensity: f64,
    /// Spread of the log review rate (log-normal), and the highest rate.
    pub rate_sigma: f64,
    pub max_rate: f64,
    /// Share of risk reports with photos (genuine; attacks almost never).
    pub photo_share: f64,
    /// Share of reviews written in English.
    pub english_share: f64,
    /// Share of praise and complaints replaced by real texts, when given.
    pub real_text_share: f64,
    /// Fake risk reports per competitor's attack (inclusive range).
    pub attack_reports: (u32, u32),
    /// Chance that an inspection finds violations: bad, chronic, clean.
    pub found: (f64, f64, f64),
    /// Daily chance of a routine inspection, and the share of risk reports
    /// that lead to one.
    pub routine_daily: f64,
    pub complaint_share: f64,
    pub regions: &'static [&'static str],
}

impl Profile {
    pub fn standard() -> Profile {
        Profile {
            name: "standard",
            clean_risk: [0.01, 0.15],
            bad_risk: 0.22,
            chronic_intensity: 0.6,
            rate_sigma: 0.8,
            max_rate: 25.0,
            photo_share: 0.4,
            english_share: 0.1,
            real_text_share: 0.3,
            attack_reports: (3, 8),
            found: (0.85, 0.75, 0.08),
            routine_daily: 1.0 / 120.0,
            complaint_share: 0.08,
            regions: &[
                "310105", "310104", "110105", "440305", "330106", "510107", "530102", "460202",
            ],
        }
    }

    /// Other rates, other phrasing mix, heavier tails.
    pub fn stress() -> Profile {
        Profile {
            name: "stress",
            clean_risk: [0.02, 0.18],
            bad_risk: 0.16,
            chronic_intensity: 0.5,
            rate_sigma: 1.3,
            max_rate: 60.0,
            photo_share: 0.2,
            english_share: 0.25,
            real_text_share: 0.5,
            attack_reports: (3, 12),
            found: (0.75, 0.6, 0.15),
            routine_daily: 1.0 / 90.0,
            complaint_share: 0.15,
            regions: &[
                "320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115",
                "320116", "320117", "320118", "320119",
            ],
        }
    }

    pub fn parse(name: &str) -> Option<Profile> {
        match name {
            "standard" => Some(Profile::standard()),
            "stress" => Some(Profile::stress()),
            _ => None,
        }
    }
}

/// Real review texts per domain, each with its sentiment label if known
/// (true: positive).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Texts {
    pub food: Vec<(String, Option<bool>)>,
    pub tourism: Vec<(String, Option<bool>)>,
}

impl Texts {
    fn of(&self, d: Domain) -> &[(String, Option<bool>)] {
        match d {
            Domain::Food => &self.food,
            Domain::Tourism => &self.tourism,
        }
    }

    /// Read a CSV with a `review` column and optionally a `label` column
    /// (1 positive, 0 negative), e.g. `../shared/data/waimai_10k.csv`.
    /// Empty texts are skipped; a bad record is an error naming its line.
    pub fn read_csv(path: &std::path::Path) -> anyhow::Result<Vec<(String, Option<bool>)>> {
        use anyhow::{Context, anyhow};
        let mut rdr = csv::Reader::from_path(path)
            .with_context(|| format!("cannot open texts file {}", path.display()))?;
        let headers = rdr
            .headers()
            .with_context(|| format!("{}:1: cannot read the header line", path.display()))?
            .clone();
        let review = headers
            .iter()
            .position(|h| h.trim() == "review")
            .ok_or_else(|| anyhow!("{}:1: the header has no column \"review\"", path.display()))?;
        let label = headers.iter().position(|h| h.trim() == "label");
        let mut out = Vec::new();
        for rec in rdr.records() {
            let rec = rec.with_context(|| format!("{}: malformed CSV", path.display()))?;
            let text = rec.get(review).map(str::trim).unwrap_or_default();
            if text.is_empty() {
                continue;
            }
            let l = label.and_then(|i| rec.get(i)).and_then(|v| match v.trim() {
                "1" => Some(true),
                "0" => Some(false),
                _ => None,
            });
            out.push((text.to_owned(), l));
        }
        if out.is_empty() {
            anyhow::bail!("{}: no review texts", path.display());
        }
        Ok(out)
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            businesses: 200,
            days: 60,
            domains: Domain::ALL.to_vec(),
            start: 1_767_196_800, // 2026-01-01T00:00:00+08:00
            median_rate: 1.0,
            chronic_share: 0.04,
            episode_hazard: 1.0 / 250.0,
            attack_hazard: 1.0 / 800.0,
            farm_hazard: 1.0 / 100.0,
            texts: None,
            relabel_share: 0.0,
            profile: Profile::standard(),
        }
    }
}

impl SimConfig {
    /// The stress world: [`Profile::stress`], with more chronic offenders,
    /// more bad episodes and four times the competitors' attacks.
    pub fn stress() -> SimConfig {
        SimConfig {
            chronic_share: 0.08,
            episode_hazard: 1.0 / 150.0,
            attack_hazard: 1.0 / 200.0,
            farm_hazard: 1.0 / 60.0,
            profile: Profile::stress(),
            ..SimConfig::default()
        }
    }
}

/// The review as it goes on the wire (the review contract).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimReview {
    pub review_id: String,
    pub business_id: String,
    pub domain: Domain,
    pub text: String,
    pub created_at: String,
    pub rating: u8,
    pub business_name: String,
    pub region: String,
    pub platform: String,
    pub reviewer_id: String,
    pub photos: u32,
    #[serde(skip)]
    pub event_time: i64,
    /// Whether the simulator wrote this review as a risk report (hidden truth).
    #[serde(skip)]
    pub reports_risk: bool,
    /// Written by a competitor or a review farm, not a customer (hidden truth).
    #[serde(skip)]
    pub fake: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Inspection {
    pub business_id: String,
    pub domain: Domain,
    pub inspected_at: i64,
    pub outcome: u8,
    pub region: String,
}

impl Inspection {
    /// The `inspection.outcomes` message of this inspection (contract
    /// fields; the id is stable, the inspector a fixed pseudonym, recorded
    /// two hours after the visit).
    pub fn outcome_message(&self) -> serde_json::Value {
        serde_json::json!({
            "schema_version": 1,
            "outcome_id": format!("sim-{}-{}-{}", self.domain, self.business_id, self.inspected_at),
            "flag_id": null,
            "business_id": self.business_id,
            "domain": self.domain,
            "region": self.region,
            "inspected_at": rfc3339(self.inspected_at),
            "outcome": self.outcome,
            "categories": [],
            "inspector": "sim-inspector",
            "recorded_at": rfc3339(self.inspected_at + 2 * 3600),
        })
    }
}

/// The hidden truth of one business (`simulate --truth` writes it, one
/// JSON line each).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Truth {
    pub business_id: String,
    pub domain: Domain,
    pub chronic: bool,
    /// Bad episodes as [start, end) Unix seconds.
    pub episodes: Vec<(i64, i64)>,
    /// Competitors' attacks (bursts of fake risk reports) as [start, end).
    pub attacks: Vec<(i64, i64)>,
    /// Bursts of fake praise bought from review farms as [start, end).
    pub farms: Vec<(i64, i64)>,
}

impl Truth {
    pub fn bad_at(&self, t: i64) -> bool {
        self.chronic || self.in_episode(t)
    }

    /// Whether `t` falls in one of its bad episodes.
    pub fn in_episode(&self, t: i64) -> bool {
        self.episodes.iter().any(|(s, e)| *s <= t && t < *e)
    }
}

#[derive(Debug, Clone, Default)]
pub struct World {
    pub reviews: Vec<SimReview>,
    pub inspections: Vec<Inspection>,
    pub truth: Vec<Truth>,
}

const DAY: i64 = 86_400;

struct Business {
    profile: Profile,
    truth: Truth,
    name: String,
    region: String,
    rate: f64,
    rng: ChaCha8Rng,
    /// Fake reviews to come, (time, is a risk report), in time order.
    fakes: Vec<(i64, bool)>,
    next_fake: usize,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u32 {
    let l = (-lambda).exp();
    let mut k = 0;
    let mut p = 1.0;
    loop {
        p *= rng.r#gen::<f64>();
        if p <= l || k > 200 {
            return k;
        }
        k += 1;
    }
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

/// Generate a whole world.
pub fn generate(cfg: &SimConfig) -> World {
    generate_with_progress(cfg, |_| {})
}

/// [`generate`], calling `day_done(day)` after each simulated day.
pub fn generate_with_progress(cfg: &SimConfig, mut day_done: impl FnMut(u32)) -> World {
    let mut businesses = Vec::new();
    for &domain in &cfg.domains {
        for i in 0..cfg.businesses {
            let mut rng = ChaCha8Rng::seed_from_u64(
                cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((domain as u64) << 40) ^ i as u64,
            );
            let chronic = rng.r#gen::<f64>() < cfg.chronic_share;
            let mut episodes = Vec::new();
            let mut day = 0i64;
            while day < i64::from(cfg.days) {
                if !chronic && rng.r#gen::<f64>() < cfg.episode_hazard {
                    let len = rng.gen_range(7..=30);
                    let s = cfg.start + day * DAY + rng.gen_range(0..DAY);
                    episodes.push((s, s + len * DAY));
                    day += len + 10;
                } else {
                    day += 1;
                }
            }
            let mut truth = Truth {
                business_id: String::new(),
                domain,
                chronic,
                episodes,
                attacks: Vec::new(),
                farms: Vec::new(),
            };
            let mut fakes = Vec::new();
            for day in 0..i64::from(cfg.days) {
                let t = cfg.start + day * DAY + rng.gen_range(0..DAY);
                let roll: f64 = rng.r#gen();
                if truth.bad_at(t) {
                    if roll < cfg.farm_hazard
                        && truth.farms.last().is_none_or(|(_, e)| *e + 14 * DAY < t)
                    {
                        let len = rng.gen_range(2..=4) * DAY;
                        truth.farms.push((t, t + len));
                        for _ in 0..rng.gen_range(8..=25) {
                            fakes.push((t + rng.gen_range(0..len), false));
                        }
                    }
                } else if roll < cfg.attack_hazard
                    && truth.attacks.last().is_none_or(|(_, e)| *e + 30 * DAY < t)
                {
                    let len = rng.gen_range(1..=3) * DAY;
                    truth.attacks.push((t, t + len));
                    let (lo, hi) = cfg.profile.attack_reports;
                    for _ in 0..rng.gen_range(lo..=hi) {
                        fakes.push((t + rng.gen_range(0..len), true));
                    }
                }
            }
            fakes.sort_unstable();
            let p = &cfg.profile;
            let rate = (cfg.median_rate * (p.rate_sigma * normal(&mut rng)).exp()).min(p.max_rate);
            let name = business_name(&mut rng, domain);
            let region = pick(&mut rng, p.regions).to_owned();
            let prefix = if domain == Domain::Food {
                "shop"
            } else {
                "hotel"
            };
            truth.business_id = format!("{prefix}-{:05}", i);
            businesses.push(Business {
                profile: cfg.profile.clone(),
                truth,
                name,
                region,
                rate,
                rng,
                fakes,
                next_fake: 0,
            });
        }
    }
    let mut world = World::default();
    let mut review_seq = 0u64;
    for day in 0..i64::from(cfg.days) {
        let mut today = Vec::new();
        // 2026-01-01 is a Thursday: days 1, 2 and 3 of each week are Fri-Sun.
        let weekend = matches!(day.rem_euclid(7), 1..=3);
        let busy = if weekend { 1.3 } else { 0.88 };
        let day_end = cfg.start + (day + 1) * DAY;
        for (idx, b) in businesses.iter_mut().enumerate() {
            let n = poisson(&mut b.rng, b.rate * busy);
            for _ in 0..n {
                let t = cfg.start + day * DAY + b.rng.gen_range(8 * 3600..23 * 3600);
                let (r, risky) = review(b, t, cfg.texts.as_deref());
                today.push((r, risky, idx));
            }
            while let Some(&(t, risk)) = b.fakes.get(b.next_fake).filter(|(t, _)| *t < day_end) {
                b.next_fake += 1;
                let r = fake_review(b, t, risk);
                today.push((r, risk, idx));
            }
            // Inspections: random, about every 4 months ...
            if b.rng.r#gen::<f64>() < b.profile.routine_daily {
                let t = cfg.start + day * DAY + b.rng.gen_range(9 * 3600..17 * 3600);
                world.inspections.push(inspect(b, t));
            }
        }
        today.sort_by_key(|(r, _, _)| r.event_time);
        for (mut r, risky, idx) in today {
            review_seq += 1;
            r.review_id = format!("rv-{}-{review_seq:08}", cfg.seed);
            // ... and complaint-driven: some risk reports lead to a visit.
            let b = &mut businesses[idx];
            if risky && b.rng.r#gen::<f64>() < b.profile.complaint_share {
                let t = r.event_time + b.rng.gen_range(2 * DAY..10 * DAY);
                if t < cfg.start + i64::from(cfg.days) * DAY {
                    world.inspections.push(inspect(b, t));
                }
            }
            world.reviews.push(r);
        }
        day_done(u32::try_from(day).unwrap_or(u32::MAX));
    }
    world.inspections.sort_by(|a, b| {
        (a.inspected_at, &a.business_id, a.domain).cmp(&(b.inspected_at, &b.business_id, b.domain))
    });
    world.truth = businesses.into_iter().map(|b| b.truth).collect();
    relabel(&mut world.reviews, cfg);
    world
}

/// [`SimConfig::relabel_share`]: some reviews name their business or its
/// region otherwise (with their own random stream, so the rest of the world
/// does not change with the share).
fn relabel(reviews: &mut [SimReview], cfg: &SimConfig) {
    if cfg.relabel_share <= 0.0 {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5245_4c41_4245_4c53);
    for r in reviews {
        if rng.r#gen::<f64>() >= cfg.relabel_share {
            continue;
        }
        match rng.gen_range(0..3) {
            0 => r.business_name.push_str("（新店）"),
            1 => {
                // A neighbouring district: the last character changed.
                let last = r.region.pop();
                r.region.push(if last == Some('1') { '2' } else { '1' });
            }
            _ => {
                r.business_name.push_str("·分店");
                r.region.push('9');
            }
        }
    }
}

fn inspect(b: &mut Business, t: i64) -> Inspection {
    let (bad, chronic, clean) = b.profile.found;
    let p_violation = match (b.truth.bad_at(t), b.truth.chronic) {
        (true, true) => chronic,
        (true, false) => bad,
        (false, _) => clean,
    };
    Inspection {
        business_id: b.truth.business_id.clone(),
        domain: b.truth.domain,
        inspected_at: t,
        outcome: u8::from(b.rng.r#gen::<f64>() < p_violation),
        region: b.region.clone(),
    }
}

/// A competitor's fake risk report (`risk`) or a farm's fake praise.
fn fake_review(b: &mut Business, t: i64, risk: bool) -> SimReview {
    let domain = b.truth.domain;
    let rng = &mut b.rng;
    let english = rng.r#gen::<f64>() < b.profile.english_share / 2.0;
    let (text, rating) = if risk {
        let cats = Category::of(domain);
        let c = cats[rng.gen_range(0..cats.len())];
        (risk_text(rng, domain, c, english), 1)
    } else {
        (praise_text(rng, domain, english), 5)
    };
    let photos = u32::from(risk && rng.r#gen::<f64>() < 0.05);
    SimReview {
        review_id: String::new(),
        business_id: b.truth.business_id.clone(),
        domain,
        text,
        created_at: rfc3339(t),
        rating,
        business_name: b.name.clone(),
        region: b.region.clone(),
        platform: match domain {
            Domain::Food => "meituan",
            Domain::Tourism => "ctrip",
        }
        .to_owned(),
        // Fresh accounts, made for the occasion.
        reviewer_id: format!("n{}", rng.gen_range(0..10_000_000)),
        photos,
        event_time: t,
        reports_risk: risk,
        fake: true,
    }
}

fn review(b: &mut Business, t: i64, texts: Option<&Texts>) -> (SimReview, bool) {
    let domain = b.truth.domain;
    let bad = b.truth.bad_at(t);
    let p = &b.profile;
    let intensity = if b.truth.chronic {
        p.chronic_intensity
    } else {
        1.0
    };
    let rng = &mut b.rng;
    let clean = p.clean_risk[domain.index()];
    let p_risk = if bad {
        clean + p.bad_risk * intensity
    } else {
        clean
    };
    let english = rng.r#gen::<f64>() < p.english_share;
    let roll: f64 = rng.r#gen();
    let (text, rating, risky) = if roll < p_risk {
        let cats = Category::of(domain);
        let weights: &[f64] = match domain {
            Domain::Food => &[0.3, 0.3, 0.15, 0.1, 0.15],
            Domain::Tourism => &[0.4, 0.1, 0.2, 0.1, 0.1, 0.1],
        };
        let mut x: f64 = rng.r#gen::<f64>() * weights.iter().sum::<f64>();
        let mut cat = cats[0];
        for (c, w) in cats.iter().zip(weights) {
            if x < *w {
                cat = *c;
                break;
            }
            x -= w;
        }
        (
            risk_text(rng, domain, cat, english),
            rng.gen_range(1..=3),
            true,
        )
    } else if roll < p_risk + 0.03 {
        (
            denial_text(rng, domain, english),
            rng.gen_range(4..=5),
            false,
        )
    } else {
        let complaint = roll < p_risk + 0.25 + if bad { 0.1 } else { 0.0 };
        // Real texts as background: in place of 30% of praise and complaints.
        let pool = texts.map_or(&[][..], |x| x.of(domain));
        if !pool.is_empty() && rng.r#gen::<f64>() < p.real_text_share {
            let (real, label) = &pool[rng.gen_range(0..pool.len())];
            let rating = match label {
                Some(true) => rng.gen_range(4..=5),
                Some(false) => rng.gen_range(1..=3),
                None => rng.gen_range(1..=5),
            };
            (real.clone(), rating, false)
        } else if complaint {
            (
                complaint_text(rng, domain, english),
                rng.gen_range(1..=3),
                false,
            )
        } else {
            (
                praise_text(rng, domain, english),
                rng.gen_range(4..=5),
                false,
            )
        }
    };
    let photos = if rng.r#gen::<f64>() < if risky { p.photo_share } else { 0.1 } {
        rng.gen_range(1..=3)
    } else {
        0
    };
    let platform = match domain {
        Domain::Food => pick(rng, &["meituan", "eleme", "dianping"]),
        Domain::Tourism => pick(rng, &["ctrip", "qunar", "fliggy"]),
    };
    let r = SimReview {
        review_id: String::new(),
        business_id: b.truth.business_id.clone(),
        domain,
        text,
        created_at: rfc3339(t),
        rating,
        business_name: b.name.clone(),
        region: b.region.clone(),
        platform: platform.to_owned(),
        reviewer_id: format!("u{}", rng.gen_range(0..200_000)),
        photos,
        event_time: t,
        reports_risk: risky,
        fake: false,
    };
    (r, risky)
}

#[cfg(test)]
mod tests;

/// How flags compare with the hidden truth: a flag is right when its business
/// was bad at the flag's event time; a bad business is found when it got at
/// least one right flag. A wrong flag on a clean business during a
/// competitor's attack (or within 7 days after) is counted apart too: the
/// fake reports read like real ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlagQuality {
    pub flags: usize,
    pub correct: usize,
    pub bad_businesses: usize,
    pub found: usize,
    /// Wrong flags raised by a competitor's attack.
    pub attacked: usize,
}

impl FlagQuality {
    pub fn precision(&self) -> f64 {
        if self.flags == 0 {
            0.0
        } else {
            self.correct as f64 / self.flags as f64
        }
    }
    /// Precision over the flags not raised by an attack.
    pub fn precision_without_attacks(&self) -> f64 {
        let n = self.flags - self.attacked;
        if n == 0 {
            0.0
        } else {
            self.correct as f64 / n as f64
        }
    }
    pub fn recall(&self) -> f64 {
        if self.bad_businesses == 0 {
            0.0
        } else {
            self.found as f64 / self.bad_businesses as f64
        }
    }
}

/// Score `(domain, business_id, event_time)` flags against the truth. The bad
/// businesses counted for recall are the detectable ones: those with at least
/// one genuine review reporting a risk during a bad spell (a business whose
/// customers never mention a problem cannot be found from reviews).
pub fn flag_quality(world: &World, flags: &[(Domain, String, i64)]) -> FlagQuality {
    flag_quality_at_least(world, flags, 1)
}

/// [`flag_quality`], counting for recall only the bad businesses with at
/// least `min_reports` genuine risk reports during their bad spells.
pub fn flag_quality_at_least(
    world: &World,
    flags: &[(Domain, String, i64)],
    min_reports: usize,
) -> FlagQuality {
    use std::collections::{HashMap, HashSet};
    let truth: HashMap<(Domain, &str), &Truth> = world
        .truth
        .iter()
        .map(|t| ((t.domain, t.business_id.as_str()), t))
        .collect();
    let mut reports: HashMap<(Domain, &str), usize> = HashMap::new();
    for r in &world.reviews {
        if let Some(t) = truth.get(&(r.domain, r.business_id.as_str())) {
            if r.reports_risk && !r.fake && t.bad_at(r.event_time) {
                *reports
                    .entry((r.domain, r.business_id.as_str()))
                    .or_default() += 1;
            }
        }
    }
    let bad_reviewed: HashSet<(Domain, &str)> = reports
        .into_iter()
        .filter(|(_, n)| *n >= min_reports.max(1))
        .map(|(k, _)| k)
        .collect();
    let mut correct = 0;
    let mut attacked = 0;
    let mut found: HashSet<(Domain, &str)> = HashSet::new();
    for (d, b, t) in flags {
        if let Some(tr) = truth.get(&(*d, b.as_str())) {
            if tr.bad_at(*t) {
                correct += 1;
                found.insert((*d, tr.business_id.as_str()));
            } else if tr
                .attacks
                .iter()
                .any(|(s, e)| *s <= *t && *t < *e + 7 * DAY)
            {
                attacked += 1;
            }
        }
    }
    FlagQuality {
        flags: flags.len(),
        correct,
        bad_businesses: bad_reviewed.len(),
        found: found.intersection(&bad_reviewed).count(),
        attacked,
    }
}

#[cfg(test)]
mod extraction_tests {
    use super::*;
    use crate::core::extract::Extractor;

    /// The simulator's texts say what it meant: risk reports are found,
    /// denials, complaints and praise are not.
    #[test]
    fn the_extractor_reads_simulated_reviews_as_written() {
        let ex = Extractor::builtin().unwrap();
        let w = generate(&SimConfig {
            businesses: 150,
            days: 60,
            ..Default::default()
        });
        let mut wrong = Vec::new();
        for r in &w.reviews {
            let found = !ex.extract(r.domain, &r.text).categories.is_empty();
            if found != r.reports_risk {
                wrong.push(format!("{} {:?} risk={}", r.domain, r.text, r.reports_risk));
            }
        }
        wrong.sort();
        wrong.dedup();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
