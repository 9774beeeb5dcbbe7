//! VRRP advertisements: RFC 5798 (v3, IPv4 and IPv6) and RFC 3768 (v2, IPv4 only).
//!
//! [`parse_advert`] validates a VRRP message (the IP payload) into a zero-copy [`AdvertView`];
//! [`AdvertRepr::emit`] writes one with its checksum. [`parse_ipv4_datagram`] strips the IPv4
//! header a raw IPv4 socket delivers; [`check_ttl`] enforces TTL / hop limit 255. The v3
//! checksum over IPv4 follows the configured [`V3Ipv4Checksum`] policy; v3 over IPv6 always
//! includes the pseudo-header and v2 never does.
//!
//! Message layout (8-byte header, then the addresses, then v2 only 8 authentication bytes):
//! ```text
//!  0: version(4) type(4) | 1: VRID | 2: priority | 3: address count
//!  4..6: v3 rsvd(4) + max adver int (12 bits, centiseconds) | v2 auth type, adver int (s)
//!  6..8: checksum
//! ```
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum::{pseudo_header_ipv4, pseudo_header_ipv6, Checksum};
use super::error::{in_chunk, EmitError, Writer};
use super::ethernet::MacAddr;
use super::{V3Ipv4Checksum, VrrpVersion};

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// IPv4 multicast group of VRRP (224.0.0.18).
pub const VRRP_MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP (ff02::12).
pub const VRRP_MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL (IPv4) / hop limit (IPv6) every advert must be sent and received with.
pub const VRRP_TTL: u8 = 255;
/// Length of the fixed VRRP header.
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data after the addresses.
pub const V2_AUTH_LEN: usize = 8;
/// The address count is an 8-bit field.
pub const MAX_ADDRS: usize = 255;
/// Largest possible VRRP message (v3, 255 IPv6 addresses): a receive buffer of this size
/// always suffices.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + MAX_ADDRS * 16;
/// Largest v3 Max Adver Int (12 bits), in centiseconds.
pub const V3_MAX_INTERVAL_CS: u16 = 0x0fff;
/// The only VRRP message type.
pub const TYPE_ADVERTISEMENT: u8 = 1;

const IPV4_MIN_HEADER_LEN: usize = 20;

/// IP address family (of an advert, an instance, a socket): the one family type of the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    /// IPv4: adverts to 224.0.0.18, gratuitous ARP.
    V4,
    /// IPv6: adverts to ff02::12, unsolicited neighbour advertisements.
    V6,
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        })
    }
}

impl IpFamily {
    /// The family of `addr`.
    pub fn of(addr: IpAddr) -> IpFamily {
        match addr {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    /// Bytes per address in the advert's address list.
    pub fn addr_len(self) -> usize {
        match self {
            IpFamily::V4 => 4,
            IpFamily::V6 => 16,
        }
    }

    /// The VRRP multicast group of this family.
    pub fn vrrp_multicast(self) -> IpAddr {
        match self {
            IpFamily::V4 => IpAddr::V4(VRRP_MCAST_V4),
            IpFamily::V6 => IpAddr::V6(VRRP_MCAST_V6),
        }
    }
}

/// The RFC virtual router MAC: 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6).
pub fn virtual_mac(vrid: u8, family: IpFamily) -> MacAddr {
    let family_byte = match family {
        IpFamily::V4 => 1,
        IpFamily::V6 => 2,
    };
    [0x00, 0x00, 0x5e, 0x00, family_byte, vrid]
}

/// Why a received advert was dropped. The wire layer produces the first eight; the daemon uses
/// the last five. [`DropReason::as_str`] names counters and log fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than the header it must contain.
    Truncated,
    /// VRRP version nibble not 2 or 3.
    BadVersion,
    /// VRRP type not 1 (ADVERTISEMENT).
    BadType,
    /// Address count does not match the message length.
    BadLength,
    /// Checksum does not verify (under the configured policy for v3 over IPv4).
    BadChecksum,
    /// TTL / hop limit not 255.
    BadTtl,
    /// Malformed IPv4 header (version, IHL, total length, protocol).
    BadIpHeader,
    /// v2 over IPv6, or source / destination of different families.
    WrongFamily,
    /// No local instance has this VRID on the interface.
    VridUnknown,
    /// VRRPv2 authentication type or data differs from the configuration.
    AuthMismatch,
    /// Advertisement interval differs from the configuration (v2).
    IntervalMismatch,
    /// VRRP version differs from the configuration.
    VersionMismatch,
    /// Sender is not one of the instance's configured unicast peers.
    UnknownPeer,
    /// The advert's address list (count or addresses) differs from the configured VIPs and
    /// the sender is not the address owner (RFC 5798 §7.1).
    AddressListMismatch,
    /// An IPv6 advert whose source is not link-local (RFC 5798 §5.1.2.1).
    SourceNotLinkLocal,
}

impl DropReason {
    /// Every reason, in declaration order (for registering counters).
    pub const ALL: [DropReason; 15] = [
        DropReason::Truncated,
        DropReason::BadVersion,
        DropReason::BadType,
        DropReason::BadLength,
        DropReason::BadChecksum,
        DropReason::BadTtl,
        DropReason::BadIpHeader,
        DropReason::WrongFamily,
        DropReason::VridUnknown,
        DropReason::AuthMismatch,
        DropReason::IntervalMismatch,
        DropReason::VersionMismatch,
        DropReason::UnknownPeer,
        DropReason::AddressListMismatch,
        DropReason::SourceNotLinkLocal,
    ];

