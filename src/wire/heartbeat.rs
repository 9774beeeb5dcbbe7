//! Cluster heartbeat frames (version 1, documented in `man/relevo-heartbeat.7`): the layout,
//! its HMAC-SHA256 authentication with a key ring of one or two keys (rotation), and the drop
//! reasons a receiver counts.
//!
//! [`HeartbeatView::parse`] validates a frame without allocating and borrows it;
//! [`parse_heartbeat`] does the same and returns an owned [`HeartbeatRepr`];
//! [`HeartbeatRepr::emit`] writes one, tag included. The tag is verified before any variable
//! field is interpreted.
//!
//! The wire layer checks only what one frame and the key ring can tell. The checks that need
//! configuration or memory belong to the engine's membership layer, which counts them with the
//! same [`HeartbeatDrop`]: another cluster's id ([`HeartbeatDrop::WrongCluster`]), a node id
//! outside the cluster's node list ([`HeartbeatDrop::UnknownNode`]) and replays
//! ([`HeartbeatDrop::Replay`], with one [`ReplayWindow`] per sender and link).
//!
//! Layout, integers big-endian (36-byte header, the entries, the 32-byte tag):
//! ```text
//!  0: magic "RLVH" | 4: version 1 | 5: cluster id | 6: node id | 7: key id
//!  8: incarnation u64 | 16: sequence u64 | 24: group epoch u64
//! 32: flags (bit 0 leaving) | 33: peer count | 34: group count | 35: reserved
//! 36: peer count x { node id u8, links u8, fresh links u8 }  then  group count x { group id u16, state u8, 0 }
//!     then the HMAC-SHA256 tag over every byte before it
//! ```
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use super::error::Writer;

type HmacSha256 = Hmac<Sha256>;

/// First four bytes of every heartbeat.
pub const MAGIC: [u8; 4] = *b"RLVH";
/// The frame version this module reads and writes.
pub const VERSION: u8 = 1;
/// Length of the fixed header before the peer entries.
pub const HEADER_LEN: usize = 36;
/// Length of one peer entry (node id, links bitmask, fresh links bitmask).
pub const PEER_ENTRY_LEN: usize = 3;
/// Length of one group entry (group id, state, reserved).
pub const GROUP_ENTRY_LEN: usize = 4;
/// Length of the HMAC-SHA256 tag that ends every frame.
pub const TAG_LEN: usize = 32;
/// Most peers one frame reports.
pub const MAX_PEERS: usize = 32;
/// Most groups one frame reports.
pub const MAX_GROUPS: usize = 64;
/// Most heartbeat links (the width of the links bitmask).
pub const MAX_LINKS: usize = 8;
/// Shortest valid frame: no peers, no groups.
pub const MIN_FRAME_LEN: usize = HEADER_LEN + TAG_LEN;
/// Longest valid frame: a receive buffer of this size always suffices.
pub const MAX_FRAME_LEN: usize =
    HEADER_LEN + MAX_PEERS * PEER_ENTRY_LEN + MAX_GROUPS * GROUP_ENTRY_LEN + TAG_LEN;
/// Shortest accepted secret, in bytes.
pub const MIN_SECRET_LEN: usize = 16;
/// Most keys in a [`KeyRing`]: the current one and, during a rotation, one more.
pub const MAX_KEYS: usize = 2;
/// Default UDP port of the heartbeat (unicast to every peer on every link).
pub const DEFAULT_PORT: u16 = 694;

const FLAG_LEAVING: u8 = 0x01;

/// A group's id on the wire: FNV-1a of its name folded to 16 bits, the same on every node
/// whatever the order of `[[group]]` tables. `relevo check` refuses two names with one id.
pub fn group_wire_id(name: &str) -> u16 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    ((hash >> 16) ^ (hash & 0xffff)) as u16
}

