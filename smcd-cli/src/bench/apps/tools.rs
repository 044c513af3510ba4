//! The seed's tools: how each server and client of `smcd bench --apps` is
//! started, and how its figures are read from what the client prints.

use std::path::Path;

use rustix::process::Signal;
use serde_json::Value;

use super::super::Error;

/// One measurement program pair; redis gives two rows (SET, GET).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bench {
    SockperfLatency,
    SockperfThroughput,
    Iperf3,
    NginxWrk,
    Redis,
}

pub(super) const ALL: [Bench; 5] = [
    Bench::SockperfLatency,
    Bench::SockperfThroughput,
    Bench::Iperf3,
    Bench::NginxWrk,
    Bench::Redis,
];

/// One row's figure from one client run.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Figure {
    pub(super) row: &'static str,
    pub(super) value: f64,
    /// What the CPU time is divided by: round trips, bytes or requests.
    pub(super) ops: f64,
}

/// What a row measures.
#[derive(Debug, Clone, Copy)]
pub(super) struct RowInfo {
    pub(super) bench: Bench,
    pub(super) row: &'static str,
    pub(super) label: &'static str,
    pub(super) unit: &'static str,
    /// The seed's kernel SMC-D loopback figures: (smc, tcp).
    pub(super) seed: Option<(f64, f64)>,
    /// The issue's goal for the ratio (an upper bound for latency).
    pub(super) goal: f64,
    pub(super) lower_is_better: bool,
    /// The unit of CPU time per op, and the op count's scale to it.
    pub(super) cpu_unit: &'static str,
    pub(super) cpu_scale: f64,
}

pub(super) const ROWS: [RowInfo; 6] = [
    RowInfo {
        bench: Bench::SockperfLatency,
        row: "sockperf-latency",
        label: "sockperf ping-pong 14 B",
        unit: "us",
        seed: Some((3.359, 6.372)),
        goal: 0.5,
        lower_is_better: true,
        cpu_unit: "us/rt",
        cpu_scale: 1e6,
    },
    RowInfo {
        bench: Bench::SockperfThroughput,
        row: "sockperf-throughput",
        label: "sockperf throughput 64000 B",
        unit: "MB/s",
        seed: Some((8239.0, 4943.0)),
        goal: 1.7,
        lower_is_better: false,
        cpu_unit: "s/GB",
        cpu_scale: 1e9,
    },
    RowInfo {
        bench: Bench::Iperf3,
        row: "iperf3",
        label: "iperf3",
        unit: "Gb/s",
        seed: Some((76.4, 40.5)),
        goal: 1.9,
        lower_is_better: false,
        cpu_unit: "s/GB",
        cpu_scale: 1e9,
    },
    RowInfo {
        bench: Bench::NginxWrk,
        row: "nginx-wrk",
        label: "nginx + wrk",
        unit: "req/s",
        seed: Some((226_754.0, 154_643.0)),
        goal: 1.5,
        lower_is_better: false,
        cpu_unit: "us/req",
        cpu_scale: 1e6,
    },
    RowInfo {
        bench: Bench::Redis,
        row: "redis-set",
        label: "redis-benchmark SET (50 clients)",
        unit: "req/s",
        seed: None,
        goal: 1.3,
        lower_is_better: false,
        cpu_unit: "us/req",
        cpu_scale: 1e6,
    },
    RowInfo {
        bench: Bench::Redis,
        row: "redis-get",
        label: "redis-benchmark GET (50 clients)",
        unit: "req/s",
        seed: None,
        goal: 1.3,
        lower_is_better: false,
        cpu_unit: "us/req",
        cpu_scale: 1e6,
    },
];

/// wrk's connections (one thread: the two cores are shared with nginx).
const WRK_CONNECTIONS: &str = "32";
/// redis-benchmark's clients.
const REDIS_CLIENTS: &str = "50";

/// The page nginx serves: about the size of Debian's default index.
fn page() -> String {
    let mut p = String::from("<!DOCTYPE html>\n<html><head><title>smcd</title></head><body>\n");
    while p.len() < 560 {
        p.push_str("<p>smcd bench --apps static page</p>\n");
    }
    p + "</body></html>\n"
}

/// nginx's configuration: Debian's defaults where they matter (workers per
/// core, sendfile, keep-alive), everything in `dir`, no access log.
fn nginx_conf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process on;\nworker_processes auto;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 768; }}\n\
         http {{\n    sendfile on;\n    tcp_nopush on;\n    keepalive_timeout 65;\n    access_log off;\n\
         \x20   client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
         \x20   server {{ listen 127.0.0.1:{port}; root {d}/www; index index.html; }}\n}}\n"
    )
}