    /// Stable snake_case name, for counters and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadVersion => "bad_version",
            DropReason::BadType => "bad_type",
            DropReason::BadLength => "bad_length",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::BadTtl => "bad_ttl",
            DropReason::BadIpHeader => "bad_ip_header",
            DropReason::WrongFamily => "wrong_family",
            DropReason::VridUnknown => "vrid_unknown",
            DropReason::AuthMismatch => "auth_mismatch",
            DropReason::IntervalMismatch => "interval_mismatch",
            DropReason::VersionMismatch => "version_mismatch",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::AddressListMismatch => "address_list_mismatch",
            DropReason::SourceNotLinkLocal => "source_not_link_local",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for DropReason {}

/// Fails with [`DropReason::BadTtl`] unless `ttl` (IPv4 TTL or IPv6 hop limit) is 255.
pub fn check_ttl(ttl: u8) -> Result<(), DropReason> {
    if ttl == VRRP_TTL {
        Ok(())
    } else {
        Err(DropReason::BadTtl)
    }
}

/// The IPv4 header fields a receiver needs, and the VRRP message after the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Meta<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    /// The IP payload, exactly `total length - header length` bytes.
    pub payload: &'a [u8],
}

/// Parses an IPv4 datagram as a raw IPv4 socket delivers it (header included): checks the
/// version, IHL, total length (must fit in `buf`; bytes after it are ignored) and protocol 112.
/// The TTL is returned, not checked: call [`check_ttl`].
pub fn parse_ipv4_datagram(buf: &[u8]) -> Result<Ipv4Meta<'_>, DropReason> {
    let h = in_chunk::<IPV4_MIN_HEADER_LEN>(buf).map_err(|_| DropReason::Truncated)?;
    if h[0] >> 4 != 4 {
        return Err(DropReason::BadIpHeader);
    }
    let header_len = usize::from(h[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if header_len < IPV4_MIN_HEADER_LEN || total_len < header_len || h[9] != IPPROTO_VRRP {
        return Err(DropReason::BadIpHeader);
    }
    let payload = buf
        .get(header_len..total_len)
        .ok_or(DropReason::Truncated)?;
    Ok(Ipv4Meta {
        src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
        dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
        ttl: h[8],
        payload,
    })
}

/// VRRPv2 authentication (RFC 3768 5.3.6). Type 2 (IP AH) was removed by RFC 3768 and is not
/// representable; ignored for v3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum V2Auth {
    /// Auth type 0: eight zero bytes.
    #[default]
    None,
    /// Auth type 1: the password, zero padded to eight bytes.
    SimpleText([u8; V2_AUTH_LEN]),
}

impl V2Auth {
    /// Simple-text auth from a password as keepalived does it (`strncpy` to 8 bytes): the first
    /// eight bytes, stopping at a NUL, zero padded.
    pub fn from_password(password: &str) -> V2Auth {
        let mut data = [0u8; V2_AUTH_LEN];
        for (slot, byte) in data
            .iter_mut()
            .zip(password.bytes().take_while(|&b| b != 0))
        {
            *slot = byte;
        }
        V2Auth::SimpleText(data)
    }

    /// The Auth Type field value.
    pub fn auth_type(&self) -> u8 {
        match self {
            V2Auth::None => 0,
            V2Auth::SimpleText(_) => 1,
        }
    }

