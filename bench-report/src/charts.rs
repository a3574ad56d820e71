//! The report's SVG charts (plotters' SVG backend): grouped bars on a logarithmic axis, each
//! bar with its low–high spread where there is one, and optional goal marks.

use std::path::Path;

use plotters::prelude::*;

use crate::stats::Spread;
use crate::Error;

/// One series of bars: a value (with spread) per group, `None` where it was not measured.
pub struct Series {
    pub name: String,
    pub values: Vec<Option<Spread>>,
}

/// A goal drawn across one group: a dashed-looking thin bar at `value`.
pub struct Goal {
    pub group: usize,
    pub value: f64,
}

pub struct Bars<'a> {
    pub title: &'a str,
    /// The value axis' caption.
    pub unit: &'a str,
    pub groups: Vec<String>,
    pub series: Vec<Series>,
    pub goals: Vec<Goal>,
    /// The goal marks' legend entry.
    pub goal_label: &'a str,
    /// Groups side by side (vertical bars), or one under the other (horizontal bars, for
    /// many groups with long names).
    pub horizontal: bool,
}

const COLORS: [RGBColor; 5] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];
const GOAL: RGBColor = RGBColor(0xd6, 0x27, 0x28);

fn plot_err<E: std::error::Error + Send + Sync>(
    path: &Path,
) -> impl FnOnce(DrawingAreaErrorKind<E>) -> Error + '_ {
    move |e| Error::Chart(path.display().to_string(), e.to_string())
}

/// A power of ten at or below / above the data, so bars and goals fit.
fn log_bounds(b: &Bars) -> (f64, f64) {
    let vals = b
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .flat_map(|v| [v.low, v.high, v.median])
        .chain(b.goals.iter().map(|g| g.value))
        .filter(|v| *v > 0.0 && v.is_finite());
    let (lo, hi) = vals.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return (0.1, 10.0);
    }
    // Headroom above the tallest bar for the legend (a horizontal chart has rows for it).
    let room = if b.horizontal { 0.3 } else { 1.0 };
    (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil() + room),
    )
}

