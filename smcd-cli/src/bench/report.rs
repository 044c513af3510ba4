//! The results of one invocation: each row's ratio to TCP, the table and
//! the JSON.

use serde_json::{Value, json};

use super::host::Host;
use super::kinds::{Transport, Workload};
use super::workload::Measured;

/// One measured run.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) workload: Workload,
    /// A row of the message-size sweep (`sweep-throughput`, `sweep-latency`).
    pub(crate) sweep: bool,
    pub(crate) transport: Transport,
    /// Message or write size in bytes.
    pub(crate) size: usize,
    pub(crate) measured: Measured,
    /// CPU seconds of both processes over their lives.
    pub(crate) cpu_s: Option<f64>,
    /// `value` over TCP's value for the same workload and size.
    pub(crate) ratio: Option<f64>,
}

impl Row {
    /// The workload's name in the output.
    pub(crate) fn label(&self) -> String {
        label(self.workload, self.sweep)
    }
}

/// `latency`, or `sweep-latency` for a sweep row.
pub(crate) fn label(workload: Workload, sweep: bool) -> String {
    if sweep {
        format!("sweep-{workload}")
    } else {
        workload.to_string()
    }
}

/// A run that did not take place, and why.
#[derive(Debug, Clone)]
pub(crate) struct Skip {
    pub(crate) label: String,
    pub(crate) transport: Transport,
    pub(crate) size: usize,
    pub(crate) reason: String,
}

/// Set every row's ratio to the TCP row of the same workload and size
/// (none without one).
pub(crate) fn fill_ratios(rows: &mut [Row]) {
    let tcp: Vec<(String, usize, f64)> = rows
        .iter()
        .filter(|r| r.transport == Transport::Tcp)
        .map(|r| (r.label(), r.size, r.measured.value))
        .collect();
    for r in rows.iter_mut() {
        let label = r.label();
        r.ratio = tcp
            .iter()
            .find(|(l, s, _)| *l == label && *s == r.size)
            .filter(|(_, _, v)| *v > 0.0)
            .map(|(_, _, v)| r.measured.value / v);
    }
}

/// A figure with about three significant digits.
pub(crate) fn fig(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a > 0.0 {
        // Three significant digits below 1 too (a ratio of 0.00240).
        let decimals = (2.0 - a.log10().floor()).clamp(3.0, 9.0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3}")
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".into(), f)
}

/// The text report: the host lines, the table, the notes on skipped runs.
pub(crate) fn table(host: &Host, rows: &[Row], skipped: &[Skip]) -> String {
    let mut cells: Vec<[String; 9]> = vec![[
        "workload".into(),
        "transport".into(),
        "size".into(),
        "value".into(),
        "unit".into(),
        "p99".into(),
        "p99.9".into(),
        "×tcp".into(),
        "cpu s".into(),
    ]];
    for r in rows {
        cells.push([
            r.label(),
            r.transport.to_string(),
            r.size.to_string(),
            fig(r.measured.value),
            r.workload.unit().into(),
            opt(r.measured.p99, fig),
            opt(r.measured.p999, fig),
            opt(
                r.ratio,
                |x| if x < 1.0 { fig(x) } else { format!("{x:.2}") },
            ),
            opt(r.cpu_s, |x| format!("{x:.2}")),
        ]);
    }
    let mut width = [0usize; 9];
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = host.header().join("\n");
    out.push_str("\n\n");
    for row in &cells {
        let mut line = String::new();
        for (i, (c, w)) in row.iter().zip(width).enumerate() {
            let pad = " ".repeat(w - c.chars().count());
            // Names left, figures right.
            if i < 2 || i == 4 {
                line.push_str(c);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(c);
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if !rows.is_empty() {
        out.push_str(
            "\nvalue: msg-rate, connect per second; latency: median round trip; MB/s = 1e6 B/s.\n\
             ×tcp: value / tcp's value in this run (for latency below 1 is better).\n",
        );
    }
    // One note per transport and reason, naming the workloads.
    let mut notes: Vec<(Transport, &str, Vec<&str>, usize)> = Vec::new();
    for s in skipped {
        match notes
            .iter_mut()
            .find(|(t, why, _, _)| *t == s.transport && *why == s.reason)
        {
            Some((_, _, labels, n)) => {
                if !labels.contains(&s.label.as_str()) {
                    labels.push(&s.label);
                }
                *n += 1;
            }
            None => notes.push((s.transport, &s.reason, vec![&s.label], 1)),
        }
    }
    for (t, why, labels, n) in notes {
        out.push_str(&format!(
            "skipped: {n} run(s) over {t} ({}): {why}\n",
            labels.join(", ")
        ));
    }
    out
}

/// The JSON report.
pub(crate) fn json(host: &Host, rows: &[Row], skipped: &[Skip]) -> Value {
    let results: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "workload": r.label(),
                "transport": r.transport.name(),
                "size": r.size,
                "unit": r.workload.unit(),
                "value": r.measured.value,
                "p99": r.measured.p99,
                "p999": r.measured.p999,
                "ratio_to_tcp": r.ratio,
                "cpu_s": r.cpu_s,
                "count": r.measured.count,
                "bytes": r.measured.bytes,
                "secs": r.measured.secs,
            })
        })
        .collect();
    let skipped: Vec<Value> = skipped
        .iter()
        .map(|s| {
            json!({
                "workload": s.label,
                "transport": s.transport.name(),
                "size": s.size,
                "reason": s.reason,
            })
        })
        .collect();
    json!({ "host": host.json(), "results": results, "skipped": skipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: Workload, transport: Transport, value: f64) -> Row {
        Row {
            workload,
            sweep: false,
            transport,
            size: workload.size(),
            measured: Measured {
                value,
                p99: None,
                p999: None,
                count: 1,
                bytes: 0,
                secs: 1.0,
            },
            cpu_s: None,
            ratio: None,
        }
    }

    #[test]
    fn ratios_are_to_tcp_of_the_same_workload() {
        let mut rows = vec![
            row(Workload::MsgRate, Transport::Tcp, 10.0),
            row(Workload::MsgRate, Transport::Uds, 25.0),
            row(Workload::Latency, Transport::Uds, 3.0),
        ];
        fill_ratios(&mut rows);
        assert_eq!(rows[0].ratio, Some(1.0));
        assert_eq!(rows[1].ratio, Some(2.5));
        assert_eq!(rows[2].ratio, None);
    }

    #[test]
    fn figures_keep_three_digits() {
        assert_eq!(fig(14012.4), "14012");
        assert_eq!(fig(68.61), "68.6");
        assert_eq!(fig(5.204), "5.20");
        assert_eq!(fig(0.1554), "0.155");
        assert_eq!(fig(0.002404), "0.00240");
        assert_eq!(fig(0.0), "0.000");
    }
}
