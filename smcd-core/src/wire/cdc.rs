//! The 32-byte SMC-D CDC header at offset 0 of every DMB (`docs/protocol/cdc.md` §2).
//!
//! Mirrors Linux `struct smcd_cdc_msg` (`net/smc/smc_cdc.h`, v6.10+). The
//! header lives in shared memory, never on a network, so its integers are in
//! **host** byte order: both ends share one machine.
//!
//! ```text
//!  0       1                               8
//! +-------+-------------------------------+
//! | type  |          reserved (7)         |
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! 8  prod.wrap u16 |   prod.count u32              | (0)   | (0)   |   one 64-bit atomic word
//! +---------------+-------------------------------+-------+-------+
//! 16 cons.wrap u16 |   cons.count u32              | prod_ | conn_ |   one 64-bit atomic word
//!                  |                               | flags | state |
//! +---------------+-------------------------------+-------+-------+
//! 24                         reserved (8)                         |
//! +---------------------------------------------------------------+
//! ```
//!
//! Bytes 8–15 and 16–23 are each written and read as one aligned 64-bit
//! atomic, whose value is exactly the native-endian `u64` of those eight
//! bytes. The producer flags and connection-state flags that matter are the
//! ones in the **cons** group (bytes 22/23); bytes 14/15 are written as 0 and
//! ignored on receipt, as Linux does.
//!
//! [`CdcHeader`] is the validated, host-typed form with
//! [`parse`](CdcHeader::parse) / [`emit`](CdcHeader::emit); [`publish`] and
//! [`snapshot`] move a header into and out of DMB memory with the ordering
//! the data path relies on:
//!
//! * [`publish`] stores the prod word (8–15) **before** the cons word
//!   (16–23), both with `Release`;
//! * [`snapshot`] loads the cons word **first**, then the prod word, both with
//!   `Acquire`.
//!
//! So a reader that sees a flag (say `peer_conn_closed`) or a consumer cursor
//! also sees every producer cursor published before it — "no byte sent before
//! close is lost" (loom model `close_*` in `loom-tests`).
//!
//! ```
//! use smcd_core::cursor::Cursor;
//! use smcd_core::wire::cdc::{CdcHeader, ConnStateFlags, ProducerFlags};
//!
//! let hdr = CdcHeader {
//!     prod: Cursor::new(1, 0x1000),
//!     cons: Cursor::new(0, 0x200),
//!     prod_flags: ProducerFlags::CONS_CURS_UPD_REQ,
//!     conn_state_flags: ConnStateFlags::PEER_DONE_WRITING,
//! };
//! let mut buf = [0u8; CdcHeader::BUFFER_LEN];
//! hdr.emit(&mut buf)?;
//! assert_eq!(buf[0], 0xFE);
//! assert_eq!(CdcHeader::parse(&buf)?, hdr);
//! # Ok::<(), smcd_core::wire::cdc::CdcError>(())
//! ```

use core::fmt;

use bitflags::bitflags;
use zerocopy::byteorder::native_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::cursor::Cursor;
use crate::dmb::CDC_HEADER_LEN_BYTES;
use crate::mem::{DmbMem, MemError};
use crate::sync::Ordering;

/// Value of the `type` byte written by senders (receivers do not check it).
pub const CDC_TYPE_SMCD: u8 = 0xFE;

/// Offset of the producer-cursor word inside the header (8).
pub const PROD_WORD_OFFSET: usize = core::mem::offset_of!(SmcdCdcMsg, prod);
/// Offset of the consumer-cursor-and-flags word inside the header (16).
pub const CONS_WORD_OFFSET: usize = core::mem::offset_of!(SmcdCdcMsg, cons);

bitflags! {
    /// Producer flags, byte 22 (`docs/protocol/cdc.md` §4). Unknown bits are kept.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ProducerFlags: u8 {
        /// The sender has more data than our free space ("window closed"):
        /// send a consumer update when space opens.
        const WRITE_BLOCKED = 0x80;
        /// Urgent data is pending.
        const URG_DATA_PENDING = 0x40;
        /// Urgent data present: the byte just before `prod` is the urgent byte.
        const URG_DATA_PRESENT = 0x20;
        /// Please send your consumer cursor.
        const CONS_CURS_UPD_REQ = 0x10;
        /// SMC-R link-failover replay; never set in SMC-D.
        const FAILOVER_VALIDATION = 0x08;
    }
}