/// Why a received heartbeat was dropped. The wire layer produces the first seven; the
/// membership layer the last three. [`HeartbeatDrop::as_str`] names counters and log fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeartbeatDrop {
    /// Shorter than the header and tag, or than its counts say.
    Truncated,
    /// Does not start with "RLVH".
    BadMagic,
    /// A frame version other than 1.
    UnsupportedVersion,
    /// A count above its limit, or bytes after the tag.
    BadLength,
    /// Signed with a key id the key ring does not hold.
    UnknownKey,
    /// The HMAC-SHA256 tag does not verify.
    BadTag,
    /// An authenticated field with an invalid value: a zero cluster or node id, a group state
    /// above 4.
    BadField,
    /// Another cluster's id (membership layer).
    WrongCluster,
    /// A node id that is not in the cluster's node list (membership layer).
    UnknownNode,
    /// An old incarnation, or a sequence not above the last one of the same incarnation
    /// (membership layer, see [`ReplayWindow`]).
    Replay,
}

impl HeartbeatDrop {
    /// Every reason, in declaration order (for registering counters).
    pub const ALL: [HeartbeatDrop; 10] = [
        HeartbeatDrop::Truncated,
        HeartbeatDrop::BadMagic,
        HeartbeatDrop::UnsupportedVersion,
        HeartbeatDrop::BadLength,
        HeartbeatDrop::UnknownKey,
        HeartbeatDrop::BadTag,
        HeartbeatDrop::BadField,
        HeartbeatDrop::WrongCluster,
        HeartbeatDrop::UnknownNode,
        HeartbeatDrop::Replay,
    ];

    /// Stable snake_case name, for counters and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            HeartbeatDrop::Truncated => "truncated",
            HeartbeatDrop::BadMagic => "bad_magic",
            HeartbeatDrop::UnsupportedVersion => "unsupported_version",
            HeartbeatDrop::BadLength => "bad_length",
            HeartbeatDrop::UnknownKey => "unknown_key",
            HeartbeatDrop::BadTag => "bad_tag",
            HeartbeatDrop::BadField => "bad_field",
            HeartbeatDrop::WrongCluster => "wrong_cluster",
            HeartbeatDrop::UnknownNode => "unknown_node",
            HeartbeatDrop::Replay => "replay",
        }
    }
}

impl fmt::Display for HeartbeatDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for HeartbeatDrop {}

/// Why a heartbeat could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HeartbeatEmitError {
    /// The output buffer is shorter than the frame.
    #[error("buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall { need: usize, have: usize },
    /// More than [`MAX_PEERS`] peer entries.
    #[error("too many peers for one heartbeat: {count} (max 32)")]
    TooManyPeers { count: usize },
    /// More than [`MAX_GROUPS`] group entries.
    #[error("too many groups for one heartbeat: {count} (max 64)")]
    TooManyGroups { count: usize },
    /// A cluster or node id of 0 (they are 1..=255).
    #[error("{field} must be 1..=255, not 0")]
    ZeroId { field: &'static str },
}

/// Why a key or a key ring was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KeyError {
    /// Key ids are 1..=255.
    #[error("key id must be 1..=255, not 0")]
    ZeroId,
    /// A secret shorter than [`MIN_SECRET_LEN`] bytes.
    #[error("key {id}: secret of {len} bytes, at least 16 needed")]
    SecretTooShort { id: u8, len: usize },
    /// A key ring needs one key.
    #[error("no key")]
    NoKey,
    /// A key ring holds at most [`MAX_KEYS`] keys.
    #[error("{count} keys, at most 2 (the current one and one during a rotation)")]
    TooManyKeys { count: usize },
    /// Two keys of a ring with the same id.
    #[error("key id {id} appears twice")]
    DuplicateId { id: u8 },
}

/// One HMAC-SHA256 key with its id. Holds the keyed MAC state, not the secret bytes, and
/// never prints either.
#[derive(Clone)]
pub struct HeartbeatKey {
    id: u8,
    mac: HmacSha256,
}

impl HeartbeatKey {
    /// A key of id 1..=255 with a secret of at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(id: u8, secret: &[u8]) -> Result<HeartbeatKey, KeyError> {
        if id == 0 {
            return Err(KeyError::ZeroId);
        }
        let too_short = KeyError::SecretTooShort {
            id,
            len: secret.len(),
        };
        if secret.len() < MIN_SECRET_LEN {
            return Err(too_short);
        }
        // HMAC takes keys of any length; the error case cannot happen.
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| too_short)?;
        Ok(HeartbeatKey { id, mac })
    }

    /// The key id carried in the frames this key signs.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// The tag of `signed`.
    fn tag(&self, signed: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac.finalize().into_bytes().into()
    }

    /// True when `tag` is the tag of `signed` (constant-time comparison).
    fn verifies(&self, signed: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac.verify_slice(tag).is_ok()
    }
}

