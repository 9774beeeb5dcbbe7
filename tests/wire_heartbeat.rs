//! Heartbeat codec tests: one byte vector in both directions (its tag computed independently),
//! truncation and single-byte corruption of a valid frame, key rotation, limits, the leaving
//! flag, secrets kept out of Debug output and a seeded loop over random buffers.
mod seeded_rng;
use seeded_rng::Rng;
mod wire_common;

use hmac::{Hmac, Mac};
use relevo::wire::heartbeat::{
    parse_heartbeat, GroupState, GroupWireState, HeartbeatDrop, HeartbeatEmitError, HeartbeatKey,
    HeartbeatRepr, HeartbeatView, KeyRing, PeerView, HEADER_LEN, MAX_FRAME_LEN, MAX_GROUPS,
    MAX_PEERS, MIN_FRAME_LEN, PEER_ENTRY_LEN, TAG_LEN,
};
use sha2::Sha256;
use wire_common::hex;

const SECRET_1: &[u8] = b"relevo-test-key-0123456789abcdef";
const SECRET_2: &[u8] = b"second-rotation-key-fedcba987654";

/// The frame of [`vector_repr`] signed with key 1 ([`SECRET_1`]), before its tag.
const VECTOR_PREFIX: &str = "
    524c5648 01 03 01 01
    0102030405060708
    000000000000002a
    0000000000000007
    00 02 01 00
    020101 030302
    0102 02 00";

/// HMAC-SHA256 of [`VECTOR_PREFIX`] with [`SECRET_1`], computed with Python's hmac module.
const VECTOR_TAG: &str = "145938e391bcdd2e461c5855cba0e8f9c3012d77ea56bedf8d2c4e78ffe4e1ca";

fn key1() -> HeartbeatKey {
    HeartbeatKey::new(1, SECRET_1).unwrap()
}

fn key2() -> HeartbeatKey {
    HeartbeatKey::new(2, SECRET_2).unwrap()
}

fn ring1() -> KeyRing {
    KeyRing::single(key1())
}

fn vector_repr() -> HeartbeatRepr {
    HeartbeatRepr {
        cluster_id: 3,
        node_id: 1,
        incarnation: 0x0102_0304_0506_0708,
        sequence: 42,
        group_epoch: 7,
        leaving: false,
        peers: vec![
            PeerView {
                node_id: 2,
                links: 0b01,
                fresh: 0b01,
            },
            PeerView {
                node_id: 3,
                links: 0b11,
                fresh: 0b10,
            },
        ],
        groups: vec![GroupState {
            group_id: 0x0102,
            state: GroupWireState::Held,
        }],
    }
}

fn vector_frame() -> Vec<u8> {
    let mut frame = hex(VECTOR_PREFIX);
    frame.extend(hex(VECTOR_TAG));
    frame
}

fn emit(repr: &HeartbeatRepr, key: &HeartbeatKey) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len()];
    let written = repr.emit(key, &mut buf).unwrap();
    assert_eq!(written, buf.len());
    buf
}

/// Rewrites the tag of `frame` for its current content.
fn resign(frame: &mut [u8], secret: &[u8]) {
    let end = frame.len() - TAG_LEN;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(&frame[..end]);
    frame[end..].copy_from_slice(&mac.finalize().into_bytes());
}

#[test]
fn emit_writes_the_byte_vector() {
    let prefix = hex(VECTOR_PREFIX);
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET_1).unwrap();
    mac.update(&prefix);
    let tag = mac.finalize().into_bytes();
    assert_eq!(tag.as_slice(), hex(VECTOR_TAG).as_slice());

    let repr = vector_repr();
    assert_eq!(repr.buffer_len(), prefix.len() + TAG_LEN);
    let frame = emit(&repr, &key1());
    assert_eq!(frame[..prefix.len()], prefix[..]);
    assert_eq!(frame[prefix.len()..], tag[..]);
    assert_eq!(frame, vector_frame());
}

#[test]
fn parse_reads_the_byte_vector() {
    let frame = vector_frame();
    assert_eq!(parse_heartbeat(&frame, &ring1()), Ok(vector_repr()));
    let view = HeartbeatView::parse(&frame, &ring1()).unwrap();
    assert_eq!(view.key_id(), 1);
    assert_eq!(view.incarnation(), 0x0102_0304_0506_0708);
    assert_eq!(view.peers().collect::<Vec<_>>(), vector_repr().peers);
    assert_eq!(view.groups().collect::<Vec<_>>(), vector_repr().groups);
}