/// Prepare `dir` for `bench` (nginx's files).
pub(super) fn prepare(bench: Bench, dir: &Path, port: u16) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if bench == Bench::NginxWrk {
        // nginx's workers run as nobody: the page must be readable to them.
        std::fs::create_dir_all(dir.join("www"))?;
        std::fs::write(dir.join("www/index.html"), page())?;
        std::fs::write(dir.join("nginx.conf"), nginx_conf(dir, port))?;
        for p in [dir.to_path_buf(), dir.join("www")] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::set_permissions(
            dir.join("www/index.html"),
            std::fs::Permissions::from_mode(0o644),
        )?;
    }
    Ok(())
}

/// The server's command line.
pub(super) fn server(bench: Bench, dir: &Path, port: u16) -> Vec<String> {
    let p = port.to_string();
    let d = dir.display().to_string();
    let v: Vec<&str> = match bench {
        Bench::SockperfLatency | Bench::SockperfThroughput => {
            vec!["sockperf", "server", "--tcp", "-i", "127.0.0.1", "-p", &p]
        }
        Bench::Iperf3 => vec!["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", &p],
        Bench::NginxWrk => {
            let conf = format!("{d}/nginx.conf");
            let err = format!("{d}/error.log");
            return ["nginx", "-p", &d, "-e", &err, "-c", &conf]
                .map(String::from)
                .to_vec();
        }
        Bench::Redis => vec![
            "redis-server",
            "--port",
            &p,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &d,
        ],
    };
    v.into_iter().map(String::from).collect()
}

/// The signal that ends `bench`'s server the way it writes its counters
/// (sockperf leaves through `exit` on SIGINT only).
pub(super) fn stop_signal(bench: Bench) -> Signal {
    match bench {
        Bench::SockperfLatency | Bench::SockperfThroughput => Signal::INT,
        _ => Signal::TERM,
    }
}

/// The message rate sockperf's ping-pong client is held to. Unpaced
/// ("max") it sizes its table of send times for a rate that SMC-D's
/// sub-microsecond round trips outrun in runs of 3 s or more (it then stops
/// with "_seqN > m_maxSequenceNo"); paced, one message leaves every 2 µs at
/// most, which still leaves the round trip itself to be measured.
const SOCKPERF_PING_MPS: &str = "500000";

/// The client's command line; `secs` whole seconds of measurement,
/// `requests` per redis test.
pub(super) fn client(bench: Bench, port: u16, secs: u64, requests: u64) -> Vec<String> {
    let p = port.to_string();
    let t = secs.to_string();
    let n = requests.to_string();
    let url = format!("http://127.0.0.1:{port}/");
    let d = format!("{secs}s");
    let v: Vec<&str> = match bench {
        Bench::SockperfLatency => vec![
            "sockperf",
            "ping-pong",
            "--tcp",
            "-i",
            "127.0.0.1",
            "-p",
            &p,
            "-m",
            "14",
            "--mps",
            SOCKPERF_PING_MPS,
            "-t",
            &t,
        ],
        Bench::SockperfThroughput => vec![
            "sockperf",
            "throughput",
            "--tcp",
            "-i",
            "127.0.0.1",
            "-p",
            &p,
            "-m",
            "64000",
            "-t",
            &t,
        ],
        Bench::Iperf3 => vec!["iperf3", "-c", "127.0.0.1", "-p", &p, "-t", &t, "-J"],
        Bench::NginxWrk => vec!["wrk", "-t1", "-c", WRK_CONNECTIONS, "-d", &d, &url],
        Bench::Redis => vec![
            "redis-benchmark",
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "-c",
            REDIS_CLIENTS,
            "-n",
            &n,
            "-t",
            "set,get",
            "-q",
        ],
    };
    v.into_iter().map(String::from).collect()
}

/// The number after `key` in `out` (`Summary: Latency is 6.372 usec`).
fn number_after(out: &str, key: &str) -> Option<f64> {
    let at = out.find(key)? + key.len();
    let rest = out.get(at..)?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest.get(..end)?.parse().ok()
}

fn bad(bench: Bench, what: &str, out: &str) -> Error {
    let tail: String = out
        .chars()
        .rev()
        .take(600)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Error::Output(format!("{bench:?}: no {what} in its output:\n{tail}"))
}

