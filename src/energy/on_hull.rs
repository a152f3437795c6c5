//! Where a potential's energies are judged: the one seam through which `geode hull --structures`, the
//! screening funnel's `relax_top`, evolution (its hull objective and `relax_top`) and `generate --relax`
//! (S.U.N.) place a relaxed crystal on a convex hull.
//!
//! - [`HullChoice::Dft`] (the default): the potential's energy goes onto OQMD's formation-energy scale
//!   through its fitted [`FormationScale`] and is judged on the complete OQMD hull
//!   ([`PhaseDiagram::complete`]), so a candidate competes with every known and computed phase.
//! - [`HullChoice::Potential`]: the hull of the potential's own energies of the embedded dataset and
//!   relaxed elements (the shipped CHGNet table): self-consistent, but only ≤ 20-atom ICSD phases compete.
//!
//! Units: eV/atom.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::formation_scale::FormationScale;
use super::hull::{HullError, HullPoint, PhaseDiagram};
use crate::crystal::Composition;

/// Which hull relaxed energies are placed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HullChoice {
    /// The complete OQMD hull, through the potential's fitted formation scale.
    #[default]
    Dft,
    /// The hull of the potential's own energies (the shipped CHGNet 0.3.0 table).
    Potential,
}

enum Kind {
    Dft { scale: Arc<FormationScale>, hull: Arc<PhaseDiagram> },
    Own(Arc<PhaseDiagram>),
}

/// A hull on which one potential's total energies can be placed.
pub struct PotentialHull {
    kind: Kind,
    label: String,
}

/// A crystal placed on the hull.
#[derive(Debug, Clone)]
pub struct Placed {
    /// eV/atom above the hull (negative below it).
    pub e_above_hull: f64,
    /// The crystal's formation energy on the hull's scale (OQMD's for `dft`, the potential's own for
    /// `potential`), eV/atom.
    pub formation_energy_per_atom: f64,
    pub point: HullPoint,
}

/// Why a crystal could not be placed.
#[derive(Debug, Clone, PartialEq)]
pub enum PlaceError {
    Scale(String),
    Hull(HullError),
}

impl std::fmt::Display for PlaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlaceError::Scale(e) => write!(f, "{e}"),
            PlaceError::Hull(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PlaceError {}

impl PotentialHull {
    /// The hull for the potential named `calc_name` (`Calculator::name`): `Ok(None)` when the choice has
    /// nothing for that potential (no fitted scale, or no shipped table), so energies are reported without a
    /// hull; fitted scales and tables ship for CHGNet 0.3.0.
    pub fn for_potential(calc_name: &str, choice: HullChoice) -> Result<Option<PotentialHull>, String> {
        let chgnet = calc_name == FormationScale::chgnet().potential;
        match (choice, chgnet) {
            (_, false) => Ok(None),
            (HullChoice::Dft, true) => Ok(Some(PotentialHull::dft(FormationScale::chgnet()))),
            (HullChoice::Potential, true) => Ok(Some(PotentialHull {
                kind: Kind::Own(Arc::new(super::references::chgnet_hull().map_err(|e| format!("CHGNet hull: {e}"))?)),
                label: "CHGNet-only hull (CHGNet 0.3.0 energies of the ≤ 20-atom dataset and relaxed elements)".into(),
            })),
        }
    }

    /// The complete OQMD hull with `scale`'s potential.
    pub fn dft(scale: Arc<FormationScale>) -> PotentialHull {
        PotentialHull {
            label: format!(
                "complete OQMD hull ({} energies on OQMD's scale by fitted chemical potentials)",
                scale.potential
            ),
            kind: Kind::Dft { scale, hull: PhaseDiagram::complete() },
        }
    }

    /// A hull of the potential's own total energies.
    pub fn own(hull: Arc<PhaseDiagram>, label: impl Into<String>) -> PotentialHull {
        PotentialHull { kind: Kind::Own(hull), label: label.into() }
    }

    /// The formation scale, for the DFT hull.
    pub fn scale(&self) -> Option<&FormationScale> {
        match &self.kind {
            Kind::Dft { scale, .. } => Some(scale),
            Kind::Own(_) => None,
        }
    }

    /// What the hull is, for logs and reports.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The phase diagram the crystal is placed on (for decomposition products and their names).
    pub fn diagram(&self) -> &PhaseDiagram {
        match &self.kind {
            Kind::Dft { hull, .. } => hull,
            Kind::Own(h) => h,
        }
    }

    /// Place a crystal of composition `c` whose potential energy is `energy_per_atom` (eV/atom).
    pub fn place(&self, c: &Composition, energy_per_atom: f64) -> Result<Placed, PlaceError> {
        match &self.kind {
            Kind::Dft { scale, hull } => {
                let h = scale
                    .formation_energy_per_atom(c, energy_per_atom)
                    .map_err(|e| PlaceError::Scale(e.to_string()))?;
                let point = hull.e_above_hull(c, h).map_err(PlaceError::Hull)?;
                Ok(Placed { e_above_hull: point.e_above_hull, formation_energy_per_atom: h, point })
            }
            Kind::Own(hull) => {
                let point = hull.e_above_hull(c, energy_per_atom).map_err(PlaceError::Hull)?;
                Ok(Placed {
                    e_above_hull: point.e_above_hull,
                    formation_energy_per_atom: point.formation_energy_per_atom,
                    point,
                })
            }
        }
    }
}
