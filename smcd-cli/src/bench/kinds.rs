//! The workloads, transports and wait policies of `smcd bench`, with the
//! names they have on the command line, in the table and in the JSON.

use std::fmt;
use std::time::Duration;

use clap::ValueEnum;
use smcd_std::SmcConfig;

/// What one run measures (`--only`); the message or write size of each is
/// fixed, the sweep varies it for `Latency` and `Throughput`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Workload {
    /// 100 B request/response ping-pong: round trips per second.
    MsgRate,
    /// 14 B ping-pong, every round trip timed: median, p99, p99.9 in µs.
    Latency,
    /// 64000 B writes streamed for the duration: MB/s received.
    Throughput,
    /// Connect, one 100 B round trip, close: connections per second.
    Connect,
    /// 64 connections streaming 64000 B writes to one server: MB/s in all.
    FanIn,
}

impl Workload {
    /// Every workload, in the order of the table.
    pub(crate) const ALL: [Self; 5] = [
        Self::MsgRate,
        Self::Latency,
        Self::Throughput,
        Self::Connect,
        Self::FanIn,
    ];

    /// The message (ping-pong) or write (streams) size of a normal run.
    pub(crate) fn size(self) -> usize {
        match self {
            Self::MsgRate | Self::Connect => 100,
            Self::Latency => 14,
            Self::Throughput | Self::FanIn => 64_000,
        }
    }

    /// The unit of the primary figure.
    pub(crate) fn unit(self) -> &'static str {
        match self {
            Self::MsgRate => "rt/s",
            Self::Latency => "us",
            Self::Throughput | Self::FanIn => "MB/s",
            Self::Connect => "conn/s",
        }
    }

    /// The name on the command line and in the output.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::MsgRate => "msg-rate",
            Self::Latency => "latency",
            Self::Throughput => "throughput",
            Self::Connect => "connect",
            Self::FanIn => "fan-in",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the bytes move between the two processes (`--transports`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum Transport {
    /// TCP on 127.0.0.1, TCP_NODELAY on both ends, blocking sockets.
    Tcp,
    /// A Unix-domain stream socket in a temporary directory.
    Uds,
    /// smcd-std SMC-D, copy mode.
    #[value(name = "smc-d-copy")]
    SmcDCopy,
    /// smcd-std SMC-D, nocopy mode.
    #[value(name = "smc-d-nocopy")]
    SmcDNocopy,
    /// The raw shared-memory spin ring (reference; ping-pong and streams only).
    Raw,
}

impl Transport {
    /// Every transport, in the order of the table (TCP first: the reference).
    pub(crate) const ALL: [Self; 5] = [
        Self::Tcp,
        Self::Uds,
        Self::SmcDCopy,
        Self::SmcDNocopy,
        Self::Raw,
    ];

    /// The name on the command line and in the output.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Uds => "uds",
            Self::SmcDCopy => "smc-d-copy",
            Self::SmcDNocopy => "smc-d-nocopy",
            Self::Raw => "raw",
        }
    }

    /// Whether `workload` runs over this transport (the raw ring has one
    /// connection and no listener semantics: no connect, no fan-in).
    pub(crate) fn runs(self, workload: Workload) -> bool {
        self != Self::Raw
            || matches!(
                workload,
                Workload::MsgRate | Workload::Latency | Workload::Throughput
            )
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a blocked SMC-D call waits (`--wait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Wait {
    /// Spin until the peer moves, never park.
    Spin,
    /// Park on the doorbell at once, never spin.
    Park,
    /// smcd-std's default: spin twice the typical wait plus 5 µs (at most 50 µs, none while the host has more runnable threads than cores), then park.
    Adaptive,
}

impl Wait {
    /// The name on the command line and in the output.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Spin => "spin",
            Self::Park => "park",
            Self::Adaptive => "adaptive",
        }
    }

    /// What the policy means, for the table header.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Spin => "spin: blocked calls spin, never park",
            Self::Park => "park: blocked calls park on the doorbell at once",
            Self::Adaptive => {
                "adaptive: spin 2x the typical wait + 5 us (at most 50 us; none while runnable threads > cores), then park"
            }
        }
    }
}

/// The SMC-D configuration of a bench process: copy or nocopy, the DMB
/// size, and `wait` as the spin budget — the one place that maps `--wait`.
pub(crate) fn smc_config(nocopy: bool, dmb_size: usize, wait: Wait) -> SmcConfig {
    let config = SmcConfig::new().nocopy(nocopy).dmb_size(dmb_size);
    match wait {
        Wait::Spin => config.spin(Duration::MAX),
        Wait::Park => config.spin(Duration::ZERO),
        Wait::Adaptive => config,
    }
}
