//! Structure matching with pymatgen's semantics (placeholder module, filled by the matcher work).
