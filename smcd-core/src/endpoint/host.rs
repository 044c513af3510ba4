//! [`Host`]: what every endpoint of one host shares — handshake
//! configuration, the device and the link-group table — and [`HostRef`],
//! the handle an endpoint owns to reach it.

use core::fmt;
use core::ops::Deref;

use crate::clc::{ClcConfig, ClcContext, Devices, LinkGroupTable, LinkGroups};
use crate::ops::SmcdOps;
use crate::stats::ClcStats;

/// Link groups a [`Host`] keeps unless told otherwise.
pub const DEFAULT_LINK_GROUPS: usize = 16;

/// One host: its handshake configuration, its SMC-D device and its
/// link-group table, owned in one place.
///
/// Endpoints reach it through a [`HostRef`] — `&Host` on the stack,
/// `Arc<Host>` shared between threads, `&'static Host` in firmware — so an
/// endpoint can live in a struct without a borrowed lifetime of its own.
///
/// ```
/// use smcd_core::clc::testing::FakeDevice;
/// use smcd_core::dmb::Gid;
/// use smcd_core::endpoint::Host;
///
/// let host: Host<_> = Host::new(FakeDevice::loopback(Gid::new(1, 2)));
/// assert_eq!(host.config().ueids().len(), 1); // the default UEID
/// assert_eq!(host.clc_stats().client.established(), 0);
/// ```
pub struct Host<D, const N: usize = DEFAULT_LINK_GROUPS> {
    config: ClcConfig,
    device: D,
    groups: LinkGroups<N>,
}

impl<D, const N: usize> Host<D, N> {
    /// A host on `device` with the default configuration
    /// ([`ClcConfig::default`]: the default UEID, 64 KiB DMBs).
    pub fn new(device: D) -> Self {
        Self::with_config(ClcConfig::default(), device)
    }

    crate::sync::const_unless_loom! {
        /// A host on `device` with `config`.
        pub fn with_config(config: ClcConfig, device: D) -> Self {
            Self {
                config,
                device,
                groups: LinkGroups::new(),
            }
        }
    }

    /// The handshake configuration.
    pub fn config(&self) -> &ClcConfig {
        &self.config
    }

    /// The device connections run on.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The link-group table.
    pub fn groups(&self) -> &LinkGroups<N> {
        &self.groups
    }

    /// How the handshakes of this host ended ([`LinkGroups::clc_stats`]).
    pub fn clc_stats(&self) -> ClcStats {
        self.groups.clc_stats()
    }
}

impl<D: SmcdOps + Sync, const N: usize> ClcContext for Host<D, N> {
    fn config(&self) -> &ClcConfig {
        &self.config
    }
    fn devices(&self) -> Devices<'_> {
        Devices::one(&self.device)
    }
    fn link_groups(&self) -> &dyn LinkGroupTable {
        &self.groups
    }
}

impl<D, const N: usize> fmt::Debug for Host<D, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("config", &self.config)
            .field("link_groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

/// The handle through which an [`Endpoint`](super::Endpoint) reaches its
/// [`Host`]: any cloneable pointer to one (`&Host`, `Arc<Host>`,
/// `&'static Host`, `Rc<Host>`).
///
/// Implemented for every such pointer; there is no reason to implement it
/// by hand.
pub trait HostRef: ClcContext + Clone {
    /// The host's device.
    type Device: SmcdOps + Sync;
    /// The device connections run on.
    fn device(&self) -> &Self::Device;
}

impl<T, D, const N: usize> HostRef for T
where
    T: Deref<Target = Host<D, N>> + Clone,
    D: SmcdOps + Sync,
{
    type Device = D;
    fn device(&self) -> &D {
        &self.device
    }
}