#[test]
fn emit_writes_exactly_buffer_len_bytes() {
    let repr = vector_repr();
    let mut buf = vec![0xaa; MAX_FRAME_LEN];
    let written = repr.emit(&key1(), &mut buf).unwrap();
    assert_eq!(written, repr.buffer_len());
    assert_eq!(buf[..written], vector_frame()[..]);
    assert!(buf[written..].iter().all(|&b| b == 0xaa));
    let mut short = vec![0u8; written - 1];
    assert_eq!(
        repr.emit(&key1(), &mut short),
        Err(HeartbeatEmitError::BufferTooSmall {
            need: written,
            have: written - 1
        })
    );
}

#[test]
fn every_truncation_is_an_error() {
    let frame = vector_frame();
    for len in 0..frame.len() {
        assert_eq!(
            parse_heartbeat(&frame[..len], &ring1()),
            Err(HeartbeatDrop::Truncated),
            "{len} bytes"
        );
    }
}

#[test]
fn trailing_bytes_are_a_bad_length() {
    let mut frame = vector_frame();
    frame.push(0);
    assert_eq!(
        parse_heartbeat(&frame, &ring1()),
        Err(HeartbeatDrop::BadLength)
    );
}

#[test]
fn every_single_byte_change_is_dropped() {
    let frame = vector_frame();
    for pos in 0..frame.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut bad = frame.clone();
            bad[pos] ^= mask;
            let reason = parse_heartbeat(&bad, &ring1()).unwrap_err();
            let expected: &[HeartbeatDrop] = match pos {
                0..=3 => &[HeartbeatDrop::BadMagic],
                4 => &[HeartbeatDrop::UnsupportedVersion],
                7 => &[HeartbeatDrop::UnknownKey],
                33 | 34 => &[HeartbeatDrop::Truncated, HeartbeatDrop::BadLength],
                _ => &[HeartbeatDrop::BadTag],
            };
            assert!(
                expected.contains(&reason),
                "byte {pos} ^ {mask:#04x}: {reason}"
            );
        }
    }
}

#[test]
fn specific_drop_reasons() {
    let frame = vector_frame();
    let mut bad = frame.clone();
    bad[..4].copy_from_slice(b"RLVX");
    assert_eq!(
        parse_heartbeat(&bad, &ring1()),
        Err(HeartbeatDrop::BadMagic)
    );
    let mut bad = frame.clone();
    bad[4] = 2;
    assert_eq!(
        parse_heartbeat(&bad, &ring1()),
        Err(HeartbeatDrop::UnsupportedVersion)
    );
    let wrong_secret = HeartbeatKey::new(1, b"another-secret-of-32-bytes-long!").unwrap();
    assert_eq!(
        parse_heartbeat(&frame, &KeyRing::single(wrong_secret)),
        Err(HeartbeatDrop::BadTag)
    );
    let mut bad = frame.clone();
    bad[HEADER_LEN + 6 + 2] = 9; // group state 9 (after two 3-byte peer entries), signed
    resign(&mut bad, SECRET_1);
    assert_eq!(
        parse_heartbeat(&bad, &ring1()),
        Err(HeartbeatDrop::BadField)
    );
}

#[test]
fn unknown_flag_bits_and_reserved_bytes_are_ignored() {
    let mut frame = vector_frame();
    frame[32] = 0xfe; // every flag but "leaving"
    frame[35] = 0xff; // header reserved byte
    frame[HEADER_LEN + 6 + 3] = 0xff; // group entry reserved byte
    resign(&mut frame, SECRET_1);
    assert_eq!(parse_heartbeat(&frame, &ring1()), Ok(vector_repr()));
}

#[test]
fn key_rotation_accepts_either_key_of_the_ring() {
    let repr = vector_repr();
    let by_key2 = emit(&repr, &key2());
    assert_eq!(by_key2[7], 2);
    let rotating = KeyRing::new(vec![key1(), key2()]).unwrap();
    assert_eq!(parse_heartbeat(&by_key2, &rotating), Ok(repr.clone()));
    assert_eq!(
        parse_heartbeat(&vector_frame(), &rotating),
        Ok(repr.clone())
    );
    assert_eq!(
        parse_heartbeat(&by_key2, &ring1()),
        Err(HeartbeatDrop::UnknownKey)
    );
    // After the swap, key 2 signs and key 1 frames are still accepted.
    let swapped = KeyRing::new(vec![key2(), key1()]).unwrap();
    assert_eq!(swapped.sign_key().id(), 2);
    assert_eq!(parse_heartbeat(&vector_frame(), &swapped), Ok(repr));
}

#[test]
fn emit_refuses_more_than_the_limits() {
    let mut buf = vec![0u8; 1024];
    let mut repr = vector_repr();
    repr.peers = vec![repr.peers[0]; MAX_PEERS + 1];
    assert_eq!(
        repr.emit(&key1(), &mut buf),
        Err(HeartbeatEmitError::TooManyPeers { count: 33 })
    );
    let mut repr = vector_repr();
    repr.groups = vec![repr.groups[0]; MAX_GROUPS + 1];
    assert_eq!(
        repr.emit(&key1(), &mut buf),
        Err(HeartbeatEmitError::TooManyGroups { count: 65 })
    );
}

