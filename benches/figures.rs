//! The speed and memory figures of reviewguard's core, each beside the
//! baseline it is judged against, measured in the same run:
//!
//! * extraction over the real corpora (`../shared/data`) beside a bare UTF-8
//!   scan of the same bytes;
//! * the cost of each stage per review (decode, extract, state update, score);
//! * `replay` over 1,000,000 simulated reviews beside a bare `serde_json`
//!   parse of the same lines into a review struct;
//! * memory per tracked business with 1,000,000 businesses, counted by a
//!   counting allocator (every heap byte the state holds, map included);
//! * scaling: throughput and memory at 1×, 10×, 100× and 1000× the
//!   businesses and reviews, memory both as heap bytes requested and as the
//!   growth of the process's resident set (which shows malloc's overhead).
//!
//! `cargo bench --bench figures` (release profile). `FIGURES_QUICK=1` runs a
//! tenth of the sizes; `cargo test` runs a thousandth (a smoke test).

use reviewguard::core::decide::DecideConfig;
use reviewguard::core::extract::Extractor;
use reviewguard::core::features::{BusinessState, Observation};
use reviewguard::core::privacy::Pseudonymiser;
use reviewguard::core::review::{self, DecodeOptions};
use reviewguard::core::scorer::{Models, Scorer, States};
use reviewguard::offline::replay;
use reviewguard::offline::simulate::{self, SimConfig};
use reviewguard::types::Domain;
use serde::Deserialize;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// Counts the bytes currently allocated on the heap.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// The process's resident set in bytes (`/proc/self/statm`), after handing
/// free heap pages back to the system, so that what is left is what live
/// allocations hold (with malloc's headers, rounding and fragmentation).
/// `None` where there is no `/proc`.
fn resident() -> Option<isize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: isize = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page as isize)
}

/// Divides every size: 1 under `cargo bench`, 10 with `FIGURES_QUICK`, and
/// 1,000 when `cargo test --all-targets` runs this binary as a smoke test.
fn scale() -> usize {
    if !std::env::args().any(|a| a == "--bench") {
        1_000
    } else if std::env::var_os("FIGURES_QUICK").is_some() {
        10
    } else {
        1
    }
}

fn scorer() -> Scorer {
    Scorer {
        extractor: Arc::new(Extractor::builtin().expect("builtin lexicons")),
        models: Models::builtin().expect("builtin models"),
        pseudonyms: Pseudonymiser::new(b"figures-bench-key-0123456789"),
        decide: DecideConfig::default(),
        outcomes: Default::default(),
    }
}

/// Runs `f` repeatedly until at least `min` has passed; returns calls and time.
fn timed(min: Duration, mut f: impl FnMut()) -> (u32, Duration) {
    let start = Instant::now();
    let mut n = 0;
    while n == 0 || start.elapsed() < min {
        f();
        n += 1;
    }
    (n, start.elapsed())
}

fn corpus(name: &str) -> Option<Vec<String>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name);
    let mut rdr = csv::Reader::from_path(&path).ok()?;
    Some(
        rdr.records()
            .filter_map(Result::ok)
            .filter_map(|r| r.get(1).map(str::to_owned))
            .collect(),
    )
}

fn extraction_on_real_corpora(scorer: &Scorer) {
    println!("\n## Extraction on the real corpora (beside a bare UTF-8 scan of the same bytes)\n");
    println!(
        "| corpus | reviews | MB | bare scan MB/s | extract reviews/s | extract MB/s | extract / bare |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (file, domain) in [
        ("waimai_10k.csv", Domain::Food),
        ("ChnSentiCorp_htl_all.csv", Domain::Tourism),
    ] {
        let Some(texts) = corpus(file) else {
            println!(
                "| {file} | SKIPPED: ../shared/data/{file} is not on this machine | | | | | |"
            );
            continue;
        };
        let bytes: usize = texts.iter().map(String::len).sum();
        let mb = bytes as f64 / 1e6;
        let (n, bare) = timed(Duration::from_secs(1), || {
            let mut chars = 0usize;
            for t in &texts {
                let s = std::str::from_utf8(black_box(t.as_bytes())).unwrap_or_default();
                chars += s.chars().filter(|c| !c.is_whitespace()).count();
            }
            black_box(chars);
        });
        let bare_mbs = mb * f64::from(n) / bare.as_secs_f64();
        let (n, ext) = timed(Duration::from_secs(2), || {
            for t in &texts {
                black_box(scorer.extractor.extract(domain, black_box(t)));
            }
        });
        let per_s = texts.len() as f64 * f64::from(n) / ext.as_secs_f64();
        let ext_mbs = mb * f64::from(n) / ext.as_secs_f64();
        println!(
            "| {file} | {} | {mb:.2} | {bare_mbs:.0} | {per_s:.0} | {ext_mbs:.1} | {:.3} |",
            texts.len(),
            ext_mbs / bare_mbs
        );
    }
}

