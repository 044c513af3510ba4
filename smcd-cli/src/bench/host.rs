//! What the table and the JSON say about the machine and the settings of
//! the run.

use serde_json::{Value, json};

use super::kinds::Wait;

/// The machine and the settings every run of one invocation shares.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    /// `model name` of the first CPU in `/proc/cpuinfo`.
    pub(crate) cpu: String,
    /// Online CPUs (`/sys/devices/system/cpu/online`).
    pub(crate) cores: usize,
    /// `uname`: system, release, machine.
    pub(crate) kernel: String,
    /// `/proc/loadavg`'s first three figures when the bench started.
    pub(crate) load: String,
    /// `release` or `debug` (debug builds are many times slower).
    pub(crate) build: &'static str,
    pub(crate) wait: Wait,
    pub(crate) dmb_size: usize,
    pub(crate) pin: bool,
    /// Measured seconds per run.
    pub(crate) duration: f64,
    /// Warm-up seconds before the ping-pong and connect measurements.
    pub(crate) warmup: f64,
}

impl Host {
    /// Read the machine's description; the settings are given.
    pub(crate) fn probe(
        wait: Wait,
        dmb_size: usize,
        pin: bool,
        duration: f64,
        warmup: f64,
    ) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let cores = std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .and_then(|s| count_cpus(s.trim()))
            .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
            .unwrap_or(0);
        let u = rustix::system::uname();
        let kernel = format!(
            "{} {} {}",
            u.sysname().to_string_lossy(),
            u.release().to_string_lossy(),
            u.machine().to_string_lossy()
        );
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "unknown".into());
        Self {
            cpu,
            cores,
            kernel,
            load,
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            wait,
            dmb_size,
            pin,
            duration,
            warmup,
        }
    }

    fn pinning(&self) -> &'static str {
        if self.pin {
            "server on CPU 0, client on CPU 1"
        } else {
            "none"
        }
    }

    /// The lines above the table.
    pub(crate) fn header(&self) -> Vec<String> {
        vec![
            format!(
                "host: {}, {} online cores, {}, load {}, {} build",
                self.cpu, self.cores, self.kernel, self.load, self.build
            ),
            format!(
                "smc-d: dmb {} B, wait {}; tcp, uds: blocking sockets; raw: always spins",
                self.dmb_size,
                self.wait.describe()
            ),
            format!(
                "pinning: {}; {} s per run (+ {} s warm-up for msg-rate, latency, connect)",
                self.pinning(),
                self.duration,
                self.warmup
            ),
        ]
    }

    /// The `host` object of the JSON.
    pub(crate) fn json(&self) -> Value {
        json!({
            "cpu": self.cpu,
            "cores": self.cores,
            "kernel": self.kernel,
            "load": self.load,
            "build": self.build,
            "wait": self.wait.name(),
            "raw_wait": "spin",
            "dmb_size": self.dmb_size,
            "pin": self.pin,
            "duration_s": self.duration,
            "warmup_s": self.warmup,
        })
    }
}

/// CPUs in a kernel CPU list such as `0-3,6,8-9`.
fn count_cpus(list: &str) -> Option<usize> {
    let mut n = 0;
    for part in list.split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => b.parse::<usize>().ok()?.checked_sub(a.parse().ok()?)? + 1,
            None => part.parse::<usize>().map(|_| 1).ok()?,
        };
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::count_cpus;

    #[test]
    fn cpu_lists_count() {
        assert_eq!(count_cpus("0"), Some(1));
        assert_eq!(count_cpus("0-1"), Some(2));
        assert_eq!(count_cpus("0-3,6,8-9"), Some(7));
        assert_eq!(count_cpus("3-1"), None);
        assert_eq!(count_cpus("x"), None);
    }
}