#[test]
fn largest_frame_round_trips() {
    let mut repr = vector_repr();
    repr.peers = (1..=32)
        .map(|n| PeerView {
            node_id: n,
            links: n.wrapping_mul(37),
            fresh: n.wrapping_mul(37) & 0x0f,
        })
        .collect();
    repr.groups = (0..64)
        .map(|g| GroupState {
            group_id: g * 1000,
            state: GroupWireState::from_u8((g % 5) as u8).unwrap(),
        })
        .collect();
    let frame = emit(&repr, &key1());
    assert_eq!(frame.len(), MAX_FRAME_LEN);
    assert_eq!(parse_heartbeat(&frame, &ring1()), Ok(repr));
}

#[test]
fn parse_refuses_counts_above_the_limits() {
    for (pos, count, len) in [
        (33, 33, MIN_FRAME_LEN + 33 * 2),
        (34, 65, MIN_FRAME_LEN + 65 * 4),
    ] {
        let mut frame = vec![0u8; len];
        frame[..HEADER_LEN].copy_from_slice(&hex(VECTOR_PREFIX)[..HEADER_LEN]);
        frame[33] = 0;
        frame[34] = 0;
        frame[pos] = count;
        resign(&mut frame, SECRET_1);
        assert_eq!(
            parse_heartbeat(&frame, &ring1()),
            Err(HeartbeatDrop::BadLength),
            "count byte {pos} = {count}"
        );
    }
}

#[test]
fn leaving_flag_round_trips() {
    let mut repr = vector_repr();
    repr.leaving = true;
    let frame = emit(&repr, &key1());
    assert_eq!(frame[32], 0x01);
    assert_eq!(parse_heartbeat(&frame, &ring1()), Ok(repr));
    assert_eq!(vector_frame()[32], 0x00);
}

#[test]
fn debug_output_never_shows_a_secret() {
    let ring = KeyRing::new(vec![key1(), key2()]).unwrap();
    let shown = format!("{ring:?} {:?} {:#?}", key1(), key2());
    for secret in [SECRET_1, SECRET_2] {
        let text = std::str::from_utf8(secret).unwrap();
        assert!(!shown.contains(text), "{shown}");
        assert!(!shown.contains(&text[..8]), "{shown}");
        let bytes = format!("{:?}", &secret[..4]);
        assert!(!shown.contains(bytes.trim_end_matches(']')), "{shown}");
    }
    assert!(
        shown.contains("id: 1") && shown.contains("id: 2"),
        "{shown}"
    );
}

/// A random buffer: raw, with a valid magic and version, with counts matching its length (so
/// the tag is checked), or that and signed with key 1 (so the fields are checked).
fn random_buffer(rng: &mut Rng, kind: usize) -> Vec<u8> {
    let peers = rng.index(MAX_PEERS + 1);
    let groups = rng.index(MAX_GROUPS + 1);
    let len = match kind {
        0 | 1 => rng.index(MAX_FRAME_LEN + 16),
        _ => MIN_FRAME_LEN + PEER_ENTRY_LEN * peers + 4 * groups,
    };
    let mut buf: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    if kind >= 1 {
        let n = len.min(5);
        buf[..n].copy_from_slice(&hex(VECTOR_PREFIX)[..n]);
    }
    if kind >= 2 {
        buf[7] = 1 + (rng.index(2) as u8);
        buf[33] = peers as u8;
        buf[34] = groups as u8;
    }
    if kind == 3 {
        buf[7] = 1;
        resign(&mut buf, SECRET_1);
    }
    buf
}

#[test]
fn random_bytes_never_panic() {
    let ring = KeyRing::new(vec![key1(), key2()]).unwrap();
    let mut rng = Rng::new(0x4845_4152_5442_4541);
    let mut accepted = 0;
    for i in 0..10_000 {
        let kind = i % 4;
        let buf = random_buffer(&mut rng, kind);
        let parsed = parse_heartbeat(&buf, &ring);
        assert_eq!(parsed.is_ok(), HeartbeatView::parse(&buf, &ring).is_ok());
        match parsed {
            // A signed frame with valid fields re-emits to a frame that parses the same.
            Ok(repr) => {
                assert_eq!(kind, 3, "unsigned random buffer {i} accepted: {buf:02x?}");
                assert_eq!(parse_heartbeat(&emit(&repr, &key1()), &ring), Ok(repr));
                accepted += 1;
            }
            Err(reason) if kind == 2 => assert_eq!(reason, HeartbeatDrop::BadTag, "buffer {i}"),
            Err(_) => {}
        }
    }
    // Random group states and ids are rarely all valid; some are, with few groups.
    assert!(accepted > 0);
}
