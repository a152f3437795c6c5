//! Space groups as generators of structures: the symmetry operations and Wyckoff positions of the 230
//! space-group types in spglib's default settings (moyo's tables; monoclinic unique axis b, rhombohedral
//! groups on hexagonal axes, origin choice 2), and the orbit of a point under a group.
//!
//! Conventions: everything here is in the *conventional* cell of the setting, fractional coordinates;
//! multiplicities count sites per conventional cell (centring translations included), as in the
//! International Tables.

use std::sync::OnceLock;

use moyo::data::{Setting, hall_symbol_entry, iter_wyckoff_positions_from_hall_number, operations_from_number};
use nalgebra::{Matrix3, Vector3};

use super::CrystalError;

/// The seven crystal systems, which fix the lattice's free parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrystalSystem {
    Triclinic,
    /// Unique axis b: α = γ = 90°.
    Monoclinic,
    Orthorhombic,
    Tetragonal,
    /// On hexagonal axes (a = b, γ = 120°), rhombohedral groups included.
    Trigonal,
    Hexagonal,
    Cubic,
}

impl CrystalSystem {
    /// The crystal system of space-group type `number` (1–230).
    pub fn of(number: u8) -> CrystalSystem {
        match number {
            1..=2 => CrystalSystem::Triclinic,
            3..=15 => CrystalSystem::Monoclinic,
            16..=74 => CrystalSystem::Orthorhombic,
            75..=142 => CrystalSystem::Tetragonal,
            143..=167 => CrystalSystem::Trigonal,
            168..=194 => CrystalSystem::Hexagonal,
            _ => CrystalSystem::Cubic,
        }
    }
}

/// One Wyckoff position: the representative point `origin + linear · (x, y, z)`.
#[derive(Debug, Clone)]
pub struct WyckoffSite {
    pub letter: char,
    /// Sites per conventional cell.
    pub multiplicity: usize,
    /// Site-symmetry symbol, e.g. `"-43m"`.
    pub site_symmetry: &'static str,
    /// Representative coordinates as the tables write them, e.g. `"x,1/4,z"`.
    pub coordinates: &'static str,
    pub linear: Matrix3<f64>,
    pub origin: Vector3<f64>,
    /// Which of x, y, z the representative depends on.
    pub free: [bool; 3],
}

impl WyckoffSite {
    /// Number of free parameters (0 for a fixed special position).
    pub fn dof(&self) -> usize {
        self.free.iter().filter(|f| **f).count()
    }

    /// The representative point for free parameters `xyz` (fractional); unused entries are ignored.
    pub fn representative(&self, xyz: &Vector3<f64>) -> Vector3<f64> {
        self.origin + self.linear * xyz
    }
}

/// A space-group type in its spglib default setting.
#[derive(Debug, Clone)]
pub struct SpaceGroup {
    /// ITA number 1–230.
    pub number: u8,
    pub hall_number: i32,
    /// Short Hermann–Mauguin symbol, e.g. `"F m -3 m"`.
    pub hm_symbol: &'static str,
    pub crystal_system: CrystalSystem,
    /// Lattice points per conventional cell (1 for P, 2 for A/B/C/I, 3 for R on hexagonal axes, 4 for F).
    pub centring: usize,
    /// Operations of the conventional cell, centring translations included: (rotation, translation).
    pub operations: Vec<(Matrix3<f64>, Vector3<f64>)>,
    /// Wyckoff positions, general position first, then by decreasing multiplicity.
    pub sites: Vec<WyckoffSite>,
}

/// Parse a Wyckoff representative such as `"-x+y,2x,1/4"` into (linear, origin, free variables).
fn parse_coordinates(text: &str) -> Option<(Matrix3<f64>, Vector3<f64>, [bool; 3])> {
    let terms: Vec<&str> = text.split(',').map(str::trim).collect();
    if terms.len() != 3 {
        return None;
    }
    let mut linear = Matrix3::zeros();
    let mut origin = Vector3::zeros();
    let mut free = [false; 3];
    for (row, term) in terms.iter().enumerate() {
        let term = term.replace(' ', "");
        // Split into signed tokens: "-x+y" → ["-x", "+y"].
        let mut tokens: Vec<String> = Vec::new();
        for c in term.chars() {
            if (c == '+' || c == '-') && tokens.last().is_some_and(|t| !t.is_empty() && t != "-" && t != "+") {
                tokens.push(String::new());
            }
            if tokens.is_empty() {
                tokens.push(String::new());
            }
            tokens.last_mut()?.push(c);
        }
        for tok in tokens {
            let (sign, body) = match tok.strip_prefix('-') {
                Some(b) => (-1.0, b),
                None => (1.0, tok.strip_prefix('+').unwrap_or(&tok)),
            };
            match body.chars().last()? {
                v @ ('x' | 'y' | 'z') => {
                    let col = (v as u8 - b'x') as usize;
                    let coeff = &body[..body.len() - 1];
                    let k: f64 = if coeff.is_empty() { 1.0 } else { coeff.parse().ok()? };
                    linear[(row, col)] += sign * k;
                    free[col] = true;
                }
                _ => {
                    let value = match body.split_once('/') {
                        Some((n, d)) => n.parse::<f64>().ok()? / d.parse::<f64>().ok()?,
                        None => body.parse().ok()?,
                    };
                    origin[row] += sign * value;
                }
            }
        }
    }
    Some((linear, origin, free))
}

