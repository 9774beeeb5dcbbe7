//! Helpers shared by the wire_* integration tests: hex decoding and pcap fixture loading
//! (the seeded generator is tests/seeded_rng).
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};

use pcap_file::pcap::PcapReader;

/// Decodes a hex string, ignoring whitespace.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd hex length");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// tests/fixtures
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every *.pcap in tests/fixtures, sorted by name.
pub fn pcap_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    files
}

/// All frames of a pcap file (Ethernet link type, as captured, not padded).
pub fn read_frames(path: &Path) -> Vec<Vec<u8>> {
    let mut reader = PcapReader::new(File::open(path).unwrap()).unwrap();
    assert_eq!(
        u32::from(reader.header().datalink),
        1,
        "{path:?} is not Ethernet"
    );
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        frames.push(packet.unwrap().data.into_owned());
    }
    frames
}
