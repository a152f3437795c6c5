//! Oganov–Valle structure fingerprints (placeholder module, filled by the fingerprint work).