    /// The eight authentication bytes as sent.
    pub fn data(&self) -> [u8; V2_AUTH_LEN] {
        match self {
            V2Auth::None => [0; V2_AUTH_LEN],
            V2Auth::SimpleText(data) => *data,
        }
    }

    /// True when `view` is a v2 advert carrying this authentication (type, and for simple
    /// text the eight bytes; type 0 ignores the data bytes as RFC 3768 does).
    pub fn matches(&self, view: &AdvertView<'_>) -> bool {
        match (self, view.auth_type(), view.auth_data()) {
            (V2Auth::None, Some(0), _) => true,
            (V2Auth::SimpleText(ours), Some(1), Some(theirs)) => ours == theirs,
            _ => false,
        }
    }
}

/// A validated VRRP advertisement borrowed from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertView<'a> {
    msg: &'a [u8],
    header: &'a [u8; HEADER_LEN],
    addrs: &'a [u8],
    auth: Option<&'a [u8; V2_AUTH_LEN]>,
    family: IpFamily,
}

/// Validates a VRRP message (`msg` = IP payload only) received from `src` for `dst`:
/// length, version (2 or 3; 2 over IPv4 only), type 1, address count matching the length
/// exactly, and checksum (v3 over IPv4 per `v3_ipv4_checksum`). Does not check TTL, VRID,
/// auth or interval against any configuration.
pub fn parse_advert<'a>(
    msg: &'a [u8],
    src: IpAddr,
    dst: IpAddr,
    v3_ipv4_checksum: V3Ipv4Checksum,
) -> Result<AdvertView<'a>, DropReason> {
    let header = in_chunk::<HEADER_LEN>(msg).map_err(|_| DropReason::Truncated)?;
    let version = match header[0] >> 4 {
        2 => VrrpVersion::V2,
        3 => VrrpVersion::V3,
        _ => return Err(DropReason::BadVersion),
    };
    if header[0] & 0x0f != TYPE_ADVERTISEMENT {
        return Err(DropReason::BadType);
    }
    let family = IpFamily::of(src);
    if IpFamily::of(dst) != family || (version == VrrpVersion::V2 && family == IpFamily::V6) {
        return Err(DropReason::WrongFamily);
    }
    let addrs_len = usize::from(header[3]) * family.addr_len();
    let auth_len = match version {
        VrrpVersion::V2 => V2_AUTH_LEN,
        VrrpVersion::V3 => 0,
    };
    if msg.len() != HEADER_LEN + addrs_len + auth_len {
        return Err(DropReason::BadLength);
    }
    let (addrs, auth) = msg
        .get(HEADER_LEN..)
        .ok_or(DropReason::BadLength)?
        .split_at_checked(addrs_len)
        .ok_or(DropReason::BadLength)?;
    if !message_sum(version, src, dst, v3_ipv4_checksum, msg).is_valid() {
        return Err(DropReason::BadChecksum);
    }
    Ok(AdvertView {
        msg,
        header,
        addrs,
        auth: auth.first_chunk::<V2_AUTH_LEN>(),
        family,
    })
}

/// One's-complement sum of `msg` plus, where the version/family/policy calls for it, the
/// pseudo-header. `msg` must hold the checksum field (zero when computing, on-wire when
/// verifying).
fn message_sum(
    version: VrrpVersion,
    src: IpAddr,
    dst: IpAddr,
    policy: V3Ipv4Checksum,
    msg: &[u8],
) -> Checksum {
    // A VRRP message is at most MAX_MESSAGE_LEN (4088) bytes; saturate rather than wrap.
    let len16 = u16::try_from(msg.len()).unwrap_or(u16::MAX);
    let start = match (version, src, dst, policy) {
        (VrrpVersion::V3, IpAddr::V4(s), IpAddr::V4(d), V3Ipv4Checksum::PseudoHeader) => {
            pseudo_header_ipv4(s, d, IPPROTO_VRRP, len16)
        }
        (VrrpVersion::V3, IpAddr::V6(s), IpAddr::V6(d), _) => {
            pseudo_header_ipv6(s, d, IPPROTO_VRRP, u32::from(len16))
        }
        _ => Checksum::new(),
    };
    start.add_bytes(msg)
}

