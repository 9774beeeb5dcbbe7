//! Wire codecs: zero-copy parsers and exact-length emitters for every frame Relevo sends or
//! receives (VRRP v2/v3 adverts, gratuitous ARP, IPv6 neighbour advertisements, the IP header
//! fields a raw socket hands us). Parsing validates and never panics; emitting writes exactly
//! the number of bytes it returns.
//!
//! [`vrrp`] adverts and drop reasons; [`arp`] gratuitous ARP; [`nd`] unsolicited neighbour
//! advertisements; [`checksum`] the internet checksum and pseudo-headers; [`ethernet`] and
//! [`ipv6`] the headers the frame codecs need; [`advert_frame`] a whole Ethernet frame around an
//! advert (virtual-MAC mode); [`error`] the shared error types.
//! [`heartbeat`] cluster heartbeat frames: HMAC-SHA256 keys with rotation, drop reasons, replays.
pub mod advert_frame;
pub mod arp;
pub mod checksum;
pub mod error;
pub mod ethernet;
pub mod heartbeat;
pub mod ipv6;
pub mod nd;
pub mod vrrp;

pub use error::{EmitError, FrameError};
pub use ethernet::MacAddr;

/// VRRP protocol version spoken by an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VrrpVersion {
    /// RFC 3768: IPv4 only, whole-second intervals, optional simple-text auth.
    V2,
    /// RFC 5798: IPv4 and IPv6, centisecond intervals.
    V3,
}

/// How the VRRPv3 checksum over IPv4 is computed (IPv6 always uses the pseudo-header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V3Ipv4Checksum {
    /// RFC 5798 as written (keepalived >= 1.3.6, FRR default): include the IPv4 pseudo-header.
    PseudoHeader,
    /// RFC 3768 style, VRRP message only (old keepalived, some vendors; RFC 9568 errata).
    NoPseudoHeader,
}
