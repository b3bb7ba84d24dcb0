//! SVG charts drawn server-side with `plotters` (SVG backend): spend over time per group, and
//! a request's attempts as a waterfall. Pixel positions are computed from `f64` copies of the
//! exact amounts; the amounts people read stay exact decimals in the page's tables.
//!
//! Plotters escapes the text it writes into the SVG, so group names chosen by clients (feature
//! tags, model names) cannot inject markup.

use super::series::{GroupSeries, Series};
use crate::ledger::GroupBy;
use plotters::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::Value;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 300;

fn usd(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// `HH:MM` (UTC) of a unix-ms instant, or `MM-DD` when the buckets span days.
fn tick(ms: i64, span_ms: i64) -> String {
    let day_ms = 86_400_000;
    if span_ms > 2 * day_ms {
        let (_, m, d) = crate::calendar::civil_from_days(ms.div_euclid(day_ms));
        format!("{m:02}-{d:02}")
    } else {
        let mins = ms.rem_euclid(day_ms) / 60_000;
        format!("{:02}:{:02}", mins / 60, mins % 60)
    }
}

fn draw_err<E: std::fmt::Debug>(e: E) -> String {
    format!("chart drawing failed: {e:?}")
}

/// Spend per bucket for each group of one grouping as lines, with the whole window's cache
/// savings as a dashed line.
pub fn spend_chart(series: &Series, by: GroupBy, groups: &[GroupSeries]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let n = series.starts.len().max(1);
        let top = groups
            .iter()
            .flat_map(|g| g.cost.iter())
            .chain(series.total.saved.iter())
            .map(|d| usd(*d))
            .fold(0.0_f64, f64::max);
        let y_max = if top > 0.0 { top * 1.15 } else { 1e-6 };
        let span = series.until_ms - series.since_ms;
        let starts = series.starts.clone();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Spend by {by} (USD per bucket)"),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..(n as f64 - 1.0).max(1.0), 0f64..y_max)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(5)
            .x_label_formatter(&|x| {
                let i = (x.round().max(0.0) as usize).min(starts.len().saturating_sub(1));
                starts.get(i).map(|ms| tick(*ms, span)).unwrap_or_default()
            })
            .y_label_formatter(&|y| format!("{y:.4}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(draw_err)?;
        for (i, g) in groups.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    g.cost.iter().enumerate().map(|(x, c)| (x as f64, usd(*c))),
                    color.stroke_width(2),
                ))
                .map_err(draw_err)?
                .label(g.group.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .draw_series(DashedLineSeries::new(
                series
                    .total
                    .saved
                    .iter()
                    .enumerate()
                    .map(|(x, s)| (x as f64, usd(*s))),
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(draw_err)?
            .label("cache savings (all)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 11))
            .draw()
            .map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

/// One bar of the waterfall, read from an attempt object of `/admin/requests/{id}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: String,
    /// `served`, `failed`, `skipped`, `race_loser`, `hedge`, ... when the ledger records it.
    pub role: Option<String>,
    pub start_ms: f64,
    pub ms: f64,
    pub outcome: String,
}

/// Bars from whatever attempt list the request JSON holds: each attempt's `start_ms` (or
/// `offset_ms`) when recorded, else it starts where the previous one ended; its length is
/// `ms`; its label is `provider/model` with its `role` and outcome (`outcome`, else
/// `error_class`, else `status`).
pub fn bars(attempts: &[Value]) -> Vec<Bar> {
    let mut at = 0.0;
    attempts
        .iter()
        .map(|a| {
            let num = |k: &str| a.get(k).and_then(Value::as_f64);
            let text = |k: &str| match a.get(k) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let ms = num("ms").unwrap_or(0.0).max(0.0);
            let start = num("start_ms").or_else(|| num("offset_ms")).unwrap_or(at);
            at = start + ms;
            let outcome = text("outcome")
                .or_else(|| text("error_class"))
                .or_else(|| text("status"))
                .unwrap_or_else(|| "?".into());
            let mut label = format!(
                "{}/{}",
                text("provider").unwrap_or_default(),
                text("model").unwrap_or_default()
            );
            let role = text("role");
            if let Some(role) = &role {
                label.push_str(&format!(" [{role}]"));
            }
            Bar {
                label,
                role,
                start_ms: start,
                ms,
                outcome,
            }
        })
        .collect()
}

fn bar_color(b: &Bar) -> RGBColor {
    let o = b.role.as_deref().unwrap_or(&b.outcome).to_ascii_lowercase();
    if o == "ok" || o == "served" || o.starts_with('2') {
        RGBColor(46, 139, 87)
    } else if o.contains("skip") || o.contains("loser") || o.contains("cancel") {
        RGBColor(150, 150, 150)
    } else if o.contains("hedge") || o.contains("race") {
        RGBColor(70, 110, 200)
    } else {
        RGBColor(200, 60, 50)
    }
}

/// The attempts as horizontal bars on a milliseconds axis.
pub fn waterfall(bars: &[Bar]) -> Result<String, String> {
    let mut svg = String::new();
    let rows = bars.len().max(1);
    let height = 60 + 28 * rows as u32;
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let end = bars
            .iter()
            .map(|b| b.start_ms + b.ms)
            .fold(0.0_f64, f64::max)
            .max(1.0);
        let mut chart = ChartBuilder::on(&root)
            .caption("Attempts (ms)", ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(24)
            .build_cartesian_2d(0f64..end * 1.05, 0f64..rows as f64)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_labels(6)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(draw_err)?;
        let n = bars.len() as f64;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let y = n - i as f64;
                Rectangle::new(
                    [
                        (b.start_ms, y - 0.8),
                        (b.start_ms + b.ms.max(end / 400.0), y - 0.2),
                    ],
                    bar_color(b).filled(),
                )
            }))
            .map_err(draw_err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let y = n - i as f64;
                Text::new(
                    format!("{} {} {:.0} ms", b.label, b.outcome, b.ms),
                    (b.start_ms, y - 0.05),
                    ("sans-serif", 11),
                )
            }))
            .map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

/// An experiment's variants with their score and its confidence interval drawn as an
/// interval (a horizontal error bar from `ci_low` to `ci_high` through the mean), one row per
/// variant, labelled with its cost per request and median latency; the caption says whether
/// a decision is reached. Score mode is drawn on 1 to 10, pairwise (win share) on 0 to 1.
pub fn intervals(r: &crate::experiments::report::Report) -> Result<String, String> {
    let mut svg = String::new();
    let rows = r.variants.len().max(1);
    let height = 70 + 34 * rows as u32;
    let (lo, hi) = if r.mode == "pairwise" {
        (0.0, 1.0)
    } else {
        (1.0, 10.0)
    };
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let state = match (&r.leader, r.decided) {
            (Some(l), true) => format!("decided: {l}"),
            (Some(l), false) => format!("not decided, leading: {l}"),
            (None, _) => "no verdicts yet".to_owned(),
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{} ({}): {state}", r.experiment, r.mode),
                ("sans-serif", 14),
            )
            .margin(8)
            .x_label_area_size(24)
            .build_cartesian_2d(lo..hi, 0f64..rows as f64)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_labels(10)
            .x_label_formatter(&|x| {
                if hi > 1.0 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.1}")
                }
            })
            .draw()
            .map_err(draw_err)?;
        let n = r.variants.len() as f64;
        let y = |i: usize| n - i as f64 - 0.55;
        let clamp = |x: f64| x.clamp(lo, hi);
        for (i, v) in r.variants.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            if let (Some(m), Some(l), Some(h)) = (v.mean_score, v.ci_low, v.ci_high) {
                chart
                    .draw_series(std::iter::once(ErrorBar::new_horizontal(
                        y(i),
                        clamp(l),
                        clamp(m),
                        clamp(h),
                        color.stroke_width(3),
                        12,
                    )))
                    .map_err(draw_err)?;
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (clamp(m), y(i)),
                        4,
                        color.filled(),
                    )))
                    .map_err(draw_err)?;
            }
            let score = match (v.mean_score, v.ci_low, v.ci_high) {
                (Some(m), Some(l), Some(h)) => format!("{m:.2} [{l:.2}, {h:.2}]"),
                (Some(m), _, _) => format!("{m:.2} (no interval yet)"),
                _ => "no verdicts".to_owned(),
            };
            let cost = v
                .cost_per_request_usd
                .map_or("cost unknown".to_owned(), |c| {
                    format!("${}/req", c.round_dp(6).normalize())
                });
            let p50 = v
                .p50_ms
                .map_or("p50 -".to_owned(), |ms| format!("p50 {ms:.0} ms"));
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{} {score}, {cost}, {p50}", v.name),
                    (lo, y(i) + 0.42),
                    ("sans-serif", 11),
                )))
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bars_follow_the_attempt_list_whatever_its_fields() {
        let v2 = [
            json!({"provider": "down", "model": "m", "outcome": "connect_error", "ms": 12.0}),
            json!({"provider": "openai", "model": "gpt", "outcome": "ok", "ms": 30.5}),
        ];
        let b = bars(&v2);
        assert_eq!(b[0].start_ms, 0.0);
        assert_eq!(b[1].start_ms, 12.0, "sequential when no start is recorded");
        assert_eq!(b[1].label, "openai/gpt");
        let hedged = [
            json!({"provider": "a", "model": "x", "role": "served", "status": 200, "ms": 40.0, "start_ms": 0.0}),
            json!({"provider": "b", "model": "y", "role": "hedge", "status": 200, "ms": 20.0, "start_ms": 15.0}),
        ];
        let b = bars(&hedged);
        assert_eq!(b[1].start_ms, 15.0);
        assert_eq!(b[1].label, "b/y [hedge]");
        assert_eq!(b[1].outcome, "200");
        let svg = waterfall(&b).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("b/y [hedge]"));
        assert!(svg.matches("<rect").count() >= 2);
        assert!(waterfall(&[]).unwrap().contains("<svg"));
    }

    #[test]
    fn spend_chart_names_its_groups_and_escapes_them() {
        let q =
            super::super::series::parse_query("since=2h&buckets=4&by=feature", 10_000_000).unwrap();
        let mut s =
            super::super::series::read(std::path::Path::new("/nonexistent/l.db"), &q).unwrap();
        let mut g = s.total.clone();
        g.group = "<script>x</script>".into();
        g.cost[1] = Decimal::new(25, 3);
        s.total.saved[2] = Decimal::new(5, 3);
        let svg = spend_chart(&s, GroupBy::Feature, &[g]).unwrap();
        assert!(svg.contains("Spend by feature"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("cache savings (all)"));
        assert!(svg.contains("<polyline") || svg.contains("<path"));
    }

    #[test]
    fn intervals_are_drawn_as_error_bars_with_the_decision() {
        use crate::experiments::report::{Promotion, Report, VariantReport};
        let variant = |name: &str, m: Option<f64>, l: f64, h: f64| VariantReport {
            name: name.into(),
            target: "openai/gpt".into(),
            weight: 50,
            requests: 40,
            judged: 30,
            unscored: 0,
            mean_score: m,
            ci_low: m.map(|_| l),
            ci_high: m.map(|_| h),
            wins: 0,
            losses: 0,
            ties: 0,
            cost_usd: Some(Decimal::new(4, 2)),
            cost_per_request_usd: Some(Decimal::new(1, 3)),
            judge_cost_usd: None,
            shadow_cost_usd: None,
            p50_ms: Some(120.0),
            p95_ms: Some(300.0),
            feedback: Default::default(),
        };
        let r = Report {
            experiment: "<b>tone</b>".into(),
            route: "chat".into(),
            mode: "score",
            method: "",
            alpha: 0.05,
            leader: Some("a".into()),
            decided: true,
            promotion: Promotion {
                mode: "off",
                status: "off",
                variant: None,
                reason: None,
            },
            shifts: Vec::new(),
            variants: vec![
                variant("a", Some(7.5), 6.9, 8.1),
                variant("b", None, 0.0, 0.0),
            ],
        };
        let svg = intervals(&r).unwrap();
        assert!(svg.contains("decided: a"));
        assert!(svg.contains("&lt;b&gt;tone"), "names are escaped");
        assert!(svg.contains("7.50 [6.90, 8.10]"));
        assert!(svg.contains("$0.001/req") && svg.contains("p50 120 ms"));
        assert!(svg.contains("b no verdicts"));
        // The interval: one error bar (its line and two caps) and the mean's dot.
        assert!(svg.matches("<line").count() + svg.matches("<polyline").count() >= 3);
        assert!(svg.contains("<circle"));
    }
}
