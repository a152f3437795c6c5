//! Deterministic train/validation/test assignment grouped by reduced formula, so that polymorphs of
//! one composition never sit in two splits.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    /// Split of a reduced formula: FNV-1a 64-bit hash of the formula, bucket = hash mod 10;
    /// bucket 0 → test, 1 → val, 2–9 → train (≈ 80/10/10 by formula). Stable across platforms and
    /// versions because it depends on nothing but the formula string.
    pub fn of_formula(reduced_formula: &str) -> Split {
        match fnv1a64(reduced_formula.as_bytes()) % 10 {
            0 => Split::Test,
            1 => Split::Val,
            _ => Split::Train,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    pub fn from_name(s: &str) -> Option<Split> {
        match s {
            "train" => Some(Split::Train),
            "val" | "validation" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

/// FNV-1a, 64 bit (Fowler–Noll–Vo).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_assignment() {
        // FNV-1a test vector: "a" → 0xaf63dc4c8601ec8c.
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Split::of_formula("NaCl"), Split::of_formula("NaCl"));
    }
}
