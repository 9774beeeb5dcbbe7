//! The one deterministic generator of the test suite (xorshift64*): seeded, reproducible,
//! no dependency. Used by the fuzz loops and the randomised engine runs.
#![allow(dead_code)]

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n` of 0 counts as 1).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An index in `0..n` (`n` of 0 counts as 1).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
}