/// The figures of a client's output.
pub(super) fn parse(
    bench: Bench,
    out: &str,
    secs: u64,
    requests: u64,
) -> Result<Vec<Figure>, Error> {
    let need = |v: Option<f64>, what: &str| v.ok_or_else(|| bad(bench, what, out));
    Ok(match bench {
        Bench::SockperfLatency => {
            let lat = need(number_after(out, "Summary: Latency is"), "latency")?;
            let rts = number_after(out, "ReceivedMessages=").unwrap_or(0.0);
            vec![Figure {
                row: "sockperf-latency",
                value: lat,
                ops: rts,
            }]
        }
        Bench::SockperfThroughput => {
            let mbs = need(number_after(out, "BandWidth is"), "bandwidth")?;
            vec![Figure {
                row: "sockperf-throughput",
                value: mbs,
                ops: mbs * 1e6 * secs as f64,
            }]
        }
        Bench::Iperf3 => {
            let v: Value = serde_json::from_str(out.trim()).map_err(|_| bad(bench, "JSON", out))?;
            let sum = &v["end"]["sum_received"];
            let bps = need(sum["bits_per_second"].as_f64(), "bits_per_second")?;
            vec![Figure {
                row: "iperf3",
                value: bps / 1e9,
                ops: sum["bytes"].as_f64().unwrap_or(0.0),
            }]
        }
        Bench::NginxWrk => {
            if out.contains("Socket errors") || out.contains("Non-2xx") {
                return Err(bad(bench, "error-free run", out));
            }
            let rps = need(number_after(out, "Requests/sec:"), "Requests/sec")?;
            let n = out
                .lines()
                .find(|l| l.contains("requests in"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|w| w.parse::<f64>().ok())
                .unwrap_or(rps * secs as f64);
            vec![Figure {
                row: "nginx-wrk",
                value: rps,
                ops: n,
            }]
        }
        Bench::Redis => {
            // Progress (`SET: rps=…`) ends in \r; the result is `SET: N requests per second`.
            let rate = |test: &str| {
                out.split(['\r', '\n'])
                    .map(str::trim)
                    .filter(|l| l.starts_with(test) && l.contains("requests per second"))
                    .find_map(|l| number_after(l, test))
            };
            let set = need(rate("SET:"), "SET rate")?;
            let get = need(rate("GET:"), "GET rate")?;
            let n = requests as f64;
            vec![
                Figure {
                    row: "redis-set",
                    value: set,
                    ops: n,
                },
                Figure {
                    row: "redis-get",
                    value: get,
                    ops: n,
                },
            ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse() {
        let sp = "sockperf: [Total Run] RunTime=1.000 sec; Warm up time=400 msec; \
                  SentMessages=139215; ReceivedMessages=139214\n\
                  sockperf: ====> avg-lat=  3.565 (std-dev=0.6)\n\
                  sockperf: Summary: Latency is 3.565 usec\n";
        let f = parse(Bench::SockperfLatency, sp, 1, 0).unwrap();
        assert_eq!((f[0].value, f[0].ops), (3.565, 139_214.0));
        let tp = "sockperf: Summary: BandWidth is 4943.158 MBps (39545.262 Mbps)\n";
        let f = parse(Bench::SockperfThroughput, tp, 2, 0).unwrap();
        assert_eq!(f[0].value, 4943.158);
        let wrk = "  1000 requests in 1.00s, 1.2MB read\nRequests/sec:  154643.12\n";
        let f = parse(Bench::NginxWrk, wrk, 1, 0).unwrap();
        assert_eq!((f[0].value, f[0].ops), (154_643.12, 1000.0));
        let redis = "SET: rps=0.0\rSET: 87719.30 requests per second, p50=0.287 msec\n\
                     GET: 99009.90 requests per second, p50=0.255 msec\n";
        let f = parse(Bench::Redis, redis, 1, 20000).unwrap();
        assert_eq!((f[0].value, f[1].value), (87_719.30, 99_009.90));
        let iperf = r#"{"end": {"sum_received": {"bits_per_second": 4.05e10, "bytes": 5.0e9}}}"#;
        let f = parse(Bench::Iperf3, iperf, 1, 0).unwrap();
        assert_eq!(f[0].value, 40.5);
        assert!(parse(Bench::SockperfLatency, "garbage", 1, 0).is_err());
        assert!(parse(Bench::Iperf3, "{", 1, 0).is_err());
        assert!(
            parse(
                Bench::NginxWrk,
                "Socket errors: connect 1\nRequests/sec: 5\n",
                1,
                0
            )
            .is_err()
        );
    }

    #[test]
    fn every_bench_has_its_rows() {
        for bench in ALL {
            assert!(ROWS.iter().any(|r| r.bench == bench), "{bench:?}");
        }
        for row in ROWS {
            assert!(row.goal > 0.0 && !row.label.is_empty());
        }
    }
}
