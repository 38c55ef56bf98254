//! A seeded synthetic world: businesses with a hidden hygiene state that
//! changes over time, the reviews their customers (and others) write, and the
//! outcomes of inspections. Deterministic for a seed: every business draws
//! from its own ChaCha8 stream, seeded from (seed, domain, index).
//!
//! # The generative story
//! 1. **Popularity.** Each business has a base review rate (reviews per day,
//!    log-normal around [`SimConfig::median_rate`], at most 25); the day's
//!    rate is higher on Friday to Sunday. Popular businesses get more reviews
//!    of every kind, so more false alarms too.
//! 2. **Hidden hygiene state.** A few businesses are *chronic offenders*
//!    ([`SimConfig::chronic_share`]): bad all year, at a lower intensity. The
//!    others are clean but fall into *bad episodes* of 7–30 days at a small
//!    daily hazard ([`SimConfig::episode_hazard`]), with at least 10 clean
//!    days between episodes. [`Truth`] records both.
//! 3. **What customers write.** While a business is bad, about 22% of its
//!    reviews (13% for a chronic one) report a risk of the domain (category
//!    mix per domain), mostly with low ratings and often with photos. While
//!    it is clean, 1.2% still do (*false alarms*: a stomach ache from
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
use crate::types::Domain;
use crate::types::category::Category;
use crate::types::time::rfc3339;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::sync::Arc;

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
}

