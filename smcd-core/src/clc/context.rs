//! [`ClcContext`]: what a handshake needs from its host — configuration,
//! devices and the link-group table — behind any handle the caller likes.
//!
//! An engine owns its context handle, so it can live in a struct without a
//! borrowed lifetime: `&T` for a stack-local host, `Arc<T>` for a host shared
//! by threads, `&'static T` in firmware. All of them are the same trait,
//! through the blanket implementation for [`Deref`] types, as
//! quinn-proto's endpoint owns an `Arc` of its configuration.

use core::ops::Deref;

use super::config::ClcConfig;
use super::devices::Devices;
use super::lgr::LinkGroupTable;

/// The host side of a [`Handshake`](super::Handshake).
///
/// Implemented by [`Host`](crate::endpoint::Host) (one device), by
/// [`Context`] (borrowed parts, any device list), and by every pointer to an
/// implementation (`&T`, `Arc<T>`, `Box<T>`, `&'static T`).
pub trait ClcContext {
    /// EIDs, hostname, DMB size.
    fn config(&self) -> &ClcConfig;
    /// The devices the handshake may offer and accept.
    fn devices(&self) -> Devices<'_>;
    /// The host's link groups (shared by all its handshakes).
    fn link_groups(&self) -> &dyn LinkGroupTable;
}

impl<T> ClcContext for T
where
    T: Deref,
    T::Target: ClcContext,
{
    fn config(&self) -> &ClcConfig {
        (**self).config()
    }
    fn devices(&self) -> Devices<'_> {
        (**self).devices()
    }
    fn link_groups(&self) -> &dyn LinkGroupTable {
        (**self).link_groups()
    }
}

/// A context of borrowed parts: for several devices, or for tests that keep
/// config, devices and link groups apart.
///
/// ```
/// use smcd_core::clc::testing::FakeDevice;
/// use smcd_core::clc::{ClcConfig, ClcDevice, Context, Devices, Handshake, LinkGroups};
/// use smcd_core::dmb::{Chid, Gid};
///
/// let (a, b) = (FakeDevice::loopback(Gid::new(1, 2)), FakeDevice::ism(3, Chid(0x0123)));
/// let list: [&dyn ClcDevice; 2] = [&a, &b];
/// let config = ClcConfig::default();
/// let groups = LinkGroups::<4>::new();
/// let ctx = Context::new(&config, Devices::new(&list), &groups);
/// let client = Handshake::client(ctx, 0);
/// assert!(client.is_handshaking());
/// ```
#[derive(Clone, Copy)]
pub struct Context<'a> {
    config: &'a ClcConfig,
    devices: Devices<'a>,
    groups: &'a dyn LinkGroupTable,
}

impl<'a> Context<'a> {
    /// A context of `config`, `devices` and `groups`.
    pub const fn new(
        config: &'a ClcConfig,
        devices: Devices<'a>,
        groups: &'a dyn LinkGroupTable,
    ) -> Self {
        Self {
            config,
            devices,
            groups,
        }
    }
}

impl core::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Context")
            .field("config", self.config)
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

impl ClcContext for Context<'_> {
    fn config(&self) -> &ClcConfig {
        self.config
    }
    fn devices(&self) -> Devices<'_> {
        self.devices
    }
    fn link_groups(&self) -> &dyn LinkGroupTable {
        self.groups
    }
}
