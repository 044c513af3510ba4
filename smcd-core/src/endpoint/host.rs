//! [`Host`]: what every endpoint of one host shares — handshake
//! configuration, the device list, the link-group table and the device the
//! data path runs on.

use core::fmt;

use crate::clc::{ClcConfig, ClcDevice, Devices, LinkGroup, LinkGroupTable, LinkGroups};
use crate::stats::ClcStats;

/// A link-group table endpoints can hand connection references back to.
///
/// The engine's [`LinkGroupTable`] is sealed; this trait adds the one
/// operation an endpoint needs when its connection ends. Implemented by
/// [`LinkGroups`]; there is no reason to implement it by hand.
pub trait Groups: Sync {
    /// The table as the handshake engines use it.
    fn table(&self) -> &dyn LinkGroupTable;
    /// Drop one connection's reference ([`LinkGroups::release`]).
    fn release(&self, lgr: LinkGroup);
    /// How the handshakes of this host ended ([`LinkGroups::clc_stats`]).
    fn clc_stats(&self) -> ClcStats;
}

impl<const N: usize> Groups for LinkGroups<N> {
    fn table(&self) -> &dyn LinkGroupTable {
        self
    }

    fn release(&self, lgr: LinkGroup) {
        LinkGroups::release(self, lgr);
    }

    fn clc_stats(&self) -> ClcStats {
        LinkGroups::clc_stats(self)
    }
}

/// The host-wide context of an [`Endpoint`](super::Endpoint).
///
/// `device` is the device the data path runs on; it must be one of
/// `devices` (the list the handshake offers). Cheap to copy; `Send` and
/// `Sync` when `D` is `Sync` (every listed device is), so endpoints built
/// from it may move to other threads.
///
/// ```
/// use smcd_core::clc::testing::FakeDevice;
/// use smcd_core::clc::{ClcConfig, ClcDevice, Devices, LinkGroups};
/// use smcd_core::dmb::Gid;
/// use smcd_core::endpoint::Host;
///
/// let lo = FakeDevice::loopback(Gid::new(1, 2));
/// let list: [&dyn ClcDevice; 1] = [&lo];
/// let config = ClcConfig::new().with_ueid("SMCD-TEST")?;
/// let groups = LinkGroups::<4>::new();
/// let host = Host::new(&config, Devices::new(&list), &groups, &lo);
/// assert!(host.lists_device());
/// # Ok::<(), smcd_core::clc::EidError>(())
/// ```
pub struct Host<'a, D> {
    /// EIDs, hostname, DMB size.
    pub config: &'a ClcConfig,
    /// Devices the handshake may offer and accept, in the caller's order.
    pub devices: Devices<'a>,
    /// Link groups of this host.
    pub groups: &'a dyn Groups,
    /// The device connections run on (one of `devices`).
    pub device: &'a D,
}

impl<'a, D> Host<'a, D> {
    /// A host context.
    pub fn new(
        config: &'a ClcConfig,
        devices: Devices<'a>,
        groups: &'a dyn Groups,
        device: &'a D,
    ) -> Self {
        Self {
            config,
            devices,
            groups,
            device,
        }
    }

    /// Whether `index` in [`devices`](Self::devices) is [`device`](Self::device).
    pub fn is_data_device(&self, index: usize) -> bool {
        self.devices
            .get(index)
            .is_some_and(|d| core::ptr::addr_eq(d as *const dyn ClcDevice, self.device as *const D))
    }

    /// Whether [`device`](Self::device) is in [`devices`](Self::devices).
    pub fn lists_device(&self) -> bool {
        (0..self.devices.len()).any(|i| self.is_data_device(i))
    }
}

impl<D> Clone for Host<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D> Copy for Host<'_, D> {}

impl<D> fmt::Debug for Host<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("config", self.config)
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}
