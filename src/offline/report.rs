//! Reports a regulator can read: Markdown with PNG plots of how a model's
//! scores rank and how well they are calibrated, drawn with plotters.
//!
//! Plots: ROC curve, precision-recall curve, reliability (calibration) plot
//! with the Brier score, and cumulative gains with the lift at the 5/10/20%
//! capacities. Text needs a font: plotters' `ab_glyph` renderer with a
//! TrueType file from the system, found at run time (no font is in the
//! repository or the binary). Debian: `apt-get install fonts-dejavu-core`;
//! elsewhere set `REVIEWGUARD_FONT` to a .ttf file.

use crate::offline::train::{self, Metrics};
use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where a sans-serif TrueType font is looked for, first match wins, after
/// `REVIEWGUARD_FONT`.
pub const FONT_CANDIDATES: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (900, 640);

/// Register the system font with plotters, once per process.
fn ensure_font() -> Result<()> {
    static DONE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        let from_env = std::env::var_os("REVIEWGUARD_FONT").map(PathBuf::from);
        let candidates: Vec<PathBuf> = from_env
            .into_iter()
            .chain(FONT_CANDIDATES.iter().map(PathBuf::from))
            .collect();
        let path = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
            format!(
                "no font for the report's plots: install Debian's fonts-dejavu-core \
                 (apt-get install fonts-dejavu-core) or set REVIEWGUARD_FONT to a .ttf file \
                 (looked in {})",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read font {}: {e}", path.display()))?;
        // plotters keeps fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font(FONT, FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a usable TrueType font", path.display()))?;
        Ok(path.clone())
    });
    r.as_ref().map(|_| ()).map_err(|e| anyhow!("{e}"))
}

/// One scored series to plot: a name for the legend, scores, outcomes.
pub struct Series<'a> {
    pub name: &'a str,
    pub scores: &'a [f64],
    pub outcomes: &'a [bool],
}

/// The PNG files written, by name.
pub const PLOTS: [&str; 4] = ["roc.png", "pr.png", "calibration.png", "gains.png"];

/// Draw the four plots of `series` (the first is the main one) into `dir`.
pub fn plots(dir: &Path, series: &[Series<'_>]) -> Result<()> {
    ensure_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let draw = |name: &str, f: &dyn Fn(&Path) -> Result<()>| -> Result<()> {
        let p = dir.join(name);
        f(&p).with_context(|| format!("cannot draw {}", p.display()))
    };
    draw(PLOTS[0], &|p| roc_plot(p, series))?;
    draw(PLOTS[1], &|p| pr_plot(p, series))?;
    draw(PLOTS[2], &|p| calibration_plot(p, series))?;
    draw(PLOTS[3], &|p| gains_plot(p, series))?;
    Ok(())
}

const COLOURS: [RGBColor; 3] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), GREEN];

fn order_desc(scores: &[f64]) -> Vec<usize> {
    let mut o: Vec<usize> = (0..scores.len()).collect();
    o.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    o
}

/// ROC points (false positive rate, true positive rate), ties taken together.
pub fn roc_points(scores: &[f64], y: &[bool]) -> Vec<(f64, f64)> {
    let pos = y.iter().filter(|v| **v).count().max(1) as f64;
    let neg = (y.len() - y.iter().filter(|v| **v).count()).max(1) as f64;
    let o = order_desc(scores);
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut pts = vec![(0.0, 0.0)];
    for (k, &i) in o.iter().enumerate() {
        if y[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        if k + 1 == o.len() || scores[o[k + 1]] != scores[i] {
            pts.push((fp / neg, tp / pos));
        }
    }
    pts
}

/// Precision-recall points (recall, precision).
pub fn pr_points(scores: &[f64], y: &[bool]) -> Vec<(f64, f64)> {
    let pos = y.iter().filter(|v| **v).count().max(1) as f64;
    let o = order_desc(scores);
    let mut tp = 0.0;
    let mut pts = Vec::new();
    for (k, &i) in o.iter().enumerate() {
        if y[i] {
            tp += 1.0;
        }
        if k + 1 == o.len() || scores[o[k + 1]] != scores[i] {
            pts.push((tp / pos, tp / (k + 1) as f64));
        }
    }
    pts
}

/// Reliability bins: (mean predicted, observed share, rows) for 10 equal-width bins.
pub fn reliability(scores: &[f64], y: &[bool]) -> Vec<(f64, f64, usize)> {
    let mut bins = vec![(0.0, 0.0, 0usize); 10];
    for (s, o) in scores.iter().zip(y) {
        let b = ((s * 10.0).floor() as usize).min(9);
        bins[b].0 += s;
        bins[b].1 += f64::from(u8::from(*o));
        bins[b].2 += 1;
    }
    bins.into_iter()
        .filter(|b| b.2 > 0)
        .map(|(s, o, n)| (s / n as f64, o / n as f64, n))
        .collect()
}

/// Cumulative gains: (share of inspections visited, share of violations found).
pub fn gains_points(scores: &[f64], y: &[bool]) -> Vec<(f64, f64)> {
    let pos = y.iter().filter(|v| **v).count().max(1) as f64;
    let n = scores.len().max(1) as f64;
    let mut tp = 0.0;
    let mut pts = vec![(0.0, 0.0)];
    for (k, &i) in order_desc(scores).iter().enumerate() {
        if y[i] {
            tp += 1.0;
        }
        pts.push(((k + 1) as f64 / n, tp / pos));
    }
    pts
}

type Chart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn unit_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    x: &str,
    y: &str,
) -> Result<Chart<'a, 'b>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 26))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)?;
    chart
        .configure_mesh()
        .x_desc(x)
        .y_desc(y)
        .label_style((FONT, 18))
        .axis_desc_style((FONT, 20))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    Ok(chart)
}

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, pos: SeriesLabelPosition) -> Result<()> {
    chart
        .configure_series_labels()
        .position(pos)
        .label_font((FONT, 18))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn line<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    pts: Vec<(f64, f64)>,
    colour: RGBColor,
    label: String,
) -> Result<()> {
    chart
        .draw_series(LineSeries::new(pts, colour.stroke_width(3)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3)));
    Ok(())
}

