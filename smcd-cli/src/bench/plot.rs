//! `--plot FILE.svg`: a bar chart of every row's ratio to TCP and, with
//! sweep rows, throughput and latency against the message size.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use super::kinds::{Transport, Workload};
use super::report::Row;

/// Width of the picture, and the height of each chart in it.
const WIDTH_PX: u32 = 1000;
const CHART_HEIGHT_PX: u32 = 560;
/// Height of one bar of the ratio chart, margins included.
const BAR_HEIGHT_PX: u32 = 22;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Draw the charts of `rows` into the SVG file at `path`.
pub(crate) fn write(path: &Path, rows: &[Row]) -> std::result::Result<(), String> {
    draw(path, rows).map_err(|e| e.to_string())
}

fn colour(t: Transport) -> RGBColor {
    match t {
        Transport::Tcp => RGBColor(31, 119, 180),
        Transport::Uds => RGBColor(44, 160, 44),
        Transport::SmcDCopy => RGBColor(255, 127, 14),
        Transport::SmcDNocopy => RGBColor(214, 39, 40),
        Transport::Raw => RGBColor(80, 80, 80),
    }
}

fn draw(path: &Path, rows: &[Row]) -> Result<()> {
    let bars: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.sweep && r.ratio.is_some())
        .collect();
    let sweeps: Vec<Workload> = [Workload::Throughput, Workload::Latency]
        .into_iter()
        .filter(|w| rows.iter().any(|r| r.sweep && r.workload == *w))
        .collect();
    let bar_height = (BAR_HEIGHT_PX * bars.len() as u32 + 120).max(240);
    let height =
        if bars.is_empty() { 0 } else { bar_height } + CHART_HEIGHT_PX * sweeps.len() as u32;
    let root = SVGBackend::new(path, (WIDTH_PX, height.max(CHART_HEIGHT_PX))).into_drawing_area();
    root.fill(&WHITE)?;
    let mut rest = root;
    if !bars.is_empty() {
        let (top, bottom) = rest.split_vertically(bar_height);
        ratio_chart(&top, &bars)?;
        rest = bottom;
    }
    for w in sweeps {
        let (top, bottom) = rest.split_vertically(CHART_HEIGHT_PX);
        sweep_chart(&top, rows, w)?;
        rest = bottom;
    }
    rest.present()?;
    Ok(())
}

/// Horizontal bars from 1 (TCP) to each row's ratio, on a log axis.
fn ratio_chart(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    bars: &[&Row],
) -> Result<()> {
    let ratios = bars.iter().filter_map(|r| r.ratio);
    let lo = ratios.clone().fold(1.0f64, f64::min) / 1.5;
    let hi = ratios.fold(1.0f64, f64::max) * 1.5;
    let labels: Vec<String> = bars
        .iter()
        .map(|r| format!("{} {}", r.label(), r.transport))
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            "ratio to TCP (log scale; latency: below 1 is better, others: above 1)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(190)
        .build_cartesian_2d((lo..hi).log_scale(), (0..bars.len()).into_segmented())?;
    let name = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&name)
        .x_desc("× tcp")
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, r)| {
        let x = r.ratio.unwrap_or(1.0);
        let mut bar = Rectangle::new(
            [
                (x.min(1.0), SegmentValue::Exact(i)),
                (x.max(1.0), SegmentValue::Exact(i + 1)),
            ],
            colour(r.transport).filled(),
        );
        bar.set_margin(3, 3, 0, 0);
        bar
    }))?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![
            (1.0, SegmentValue::Exact(0)),
            (1.0, SegmentValue::Exact(bars.len())),
        ],
        BLACK,
    )))?;
    Ok(())
}

/// One line per transport: the workload's figure against the message size,
/// both axes logarithmic.
fn sweep_chart(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    rows: &[Row],
    workload: Workload,
) -> Result<()> {
    let points: Vec<&Row> = rows
        .iter()
        .filter(|r| r.sweep && r.workload == workload && r.measured.value > 0.0)
        .collect();
    let (mut lo, mut hi) = (f64::MAX, f64::MIN_POSITIVE);
    for r in &points {
        lo = lo.min(r.measured.value);
        hi = hi.max(r.measured.value);
    }
    if lo > hi {
        (lo, hi) = (1.0, 10.0);
    }
    let smallest = points.iter().map(|r| r.size).min().unwrap_or(1).max(1);
    let largest = points
        .iter()
        .map(|r| r.size)
        .max()
        .unwrap_or(2)
        .max(smallest + 1);
    let (caption, unit) = match workload {
        Workload::Latency => ("sweep: median round trip vs message size", "us"),
        _ => ("sweep: throughput vs write size", "MB/s"),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (smallest * 3 / 4..largest * 4 / 3).log_scale(),
            (lo / 1.5..hi * 1.5).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("bytes")
        .y_desc(unit)
        .x_label_formatter(&size_label)
        .y_labels(8)
        .y_label_formatter(&|v| super::report::fig(*v))
        .draw()?;
    for t in Transport::ALL {
        let series: Vec<(usize, f64)> = points
            .iter()
            .filter(|r| r.transport == t)
            .map(|r| (r.size, r.measured.value))
            .collect();
        if series.is_empty() {
            continue;
        }
        let c = colour(t);
        chart
            .draw_series(LineSeries::new(series.clone(), c.stroke_width(2)))?
            .label(t.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(series.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

/// `100`, `10K`, `1M` (decimal: the log axis puts its marks at powers of 10).
fn size_label(n: &usize) -> String {
    match *n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}K", n / 1_000),
        n => n.to_string(),
    }
}