impl fmt::Debug for HeartbeatKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeartbeatKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The keys a node accepts heartbeats with: one, or two during a rotation. The first signs.
#[derive(Debug, Clone)]
pub struct KeyRing {
    sign: HeartbeatKey,
    other: Option<HeartbeatKey>,
}

impl KeyRing {
    /// A ring of 1..=2 keys with distinct ids; the first one signs.
    pub fn new(keys: Vec<HeartbeatKey>) -> Result<KeyRing, KeyError> {
        let count = keys.len();
        let mut keys = keys.into_iter();
        let sign = keys.next().ok_or(KeyError::NoKey)?;
        let other = keys.next();
        if keys.next().is_some() {
            return Err(KeyError::TooManyKeys { count });
        }
        match other {
            Some(other) if other.id == sign.id => Err(KeyError::DuplicateId { id: sign.id }),
            other => Ok(KeyRing { sign, other }),
        }
    }

    /// A ring of one key.
    pub fn single(key: HeartbeatKey) -> KeyRing {
        KeyRing {
            sign: key,
            other: None,
        }
    }

    /// The key that signs outgoing frames (the first).
    pub fn sign_key(&self) -> &HeartbeatKey {
        &self.sign
    }

    /// The keys, signing key first.
    pub fn keys(&self) -> impl Iterator<Item = &HeartbeatKey> + '_ {
        std::iter::once(&self.sign).chain(self.other.as_ref())
    }

    /// The key of id `id`, if the ring holds it.
    pub fn key(&self, id: u8) -> Option<&HeartbeatKey> {
        self.keys().find(|k| k.id == id)
    }

    /// The ids of the keys, signing key first.
    pub fn ids(&self) -> impl Iterator<Item = u8> + '_ {
        self.keys().map(|k| k.id)
    }

    /// Checks `tag` over `signed` with the key `key_id`: [`HeartbeatDrop::UnknownKey`] when the
    /// ring has no such key, [`HeartbeatDrop::BadTag`] when the tag does not verify.
    pub fn verify(&self, key_id: u8, signed: &[u8], tag: &[u8]) -> Result<(), HeartbeatDrop> {
        let key = self.key(key_id).ok_or(HeartbeatDrop::UnknownKey)?;
        if key.verifies(signed, tag) {
            Ok(())
        } else {
            Err(HeartbeatDrop::BadTag)
        }
    }
}

/// State of a resource group as its sender reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GroupWireState {
    Released = 0,
    Acquiring = 1,
    Held = 2,
    Releasing = 3,
    Failed = 4,
}

impl GroupWireState {
    /// The state byte on the wire.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Its name in logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupWireState::Released => "released",
            GroupWireState::Acquiring => "acquiring",
            GroupWireState::Held => "held",
            GroupWireState::Releasing => "releasing",
            GroupWireState::Failed => "failed",
        }
    }

    /// The state of a wire byte; `None` above 4.
    pub fn from_u8(byte: u8) -> Option<GroupWireState> {
        match byte {
            0 => Some(GroupWireState::Released),
            1 => Some(GroupWireState::Acquiring),
            2 => Some(GroupWireState::Held),
            3 => Some(GroupWireState::Releasing),
            4 => Some(GroupWireState::Failed),
            _ => None,
        }
    }
}

/// How the sender hears one peer: bit k of `links` set = heard on link k recently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerView {
    /// The peer's node id (1..=255).
    pub node_id: u8,
    /// Bitmask of the links on which the sender hears the peer (not down).
    pub links: u8,
    /// Bitmask of the links on which the sender heard the peer within its lease (`deadtime`
    /// less two keepalives, at least `warntime`): the peer's lease counts this sender only
    /// while it is not zero.
    pub fresh: u8,
}

/// One group the sender reports, with its state there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupState {
    pub group_id: u16,
    pub state: GroupWireState,
}

