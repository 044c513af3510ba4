//! [`SmcConfig`]: how smcd streams and listeners behave, with the
//! environment variables that override the defaults.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `SMCD_DISABLE` | `1`: never try SMC-D (plain TCP, no rendezvous) | `0` |
//! | `SMCD_DMB_SIZE` | bytes of each receive buffer, 16384 … 1048576 (rounded up to a size class) | 65536 |
//! | `SMCD_NOCOPY` | `1`: the sender writes the peer's DMB in place; `0`: copy through the device | `1` |
//! | `SMCD_SPIN_US` | microseconds a blocked call spins before it parks | 50 |
//! | `SMCD_UEID` | comma-separated UEIDs (replace the default `SMCD-LOOPBACK`) | — |
//! | `SMCD_PEERS` | `same-user` or `any`: who may obtain our DMBs | `same-user` |
//! | `SMCD_RENDEZVOUS_DIR` | directory of path sockets instead of the abstract namespace | — |
//! | `SMCD_MAX_DMBS` | most DMBs the process holds, 1 … 5000 (then new connections fall back to TCP with MAX_DMB) | 5000 |

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use smcd_core::clc::{ClcConfig, EidError};
use smcd_core::endpoint::Host;

use crate::device::{MAX_DMBS, PeerPolicy, StdDevice};
use crate::naming::Place;

/// The host every stream of a configuration uses.
pub(crate) type StdHost = Arc<Host<StdDevice>>;

/// Who may use SMC-D towards a destination.
pub type DestinationPolicy = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// How smcd streams and listeners behave (a builder; see the module docs
/// for the environment variables that [`from_env`](Self::from_env) reads).
///
/// ```no_run
/// use smcd_std::SmcConfig;
///
/// let config = SmcConfig::from_env().dmb_size(256 * 1024).nocopy(false);
/// let stream = config.connect("127.0.0.1:7000")?;
/// println!("{}", stream.transport()?);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct SmcConfig {
    pub(crate) disabled: bool,
    pub(crate) nocopy: bool,
    pub(crate) spin: Duration,
    clc: ClcConfig,
    policy: Option<DestinationPolicy>,
    host: Arc<OnceLock<StdHost>>,
}

impl fmt::Debug for SmcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmcConfig")
            .field("disabled", &self.disabled)
            .field("nocopy", &self.nocopy)
            .field("spin", &self.spin)
            .field("clc", &self.clc)
            .field("policy", &self.policy.is_some())
            .finish()
    }
}

impl Default for SmcConfig {
    fn default() -> Self {
        Self {
            disabled: false,
            nocopy: true,
            spin: Duration::from_micros(50),
            clc: ClcConfig::default(),
            policy: None,
            host: Arc::new(OnceLock::new()),
        }
    }
}

