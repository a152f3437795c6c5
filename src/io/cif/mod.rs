//! CIF 1.1 reader and writer.
//!
//! Reader: a CIF 1.1 tokenizer (`data_` blocks, `loop_`, tags, bare / `'single'` / `"double"` quoted
//! values whose closing quote must be followed by white space, `;` text fields, `#` comments, `?` and
//! `.` as unknown / inapplicable; `save_` frames are skipped) with 1-based line numbers on every token.
//! Tags are compared case-insensitively and with `.` read as `_`, so DDLm names (`_atom_site.fract_x`)
//! work too. Each data block with a cell and atom sites gives one [`Structure`]:
//!
//! * cell from `_cell_length_a/b/c` and `_cell_angle_alpha/beta/gamma` (a missing angle takes the CIF
//!   dictionary default of 90°), built with pymatgen's orientation ([`Lattice::from_parameters`]);
//! * sites from the `_atom_site_` loop: the element from `_atom_site_type_symbol`, else from
//!   `_atom_site_label` (`Fe2+`, `O1`), positions from `_atom_site_fract_x/y/z` or, failing those,
//!   `_atom_site_Cartn_x/y/z` (in the CIF default Cartesian frame: **a** along x, **b** in the xy plane),
//!   `_atom_site_occupancy` (default 1); numbers may carry standard uncertainties (`5.431(2)`);
//! * symmetry from `_symmetry_equiv_pos_as_xyz` / `_space_group_symop_operation_xyz`, else from the
//!   Hall symbol, else the Hermann–Mauguin symbol (with `:1`/`:2`/`:H`/`:R` setting suffixes), else the
//!   International Tables number, looked up in moyo's table of the 530 Hall settings (the first setting
//!   of a symbol or number unless a suffix says otherwise; a rhombohedral group on a cell with a = b = c
//!   and α = β = γ takes the rhombohedral setting). Without any of them the block is read as P1.
//!
//! The asymmetric unit is expanded by every operation, wrapped into [0, 1) and merged like pymatgen's
//! `CifParser`: images within `site_tolerance_frac` (per fractional component, periodic) are one site,
//! and when symmetry is used, coordinates within 1e-4 (relative) of 1/3 or 2/3 are snapped to them first.
//! Geode stores ordered structures only, so a site with an occupancy other than 1 or two species on one
//! position is an error unless [`CifOptions::order_partial_occupancies`] asks to keep the majority
//! species (the dropped ones are listed in `properties["cif_ordering_notes"]`). The block name goes to
//! `properties["cif_block"]`, the site labels to `site_properties["label"]`.
//!
//! Writer: one P1 data block laid out like pymatgen's `CifWriter` (cell with 8 decimals, fractional
//! coordinates wrapped into [0, 1) with 10 decimals), read back identically by Geode, pymatgen and ASE
//! (`scripts/check_cif_roundtrip.py`).

mod blocks;
mod lexer;
mod sites;
mod symops;
#[cfg(test)]
mod tests;
mod writer;

use blocks::*;
use lexer::*;
pub use sites::parse;
use symops::*;
pub use writer::write;

/// Occupancies within this of 1 count as full.
pub(super) const OCCUPANCY_TOL: f64 = 1e-4;
/// pymatgen's `frac_tolerance` for snapping 1/3 and 2/3 (relative).
pub(super) const FRAC_SNAP_TOL: f64 = 1e-4;

/// How the reader treats disorder and near-duplicate sites.
#[derive(Debug, Clone, PartialEq)]
pub struct CifOptions {
    /// Opt-in: when true, a site with occupancy < 1 (or > 1) or several species on one position keeps the
    /// species of largest occupancy instead of being an error. The dropped species and occupancies are
    /// listed in `properties["cif_ordering_notes"]`.
    pub order_partial_occupancies: bool,
    /// Two positions closer than this in every fractional component (periodically) are one site;
    /// pymatgen's `site_tolerance`, default 1e-4. A non-positive or non-finite value means the default.
    pub site_tolerance_frac: f64,
}

impl Default for CifOptions {
    fn default() -> Self {
        CifOptions { order_partial_occupancies: false, site_tolerance_frac: 1e-4 }
    }
}