/// The fixed header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    magic: [u8; 4],
    version: u8,
    cluster_id: u8,
    node_id: u8,
    key_id: u8,
    incarnation: u64,
    sequence: u64,
    group_epoch: u64,
    flags: u8,
    peer_count: u8,
    group_count: u8,
}

impl Header {
    fn decode(fixed: &[u8; HEADER_LEN]) -> Option<Header> {
        let mut r = Reader(fixed);
        let header = Header {
            magic: *r.take::<4>()?,
            version: r.u8()?,
            cluster_id: r.u8()?,
            node_id: r.u8()?,
            key_id: r.u8()?,
            incarnation: r.u64()?,
            sequence: r.u64()?,
            group_epoch: r.u64()?,
            flags: r.u8()?,
            peer_count: r.u8()?,
            group_count: r.u8()?,
        };
        Some(header)
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w = Writer::new(&mut out);
        w.put(&self.magic);
        w.put(&[self.version, self.cluster_id, self.node_id, self.key_id]);
        w.put(&self.incarnation.to_be_bytes());
        w.put(&self.sequence.to_be_bytes());
        w.put(&self.group_epoch.to_be_bytes());
        w.put(&[self.flags, self.peer_count, self.group_count, 0]);
        out
    }

    /// Total frame length the counts call for.
    fn frame_len(&self) -> usize {
        frame_len(usize::from(self.peer_count), usize::from(self.group_count))
    }
}

fn frame_len(peers: usize, groups: usize) -> usize {
    HEADER_LEN + peers * PEER_ENTRY_LEN + groups * GROUP_ENTRY_LEN + TAG_LEN
}

/// A validated, authenticated heartbeat borrowed from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatView<'a> {
    frame: &'a [u8],
    header: Header,
    peers: &'a [u8],
    groups: &'a [u8],
}

impl<'a> HeartbeatView<'a> {
    /// Validates `frame` (exactly one heartbeat, as a UDP payload) against `keys`: length,
    /// magic, version, counts and exact length, key id, tag, then the authenticated fields.
    /// Does not check the cluster id, the node id or the sequence against anything.
    pub fn parse(frame: &'a [u8], keys: &KeyRing) -> Result<HeartbeatView<'a>, HeartbeatDrop> {
        let header = check_header(frame)?;
        let (signed, tag) = frame
            .split_last_chunk::<TAG_LEN>()
            .ok_or(HeartbeatDrop::Truncated)?;
        keys.verify(header.key_id, signed, tag)?;
        let entries = signed.get(HEADER_LEN..).ok_or(HeartbeatDrop::Truncated)?;
        let (peers, groups) = entries
            .split_at_checked(usize::from(header.peer_count) * PEER_ENTRY_LEN)
            .ok_or(HeartbeatDrop::Truncated)?;
        let view = HeartbeatView {
            frame,
            header,
            peers,
            groups,
        };
        view.check_fields()?;
        Ok(view)
    }

    /// Zero ids and unknown group states, looked at only once the tag has verified.
    fn check_fields(&self) -> Result<(), HeartbeatDrop> {
        let ids_ok = self.header.cluster_id != 0
            && self.header.node_id != 0
            && self.peers().all(|p| p.node_id != 0);
        // Not through `groups()`, which stops at the first unknown state.
        let states_ok = self.groups.chunks_exact(GROUP_ENTRY_LEN).all(|g| {
            g.get(2)
                .copied()
                .and_then(GroupWireState::from_u8)
                .is_some()
        });
        if ids_ok && states_ok {
            Ok(())
        } else {
            Err(HeartbeatDrop::BadField)
        }
    }

    /// The whole frame, tag included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.frame
    }

    pub fn cluster_id(&self) -> u8 {
        self.header.cluster_id
    }

    /// The sender's node id: its index in the cluster node list plus one.
    pub fn node_id(&self) -> u8 {
        self.header.node_id
    }

    /// The id of the key that signed the frame.
    pub fn key_id(&self) -> u8 {
        self.header.key_id
    }

    /// New at every start of the sender, higher than the previous one.
    pub fn incarnation(&self) -> u64 {
        self.header.incarnation
    }