impl<'a> AdvertView<'a> {
    /// The whole VRRP message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.msg
    }

    /// VRRP version.
    pub fn version(&self) -> VrrpVersion {
        if self.header[0] >> 4 == 2 {
            VrrpVersion::V2
        } else {
            VrrpVersion::V3
        }
    }

    /// Address family (that of the source address it was parsed with).
    pub fn family(&self) -> IpFamily {
        self.family
    }

    /// Virtual router ID.
    pub fn vrid(&self) -> u8 {
        self.header[1]
    }

    /// Priority (0 = master is leaving, 255 = address owner).
    pub fn priority(&self) -> u8 {
        self.header[2]
    }

    /// Number of addresses in the list.
    pub fn addr_count(&self) -> u8 {
        self.header[3]
    }

    /// Advertisement interval in centiseconds: v3 Max Adver Int (12 bits, reserved nibble
    /// ignored); v2 Adver Int seconds * 100. May be 0 on a hostile or broken sender.
    pub fn interval_cs(&self) -> u16 {
        match self.version() {
            VrrpVersion::V3 => u16::from_be_bytes([self.header[4] & 0x0f, self.header[5]]),
            VrrpVersion::V2 => u16::from(self.header[5]) * 100,
        }
    }

    /// v2 Auth Type field; `None` for v3.
    pub fn auth_type(&self) -> Option<u8> {
        self.auth.map(|_| self.header[4])
    }

    /// v2 authentication data; `None` for v3.
    pub fn auth_data(&self) -> Option<&'a [u8; V2_AUTH_LEN]> {
        self.auth
    }

    /// v2 authentication as a [`V2Auth`]; `None` for v3 or an auth type other than 0 or 1.
    pub fn v2_auth(&self) -> Option<V2Auth> {
        match (self.auth_type(), self.auth) {
            (Some(0), _) => Some(V2Auth::None),
            (Some(1), Some(data)) => Some(V2Auth::SimpleText(*data)),
            _ => None,
        }
    }

    /// The checksum as found on the wire.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.header[6], self.header[7]])
    }

    /// The virtual addresses, decoded without allocating.
    pub fn addrs(&self) -> AddrIter<'a> {
        AddrIter {
            chunks: self.addrs.chunks_exact(self.family.addr_len()),
            family: self.family,
        }
    }
}

/// Iterator over the address list of an [`AdvertView`].
#[derive(Debug, Clone)]
pub struct AddrIter<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
    family: IpFamily,
}

