//! The local SMC-D devices a handshake may use, in priority order.
//!
//! [`SmcdOps`] has an associated error type, so devices of different types
//! cannot share one slice directly. [`ClcDevice`] is the small object-safe
//! view the handshake needs (device errors reduced to their [`ErrorKind`]);
//! every [`SmcdOps`] implementation gets it for free, so a caller writes
//! `&[&ism as &dyn ClcDevice, &loopback]` and hands that to [`Devices::new`].
//!
//! # Priority
//!
//! Native ISM-like devices (CHID below 0xFF00) come before emulated devices
//! such as loopback (CHID 0xFF00–0xFFFF); within each class the caller's slice
//! order is kept. This is the project's chosen order ("ISM-like devices before
//! loopback"); Linux itself lists loopback-ism first (`docs/protocol/handshake.md` §2
//! step 5). The order only decides which device a peer picks when several are
//! usable; both orders are valid on the wire. Device indices in outcomes are
//! always positions in the caller's slice, never priority ranks.
//!
//! # Threads
//!
//! [`ClcDevice`] requires [`Sync`], so `&dyn ClcDevice` is `Send` and
//! `Sync`, and so are [`Devices`] and everything built on it (a
//! [`Handshake`](super::Handshake), an
//! [`Endpoint`](crate::endpoint::Endpoint) whose stream is `Send`). An
//! endpoint may be created on one thread and run on another. A device that
//! is not `Sync` (e.g. one with `RefCell` state) cannot be listed; give it a
//! lock instead (a spin mutex costs nothing without contention).

use crate::dmb::{Chid, Gid};
use crate::ops::{Dmb, Error as _, ErrorKind, PeerDmb, PeerDmbId, SmcdOps};

/// What the handshake needs from a device: [`SmcdOps`] without the data path
/// and with errors reduced to their [`ErrorKind`].
///
/// Implemented for every `Sync` [`SmcdOps`] type; there is no reason to implement it
/// by hand. The method names differ from [`SmcdOps`]'s so that both traits
/// can be in scope at once. `Sync`, so that endpoints may move between
/// threads.
pub trait ClcDevice: Sync {
    /// [`SmcdOps::local_gid`].
    fn gid(&self) -> Gid;
    /// [`SmcdOps::chid`].
    fn channel(&self) -> Chid;
    /// [`SmcdOps::supports_v2`].
    fn v2_capable(&self) -> bool;
    /// Whether [`SmcdOps::query_remote_gid`] accepts `gid`.
    fn reaches(&self, gid: Gid) -> bool;
    /// [`SmcdOps::register_dmb`].
    ///
    /// # Errors
    ///
    /// The device error's kind.
    fn register(&self, size: usize) -> Result<Dmb, ErrorKind>;
    /// [`SmcdOps::supports_nocopy`].
    fn nocopy(&self) -> bool;
    /// [`SmcdOps::attach_dmb`].
    ///
    /// # Errors
    ///
    /// The device error's kind.
    fn attach(&self, own: &Dmb, peer: PeerDmbId, map: bool) -> Result<PeerDmb, ErrorKind>;
    /// [`give_back`](crate::ops::give_back) through this device.
    ///
    /// # Errors
    ///
    /// The device error's kind.
    fn give_back(&self, own: Option<Dmb>, peer: Option<PeerDmb>) -> Result<(), ErrorKind>;
}

impl<T: SmcdOps + Sync> ClcDevice for T {
    fn gid(&self) -> Gid {
        self.local_gid()
    }
    fn channel(&self) -> Chid {
        self.chid()
    }
    fn v2_capable(&self) -> bool {
        self.supports_v2()
    }
    fn reaches(&self, gid: Gid) -> bool {
        self.query_remote_gid(gid).is_ok()
    }
    fn register(&self, size: usize) -> Result<Dmb, ErrorKind> {
        self.register_dmb(size).map_err(|e| e.kind())
    }
    fn nocopy(&self) -> bool {
        self.supports_nocopy()
    }
    fn attach(&self, own: &Dmb, peer: PeerDmbId, map: bool) -> Result<PeerDmb, ErrorKind> {
        self.attach_dmb(own, peer, map).map_err(|e| e.kind())
    }
    fn give_back(&self, own: Option<Dmb>, peer: Option<PeerDmb>) -> Result<(), ErrorKind> {
        crate::ops::give_back(self, own, peer).map_err(|e| e.kind())
    }
}