bitflags! {
    /// Connection-state flags, byte 23 (`docs/protocol/cdc.md` §4). Sticky: once a
    /// sender sets one it repeats it in every later header. Unknown bits are kept.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ConnStateFlags: u8 {
        /// The sender shut down its write side (like FIN).
        const PEER_DONE_WRITING = 0x80;
        /// The sender closed the connection.
        const PEER_CONN_CLOSED = 0x40;
        /// Abnormal close (like RST).
        const PEER_CONN_ABORT = 0x20;
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ProducerFlags {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ProducerFlags({=u8:#x})", self.bits());
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ConnStateFlags {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ConnStateFlags({=u8:#x})", self.bits());
    }
}

/// One cursor group of the header (Linux `struct smcd_cdc_cursor`, 8 bytes).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct SmcdCdcCursor {
    /// Wrap counter.
    pub wrap: U16,
    /// Offset in the ring.
    pub count: U32,
    /// Producer flags (meaningful only in the `cons` group).
    pub prod_flags: u8,
    /// Connection-state flags (meaningful only in the `cons` group).
    pub conn_state_flags: u8,
}

/// The raw 32-byte header (Linux `struct smcd_cdc_msg`), host byte order.
///
/// 8-byte aligned so that a `&SmcdCdcMsg` can back the two atomic words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C, align(8))]
pub struct SmcdCdcMsg {
    /// Message type, 0xFE ([`CDC_TYPE_SMCD`]).
    pub r#type: u8,
    /// Reserved, 0.
    pub reserved: [u8; 7],
    /// Producer cursor of the writer of this header (flag bytes unused).
    pub prod: SmcdCdcCursor,
    /// Consumer cursor of the writer of this header, plus the flag bytes.
    pub cons: SmcdCdcCursor,
    /// Reserved, 0.
    pub reserved2: [u8; 8],
}

// The raw layout is the header the DMB reserves.
const _: () = assert!(size_of::<SmcdCdcMsg>() == CdcHeader::BUFFER_LEN);

/// A CDC header did not fit or could not be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CdcError {
    /// The buffer is shorter than [`CdcHeader::BUFFER_LEN`] (its length).
    Truncated(usize),
    /// A header to publish is not exactly [`CdcHeader::BUFFER_LEN`] bytes (its length).
    BadLength(usize),
    /// The header location is outside the DMB or not 8-byte aligned.
    Mem(MemError),
    /// A data write reaching into the 32-byte header (see [`store`]).
    IntoHeader {
        /// Requested offset.
        offset: usize,
        /// Requested length.
        len: usize,
    },
}

impl fmt::Display for CdcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CdcError::Truncated(n) => write!(f, "CDC header truncated: {n} of 32 bytes"),
            CdcError::BadLength(n) => write!(f, "CDC header must be 32 bytes, got {n}"),
            CdcError::Mem(e) => write!(f, "CDC header location: {e}"),
            CdcError::IntoHeader { offset, len } => {
                write!(
                    f,
                    "data write of {len} bytes at {offset} reaches into the CDC header"
                )
            }
        }
    }
}

impl core::error::Error for CdcError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            CdcError::Mem(e) => Some(e),
            _ => None,
        }
    }
}

impl From<MemError> for CdcError {
    fn from(e: MemError) -> Self {
        CdcError::Mem(e)
    }
}

/// A parsed SMC-D CDC header: what the receiver acts on (`docs/protocol/cdc.md` §6).
///
/// Parsing only checks the length: the cursors are checked against the ring
/// by the connection ([`crate::conn`]), which knows the ring size and the
/// previous cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CdcHeader {
    /// Producer cursor: how far the writer has filled the reader's ring.
    pub prod: Cursor,
    /// Consumer cursor: how far the writer has consumed *its own* ring.
    pub cons: Cursor,
    /// Producer flags (byte 22).
    pub prod_flags: ProducerFlags,
    /// Connection-state flags (byte 23).
    pub conn_state_flags: ConnStateFlags,
}

/// The eight bytes of one cursor group as a native-endian `u64`.
fn pack(c: Cursor, prod_flags: u8, conn_state_flags: u8) -> u64 {
    let g = SmcdCdcCursor {
        wrap: U16::new(c.wrap),
        count: U32::new(c.count),
        prod_flags,
        conn_state_flags,
    };
    word_of(g)
}

/// The native-endian `u64` of one cursor group's eight bytes.
fn word_of(g: SmcdCdcCursor) -> u64 {
    u64::from_ne_bytes(zerocopy::transmute!(g))
}