impl Iterator for AddrIter<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        let chunk = self.chunks.next()?;
        match self.family {
            IpFamily::V4 => chunk.first_chunk::<4>().map(|b| IpAddr::from(*b)),
            IpFamily::V6 => chunk.first_chunk::<16>().map(|b| IpAddr::from(*b)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for AddrIter<'_> {}

/// The content of an advert to send (or of a parsed one, see [`AdvertRepr::from_view`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertRepr<'a> {
    pub version: VrrpVersion,
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds: v3 1..=4095; v2 a whole number of seconds 1..=255 (100..=25500).
    pub interval_cs: u16,
    /// v2 only; ignored for v3.
    pub auth: V2Auth,
    /// Virtual addresses, all of the family of the source address.
    pub addrs: &'a [IpAddr],
}

impl<'a> AdvertRepr<'a> {
    /// Rebuilds the content of a parsed advert, decoding its addresses into `storage` (cleared
    /// first, so one buffer can be reused). Fails for a v2 auth type [`V2Auth`] cannot hold.
    pub fn from_view(
        view: &AdvertView<'_>,
        storage: &'a mut Vec<IpAddr>,
    ) -> Result<AdvertRepr<'a>, EmitError> {
        let auth = match view.auth_type() {
            None => V2Auth::None,
            Some(auth_type) => view
                .v2_auth()
                .ok_or(EmitError::UnsupportedAuthType(auth_type))?,
        };
        storage.clear();
        storage.extend(view.addrs());
        Ok(AdvertRepr {
            version: view.version(),
            vrid: view.vrid(),
            priority: view.priority(),
            interval_cs: view.interval_cs(),
            auth,
            addrs: storage.as_slice(),
        })
    }

    /// Exact number of bytes [`AdvertRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        let addrs: usize = self.addrs.iter().map(|a| IpFamily::of(*a).addr_len()).sum();
        let auth = match self.version {
            VrrpVersion::V2 => V2_AUTH_LEN,
            VrrpVersion::V3 => 0,
        };
        HEADER_LEN + addrs + auth
    }

    /// Writes the advert (checksum included) for an IP packet from `src` to `dst` into the
    /// start of `buf` and returns [`AdvertRepr::buffer_len`].
    pub fn emit(
        &self,
        src: IpAddr,
        dst: IpAddr,
        v3_ipv4_checksum: V3Ipv4Checksum,
        buf: &mut [u8],
    ) -> Result<usize, EmitError> {
        self.check_families(src, dst)?;
        let count = u8::try_from(self.addrs.len()).map_err(|_| EmitError::TooManyAddresses {
            count: self.addrs.len(),
        })?;
        let interval_field = self.interval_field()?;
        let len = self.buffer_len();
        let have = buf.len();
        let msg = buf
            .get_mut(..len)
            .ok_or(EmitError::BufferTooSmall { need: len, have })?;
        let version_nibble = match self.version {
            VrrpVersion::V2 => 2,
            VrrpVersion::V3 => 3,
        };
        let interval = interval_field.to_be_bytes();
        let header = [
            (version_nibble << 4) | TYPE_ADVERTISEMENT,
            self.vrid,
            self.priority,
            count,
            interval[0],
            interval[1],
            0,
            0,
        ];
        let mut writer = Writer::new(msg);
        writer.put(&header);
        for addr in self.addrs {
            match addr {
                IpAddr::V4(a) => writer.put(&a.octets()),
                IpAddr::V6(a) => writer.put(&a.octets()),
            }
        }
        if self.version == VrrpVersion::V2 {
            writer.put(&self.auth.data());
        }
        let csum = message_sum(self.version, src, dst, v3_ipv4_checksum, msg).finish();
        msg[6..8].copy_from_slice(&csum.to_be_bytes());
        Ok(len)
    }

    /// The advert's family is that of `src`; `dst` and every address must share it.
    fn check_families(&self, src: IpAddr, dst: IpAddr) -> Result<(), EmitError> {
        let family = IpFamily::of(src);
        if self.version == VrrpVersion::V2 && family == IpFamily::V6 {
            return Err(EmitError::V2OverIpv6);
        }
        if IpFamily::of(dst) != family {
            return Err(EmitError::WrongFamily {
                what: "destination address",
            });
        }
        if self.addrs.iter().any(|a| IpFamily::of(*a) != family) {
            return Err(EmitError::WrongFamily {
                what: "a virtual address",
            });
        }
        Ok(())
    }

    /// Bytes 4..6 of the header: v3 Max Adver Int; v2 Auth Type + Adver Int (seconds).
    fn interval_field(&self) -> Result<u16, EmitError> {
        let out_of_range = EmitError::IntervalOutOfRange {
            version: self.version,
            interval_cs: self.interval_cs,
        };
        match self.version {
            VrrpVersion::V3 => {
                if (1..=V3_MAX_INTERVAL_CS).contains(&self.interval_cs) {
                    Ok(self.interval_cs)
                } else {
                    Err(out_of_range)
                }
            }
            VrrpVersion::V2 => {
                let seconds = self.interval_cs / 100;
                if self.interval_cs % 100 != 0 || seconds == 0 {
                    return Err(out_of_range);
                }
                let seconds = u8::try_from(seconds).map_err(|_| out_of_range)?;
                Ok(u16::from_be_bytes([self.auth.auth_type(), seconds]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reason_names_are_unique_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
        assert_eq!(DropReason::BadTtl.to_string(), "bad_ttl");
    }

    #[test]
    fn ttl_must_be_255() {
        assert_eq!(check_ttl(255), Ok(()));
        assert_eq!(check_ttl(254), Err(DropReason::BadTtl));
        assert_eq!(check_ttl(0), Err(DropReason::BadTtl));
    }

    #[test]
    fn password_is_truncated_and_padded_like_keepalived() {
        assert_eq!(
            V2Auth::from_password("iapass"),
            V2Auth::SimpleText(*b"iapass\0\0")
        );
        assert_eq!(
            V2Auth::from_password("longer-than-8"),
            V2Auth::SimpleText(*b"longer-t")
        );
        assert_eq!(
            V2Auth::from_password("ab\0cd"),
            V2Auth::SimpleText(*b"ab\0\0\0\0\0\0")
        );
    }

    #[test]
    fn virtual_macs() {
        assert_eq!(virtual_mac(55, IpFamily::V4), [0, 0, 0x5e, 0, 1, 0x37]);
        assert_eq!(virtual_mac(60, IpFamily::V6), [0, 0, 0x5e, 0, 2, 0x3c]);
    }
}