fn env_flag(name: &str) -> Option<bool> {
    std::env::var(name)
        .ok()
        .map(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"))
}

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

impl SmcConfig {
    /// The defaults (see the module docs), without reading the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// The defaults overridden by the `SMCD_*` environment variables; a
    /// malformed value is ignored with a warning.
    pub fn from_env() -> Self {
        let mut c = Self::default();
        if let Some(d) = env_flag("SMCD_DISABLE") {
            c.disabled = d;
        }
        if let Some(n) = env_flag("SMCD_NOCOPY") {
            c.nocopy = n;
        }
        if let Some(bytes) = env_num("SMCD_DMB_SIZE") {
            c = c.dmb_size(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
        if let Some(us) = env_num("SMCD_SPIN_US") {
            c.spin = Duration::from_micros(us);
        }
        if let Ok(list) = std::env::var("SMCD_UEID") {
            let ueids: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            match c.clone().ueids(&ueids) {
                Ok(with) => c = with,
                Err(e) => tracing::warn!(error = %e, "SMCD_UEID ignored"),
            }
        }
        c
    }

    /// Bytes of each receive buffer (DMB): 16 KiB … 1 MiB, rounded up to a
    /// size class; values outside are clamped.
    #[must_use]
    pub fn dmb_size(mut self, bytes: usize) -> Self {
        self.clc = self.clc.with_dmb_size(bytes);
        self.host = Arc::new(OnceLock::new());
        self
    }

    /// nocopy (`true`, default: the sender writes the peer's DMB in place)
    /// or copy mode.
    #[must_use]
    pub fn nocopy(mut self, on: bool) -> Self {
        self.nocopy = on;
        self.host = Arc::new(OnceLock::new());
        self
    }

    /// How long a blocked call spins at most before it parks (default
    /// 50 µs). Within it the budget adapts to twice the typical wait that
    /// spinning met, plus 5 µs; `Duration::ZERO` parks at once, and a
    /// budget of an hour or more (`Duration::MAX`) spins and never parks.
    #[must_use]
    pub fn spin(mut self, budget: Duration) -> Self {
        self.spin = budget;
        self
    }

    /// Never use SMC-D (plain TCP).
    #[must_use]
    pub fn disabled(mut self, off: bool) -> Self {
        self.disabled = off;
        self
    }

    /// The UEIDs to offer and accept, replacing the default one.
    ///
    /// # Errors
    ///
    /// A UEID that Linux would refuse, or more than 4.
    pub fn ueids(mut self, ueids: &[&str]) -> Result<Self, EidError> {
        let mut clc = ClcConfig::empty().with_dmb_size(self.clc.dmb_size());
        for u in ueids {
            clc = clc.with_ueid(u)?;
        }
        self.clc = clc;
        self.host = Arc::new(OnceLock::new());
        Ok(self)
    }

    /// Decide per destination whether to try SMC-D (`false`: plain TCP).
    #[must_use]
    pub fn policy(mut self, allow: impl Fn(SocketAddr) -> bool + Send + Sync + 'static) -> Self {
        self.policy = Some(Arc::new(allow));
        self
    }

    /// Whether SMC-D may be tried towards `addr`.
    pub(crate) fn allows(&self, addr: SocketAddr) -> bool {
        !self.disabled && self.policy.as_ref().is_none_or(|p| p(addr))
    }

    /// The host of this configuration on the process's device.
    pub(crate) fn host(&self) -> io::Result<StdHost> {
        if let Some(h) = self.host.get() {
            return Ok(Arc::clone(h));
        }
        let dev = process_device()?.with_nocopy(self.nocopy);
        let host = Arc::new(Host::with_config(self.clc.clone(), dev));
        Ok(Arc::clone(self.host.get_or_init(|| host)))
    }
}

static DEVICE: Mutex<Option<StdDevice>> = Mutex::new(None);

/// The device of this process if it was started.
pub(crate) fn running_device() -> Option<StdDevice> {
    DEVICE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Where the process device lives, whom it serves and how many DMBs it
/// holds at most (`SMCD_RENDEZVOUS_DIR`, `SMCD_PEERS`, `SMCD_MAX_DMBS`),
/// read from the environment once: a program may clear its environment
/// later (nginx does before it starts its workers).
pub(crate) fn device_env() -> &'static (Place, PeerPolicy, usize) {
    static ENV: OnceLock<(Place, PeerPolicy, usize)> = OnceLock::new();
    ENV.get_or_init(|| {
        let policy = match std::env::var("SMCD_PEERS").as_deref() {
            Ok("any") => PeerPolicy::AnyUser,
            _ => PeerPolicy::SameUser,
        };
        let max = env_num("SMCD_MAX_DMBS").map_or(MAX_DMBS, |n| {
            usize::try_from(n).unwrap_or(MAX_DMBS).clamp(1, MAX_DMBS)
        });
        (Place::from_env(), policy, max)
    })
}

/// Forget the device of this process (in a child after fork, where the
/// device's thread does not exist): the next use starts a new one.
pub(crate) fn forget_process_device() {
    // The forking thread held no smcd lock (fork handlers run outside smcd
    // calls); another thread's lock would be a deadlock either way.
    if let Ok(mut slot) = DEVICE.try_lock() {
        *slot = None;
    }
}

/// The device of this process, started on first use.
pub(crate) fn process_device() -> io::Result<StdDevice> {
    let mut slot = DEVICE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(d) = &*slot {
        return Ok(d.clone());
    }
    let (place, policy, max_dmbs) = device_env().clone();
    let dev = StdDevice::start(place, policy)?;
    dev.set_max_dmbs(max_dmbs);
    *slot = Some(dev.clone());
    Ok(dev)
}

/// The configuration of the plain `connect`/`bind` calls: the environment's.
pub(crate) fn default_config() -> &'static SmcConfig {
    static CONFIG: OnceLock<SmcConfig> = OnceLock::new();
    CONFIG.get_or_init(SmcConfig::from_env)
}