/// Inverse of [`pack`].
fn unpack(word: u64) -> SmcdCdcCursor {
    zerocopy::transmute!(word.to_ne_bytes())
}

fn cursor_of(g: &SmcdCdcCursor) -> Cursor {
    Cursor::new(g.wrap.get(), g.count.get())
}

impl CdcHeader {
    /// Length of the header in bytes: [`CDC_HEADER_LEN_BYTES`], the start of
    /// every DMB.
    pub const BUFFER_LEN: usize = CDC_HEADER_LEN_BYTES;

    /// Build from the two 64-bit words (bytes 8–15 and 16–23).
    pub fn from_words(prod_word: u64, cons_word: u64) -> Self {
        let cons = unpack(cons_word);
        Self {
            prod: cursor_of(&unpack(prod_word)),
            cons: cursor_of(&cons),
            prod_flags: ProducerFlags::from_bits_retain(cons.prod_flags),
            conn_state_flags: ConnStateFlags::from_bits_retain(cons.conn_state_flags),
        }
    }

    /// The word for bytes 8–15 (producer cursor, flag bytes 0).
    pub fn prod_word(&self) -> u64 {
        pack(self.prod, 0, 0)
    }

    /// The word for bytes 16–23 (consumer cursor and both flag bytes).
    pub fn cons_word(&self) -> u64 {
        pack(
            self.cons,
            self.prod_flags.bits(),
            self.conn_state_flags.bits(),
        )
    }

    /// Parse the first 32 bytes of `bytes`. `type`, the reserved bytes and
    /// the prod group's flag bytes are ignored, as Linux does.
    ///
    /// # Errors
    ///
    /// [`CdcError::Truncated`] if fewer than 32 bytes are given.
    pub fn parse(bytes: &[u8]) -> Result<Self, CdcError> {
        let (msg, _) =
            SmcdCdcMsg::read_from_prefix(bytes).map_err(|_| CdcError::Truncated(bytes.len()))?;
        Ok(Self::from_msg(&msg))
    }

    /// The header of a raw message.
    pub fn from_msg(msg: &SmcdCdcMsg) -> Self {
        Self::from_words(word_of(msg.prod), word_of(msg.cons))
    }

    /// The raw message for this header (type 0xFE, reserved bytes 0).
    pub fn to_msg(&self) -> SmcdCdcMsg {
        SmcdCdcMsg {
            r#type: CDC_TYPE_SMCD,
            reserved: [0; 7],
            prod: unpack(self.prod_word()),
            cons: unpack(self.cons_word()),
            reserved2: [0; 8],
        }
    }

    /// The 32 header bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        zerocopy::transmute!(self.to_msg())
    }

    /// Write the header into the first 32 bytes of `buf`.
    ///
    /// # Errors
    ///
    /// [`CdcError::Truncated`] if `buf` is shorter than 32 bytes; nothing is
    /// written then.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), CdcError> {
        let len = buf.len();
        let dst = buf
            .get_mut(..Self::BUFFER_LEN)
            .ok_or(CdcError::Truncated(len))?;
        dst.copy_from_slice(&self.to_bytes());
        Ok(())
    }
}

/// A whole header fits at `offset` and its words are 8-byte aligned.
fn check_header_location(mem: &DmbMem, offset: usize) -> Result<(), MemError> {
    match offset.checked_add(CdcHeader::BUFFER_LEN) {
        Some(end) if end <= mem.len() => {}
        _ => {
            return Err(MemError::OutOfBounds {
                offset,
                len: CdcHeader::BUFFER_LEN,
                dmb_len: mem.len(),
            });
        }
    }
    if offset % 8 == 0 {
        Ok(())
    } else {
        Err(MemError::Misaligned)
    }
}

/// Store a 32-byte header image at `offset` of a DMB the way a CDC header
/// write (`move_data` with signal) must: the plain bytes 0–7 and 24–31
/// first, then the prod word (8–15) and the cons word (16–23) as `Release`
/// atomic stores, in that order.
///
/// Devices call this from `move_data(.., signal = true)`.
///
/// # Errors
///
/// [`CdcError::BadLength`] unless `header` is exactly 32 bytes;
/// [`CdcError::Mem`] if the header does not fit at `offset` or
/// `offset` is not 8-byte aligned. Nothing is written on error.
pub fn publish(mem: &DmbMem, offset: usize, header: &[u8]) -> Result<(), CdcError> {
    let msg = SmcdCdcMsg::read_from_bytes(header).map_err(|_| CdcError::BadLength(header.len()))?;
    check_header_location(mem, offset)?;
    let bytes = msg.as_bytes();
    mem.write(offset, bytes.get(..PROD_WORD_OFFSET).unwrap_or_default())?;
    mem.write(offset + 24, bytes.get(24..).unwrap_or_default())?;
    mem.store_u64(
        offset + PROD_WORD_OFFSET,
        word_of(msg.prod),
        Ordering::Release,
    )?;
    mem.store_u64(
        offset + CONS_WORD_OFFSET,
        word_of(msg.cons),
        Ordering::Release,
    )?;
    Ok(())
}

