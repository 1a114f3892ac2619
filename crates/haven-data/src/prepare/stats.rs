//! Bounded-memory counters: distinct values per column, and equivalence-class sizes for
//! k-anonymity. Both store 64/128-bit hashes instead of values, so memory depends on how many
//! distinct values there are (capped for columns), never on the size of the file.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

/// Distinct values counted exactly per column before the count becomes a lower bound.
pub(crate) const DISTINCT_CAP: usize = 1_000_000;

/// A hasher for keys that already are good hashes: it passes them through.
#[derive(Debug, Default)]
pub(crate) struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used for u64/u128 keys; a plain fold keeps it correct if it ever is.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64 ^ (n >> 64) as u64;
    }
}

type Prehashed = BuildHasherDefault<PrehashedHasher>;

/// Counts distinct values exactly up to a cap, then stops (and frees its set).
#[derive(Debug)]
pub(crate) struct DistinctCounter {
    seen: HashSet<u64, Prehashed>,
    cap: usize,
    capped: bool,
}

impl DistinctCounter {
    pub(crate) fn with_cap(cap: usize) -> Self {
        Self { seen: HashSet::default(), cap, capped: false }
    }

    pub(crate) fn observe(&mut self, value: &[u8]) {
        if self.capped {
            return;
        }
        if self.seen.insert(xxh3_64(value)) && self.seen.len() > self.cap {
            self.capped = true;
            self.seen = HashSet::default();
        }
    }

    /// The count and whether it is only a lower bound.
    pub(crate) fn result(&self) -> (u64, bool) {
        if self.capped { (self.cap as u64, true) } else { (self.seen.len() as u64, false) }
    }
}

/// Sizes of equivalence classes, keyed by a 128-bit hash of the quasi-identifier tuple:
/// collisions are negligible (about 2^-64 for four billion classes) and a key costs 16 bytes
/// however long the values are.
#[derive(Debug, Default)]
pub(crate) struct ClassCounts {
    sizes: HashMap<u128, u64, Prehashed>,
}

impl ClassCounts {
    pub(crate) fn add(&mut self, class: u128) {
        *self.sizes.entry(class).or_default() += 1;
    }

    pub(crate) fn size(&self, class: u128) -> u64 {
        self.sizes.get(&class).copied().unwrap_or(0)
    }

    pub(crate) fn sizes(&self) -> impl Iterator<Item = u64> + '_ {
        self.sizes.values().copied()
    }
}

/// Builds class keys from a row's quasi-identifier values, reusing one buffer.
#[derive(Debug, Default)]
pub(crate) struct ClassKey {
    buf: Vec<u8>,
}

impl ClassKey {
    /// The class of a tuple. Each value is length-prefixed so ("ab", "c") and ("a", "bc")
    /// are different classes.
    pub(crate) fn of<'v>(&mut self, values: impl Iterator<Item = &'v [u8]>) -> u128 {
        self.buf.clear();
        for value in values {
            self.buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
            self.buf.extend_from_slice(value);
        }
        xxh3_128(&self.buf)
    }
}