/// The devices of a handshake's context: one, or a list in the caller's
/// order.
///
/// Cheap to copy; many handshakes may share one list.
#[derive(Clone, Copy)]
pub struct Devices<'a> {
    inner: Inner<'a>,
}

#[derive(Clone, Copy)]
enum Inner<'a> {
    One(&'a dyn ClcDevice),
    List(&'a [&'a dyn ClcDevice]),
}

impl core::fmt::Debug for Devices<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|d| (d.channel(), d.gid())))
            .finish()
    }
}

impl<'a> Devices<'a> {
    /// A device list; indices in outcomes refer to positions in `list`.
    pub const fn new(list: &'a [&'a dyn ClcDevice]) -> Self {
        Self {
            inner: Inner::List(list),
        }
    }

    /// A single device (index 0).
    pub const fn one(device: &'a dyn ClcDevice) -> Self {
        Self {
            inner: Inner::One(device),
        }
    }

    /// The device at slice position `index`.
    pub fn get(&self, index: usize) -> Option<&'a dyn ClcDevice> {
        match self.inner {
            Inner::One(d) => (index == 0).then_some(d),
            Inner::List(list) => list.get(index).copied(),
        }
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        match self.inner {
            Inner::One(_) => 1,
            Inner::List(list) => list.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The devices in list order.
    fn iter(self) -> impl Iterator<Item = &'a dyn ClcDevice> + 'a {
        (0..self.len()).filter_map(move |i| self.get(i))
    }

    /// Whether any device can do SMC-Dv2 (Linux: the host is "ISMv2 capable").
    pub fn any_v2(&self) -> bool {
        let mut index = 0;
        while let Some(dev) = self.get(index) {
            if dev.v2_capable() {
                return true;
            }
            index += 1;
        }
        false
    }

    /// `(slice index, device)` in priority order: native ISM-like devices
    /// first, then emulated ones (see the module documentation).
    pub fn by_priority(&self) -> impl Iterator<Item = (usize, &'a dyn ClcDevice)> + 'a {
        ByPriority {
            devices: *self,
            emulated: false,
            next: 0,
        }
    }
}

/// The iterator of [`Devices::by_priority`]: two passes over the list, native
/// devices first, then emulated ones. One out-of-line `next` shared by every
/// caller (an adaptor chain would be compiled into each of them).
struct ByPriority<'a> {
    devices: Devices<'a>,
    /// The class of the current pass.
    emulated: bool,
    /// Index to look at next in the current pass.
    next: usize,
}

impl<'a> Iterator for ByPriority<'a> {
    type Item = (usize, &'a dyn ClcDevice);

    #[inline(never)]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let index = self.next;
            let Some(dev) = self.devices.get(index) else {
                if self.emulated {
                    return None;
                }
                (self.emulated, self.next) = (true, 0);
                continue;
            };
            self.next = index + 1;
            if dev.channel().is_emulated() == self.emulated {
                return Some((index, dev));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Devices;
    use crate::clc::Handshake;
    use crate::clc::testing::FakeDevice;
    use crate::endpoint::{Endpoint, Host, PipeEnd};

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn lists_engines_and_endpoints_cross_threads() {
        assert_send_sync::<FakeDevice>();
        assert_send_sync::<Devices<'static>>();
        assert_send::<Handshake<&'static Host<FakeDevice>>>();
        assert_send_sync::<Host<FakeDevice>>();
        assert_send::<Endpoint<&'static Host<FakeDevice>, PipeEnd<'static, 64>>>();
    }
}