/// Store a device's `move_data` write into a DMB: the 32 bytes at offset 0
/// are the CDC header, published as [`publish`] does; anything else is ring
/// data and must lie behind the header. Returns whether it was the header.
///
/// # Errors
///
/// [`CdcError::IntoHeader`] for a data write reaching into the header;
/// [`CdcError::Mem`] for a write outside the DMB. Nothing is written then.
pub fn store(mem: &DmbMem, offset: usize, data: &[u8]) -> Result<bool, CdcError> {
    if offset == 0 && data.len() == CDC_HEADER_LEN_BYTES {
        return publish(mem, 0, data).map(|()| true);
    }
    if offset < CDC_HEADER_LEN_BYTES {
        return Err(CdcError::IntoHeader {
            offset,
            len: data.len(),
        });
    }
    mem.write(offset, data)?;
    Ok(false)
}

/// Read the header at `offset` of a DMB as the receiver does (`docs/protocol/cdc.md`
/// §6 step 1): the cons word first, then the prod word, both `Acquire`.
///
/// The two loads are separate: the result may combine a newer prod word with
/// the cons word of an earlier header, never the reverse, so every value
/// must still be validated by the caller.
///
/// # Errors
///
/// [`MemError`] if the words are outside the DMB or misaligned.
pub fn snapshot(mem: &DmbMem, offset: usize) -> Result<CdcHeader, MemError> {
    check_header_location(mem, offset)?;
    let cons = mem.load_u64(offset + CONS_WORD_OFFSET, Ordering::Acquire)?;
    let prod = mem.load_u64(offset + PROD_WORD_OFFSET, Ordering::Acquire)?;
    Ok(CdcHeader::from_words(prod, cons))
}

#[cfg(test)]
#[allow(unsafe_code)] // test fixtures over local buffers
mod tests {
    use super::*;

    #[repr(C, align(8))]
    struct Buf([u8; 64]);

    /// A view of a test buffer; the buffer outlives the view's uses.
    fn view(buf: &mut Buf) -> DmbMem {
        // SAFETY: `buf` outlives every use in the test and is only accessed
        // through the view.
        unsafe {
            DmbMem::from_region(
                crate::mem::DmbRegion::new(core::ptr::NonNull::from(&mut buf.0).cast(), 64)
                    .unwrap(),
            )
        }
    }