    pub fn sequence(&self) -> u64 {
        self.header.sequence
    }

    pub fn group_epoch(&self) -> u64 {
        self.header.group_epoch
    }

    /// The sender is stopping gracefully.
    pub fn leaving(&self) -> bool {
        self.header.flags & FLAG_LEAVING != 0
    }

    /// The peers the sender reports, without allocating.
    pub fn peers(&self) -> PeerIter<'a> {
        PeerIter(self.peers.chunks_exact(PEER_ENTRY_LEN))
    }

    /// The groups the sender reports, without allocating.
    pub fn groups(&self) -> GroupIter<'a> {
        GroupIter(self.groups.chunks_exact(GROUP_ENTRY_LEN))
    }
}

/// The checks before the tag: length, magic, version, counts, exact length.
fn check_header(frame: &[u8]) -> Result<Header, HeartbeatDrop> {
    if frame.len() < MIN_FRAME_LEN {
        return Err(HeartbeatDrop::Truncated);
    }
    let header = frame
        .first_chunk::<HEADER_LEN>()
        .and_then(Header::decode)
        .ok_or(HeartbeatDrop::Truncated)?;
    if header.magic != MAGIC {
        return Err(HeartbeatDrop::BadMagic);
    }
    if header.version != VERSION {
        return Err(HeartbeatDrop::UnsupportedVersion);
    }
    if usize::from(header.peer_count) > MAX_PEERS || usize::from(header.group_count) > MAX_GROUPS {
        return Err(HeartbeatDrop::BadLength);
    }
    match frame.len().cmp(&header.frame_len()) {
        std::cmp::Ordering::Less => Err(HeartbeatDrop::Truncated),
        std::cmp::Ordering::Greater => Err(HeartbeatDrop::BadLength),
        std::cmp::Ordering::Equal => Ok(header),
    }
}

/// Iterator over the peer entries of a [`HeartbeatView`].
#[derive(Debug, Clone)]
pub struct PeerIter<'a>(std::slice::ChunksExact<'a, u8>);

