//! Interim device, until `smcd_lo::LoopbackDevice` is on main: a loopback
//! ISM device whose DMBs are fixed 16 KiB slots of the static arena,
//! registered in the core's [`DmbTable`] (tokens, owner/attach references).
//! No doorbell: the scenario polls `handle_signal`.

use core::cell::Cell;

use smcd_core::dmb::{Chid, DMB_MIN_SIZE_BYTES, DmbTable, DmbToken, Gid};
use smcd_core::mem::DmbMem;
use smcd_core::ops::{Dmb, Error as _, ErrorKind, ErrorType, SmcdOps};
use smcd_core::wire::cdc;

use crate::arena::ARENA_BYTES;

/// Size of every DMB of this device.
pub(crate) const SLOT_BYTES: usize = DMB_MIN_SIZE_BYTES;
/// DMB slots in the arena.
const SLOTS: usize = 4;
const _: () = assert!(SLOTS * SLOT_BYTES <= ARENA_BYTES);

/// The device's fixed GID (128 bits, as loopback-ism has).
const GID: Gid = Gid::new(0x736d_6364_2d74_6172, 0x6765_7473_0000_0001);

/// A loopback-like SMC-D device over the static arena.
#[derive(Debug)]
pub(crate) struct StaticDevice {
    slots: [DmbMem; SLOTS],
    /// Bit `i` set: slot `i` is free.
    free: Cell<u8>,
    last_token: Cell<u64>,
    table: DmbTable<usize, SLOTS>,
}

impl StaticDevice {
    /// The device over `arena`; `None` if it is too small or misaligned.
    pub(crate) fn new(arena: &'static mut [u8]) -> Option<Self> {
        let mut rest = arena;
        let mut slot = || {
            let (mine, tail) = core::mem::take(&mut rest).split_at_mut_checked(SLOT_BYTES)?;
            rest = tail;
            DmbMem::from_static(mine).ok()
        };
        Some(Self {
            slots: [slot()?, slot()?, slot()?, slot()?],
            free: Cell::new((1 << SLOTS) - 1),
            last_token: Cell::new(0),
            table: DmbTable::new(),
        })
    }

    /// DMBs currently registered or attached.
    pub(crate) fn live_dmbs(&self) -> usize {
        self.table.len()
    }

    fn free_slot(&self, slot: usize) {
        self.free.set(self.free.get() | (1 << slot));
    }

    fn entry(&self, token: DmbToken) -> Result<DmbMem, ErrorKind> {
        self.table
            .lookup(token)
            .map(|e| e.mem)
            .map_err(|e| e.kind())
    }
}

impl ErrorType for StaticDevice {
    type Error = ErrorKind;
}

impl SmcdOps for StaticDevice {
    fn local_gid(&self) -> Gid {
        GID
    }
    fn chid(&self) -> Chid {
        Chid::LOOPBACK
    }
    fn supports_v2(&self) -> bool {
        true
    }
    fn query_remote_gid(&self, gid: Gid) -> Result<(), ErrorKind> {
        if gid == GID {
            Ok(())
        } else {
            Err(ErrorKind::Unreachable)
        }
    }
    fn register_dmb(&self, size: usize) -> Result<Dmb, ErrorKind> {
        if size != SLOT_BYTES {
            return Err(ErrorKind::NoMemory);
        }
        let slot = self.free.get().trailing_zeros() as usize;
        let mem = *self.slots.get(slot).ok_or(ErrorKind::NoSpace)?;
        mem.zero(0, mem.len()).map_err(|_| ErrorKind::Other)?;
        let token = DmbToken(self.last_token.get() + 1);
        self.table
            .register(token, mem, slot)
            .map_err(|e| e.kind())?;
        self.last_token.set(token.0);
        self.free.set(self.free.get() & !(1 << slot));
        Ok(Dmb { token, mem })
    }
    fn unregister_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        if let Some(gone) = self.table.unregister(token).map_err(|e| e.kind())? {
            self.free_slot(gone.owner);
        }
        Ok(())
    }
    fn move_data(
        &self,
        token: DmbToken,
        offset: usize,
        data: &[u8],
        signal: bool,
    ) -> Result<(), ErrorKind> {
        let mem = self.entry(token)?;
        if signal {
            cdc::publish(&mem, offset, data).map_err(|_| ErrorKind::OutOfBounds)
        } else {
            mem.write(offset, data).map_err(|_| ErrorKind::OutOfBounds)
        }
    }
    fn signal_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        self.entry(token).map(|_| ())
    }
    fn supports_nocopy(&self) -> bool {
        true
    }
    fn attach_dmb(&self, token: DmbToken) -> Result<Dmb, ErrorKind> {
        let e = self.table.attach(token).map_err(|e| e.kind())?;
        Ok(Dmb { token, mem: e.mem })
    }
    fn detach_dmb(&self, token: DmbToken) -> Result<(), ErrorKind> {
        if let Some(gone) = self.table.detach(token).map_err(|e| e.kind())? {
            self.free_slot(gone.owner);
        }
        Ok(())
    }
}