    /// The bytes of a spec vector file: hex before `#` on each line.
    fn hex_vector(text: &str) -> std::vec::Vec<u8> {
        text.lines()
            .map(|l| l.split('#').next().unwrap_or(""))
            .flat_map(str::split_whitespace)
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn vector_h() -> CdcHeader {
        CdcHeader {
            prod: Cursor::new(1, 0x1000),
            cons: Cursor::new(0, 0x200),
            prod_flags: ProducerFlags::CONS_CURS_UPD_REQ,
            conn_state_flags: ConnStateFlags::PEER_DONE_WRITING,
        }
    }

    #[test]
    fn layout_is_32_bytes_aligned_8() {
        assert_eq!(size_of::<SmcdCdcMsg>(), 32);
        assert_eq!(align_of::<SmcdCdcMsg>(), 8);
        assert_eq!(size_of::<SmcdCdcCursor>(), 8);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn vector_h_round_trips() {
        let bytes = hex_vector(include_str!("../../tests/vectors/cdc-smcd-header-le.hex"));
        assert_eq!(bytes.len(), 32);
        assert_eq!(CdcHeader::parse(&bytes), Ok(vector_h()));
        assert_eq!(vector_h().to_bytes().as_slice(), bytes.as_slice());
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[8..16]);
        assert_eq!(vector_h().prod_word(), u64::from_ne_bytes(word));
        word.copy_from_slice(&bytes[16..24]);
        assert_eq!(vector_h().cons_word(), u64::from_ne_bytes(word));
    }

    #[test]
    fn words_are_native_endian_byte_images() {
        let h = vector_h();
        let bytes = h.to_bytes();
        let mut expect = [0u8; 8];
        expect[0..2].copy_from_slice(&1u16.to_ne_bytes());
        expect[2..6].copy_from_slice(&0x1000u32.to_ne_bytes());
        assert_eq!(&bytes[8..16], &expect);
        expect[0..2].copy_from_slice(&0u16.to_ne_bytes());
        expect[2..6].copy_from_slice(&0x200u32.to_ne_bytes());
        expect[6] = 0x10;
        expect[7] = 0x80;
        assert_eq!(&bytes[16..24], &expect);
        assert_eq!(CdcHeader::from_words(h.prod_word(), h.cons_word()), h);
    }

    #[test]
    fn parse_ignores_type_reserved_and_prod_group_flags() {
        let mut bytes = vector_h().to_bytes();
        bytes[0] = 0x12;
        bytes[3] = 0xAA;
        bytes[14] = 0xFF;
        bytes[15] = 0xFF;
        bytes[30] = 0x55;
        assert_eq!(CdcHeader::parse(&bytes), Ok(vector_h()));
    }

    #[test]
    fn unknown_flag_bits_are_kept() {
        let mut bytes = [0u8; 32];
        bytes[22] = 0x07;
        bytes[23] = 0x1F;
        let h = CdcHeader::parse(&bytes).unwrap();
        assert_eq!(h.prod_flags.bits(), 0x07);
        assert_eq!(h.conn_state_flags.bits(), 0x1F);
        assert_eq!(h.to_bytes()[22..24], [0x07, 0x1F]);
    }

    #[test]
    fn short_buffers_are_rejected() {
        assert_eq!(CdcHeader::parse(&[0u8; 31]), Err(CdcError::Truncated(31)));
        let mut small = [0u8; 8];
        assert_eq!(vector_h().emit(&mut small), Err(CdcError::Truncated(8)));
        assert_eq!(small, [0u8; 8]);
    }

    #[test]
    fn publish_then_snapshot() {
        let mut b = Buf([0xEE; 64]);
        let m = view(&mut b);
        publish(&m, 32, &vector_h().to_bytes()).unwrap();
        assert_eq!(snapshot(&m, 32), Ok(vector_h()));
        let mut raw = [0u8; 32];
        m.read(32, &mut raw).unwrap();
        assert_eq!(raw, vector_h().to_bytes());
        let mut head = [0u8; 32];
        m.read(0, &mut head).unwrap();
        assert_eq!(head, [0xEE; 32]);
    }

    #[test]
    fn publish_checks_length_bounds_and_alignment() {
        let mut b = Buf([0; 64]);
        let m = view(&mut b);
        let h = vector_h().to_bytes();
        assert_eq!(publish(&m, 0, &h[..31]), Err(CdcError::BadLength(31)));
        assert!(matches!(
            publish(&m, 40, &h),
            Err(CdcError::Mem(MemError::OutOfBounds { .. }))
        ));
        assert!(matches!(
            publish(&m, usize::MAX - 4, &h),
            Err(CdcError::Mem(MemError::OutOfBounds { .. }))
        ));
        assert_eq!(publish(&m, 4, &h), Err(CdcError::Mem(MemError::Misaligned)));
        let mut raw = [0u8; 64];
        m.read(0, &mut raw).unwrap();
        assert_eq!(raw, [0u8; 64]);
        assert!(snapshot(&m, 40).is_err());
        assert!(snapshot(&m, usize::MAX).is_err());
    }

    #[test]
    fn store_publishes_the_header_and_keeps_data_behind_it() {
        let mut b = Buf([0; 64]);
        let m = view(&mut b);
        let hdr = CdcHeader {
            prod: Cursor::new(0, 7),
            cons: Cursor::ZERO,
            prod_flags: ProducerFlags::empty(),
            conn_state_flags: ConnStateFlags::empty(),
        }
        .to_bytes();
        assert_eq!(store(&m, 0, &hdr), Ok(true));
        assert_eq!(snapshot(&m, 0).unwrap().prod.count, 7);
        assert_eq!(store(&m, 32, b"ring"), Ok(false));
        assert_eq!(
            store(&m, 31, b"xy"),
            Err(CdcError::IntoHeader { offset: 31, len: 2 })
        );
        assert!(matches!(store(&m, 62, b"xyz"), Err(CdcError::Mem(_))));
    }
}