/// The hidden truth of one business.
#[derive(Debug, Clone, Serialize, PartialEq)]
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
        self.chronic || self.episodes.iter().any(|(s, e)| *s <= t && t < *e)
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
                    for _ in 0..rng.gen_range(3..=8) {
                        fakes.push((t + rng.gen_range(0..len), true));
                    }
                }
            }
            fakes.sort_unstable();
            let rate = (cfg.median_rate * (0.8 * normal(&mut rng)).exp()).min(25.0);
            let name = business_name(&mut rng, domain);
            let region = pick(
                &mut rng,
                &[
                    "310105", "310104", "110105", "440305", "330106", "510107", "530102", "460202",
                ],
            )
            .to_owned();
            let prefix = if domain == Domain::Food {
                "shop"
            } else {
                "hotel"
            };
            truth.business_id = format!("{prefix}-{:05}", i);
            businesses.push(Business {
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
            if b.rng.r#gen::<f64>() < 1.0 / 120.0 {
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
            if risky && b.rng.r#gen::<f64>() < 0.08 {
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
    let p_violation = match (b.truth.bad_at(t), b.truth.chronic) {
        (true, true) => 0.75,
        (true, false) => 0.85,
        (false, _) => 0.08,
    };
    Inspection {
        business_id: b.truth.business_id.clone(),
        domain: b.truth.domain,
        inspected_at: t,
        outcome: u8::from(b.rng.r#gen::<f64>() < p_violation),
    }
}

/// A competitor's fake risk report (`risk`) or a farm's fake praise.
fn fake_review(b: &mut Business, t: i64, risk: bool) -> SimReview {
    let domain = b.truth.domain;
    let rng = &mut b.rng;
    let english = rng.r#gen::<f64>() < 0.05;
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
    let intensity = if b.truth.chronic { 0.6 } else { 1.0 };
    let rng = &mut b.rng;
    let p_risk = if bad { 0.22 * intensity } else { 0.012 };
    let english = rng.r#gen::<f64>() < 0.1;
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
        if !pool.is_empty() && rng.r#gen::<f64>() < 0.3 {
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
    let photos = if rng.r#gen::<f64>() < if risky { 0.4 } else { 0.1 } {
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

fn business_name(rng: &mut ChaCha8Rng, d: Domain) -> String {
    let a = pick(
        rng,
        &[
            "老王", "川味", "金牌", "小城", "阿婆", "湘里", "东北", "江南", "福满", "好运",
        ],
    );
    let b = match d {
        Domain::Food => pick(
            rng,
            &[
                "面馆",
                "烧烤",
                "快餐",
                "火锅",
                "饺子馆",
                "麻辣烫",
                "小炒",
                "粥铺",
            ],
        ),
        Domain::Tourism => pick(
            rng,
            &[
                "大酒店",
                "宾馆",
                "民宿",
                "快捷酒店",
                "客栈",
                "旅行社",
                "度假村",
            ],
        ),
    };
    format!("{a}{b}")
}

fn risk_text(rng: &mut ChaCha8Rng, domain: Domain, c: Category, en: bool) -> String {
    let food = domain == Domain::Food;
    let core = if en {
        match c {
            Category::Illness => pick(
                rng,
                &[
                    "I got food poisoning after eating here",
                    "threw up all night after the meal",
                    "we all had diarrhea the next day",
                ],
            ),
            Category::ForeignObject => pick(
                rng,
                &[
                    "found a hair in my noodles",
                    "there was a cockroach in the soup",
                    "a dead fly in the rice",
                ],
            ),
            Category::Spoilage => pick(
                rng,
                &[
                    "the meat was spoiled",
                    "the milk had expired",
                    "the vegetables were rotten",
                ],
            ),
            Category::Undercooked => pick(
                rng,
                &["the chicken was raw inside", "the pork was undercooked"],
            ),
            Category::Hygiene if food => pick(
                rng,
                &["the kitchen was filthy", "saw a rat near the tables"],
            ),
            Category::Hygiene => pick(
                rng,
                &["sheets were dirty and stained", "the bathroom was filthy"],
            ),
            Category::Safety => pick(
                rng,
                &[
                    "the balcony railing was loose and my kid got injured",
                    "got an electric shock from the shower",
                ],
            ),
            Category::PriceFraud => pick(
                rng,
                &[
                    "we were overcharged at checkout",
                    "they charged twice and there were hidden charges",
                ],
            ),
            Category::FalseAdvertising => pick(
                rng,
                &[
                    "the room looks nothing like the pictures",
                    "the pool was not as advertised",
                ],
            ),
            Category::ForcedConsumption => pick(
                rng,
                &[
                    "forced shopping: the guide made us buy jade",
                    "it was forced shopping all day",
                ],
            ),
            Category::ConsumerRights => pick(
                rng,
                &[
                    "they refused to refund the cancelled booking",
                    "no refund even though we cancelled early",
                ],
            ),
        }
    } else {
        match c {
            Category::Illness => pick(
                rng,
                &[
                    "吃完回家就拉肚子了",
                    "晚上上吐下泻，怀疑食物中毒",
                    "全家吃完肚子疼，去医院挂了急诊",
                    "吃了以后一直呕吐",
                ],
            ),
            Category::ForeignObject => pick(
                rng,
                &[
                    "汤里有一根头发",
                    "饭里吃出一只苍蝇",
                    "菜里居然有蟑螂",
                    "面里吃出钢丝球的钢丝",
                ],
            ),
            Category::Spoilage => pick(
                rng,
                &[
                    "肉有股馊味，明显变质了",
                    "饮料过期了",
                    "米饭都馊了",
                    "菜已经发霉",
                ],
            ),
            Category::Undercooked => pick(rng, &["鸡肉没熟，里面还带血", "牛排夹生", "饺子没煮熟"]),
            Category::Hygiene if food => pick(
                rng,
                &[
                    "后厨很脏，餐具也不干净",
                    "桌上有老鼠跑过",
                    "碗没洗干净，卫生太差",
                ],
            ),
            Category::Hygiene => pick(
                rng,
                &[
                    "床单有污渍，卫生很差",
                    "房间有霉味，马桶脏",
                    "浴室有蟑螂，毛巾脏",
                ],
            ),
            Category::Safety => pick(
                rng,
                &[
                    "浴室漏电，差点触电",
                    "阳台栏杆松动，孩子摔伤了",
                    "门锁坏了锁不上，很不安全",
                ],
            ),
            Category::PriceFraud => pick(
                rng,
                &[
                    "退房时乱收费，多收了两百",
                    "结账被宰，价格欺诈",
                    "押金不退，还额外收费",
                ],
            ),
            Category::FalseAdvertising => pick(
                rng,
                &[
                    "房间与图片不符，虚假宣传",
                    "宣传的海景房根本看不到海，与宣传不符",
                    "实物和描述不符，照骗",
                ],
            ),
            Category::ForcedConsumption => pick(
                rng,
                &[
                    "导游强制购物，不买不让走",
                    "一天跑了三个购物点，强迫消费",
                    "被迫购物，强行推销玉器",
                ],
            ),
            Category::ConsumerRights => pick(
                rng,
                &[
                    "取消订单拒绝退款",
                    "到店没房，还拒绝赔偿",
                    "投诉无门，不给退款",
                ],
            ),
        }
    };
    let opener = match (food, en) {
        (true, true) => pick(
            rng,
            &[
                "",
                "Ordered here last week. ",
                "Taste was ok but ",
                "Second visit: ",
            ],
        ),
        (true, false) => pick(
            rng,
            &[
                "",
                "味道还行，就是",
                "第二次来了，",
                "本来挺期待的，结果",
                "点了外卖，",
            ],
        ),
        (false, true) => pick(
            rng,
            &[
                "",
                "Stayed two nights. ",
                "Location is fine but ",
                "Booked for the family: ",
            ],
        ),
        (false, false) => pick(
            rng,
            &[
                "",
                "位置还行，就是",
                "第二次入住了，",
                "本来挺期待的，结果",
                "带家人来玩，",
            ],
        ),
    };
    let closer = if en {
        pick(rng, &["", " Never again.", " Reported to the platform."])
    } else {
        pick(
            rng,
            &["", "，再也不来了", "，已经投诉", "！！", "，大家注意"],
        )
    };
    format!("{opener}{core}{closer}")
}

fn denial_text(rng: &mut ChaCha8Rng, d: Domain, en: bool) -> String {
    match (d, en) {
        (Domain::Food, false) => pick(
            rng,
            &[
                "吃了好几次都没有拉肚子，放心",
                "很干净，没有头发之类的",
                "担心会拉肚子，结果一点事没有",
                "食材新鲜，不会有变质的问题",
            ],
        ),
        (Domain::Food, true) => pick(
            rng,
            &[
                "Clean place, we did not get sick at all",
                "no hair, no bugs, very clean",
            ],
        ),
        (Domain::Tourism, false) => pick(
            rng,
            &[
                "房间很干净，不脏",
                "没有乱收费，价格透明",
                "导游不强制购物，很好",
                "怕有虫子，结果很干净",
            ],
        ),
        (Domain::Tourism, true) => pick(
            rng,
            &[
                "The room was not dirty at all",
                "no hidden fees, honest staff",
            ],
        ),
    }
    .to_owned()
}

fn complaint_text(rng: &mut ChaCha8Rng, d: Domain, en: bool) -> String {
    match (d, en) {
        (Domain::Food, false) => pick(
            rng,
            &[
                "太难吃了",
                "送餐太慢了，等了一个多小时",
                "分量太少，价格偏贵",
                "味道一般，太咸了",
                "难吃得快吐了",
                "包装洒了一半",
            ],
        ),
        (Domain::Food, true) => pick(
            rng,
            &[
                "Too salty and overpriced",
                "Delivery took forever",
                "Bland food",
            ],
        ),
        (Domain::Tourism, false) => pick(
            rng,
            &[
                "隔音太差了",
                "前台态度一般",
                "位置有点偏，打车不方便",
                "早餐品种太少",
                "价格有点贵，性价比不高",
                "隔壁那家酒店床单很脏，还好这家还行",
            ],
        ),
        (Domain::Tourism, true) => pick(
            rng,
            &[
                "Noisy room and slow wifi",
                "Breakfast was boring",
                "A bit pricey for what you get",
            ],
        ),
    }
    .to_owned()
}

fn praise_text(rng: &mut ChaCha8Rng, d: Domain, en: bool) -> String {
    match (d, en) {
        (Domain::Food, false) => pick(
            rng,
            &[
                "很好吃，会再来",
                "送餐很快，味道不错",
                "性价比高，推荐",
                "老味道，一直支持",
                "分量足，好吃",
            ],
        ),
        (Domain::Food, true) => pick(
            rng,
            &["Delicious, will order again", "Fast delivery and tasty"],
        ),
        (Domain::Tourism, false) => pick(
            rng,
            &[
                "房间宽敞明亮，服务热情",
                "位置很好，交通方便",
                "早餐丰富，推荐入住",
                "性价比很高，下次还来",
            ],
        ),
        (Domain::Tourism, true) => pick(
            rng,
            &[
                "Great location and friendly staff",
                "Comfortable bed, will stay again",
            ],
        ),
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a relabel share, some reviews name their business or region
    /// otherwise, and everything else is the world without it.
    #[test]
    fn relabelled_reviews_change_only_their_labels() {
        let cfg = SimConfig {
            businesses: 30,
            days: 20,
            ..SimConfig::default()
        };
        let plain = generate(&cfg);
        let relabelled = generate(&SimConfig {
            relabel_share: 0.1,
            ..cfg.clone()
        });
        assert_eq!(plain.reviews.len(), relabelled.reviews.len());
        let mut changed = 0;
        for (a, b) in plain.reviews.iter().zip(&relabelled.reviews) {
            let labels = |r: &SimReview| (r.business_name.clone(), r.region.clone());
            if labels(a) != labels(b) {
                changed += 1;
            }
            let unlabelled = |r: &SimReview| SimReview {
                business_name: String::new(),
                region: String::new(),
                ..r.clone()
            };
            assert_eq!(unlabelled(a), unlabelled(b));
        }
        let share = f64::from(changed) / plain.reviews.len() as f64;
        assert!((0.05..0.15).contains(&share), "{changed} relabelled");
    }

    #[test]
    fn same_seed_same_world() {
        let cfg = SimConfig {
            businesses: 20,
            days: 20,
            ..Default::default()
        };
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert_eq!(a.reviews, b.reviews);
        assert_eq!(a.inspections, b.inspections);
        let c = generate(&SimConfig { seed: 43, ..cfg });
        assert_ne!(a.reviews, c.reviews);
    }

    #[test]
    fn attacks_hit_clean_businesses_and_farms_praise_bad_ones() {
        let w = generate(&SimConfig {
            businesses: 300,
            days: 120,
            ..Default::default()
        });
        let truth: std::collections::HashMap<_, _> = w
            .truth
            .iter()
            .map(|t| ((t.domain, t.business_id.clone()), t))
            .collect();
        let (mut attacks, mut farmed) = (0, 0);
        for r in w.reviews.iter().filter(|r| r.fake) {
            let t = truth[&(r.domain, r.business_id.clone())];
            let inside = |spans: &[(i64, i64)]| {
                spans
                    .iter()
                    .find(|(s, e)| *s <= r.event_time && r.event_time < *e)
                    .copied()
            };
            if r.reports_risk {
                let (start, _) = inside(&t.attacks).expect("a fake risk report lies in an attack");
                assert!(!t.bad_at(start), "attacks start on clean businesses");
                assert_eq!(r.rating, 1);
                attacks += 1;
            } else {
                let (start, _) = inside(&t.farms).expect("fake praise lies in a farm burst");
                assert!(t.bad_at(start), "farms work for bad businesses");
                assert_eq!(r.rating, 5);
                farmed += 1;
            }
        }
        assert!(
            attacks >= 10 && farmed >= 50,
            "{attacks} attack reviews, {farmed} farmed"
        );
    }

    #[test]
    fn real_texts_are_mixed_in_as_background_rated_by_sentiment() {
        let texts = Texts {
            food: vec![
                ("真实评论甲，送得快".into(), Some(true)),
                ("真实评论乙，太咸".into(), Some(false)),
            ],
            tourism: Vec::new(),
        };
        let cfg = SimConfig {
            businesses: 60,
            days: 30,
            domains: vec![Domain::Food],
            texts: Some(Arc::new(texts)),
            ..Default::default()
        };
        let w = generate(&cfg);
        assert_eq!(w.reviews, generate(&cfg).reviews, "still deterministic");
        let real: Vec<_> = w
            .reviews
            .iter()
            .filter(|r| r.text.starts_with("真实评论"))
            .collect();
        let share = real.len() as f64 / w.reviews.len() as f64;
        assert!(
            (0.15..0.35).contains(&share),
            "share of real texts {share:.3}"
        );
        for r in real {
            assert!(!r.reports_risk && !r.fake);
            if r.text.contains('甲') {
                assert!(r.rating >= 4, "{r:?}");
            } else {
                assert!(r.rating <= 3, "{r:?}");
            }
        }
    }

    #[test]
    fn reviews_are_in_time_order_and_valid() {
        let w = generate(&SimConfig {
            businesses: 30,
            days: 10,
            ..Default::default()
        });
        assert!(!w.reviews.is_empty());
        assert!(
            w.reviews
                .windows(2)
                .all(|p| p[0].event_time <= p[1].event_time)
        );
        for r in &w.reviews {
            let bytes = serde_json::to_vec(r).unwrap();
            crate::core::review::decode(&bytes, &Default::default()).unwrap();
        }
    }
}

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
    use std::collections::{HashMap, HashSet};
    let truth: HashMap<(Domain, &str), &Truth> = world
        .truth
        .iter()
        .map(|t| ((t.domain, t.business_id.as_str()), t))
        .collect();
    let mut bad_reviewed: HashSet<(Domain, &str)> = HashSet::new();
    for r in &world.reviews {
        if let Some(t) = truth.get(&(r.domain, r.business_id.as_str())) {
            if r.reports_risk && !r.fake && t.bad_at(r.event_time) {
                bad_reviewed.insert((r.domain, r.business_id.as_str()));
            }
        }
    }
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