fn simulated(businesses: usize, days: u32, seed: u64) -> Vec<u8> {
    let world = simulate::generate(&SimConfig {
        seed,
        businesses,
        days,
        ..SimConfig::default()
    });
    let mut out = Vec::new();
    for r in &world.reviews {
        serde_json::to_writer(&mut out, r).expect("a simulated review serialises");
        out.push(b'\n');
    }
    out
}

fn per_stage(scorer: &Scorer, jsonl: &[u8]) {
    let lines: Vec<&[u8]> = jsonl
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let opts = DecodeOptions::default();
    let n = lines.len() as f64;
    let t = Instant::now();
    let reviews: Vec<review::Review> = lines
        .iter()
        .filter_map(|l| review::decode(l, &opts).ok())
        .collect();
    let decode = t.elapsed().as_secs_f64() / n;
    let t = Instant::now();
    let signals: Vec<_> = reviews
        .iter()
        .map(|r| scorer.extractor.extract(r.domain, &r.text).categories)
        .collect();
    let extract = t.elapsed().as_secs_f64() / n;
    let mut states: std::collections::HashMap<&str, BusinessState> = Default::default();
    let t = Instant::now();
    for (r, s) in reviews.iter().zip(&signals) {
        let st = states
            .entry(r.business_id.as_str())
            .or_insert_with(|| BusinessState::new(r.domain, r.event_time));
        st.observe(&Observation {
            event_time: r.event_time,
            rating: r.rating,
            photos: r.photos.unwrap_or(0),
            signals: *s,
            review_id: &r.review_id,
            created_at: &r.created_at,
            reviewer: scorer
                .pseudonyms
                .short(r.reviewer_id.as_deref().unwrap_or("")),
            text: &r.text,
        });
    }
    let update = t.elapsed().as_secs_f64() / n;
    let t = Instant::now();
    for r in &reviews {
        let st = &states[r.business_id.as_str()];
        let raw = st.features_at(r.event_time.max(st.as_of));
        black_box(scorer.models.get(r.domain).score(&raw));
    }
    let score = t.elapsed().as_secs_f64() / n;
    println!(
        "\n## Cost per review, by stage ({} simulated reviews)\n",
        lines.len()
    );
    println!("| stage | ns/review | reviews/s |");
    println!("| --- | ---: | ---: |");
    for (name, s) in [
        ("decode (parse + validate)", decode),
        ("extract", extract),
        ("state update (incl. pseudonym)", update),
        ("score (features + model)", score),
    ] {
        println!("| {name} | {:.0} | {:.0} |", s * 1e9, 1.0 / s);
    }
    println!(
        "\n(score is measured for every review; the pipeline scores only reviews that report a risk)"
    );
}

/// The review struct a bare parse fills: the contract's fields, owned.
#[derive(Deserialize)]
#[allow(dead_code)]
struct BareReview {
    review_id: String,
    business_id: String,
    domain: Option<String>,
    text: String,
    created_at: String,
    rating: Option<f64>,
    business_name: Option<String>,
    region: Option<String>,
    platform: Option<String>,
    reviewer_id: Option<String>,
    photos: Option<u32>,
}

fn replay_beside_bare_parse(scorer: &Scorer) {
    let target = 1_000_000 / scale();
    // ~2.7 reviews per business-day with the simulator's defaults: grow the
    // world until it holds the target.
    let mut days = 30;
    let mut jsonl = simulated((2_000 / scale()).max(20), days, 8);
    loop {
        let n = jsonl.iter().filter(|b| **b == b'\n').count();
        if n >= target {
            break;
        }
        days = (f64::from(days) * target as f64 / n as f64 * 1.02).ceil() as u32;
        jsonl = simulated((2_000 / scale()).max(20), days, 8);
    }
    // Cut to exactly the target number of lines.
    let cut = jsonl
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(target - 1)
        .map_or(jsonl.len(), |(i, _)| i + 1);
    jsonl.truncate(cut);
    let mb = jsonl.len() as f64 / 1e6;
    per_stage(scorer, &jsonl[..jsonl.len().min(40_000_000)]);

    let t = Instant::now();
    let mut parsed = 0usize;
    for line in jsonl.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(r) = serde_json::from_slice::<BareReview>(line) {
            parsed += black_box(r).text.len().min(1);
        }
    }
    let bare = t.elapsed();
    let t = Instant::now();
    let (summary, _states) = replay_to_sink(scorer, &jsonl);
    let rep = t.elapsed();
    let rate = |d: Duration| target as f64 / d.as_secs_f64();
    println!("\n## replay beside a bare serde_json parse ({target} reviews, {mb:.0} MB)\n");
    println!("| run | seconds | reviews/s | MB/s | share of bare parse |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| bare parse into a review struct | {:.2} | {:.0} | {:.0} | 1.000 |",
        bare.as_secs_f64(),
        rate(bare),
        mb / bare.as_secs_f64()
    );
    println!(
        "| replay ({} flags) | {:.2} | {:.0} | {:.0} | {:.3} |",
        summary.flags,
        rep.as_secs_f64(),
        rate(rep),
        mb / rep.as_secs_f64(),
        rate(rep) / rate(bare)
    );
    assert_eq!(parsed, target, "every line parses");
}