impl Iterator for PeerIter<'_> {
    type Item = PeerView;

    fn next(&mut self) -> Option<PeerView> {
        let [node_id, links, fresh] = *self.0.next()?.first_chunk::<PEER_ENTRY_LEN>()?;
        Some(PeerView {
            node_id,
            links,
            fresh,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for PeerIter<'_> {}

/// Iterator over the group entries of a [`HeartbeatView`] (states already validated).
#[derive(Debug, Clone)]
pub struct GroupIter<'a>(std::slice::ChunksExact<'a, u8>);

impl Iterator for GroupIter<'_> {
    type Item = GroupState;

    fn next(&mut self) -> Option<GroupState> {
        let [hi, lo, state, _] = *self.0.next()?.first_chunk::<GROUP_ENTRY_LEN>()?;
        Some(GroupState {
            group_id: u16::from_be_bytes([hi, lo]),
            state: GroupWireState::from_u8(state)?,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for GroupIter<'_> {}

/// Validates and authenticates `frame` like [`HeartbeatView::parse`] and returns its content.
pub fn parse_heartbeat(frame: &[u8], keys: &KeyRing) -> Result<HeartbeatRepr, HeartbeatDrop> {
    HeartbeatView::parse(frame, keys).map(|view| HeartbeatRepr::from_view(&view))
}

/// The content of a heartbeat to send, or of a parsed one. The key id is not part of it: the
/// signing key supplies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeartbeatRepr {
    /// 1..=255.
    pub cluster_id: u8,
    /// The sender's index in the cluster node list plus one (1..=255).
    pub node_id: u8,
    pub incarnation: u64,
    pub sequence: u64,
    pub group_epoch: u64,
    /// Sent on a graceful stop.
    pub leaving: bool,
    /// At most [`MAX_PEERS`].
    pub peers: Vec<PeerView>,
    /// At most [`MAX_GROUPS`].
    pub groups: Vec<GroupState>,
}

impl HeartbeatRepr {
    /// The content of a parsed frame.
    pub fn from_view(view: &HeartbeatView<'_>) -> HeartbeatRepr {
        HeartbeatRepr {
            cluster_id: view.cluster_id(),
            node_id: view.node_id(),
            incarnation: view.incarnation(),
            sequence: view.sequence(),
            group_epoch: view.group_epoch(),
            leaving: view.leaving(),
            peers: view.peers().collect(),
            groups: view.groups().collect(),
        }
    }

    /// Exact number of bytes [`HeartbeatRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        frame_len(self.peers.len(), self.groups.len())
    }

    /// Writes the frame signed with `key` into the start of `buf` and returns
    /// [`HeartbeatRepr::buffer_len`].
    pub fn emit(&self, key: &HeartbeatKey, buf: &mut [u8]) -> Result<usize, HeartbeatEmitError> {
        let header = self.header(key.id)?;
        let len = self.buffer_len();
        let have = buf.len();
        let frame = buf
            .get_mut(..len)
            .ok_or(HeartbeatEmitError::BufferTooSmall { need: len, have })?;
        let (signed, tag) = frame
            .split_last_chunk_mut::<TAG_LEN>()
            .ok_or(HeartbeatEmitError::BufferTooSmall { need: len, have })?;
        let mut w = Writer::new(signed);
        w.put(&header.encode());
        for peer in &self.peers {
            w.put(&[peer.node_id, peer.links, peer.fresh]);
        }
        for group in &self.groups {
            let [hi, lo] = group.group_id.to_be_bytes();
            w.put(&[hi, lo, group.state.as_u8(), 0]);
        }
        *tag = key.tag(signed);
        Ok(len)
    }

    /// The header to send, after checking ids and counts.
    fn header(&self, key_id: u8) -> Result<Header, HeartbeatEmitError> {
        let zero = |field| Err(HeartbeatEmitError::ZeroId { field });
        if self.cluster_id == 0 {
            return zero("cluster id");
        }
        if self.node_id == 0 {
            return zero("node id");
        }
        if self.peers.iter().any(|p| p.node_id == 0) {
            return zero("peer node id");
        }
        let peer_count =
            count_u8(self.peers.len(), MAX_PEERS).ok_or(HeartbeatEmitError::TooManyPeers {
                count: self.peers.len(),
            })?;
        let group_count =
            count_u8(self.groups.len(), MAX_GROUPS).ok_or(HeartbeatEmitError::TooManyGroups {
                count: self.groups.len(),
            })?;
        Ok(Header {
            magic: MAGIC,
            version: VERSION,
            cluster_id: self.cluster_id,
            node_id: self.node_id,
            key_id,
            incarnation: self.incarnation,
            sequence: self.sequence,
            group_epoch: self.group_epoch,
            flags: if self.leaving { FLAG_LEAVING } else { 0 },
            peer_count,
            group_count,
        })
    }
}

/// `count` as a count byte, if it is at most `max`.
fn count_u8(count: usize, max: usize) -> Option<u8> {
    if count <= max {
        u8::try_from(count).ok()
    } else {
        None
    }
}

/// A frame refused by [`ReplayWindow::accept`], with the last accepted position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("replay: incarnation {incarnation} sequence {sequence} already seen")]
pub struct Replay {
    /// Incarnation of the last accepted frame.
    pub incarnation: u64,
    /// Sequence of the last accepted frame.
    pub sequence: u64,
}

impl From<Replay> for HeartbeatDrop {
    fn from(_: Replay) -> HeartbeatDrop {
        HeartbeatDrop::Replay
    }
}

/// Replay protection for one sender on one link: the incarnation and sequence of its last
/// accepted frame there. Feed it only authenticated frames.
///
/// Keep one per (sender, link): a sender puts the same sequence number in the copies of one
/// round it sends on each link, so a single window per sender would drop every copy but the
/// first. Never reset a window (not even when the peer is declared dead): a captured history
/// could then be replayed to keep a dead peer alive. The sender's incarnation must therefore
/// grow across its restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayWindow {
    last: Option<(u64, u64)>,
}

impl ReplayWindow {
    /// A window that has seen nothing: the first frame is accepted.
    pub fn new() -> ReplayWindow {
        ReplayWindow::default()
    }

    /// Incarnation and sequence of the last accepted frame.
    pub fn last(&self) -> Option<(u64, u64)> {
        self.last
    }

    /// Accepts (and remembers) a higher incarnation with any sequence, or the same incarnation
    /// with a strictly higher sequence; anything else is a [`Replay`].
    pub fn accept(&mut self, incarnation: u64, sequence: u64) -> Result<(), Replay> {
        if let Some((last_inc, last_seq)) = self.last {
            if (incarnation, sequence) <= (last_inc, last_seq) {
                return Err(Replay {
                    incarnation: last_inc,
                    sequence: last_seq,
                });
            }
        }
        self.last = Some((incarnation, sequence));
        Ok(())
    }
}

/// Reads fixed-size fields off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<&'a [u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| *b)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(|b| u64::from_be_bytes(*b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAN_PAGE: &str = include_str!("../../man/relevo-heartbeat.7");

    fn key(id: u8) -> HeartbeatKey {
        HeartbeatKey::new(id, &[id; 16]).unwrap()
    }

    fn repr() -> HeartbeatRepr {
        HeartbeatRepr {
            cluster_id: 3,
            node_id: 1,
            incarnation: 7,
            sequence: 9,
            group_epoch: 2,
            leaving: false,
            peers: vec![PeerView {
                node_id: 2,
                links: 0b11,
                fresh: 0b01,
            }],
            groups: vec![GroupState {
                group_id: 1,
                state: GroupWireState::Held,
            }],
        }
    }

    fn emit(repr: &HeartbeatRepr, key: &HeartbeatKey) -> Vec<u8> {
        let mut buf = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(key, &mut buf), Ok(buf.len()));
        buf
    }

    #[test]
    fn drop_names_are_unique_snake_case() {
        let mut names: Vec<_> = HeartbeatDrop::ALL.iter().map(|r| r.as_str()).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), HeartbeatDrop::ALL.len());
        assert_eq!(HeartbeatDrop::BadTag.to_string(), "bad_tag");
    }

    #[test]
    fn man_page_documents_magic_version_and_every_counter() {
        assert!(MAN_PAGE.contains("RLVH"));
        assert!(MAN_PAGE.contains("version 1"));
        for reason in HeartbeatDrop::ALL {
            assert!(
                MAN_PAGE.contains(reason.as_str()),
                "drop counter `{reason}` is not in man/relevo-heartbeat.7"
            );
        }
    }

    #[test]
    fn limits_are_consistent() {
        assert_eq!(MIN_FRAME_LEN, 68);
        assert_eq!(MAX_FRAME_LEN, 36 + 96 + 256 + 32);
        assert_eq!(MAX_LINKS, u8::BITS as usize);
        let mut big = repr();
        big.peers = vec![big.peers[0]; MAX_PEERS];
        big.groups = vec![big.groups[0]; MAX_GROUPS];
        assert_eq!(emit(&big, &key(1)).len(), MAX_FRAME_LEN);
    }

    #[test]
    fn header_round_trips() {
        let header = repr().header(5).unwrap();
        assert_eq!(Header::decode(&header.encode()), Some(header));
    }

    #[test]
    fn view_reads_every_field() {
        let ring = KeyRing::single(key(4));
        let mut r = repr();
        r.leaving = true;
        let frame = emit(&r, &key(4));
        let view = HeartbeatView::parse(&frame, &ring).unwrap();
        assert_eq!(view.key_id(), 4);
        assert!(view.leaving());
        assert_eq!(view.as_bytes(), frame.as_slice());
        assert_eq!(view.peers().len(), 1);
        assert_eq!(view.groups().len(), 1);
        assert_eq!(HeartbeatRepr::from_view(&view), r);
    }

    #[test]
    fn zero_ids_are_refused_on_emit() {
        let k = key(1);
        let mut buf = [0u8; MAX_FRAME_LEN];
        let mut r = repr();
        r.cluster_id = 0;
        assert_eq!(
            r.emit(&k, &mut buf),
            Err(HeartbeatEmitError::ZeroId {
                field: "cluster id"
            })
        );
        let mut r = repr();
        r.peers[0].node_id = 0;
        assert!(matches!(
            r.emit(&k, &mut buf),
            Err(HeartbeatEmitError::ZeroId { .. })
        ));
    }

    #[test]
    fn signed_zero_ids_and_bad_states_are_bad_fields() {
        let k = key(1);
        let ring = KeyRing::single(k.clone());
        let frame = emit(&repr(), &k);
        // Each position rewritten and re-signed: cluster id, node id, peer node id, state.
        for (pos, value) in [(5, 0), (6, 0), (36, 0), (39 + 2, 5), (39 + 2, 255)] {
            let mut bad = frame.clone();
            bad[pos] = value;
            let end = bad.len() - TAG_LEN;
            let tag = k.tag(&bad[..end]);
            bad[end..].copy_from_slice(&tag);
            assert_eq!(
                parse_heartbeat(&bad, &ring),
                Err(HeartbeatDrop::BadField),
                "byte {pos} = {value}"
            );
        }
    }

    #[test]
    fn key_rules() {
        assert_eq!(
            HeartbeatKey::new(0, &[1; 16]).unwrap_err(),
            KeyError::ZeroId
        );
        assert_eq!(
            HeartbeatKey::new(1, &[1; 15]).unwrap_err(),
            KeyError::SecretTooShort { id: 1, len: 15 }
        );
        assert_eq!(KeyRing::new(vec![]).unwrap_err(), KeyError::NoKey);
        assert_eq!(
            KeyRing::new(vec![key(1), key(1)]).unwrap_err(),
            KeyError::DuplicateId { id: 1 }
        );
        assert_eq!(
            KeyRing::new(vec![key(1), key(2), key(3)]).unwrap_err(),
            KeyError::TooManyKeys { count: 3 }
        );
        let ring = KeyRing::new(vec![key(2), key(1)]).unwrap();
        assert_eq!(ring.sign_key().id(), 2);
        assert_eq!(ring.ids().collect::<Vec<_>>(), [2, 1]);
        assert!(ring.key(3).is_none());
    }

    #[test]
    fn ring_verify_reasons() {
        let k = key(1);
        let ring = KeyRing::single(k.clone());
        let tag = k.tag(b"abc");
        assert_eq!(ring.verify(1, b"abc", &tag), Ok(()));
        assert_eq!(ring.verify(1, b"abd", &tag), Err(HeartbeatDrop::BadTag));
        assert_eq!(
            ring.verify(1, b"abc", &tag[..31]),
            Err(HeartbeatDrop::BadTag)
        );
        assert_eq!(ring.verify(2, b"abc", &tag), Err(HeartbeatDrop::UnknownKey));
    }

    #[test]
    fn group_states_round_trip() {
        for byte in 0..=u8::MAX {
            match GroupWireState::from_u8(byte) {
                Some(state) => assert_eq!(state.as_u8(), byte),
                None => assert!(byte > 4),
            }
        }
    }

    #[test]
    fn replay_window_first_frame_is_accepted() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.last(), None);
        assert_eq!(w.accept(5, 0), Ok(()));
        assert_eq!(w.last(), Some((5, 0)));
    }

    #[test]
    fn replay_window_same_incarnation_needs_higher_sequence() {
        let mut w = ReplayWindow::new();
        w.accept(5, 10).unwrap();
        let replay = Err(Replay {
            incarnation: 5,
            sequence: 10,
        });
        assert_eq!(w.accept(5, 10), replay);
        assert_eq!(w.accept(5, 9), replay);
        assert_eq!(w.accept(5, 12), Ok(()));
        assert_eq!(w.last(), Some((5, 12)));
    }

    #[test]
    fn replay_window_new_incarnation_resets_and_old_one_is_a_replay() {
        let mut w = ReplayWindow::new();
        w.accept(5, 1000).unwrap();
        assert_eq!(w.accept(6, 0), Ok(()));
        assert_eq!(
            w.accept(5, 2000),
            Err(Replay {
                incarnation: 6,
                sequence: 0
            })
        );
        assert_eq!(w.accept(6, 1), Ok(()));
        assert_eq!(
            HeartbeatDrop::from(Replay {
                incarnation: 0,
                sequence: 0
            }),
            HeartbeatDrop::Replay
        );
    }
}
