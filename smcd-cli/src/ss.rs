//! `smcd ss` and `smcd stats`: what the smcd processes of this host hold
//! now, asked over their device sockets (`smcd_std::query`).

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Map, Value, json};
use smcd_std::naming::Place;
use smcd_std::query::{ConnReport, Query, Survey, survey};

use crate::Failure;
use crate::args::{SsArgs, StatsArgs};

/// Whether `smcd ss` lists `c` without `--all`: everything but plain TCP.
fn shown_by_default(c: &ConnReport) -> bool {
    c.transport != "tcp"
}

/// `smcd ss`
pub(crate) fn ss(args: &SsArgs) -> Result<(), Failure> {
    let found = survey(&Place::from_env(), Query::Connections);
    let mut rows = Vec::new();
    let mut hidden: BTreeMap<String, u64> = BTreeMap::new();
    for p in &found.processes {
        for c in &p.connections {
            if args.all || shown_by_default(c) {
                rows.push((p.pid, p.command.as_str(), c));
            } else {
                *hidden.entry(c.transport.clone()).or_default() += 1;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let conns: Vec<Value> = rows
            .iter()
            .map(|(pid, command, c)| {
                let mut m = Map::new();
                m.insert("pid".into(), (*pid).into());
                m.insert("command".into(), (*command).into());
                if let Ok(Value::Object(fields)) = serde_json::to_value(c) {
                    m.extend(fields);
                }
                Value::Object(m)
            })
            .collect();
        let doc = json!({
            "connections": conns,
            "not_shown": hidden,
            "processes": found.processes.len(),
            "skipped": found.skipped,
        });
        writeln!(out, "{doc}")?;
        return Ok(());
    }
    let mut table = vec![
        [
            "PID",
            "COMMAND",
            "LOCAL",
            "PEER",
            "TRANSPORT",
            "STATE",
            "SENT",
            "RECV",
            "REASON",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for (pid, command, c) in &rows {
        let addr = |a: Option<std::net::SocketAddr>| a.map_or("-".into(), |a| a.to_string());
        let bytes = |b: Option<u64>| b.map_or("-".into(), |b| b.to_string());
        table.push(vec![
            pid.to_string(),
            (*command).to_owned(),
            addr(c.local),
            addr(c.peer),
            c.transport.clone(),
            c.state.clone(),
            bytes(c.bytes_sent),
            bytes(c.bytes_received),
            c.fallback
                .clone()
                .or_else(|| c.reason.clone())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    write_table(&mut out, &table)?;
    let not_shown: u64 = hidden.values().sum();
    if not_shown > 0 {
        writeln!(
            out,
            "{not_shown} plain TCP connection(s) not shown (--all lists them)"
        )?;
    }
    if rows.is_empty() && not_shown == 0 {
        writeln!(
            out,
            "no smcd connections ({} smcd process(es) answered)",
            found.processes.len()
        )?;
    }
    Ok(())
}

/// Columns left-aligned, two spaces apart, the last one unpadded.
fn write_table(out: &mut impl Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let w = widths.get(i).copied().unwrap_or(0);
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// The host totals of `found`: the processes' counters summed key by key
/// (the keys of `smcd run --stats`), with what is open now.
fn totals(found: &Survey) -> Value {
    let mut total = json!({"connections": {}, "fallbacks": {}});
    let mut live: BTreeMap<String, u64> = BTreeMap::new();
    for p in &found.processes {
        if let Ok(v) = serde_json::to_value(&p.stats) {
            crate::run::add(&mut total, &v);
        }
        for c in &p.connections {
            *live.entry(c.transport.clone()).or_default() += 1;
        }
    }
    if let Value::Object(m) = &mut total {
        m.insert("live_connections".into(), json!(live));
        m.insert("processes".into(), found.processes.len().into());
        m.insert("skipped".into(), found.skipped.into());
    }
    total
}

/// `smcd stats`
pub(crate) fn stats(args: &StatsArgs) -> Result<(), Failure> {
    let found = survey(&Place::from_env(), Query::Connections);
    let total = totals(&found);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{total}")?;
        return Ok(());
    }
    let Value::Object(m) = &total else {
        return Ok(());
    };
    let mut table = Vec::new();
    for (k, v) in m {
        table.push(vec![k.clone(), flat(v)]);
    }
    write_table(&mut out, &table)?;
    Ok(())
}

/// `smc-d-nocopy 4, tcp 1` for an object of counts (nested: `client v2 3`).
fn flat(v: &Value) -> String {
    match v {
        Value::Object(m) if m.is_empty() => "-".into(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k} {}", flat(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}