fn replay_to_sink(scorer: &Scorer, jsonl: &[u8]) -> (replay::ReplaySummary, States) {
    replay::replay(
        scorer,
        jsonl,
        std::io::sink(),
        review::DEFAULT_MAX_MESSAGE_BYTES,
        String::new,
        |_| {},
    )
    .expect("replay into a sink")
}

/// `reviews_per` reviews for each of `businesses` businesses, 1 in 20 of them
/// reporting a risk, as JSON lines in time order.
fn synthetic(businesses: usize, reviews_per: usize) -> Vec<u8> {
    let texts = [
        "味道不错，送餐很快，下次还点",
        "一般般吧，分量有点少",
        "好吃，就是有点咸",
        "吃完拉肚子了，汤里还有根头发",
    ];
    let mut out = Vec::with_capacity(businesses * reviews_per * 260);
    let start = 1_790_000_000i64;
    for round in 0..reviews_per {
        for b in 0..businesses {
            let risky = (b * 7 + round) % 20 == 0;
            let text = if risky {
                texts[3]
            } else {
                texts[(b + round) % 3]
            };
            let t = start + (round * businesses + b) as i64 * 3;
            let line = serde_json::json!({
                "review_id": format!("r{round}-{b}"),
                "business_id": format!("shop-{b:07}"),
                "domain": "food",
                "text": text,
                "created_at": reviewguard::types::time::rfc3339(t),
                "rating": if risky { 1 } else { 4 },
                "business_name": format!("餐厅{b}号店"),
                "region": format!("3101{:02}", b % 17),
                "platform": "meituan",
                "reviewer_id": format!("u{}", (b * 31 + round * 7) % 100_000),
                "photos": u32::from(risky),
            });
            serde_json::to_writer(&mut out, &line).expect("json");
            out.push(b'\n');
        }
    }
    out
}

fn scaling_and_memory(scorer: &Scorer) {
    println!("\n## Scaling: throughput and state memory as businesses and reviews grow together\n");
    println!(
        "| scale | businesses | reviews | seconds | reviews/s | state bytes | bytes/business | RSS growth | RSS bytes/business |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let base = 1_000;
    let reviews_per = 3;
    for factor in [1usize, 10, 100, 1000] {
        let businesses = (base * factor / scale()).max(10);
        let jsonl = synthetic(businesses, reviews_per);
        let rss_before = resident();
        let before = live();
        let t = Instant::now();
        let (summary, states) = replay_to_sink(scorer, &jsonl);
        let secs = t.elapsed().as_secs_f64();
        let held = live() - before;
        let rss = rss_before.zip(resident()).map(|(b, a)| a - b);
        assert_eq!(states.len(), businesses);
        let (rss, rss_per) = match rss {
            Some(r) => (
                r.to_string(),
                format!("{:.0}", r as f64 / businesses as f64),
            ),
            None => ("n/a".into(), "n/a".into()),
        };
        println!(
            "| {factor}× | {businesses} | {} | {secs:.2} | {:.0} | {held} | {:.0} | {rss} | {rss_per} |",
            summary.reviews,
            summary.reviews as f64 / secs,
            held as f64 / businesses as f64
        );
        drop(states);
    }
    println!(
        "\n(state bytes = heap bytes still allocated after the replay, with the States map alive: \
         map, keys, names, regions, evidence; 1 review in 20 reports a risk, so 3 businesses in 20 carry evidence. RSS growth = \
         resident set after minus before, both after malloc_trim: what the state really costs \
         the machine, malloc overhead included; coarse below 100× where a few pages dominate)"
    );
}

fn state_size_by_kind() {
    // What one business costs, by kind: counted per 100,000 states.
    let n = 100_000 / scale();
    let mut states = States::default();
    let before = live();
    for b in 0..n {
        states.entry(Domain::Food, &format!("shop-{b:07}"), 1_790_000_000);
    }
    let plain = (live() - before) as f64 / n as f64;
    println!(
        "\nA business with no name, region or risk evidence: {plain:.0} bytes (map slot, key, state; \
         size_of::<BusinessState>() = {}).",
        std::mem::size_of::<BusinessState>()
    );
}

fn main() {
    // `cargo bench` passes --bench; this binary takes no options.
    let scorer = scorer();
    println!("# reviewguard figures (release build; ratios are against baselines of the same run)");
    extraction_on_real_corpora(&scorer);
    replay_beside_bare_parse(&scorer);
    state_size_by_kind();
    scaling_and_memory(&scorer);
}
