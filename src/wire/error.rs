//! Error types shared by the wire emitters ([`EmitError`]) and the Ethernet-frame parsers for
//! ARP and neighbour advertisements ([`FrameError`]). VRRP parsing reports a
//! [`crate::wire::vrrp::DropReason`] instead, because the daemon counts drops by reason. Also
//! the sequential [`Writer`] the VRRP and heartbeat emitters share.
use thiserror::Error;

use super::VrrpVersion;

/// Why a frame or message could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum EmitError {
    /// The output buffer is shorter than the frame.
    #[error("buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall { need: usize, have: usize },
    /// A VRRP advert carries at most 255 addresses (8-bit count field).
    #[error("too many addresses for one VRRP advert: {count} (max 255)")]
    TooManyAddresses { count: usize },
    /// Source, destination and addresses of one advert must all be IPv4 or all IPv6.
    #[error("address family mismatch: {what} is not the family of the source address")]
    WrongFamily { what: &'static str },
    /// VRRPv2 (RFC 3768) is defined for IPv4 only.
    #[error("VRRPv2 can only be sent over IPv4")]
    V2OverIpv6,
    /// v3: 1..=4095 centiseconds; v2: whole seconds 1..=255 (100..=25500 cs, multiple of 100).
    #[error("advertisement interval {interval_cs} cs cannot be encoded in VRRP{version:?}")]
    IntervalOutOfRange {
        version: VrrpVersion,
        interval_cs: u16,
    },
    /// A parsed VRRPv2 advert used an authentication type other than 0 (none) or 1 (simple
    /// text), which [`crate::wire::vrrp::V2Auth`] cannot represent.
    #[error("VRRPv2 auth type {0} is not supported (only 0 and 1)")]
    UnsupportedAuthType(u8),
}

/// Why an Ethernet frame was not accepted as ARP or as an IPv6 neighbour advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The frame ends before the structure it must contain.
    #[error("frame truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    /// The Ethernet type is not the one this parser handles.
    #[error("ethertype {found:#06x}, expected {expected:#06x}")]
    WrongEthertype { found: u16, expected: u16 },
    /// ARP header for something other than Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4).
    #[error("unsupported ARP {field}: {value:#x}")]
    UnsupportedArp { field: &'static str, value: u16 },
    /// IPv6 header that is not version 6, not directly followed by ICMPv6, or whose payload
    /// length disagrees with the frame.
    #[error("bad IPv6 header: {reason}")]
    BadIpv6Header { reason: &'static str },
    /// ICMPv6 message that is not a neighbour advertisement (type 136, code 0).
    #[error("ICMPv6 type {icmp_type} code {code} is not a neighbour advertisement")]
    NotNeighborAdvert { icmp_type: u8, code: u8 },
    /// The ICMPv6 checksum does not verify.
    #[error("ICMPv6 checksum {found:#06x} does not verify")]
    BadChecksum { found: u16 },
    /// A neighbour-discovery option is malformed (zero length or running past the message).
    #[error("malformed neighbour discovery option at offset {offset}")]
    BadOption { offset: usize },
}

/// The first `N` bytes of `buf` as an array to write into, or
/// [`EmitError::BufferTooSmall`].
pub(crate) fn out_chunk<const N: usize>(buf: &mut [u8]) -> Result<&mut [u8; N], EmitError> {
    let have = buf.len();
    buf.first_chunk_mut::<N>()
        .ok_or(EmitError::BufferTooSmall { need: N, have })
}

/// The first `N` bytes of `frame` as an array to read from, or [`FrameError::Truncated`].
pub(crate) fn in_chunk<const N: usize>(frame: &[u8]) -> Result<&[u8; N], FrameError> {
    frame.first_chunk::<N>().ok_or(FrameError::Truncated {
        need: N,
        have: frame.len(),
    })
}

/// Sequential writer into a buffer already sized to the exact message length.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// Copies `bytes` at the current position; bytes that would not fit are dropped (cannot
    /// happen when the buffer was sized with `buffer_len`).
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
    }
}