/// An axis value without trailing zeros: 0.01, 1, 1000.
fn number(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Empty rows above the groups of a horizontal chart, for the legend.
const LEGEND_ROWS: f64 = 2.5;

/// Where group `i` sits on the group axis: 0, 1, 2, ... left to right; top to bottom in a
/// horizontal chart (the axis grows upwards, so there the first group is at n - 1).
fn position(b: &Bars, i: usize) -> f64 {
    if b.horizontal {
        (b.groups.len() - 1 - i) as f64
    } else {
        i as f64
    }
}

/// The name of the group at tick `x`.
fn group_label(b: &Bars, x: f64) -> String {
    let p = x.round();
    if (x - p).abs() > 1e-6 || p < 0.0 {
        return String::new();
    }
    let n = b.groups.len();
    let i = if b.horizontal {
        match n.checked_sub(1 + p as usize) {
            Some(i) => i,
            None => return String::new(),
        }
    } else {
        p as usize
    };
    b.groups.get(i).cloned().unwrap_or_default()
}

/// Draws `b` into the SVG file `path`.
pub fn bars(path: &Path, b: &Bars) -> Result<(), Error> {
    let n = b.groups.len().max(1);
    let (w, h) = if b.horizontal {
        (
            960,
            200 + 26 * n as u32 * (b.series.len() as u32).max(1) / 2 + 60,
        )
    } else {
        (860, 480)
    };
    let root = SVGBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err(path))?;
    let (lo, hi) = log_bounds(b);
    let top = n as f64 - 0.5 + if b.horizontal { LEGEND_ROWS } else { 0.0 };
    let groups = (-0.5f64)..top;
    // Enough tick slots for one per group (the axis picks a step of 1 then).
    let ticks = n + if b.horizontal { 3 } else { 0 };
    let values = (lo..hi).log_scale();
    let k = b.series.len().max(1) as f64;
    let width = 0.8 / k;
    // Bar j of group i spans [i - 0.4 + j w, i - 0.4 + (j + 1) w] on the group axis.
    let span = |i: usize, j: usize| {
        // Top to bottom in legend order in a horizontal chart.
        let j = if b.horizontal {
            b.series.len().max(1) - 1 - j
        } else {
            j
        };
        let a = position(b, i) - 0.4 + j as f64 * width;
        (a + 0.1 * width, a + 0.9 * width)
    };
    let label_font = ("sans-serif", 13);
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(b.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(if b.horizontal { 36 } else { 44 })
        .y_label_area_size(if b.horizontal { 330 } else { 70 });
    macro_rules! draw {
        ($chart:expr, $rect:expr, $goal:expr) => {{
            let mut chart = $chart;
            for (j, s) in b.series.iter().enumerate() {
                let color = COLORS[j % COLORS.len()];
                let rects = s.values.iter().enumerate().filter_map(|(i, v)| {
                    let v = (*v)?;
                    let (a, z) = span(i, j);
                    Some($rect(a, z, lo, v.median.max(lo), color.filled()))
                });
                chart
                    .draw_series(rects)
                    .map_err(plot_err(path))?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                    });
                // The spread: a thin bar from low to high in the bar's middle.
                let spreads = s.values.iter().enumerate().filter_map(|(i, v)| {
                    let v = (*v)?;
                    if v.high <= v.low {
                        return None;
                    }
                    let (a, z) = span(i, j);
                    let m = (a + z) / 2.0;
                    Some($rect(
                        m - 0.004,
                        m + 0.004,
                        v.low.max(lo),
                        v.high.max(lo),
                        BLACK.filled(),
                    ))
                });
                chart.draw_series(spreads).map_err(plot_err(path))?;
            }
            if !b.goals.is_empty() {
                let goals = b.goals.iter().map(|g| {
                    let p = position(b, g.group);
                    let (a, z) = (p - 0.45, p + 0.45);
                    $goal(a, z, g.value)
                });
                chart
                    .draw_series(goals)
                    .map_err(plot_err(path))?
                    .label(b.goal_label)
                    .legend(|(x, y)| Rectangle::new([(x, y - 1), (x + 12, y + 1)], GOAL.filled()));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(label_font)
                .draw()
                .map_err(plot_err(path))?;
        }};
    }
    if b.horizontal {
        let mut chart = builder
            .build_cartesian_2d(values, groups)
            .map_err(plot_err(path))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(ticks)
            .y_label_formatter(&|y| group_label(b, *y))
            .y_label_style(label_font)
            .x_label_formatter(&|v| number(*v))
            .x_desc(b.unit)
            .draw()
            .map_err(plot_err(path))?;
        draw!(
            chart,
            |a: f64, z: f64, v0: f64, v1: f64, st| Rectangle::new([(v0, a), (v1, z)], st),
            |a: f64, z: f64, v: f64| Rectangle::new([(v / 1.02, a), (v * 1.02, z)], GOAL.filled())
        );
    } else {
        let mut chart = builder
            .build_cartesian_2d(groups, values)
            .map_err(plot_err(path))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(ticks)
            .x_label_formatter(&|x| group_label(b, *x))
            .x_label_style(label_font)
            .y_label_formatter(&|v| number(*v))
            .y_desc(b.unit)
            .draw()
            .map_err(plot_err(path))?;
        draw!(
            chart,
            |a: f64, z: f64, v0: f64, v1: f64, st| Rectangle::new([(a, v0), (z, v1)], st),
            |a: f64, z: f64, v: f64| Rectangle::new([(a, v / 1.02), (z, v * 1.02)], GOAL.filled())
        );
    }
    root.present().map_err(plot_err(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_bars_labels_and_goals() {
        let path =
            std::env::temp_dir().join(format!("bench-report-chart-{}.svg", std::process::id()));
        let s = |m: f64| {
            Some(Spread {
                low: m * 0.9,
                median: m,
                high: m * 1.1,
            })
        };
        bars(
            &path,
            &Bars {
                title: "test chart",
                unit: "things/s",
                groups: vec!["alpha".into(), "beta".into()],
                series: vec![
                    Series {
                        name: "ours".into(),
                        values: vec![s(10.0), s(2000.0)],
                    },
                    Series {
                        name: "theirs".into(),
                        values: vec![None, s(30.0)],
                    },
                ],
                goals: vec![Goal {
                    group: 1,
                    value: 500.0,
                }],
                goal_label: "goal mark",
                horizontal: false,
            },
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        for want in [
            "test chart",
            "alpha",
            "beta",
            "ours",
            "theirs",
            "goal mark",
            "things/s",
        ] {
            assert!(svg.contains(want), "{want} missing from the SVG");
        }
        // 3 bars + 3 spreads + 1 goal + 3 legend swatches, at least.
        assert!(svg.matches("<rect").count() >= 10);
    }
}