fn dashed<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, pts: Vec<(f64, f64)>, label: &str) -> Result<()> {
    let grey = RGBColor(120, 120, 120);
    chart
        .draw_series(DashedLineSeries::new(pts, 8, 6, grey.stroke_width(2)))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], grey.stroke_width(2)));
    Ok(())
}

fn roc_plot(path: &Path, series: &[Series<'_>]) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let mut chart = unit_chart(
        &root,
        "ROC curve (validation inspections)",
        "False positive rate (clean businesses visited)",
        "True positive rate (violations found)",
    )?;
    for (s, c) in series.iter().zip(COLOURS) {
        let auc = train::roc_auc(s.scores, s.outcomes);
        line(
            &mut chart,
            roc_points(s.scores, s.outcomes),
            c,
            format!("{} (AUC {auc:.3})", s.name),
        )?;
    }
    dashed(&mut chart, vec![(0.0, 0.0), (1.0, 1.0)], "random (AUC 0.5)")?;
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present()?;
    Ok(())
}

fn pr_plot(path: &Path, series: &[Series<'_>]) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let mut chart = unit_chart(
        &root,
        "Precision-recall curve",
        "Recall (share of violations found)",
        "Precision (share of visits that find violations)",
    )?;
    for (s, c) in series.iter().zip(COLOURS) {
        let m = train::metrics(s.scores, s.outcomes);
        line(
            &mut chart,
            pr_points(s.scores, s.outcomes),
            c,
            format!("{} (PR-AUC {:.3})", s.name, m.pr_auc),
        )?;
    }
    if let Some(s) = series.first() {
        let base = train::metrics(s.scores, s.outcomes).base_rate;
        dashed(
            &mut chart,
            vec![(0.0, base), (1.0, base)],
            &format!("random (base rate {:.1}%)", base * 100.0),
        )?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}

fn calibration_plot(path: &Path, series: &[Series<'_>]) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let mut chart = unit_chart(
        &root,
        "Calibration (reliability, 10 bins)",
        "Predicted probability of violations",
        "Observed share with violations",
    )?;
    dashed(
        &mut chart,
        vec![(0.0, 0.0), (1.0, 1.0)],
        "perfectly calibrated",
    )?;
    for (s, c) in series.iter().zip(COLOURS) {
        let m = train::metrics(s.scores, s.outcomes);
        let bins = reliability(s.scores, s.outcomes);
        let pts: Vec<(f64, f64)> = bins.iter().map(|b| (b.0, b.1)).collect();
        line(
            &mut chart,
            pts.clone(),
            c,
            format!("{} (Brier {:.4})", s.name, m.brier),
        )?;
        chart.draw_series(bins.iter().map(|b| {
            Circle::new(
                (b.0, b.1),
                3 + (b.2 as f64).sqrt().min(12.0) as i32,
                c.filled(),
            )
        }))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}

fn gains_plot(path: &Path, series: &[Series<'_>]) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let mut chart = unit_chart(
        &root,
        "Cumulative gains: visit the highest scores first",
        "Share of businesses inspected (capacity)",
        "Share of violations found",
    )?;
    for (s, c) in series.iter().zip(COLOURS) {
        line(
            &mut chart,
            gains_points(s.scores, s.outcomes),
            c,
            s.name.to_owned(),
        )?;
    }
    dashed(
        &mut chart,
        vec![(0.0, 0.0), (1.0, 1.0)],
        "random inspection",
    )?;
    if let Some(s) = series.first() {
        let m = train::metrics(s.scores, s.outcomes);
        let pts = gains_points(s.scores, s.outcomes);
        for (cap, lift) in [
            (0.05, m.lift_at_5pct),
            (0.10, m.lift_at_10pct),
            (0.20, m.lift_at_20pct),
        ] {
            let k = ((pts.len() - 1) as f64 * cap).ceil() as usize;
            let (x, y) = pts[k.min(pts.len() - 1)];
            chart.draw_series(std::iter::once(Circle::new((x, y), 6, BLACK.filled())))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("{:.0}%: lift {lift:.2}x", cap * 100.0),
                (x + 0.015, y - 0.035),
                (FONT, 18),
            )))?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present()?;
    Ok(())
}

/// A feature name as a regulator reads it, e.g. `illness_7d` ->
/// "reviews reporting illness, last 7 days".
pub fn readable(name: &str) -> String {
    let (base, days) = match name.rsplit_once('_') {
        Some((b, "7d")) => (b, "7"),
        Some((b, "30d")) => (b, "30"),
        _ => (name, "30"),
    };
    let what = match base {
        "reviews" => "reviews (time-weighted)".to_owned(),
        "low_rating" => "reviews rated 2 stars or lower".to_owned(),
        "risk_reviews" => "reviews reporting any risk".to_owned(),
        "risk_share" => "share of reviews reporting a risk".to_owned(),
        "photo_risk" => "risk reports with photos".to_owned(),
        "distinct_risk_reviewers" => "different reviewers reporting risks".to_owned(),
        "credible_risk" => "risk reports weighed by credibility".to_owned(),
        "credible_reporters" => "different reporters weighed by credibility".to_owned(),
        "credible_share" => {
            "share of reviews reporting a risk, by credibility, shrunk to the domain's prior"
                .to_owned()
        }
        "unhappy_share" => {
            "share of the reviews without a risk report rated 3 stars or lower, shrunk to 25%"
                .to_owned()
        }
        "days_since_inspection" => return "days since the last inspection".to_owned(),
        "last_inspection_violation" => {
            return "the last inspection found violations (1) or not".to_owned();
        }
        "violations_365d" => return "inspections that found violations, last 365 days".to_owned(),
        "inspected_since_flag" => {
            return "found clean by an inspection since its last flag".to_owned();
        }
        "risk_evidence" => {
            return "evidence that risk reports come faster, and other reviews are unhappier, than the domain's usual (CUSUM)"
                .to_owned();
        }
        other => match crate::types::category::Category::parse(other) {
            Some(c) => format!("reviews reporting {}", c.phrase()),
            None => return name.to_owned(),
        },
    };
    format!("{what}, last {days} days")
}

/// The side-by-side table of two models on the same validation rows.
pub fn comparison_markdown(rows: &[(&str, &Metrics)]) -> String {
    let mut s = String::from(
        "| model | ROC-AUC | PR-AUC | lift@5% | lift@10% | lift@20% | Brier |\n|---|---|---|---|---|---|---|\n",
    );
    for (name, m) in rows {
        s.push_str(&format!(
            "| {name} | {:.3} | {:.3} | {:.2}x | {:.2}x | {:.2}x | {:.4} |\n",
            m.roc_auc, m.pr_auc, m.lift_at_5pct, m.lift_at_10pct, m.lift_at_20pct, m.brier
        ));
    }
    s
}

/// The Markdown that shows the plots written by [`plots`].
pub fn plots_markdown() -> String {
    "## Plots\n\n\
![ROC curve](roc.png)\n\n\
![Precision-recall curve](pr.png)\n\n\
![Calibration](calibration.png)\n\n\
![Cumulative gains and lift](gains.png)\n"
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_end_where_they_must() {
        let s = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1];
        let y = [true, false, true, false, true, false];
        let roc = roc_points(&s, &y);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        let g = gains_points(&s, &y);
        assert_eq!(g.last(), Some(&(1.0, 1.0)));
        let pr = pr_points(&s, &y);
        assert_eq!(pr[0], (1.0 / 3.0, 1.0));
        let bins = reliability(&s, &y);
        assert_eq!(bins.iter().map(|b| b.2).sum::<usize>(), 6);
        assert_eq!(
            readable("illness_7d"),
            "reviews reporting illness after eating, last 7 days"
        );
        assert_eq!(
            readable("risk_share_30d"),
            "share of reviews reporting a risk, last 30 days"
        );
    }
}