impl SpaceGroup {
    /// Space-group type `number` (1–230) in spglib's default setting.
    pub fn new(number: u8) -> Result<SpaceGroup, CrystalError> {
        let bad = |why: String| CrystalError::Symmetry(format!("space group {number}: {why}"));
        if !(1..=230).contains(&number) {
            return Err(bad("expected a number from 1 to 230".into()));
        }
        let hall_number = Setting::Spglib.hall_number(number as i32).ok_or_else(|| bad("no Hall number".into()))?;
        let entry = hall_symbol_entry(hall_number).ok_or_else(|| bad("no Hall symbol".into()))?;
        let ops = operations_from_number(number as i32, Setting::Spglib, false).map_err(|e| bad(format!("{e:?}")))?;
        let operations: Vec<_> = ops.iter().map(|op| (op.rotation.map(f64::from), op.translation)).collect();
        let sites = iter_wyckoff_positions_from_hall_number(hall_number)
            .map(|w| {
                let (linear, origin, free) = parse_coordinates(w.coordinates)
                    .ok_or_else(|| bad(format!("cannot read Wyckoff coordinates {:?}", w.coordinates)))?;
                Ok(WyckoffSite {
                    letter: w.letter,
                    multiplicity: w.multiplicity,
                    site_symmetry: w.site_symmetry,
                    coordinates: w.coordinates,
                    linear,
                    origin,
                    free,
                })
            })
            .collect::<Result<Vec<_>, CrystalError>>()?;
        let centring = entry.centering.order();
        Ok(SpaceGroup {
            number,
            hall_number,
            hm_symbol: entry.hm_short,
            crystal_system: CrystalSystem::of(number),
            centring,
            operations,
            sites,
        })
    }

    /// The group's distinct images of fractional point `p`, wrapped into [0, 1); points closer than
    /// `1e-4` (fractional, periodically) count as one.
    pub fn orbit(&self, p: &Vector3<f64>) -> Vec<Vector3<f64>> {
        let mut out: Vec<Vector3<f64>> = Vec::with_capacity(self.operations.len());
        for (r, t) in &self.operations {
            let q = (r * p + t).map(|x| x.rem_euclid(1.0));
            let dup = out.iter().any(|o| {
                let d = (o - q).map(|x| x - x.round());
                d.amax() < 1e-4
            });
            if !dup {
                out.push(q);
            }
        }
        out
    }
}

/// All 230 space-group types, built once.
pub fn space_groups() -> &'static [SpaceGroup] {
    static GROUPS: OnceLock<Vec<SpaceGroup>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        (1..=230).map(|n| SpaceGroup::new(n).expect("moyo's tables cover all 230 space groups")).collect()
    })
}

/// Space-group type `number` (1–230) from the shared table.
pub fn space_group(number: u8) -> Result<&'static SpaceGroup, CrystalError> {
    if (1..=230).contains(&number) {
        Ok(&space_groups()[number as usize - 1])
    } else {
        Err(CrystalError::InvalidParameters(format!("space group {number}: expected a number from 1 to 230")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_coordinate_shorthand() {
        let (l, o, f) = parse_coordinates("-x+y,2x,1/4").unwrap();
        assert_eq!(l, Matrix3::new(-1.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0));
        assert_eq!(o, Vector3::new(0.0, 0.0, 0.25));
        assert_eq!(f, [true, true, false]);
        let (l, o, f) = parse_coordinates("x+1/2,-y,z-1/4").unwrap();
        assert_eq!(l, Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0));
        assert_eq!(o, Vector3::new(0.5, 0.0, -0.25));
        assert_eq!(f, [true, true, true]);
    }

    /// Every Wyckoff position of every group, at generic parameters, has as many images as its
    /// multiplicity says (checks the operations, the centring and the coordinate reader together).
    #[test]
    fn orbits_have_the_tabulated_multiplicities() {
        let generic = Vector3::new(0.1234, 0.3711, 0.0617);
        let mut n = 0;
        for g in space_groups() {
            assert_eq!(g.operations.len(), g.sites[0].multiplicity, "{}: general position", g.number);
            for w in &g.sites {
                let orbit = g.orbit(&w.representative(&generic));
                assert_eq!(orbit.len(), w.multiplicity, "{} {} {}{}", g.number, g.hm_symbol, w.multiplicity, w.letter);
                n += 1;
            }
        }
        assert_eq!(n, 1731, "Wyckoff positions of the 230 groups (International Tables A)");
    }

    #[test]
    fn centring_and_systems() {
        let fm3m = space_group(225).unwrap();
        assert_eq!((fm3m.centring, fm3m.crystal_system, fm3m.sites.len()), (4, CrystalSystem::Cubic, 12));
        assert_eq!(space_group(166).unwrap().centring, 3);
        assert_eq!(space_group(14).unwrap().centring, 1);
        assert!(space_group(0).is_err() && space_group(231).is_err());
    }
}
