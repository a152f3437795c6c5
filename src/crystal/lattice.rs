//! Periodic lattices: basis vectors, parameters, metric, reciprocal lattices and Niggli reduction.

use nalgebra::{Matrix3, Vector3};
use serde::{Deserialize, Serialize};

use super::CrystalError;

/// A lattice in 3D. The basis vectors **a**, **b**, **c** (Å) are the *columns* of `cart_from_frac`,
/// so `cart = cart_from_frac * frac`. pymatgen's `Lattice.matrix` is the transpose (rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "LatticeRows", try_from = "LatticeRows")]
pub struct Lattice {
    cart_from_frac: Matrix3<f64>,
    frac_from_cart: Matrix3<f64>,
}

/// Serialised form: rows are lattice vectors, as in pymatgen and ASE.
#[derive(Serialize, Deserialize)]
struct LatticeRows([[f64; 3]; 3]);

impl From<Lattice> for LatticeRows {
    fn from(l: Lattice) -> Self {
        LatticeRows(l.row_vectors())
    }
}

impl TryFrom<LatticeRows> for Lattice {
    type Error = CrystalError;
    fn try_from(r: LatticeRows) -> Result<Self, Self::Error> {
        Lattice::from_row_vectors(r.0)
    }
}

/// Relative tolerance of [`Lattice::niggli_reduced`]: ε = `NIGGLI_TOL` × V^(1/3) on metric entries,
/// pymatgen's `get_niggli_reduced_lattice(tol=1e-5)`.
pub const NIGGLI_TOL: f64 = 1e-5;

/// Longest lattice vector accepted (Å). Beyond it no physical cell lies, and reductions that walk
/// one lattice vector at a time would take astronomically many steps.
pub const MAX_VECTOR_LENGTH_ANG: f64 = 1.0e5;

/// Smallest spacing of lattice planes accepted (Å), far below any real cell (~1 Å): with it and
/// [`MAX_VECTOR_LENGTH_ANG`], every reduction coefficient stays below 10⁹.
pub const MIN_PLANE_SPACING_ANG: f64 = 1.0e-4;

/// Lattice parameters for display and file formats: lengths in Å, angles in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatticeParams {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub alpha_deg: f64,
    pub beta_deg: f64,
    pub gamma_deg: f64,
}

impl Lattice {
    /// Build from a column basis. Fails on non-finite entries, a vector longer than
    /// [`MAX_VECTOR_LENGTH_ANG`], a (near-)zero volume (< 1e-8 Å³) or planes closer than [`MIN_PLANE_SPACING_ANG`].
    pub fn from_cart_from_frac(cart_from_frac: Matrix3<f64>) -> Result<Lattice, CrystalError> {
        if let Some(v) = cart_from_frac.iter().find(|v| !v.is_finite()) {
            return Err(CrystalError::NonFinite { what: "lattice".into(), value: *v });
        }
        if let Some(len) = cart_from_frac.column_iter().map(|c| c.norm()).find(|&l| l > MAX_VECTOR_LENGTH_ANG) {
            return Err(CrystalError::InvalidParameters(format!(
                "lattice vector of length {len:e} Å is longer than {MAX_VECTOR_LENGTH_ANG:e} Å"
            )));
        }
        let det = cart_from_frac.determinant();
        if det.abs() < 1e-8 {
            return Err(CrystalError::SingularLattice { volume_ang3: det.abs() });
        }
        let frac_from_cart =
            cart_from_frac.try_inverse().ok_or(CrystalError::SingularLattice { volume_ang3: det.abs() })?;
        // A cell whose planes lie closer than this is flat, whatever its volume: its vectors are nearly
        // dependent, and reductions would need integer steps beyond 2³¹.
        if let Some(d) =
            (0..3).map(|i| 1.0 / frac_from_cart.row(i).norm()).find(|&d| d.is_nan() || d < MIN_PLANE_SPACING_ANG)
        {
            return Err(CrystalError::InvalidParameters(format!(
                "lattice planes {d:e} Å apart (at least {MIN_PLANE_SPACING_ANG:e} Å needed): the vectors are nearly \
                 dependent"
            )));
        }
        Ok(Lattice { cart_from_frac, frac_from_cart })
    }

    /// Build from the three lattice vectors written as rows `[a, b, c]` (Å).
    pub fn from_row_vectors(rows: [[f64; 3]; 3]) -> Result<Lattice, CrystalError> {
        Lattice::from_cart_from_frac(Matrix3::from_fn(|i, j| rows[j][i]))
    }

    /// Build from parameters with pymatgen's orientation convention (`Lattice.from_parameters`,
    /// `vesta=False`): **c** along z, **a** in the xz plane.
    pub fn from_parameters(p: LatticeParams) -> Result<Lattice, CrystalError> {
        let vals = [p.a, p.b, p.c, p.alpha_deg, p.beta_deg, p.gamma_deg];
        if let Some(v) = vals.iter().find(|v| !v.is_finite()) {
            return Err(CrystalError::NonFinite { what: "lattice parameters".into(), value: *v });
        }
        if p.a <= 0.0 || p.b <= 0.0 || p.c <= 0.0 {
            return Err(CrystalError::InvalidParameters(format!(
                "lengths a={} b={} c={} Å must be positive",
                p.a, p.b, p.c
            )));
        }
        for ang in [p.alpha_deg, p.beta_deg, p.gamma_deg] {
            if ang <= 0.0 || ang >= 180.0 {
                return Err(CrystalError::InvalidParameters(format!(
                    "angle {ang}° must lie strictly between 0° and 180°"
                )));
            }
        }
        let (al, be, ga) = (p.alpha_deg.to_radians(), p.beta_deg.to_radians(), p.gamma_deg.to_radians());
        let val = ((al.cos() * be.cos() - ga.cos()) / (al.sin() * be.sin())).clamp(-1.0, 1.0);
        let gamma_star = val.acos();
        let va = [p.a * be.sin(), 0.0, p.a * be.cos()];
        let vb = [-p.b * al.sin() * gamma_star.cos(), p.b * al.sin() * gamma_star.sin(), p.b * al.cos()];
        let vc = [0.0, 0.0, p.c];
        Lattice::from_row_vectors([va, vb, vc])
    }

    /// Cubic lattice with edge `a` (Å).
    pub fn cubic(a: f64) -> Result<Lattice, CrystalError> {
        Lattice::from_row_vectors([[a, 0.0, 0.0], [0.0, a, 0.0], [0.0, 0.0, a]])
    }

    /// Basis as columns: `cart = cart_from_frac * frac`.
    pub fn cart_from_frac(&self) -> &Matrix3<f64> {
        &self.cart_from_frac
    }

    /// Inverse basis: `frac = frac_from_cart * cart`. Its rows are the crystallographic reciprocal
    /// vectors (without 2π).
    pub fn frac_from_cart(&self) -> &Matrix3<f64> {
        &self.frac_from_cart
    }

    /// The lattice vectors as rows `[a, b, c]` (Å), pymatgen's `Lattice.matrix`.
    pub fn row_vectors(&self) -> [[f64; 3]; 3] {
        let m = &self.cart_from_frac;
        [0, 1, 2].map(|j| [m[(0, j)], m[(1, j)], m[(2, j)]])
    }

    /// Lattice vector `i` (0 = a, 1 = b, 2 = c) in Å.
    pub fn vector(&self, i: usize) -> Vector3<f64> {
        self.cart_from_frac.column(i).into_owned()
    }

    pub fn lengths(&self) -> [f64; 3] {
        [0, 1, 2].map(|i| self.vector(i).norm())
    }

    /// Angles α (b,c), β (a,c), γ (a,b) in radians.
    pub fn angles_rad(&self) -> [f64; 3] {
        let ang = |u: Vector3<f64>, v: Vector3<f64>| (u.dot(&v) / (u.norm() * v.norm())).clamp(-1.0, 1.0).acos();
        let (a, b, c) = (self.vector(0), self.vector(1), self.vector(2));
        [ang(b, c), ang(a, c), ang(a, b)]
    }

    pub fn params(&self) -> LatticeParams {
        let [a, b, c] = self.lengths();
        let [al, be, ga] = self.angles_rad();
        LatticeParams { a, b, c, alpha_deg: al.to_degrees(), beta_deg: be.to_degrees(), gamma_deg: ga.to_degrees() }
    }

    /// Cell volume (Å³), always positive.
    pub fn volume(&self) -> f64 {
        self.cart_from_frac.determinant().abs()
    }

    /// True when the basis is right-handed (positive determinant).
    pub fn is_right_handed(&self) -> bool {
        self.cart_from_frac.determinant() > 0.0
    }

    /// Metric tensor G = Bᵀ B (Å²), G_ij = a_i · a_j.
    pub fn metric(&self) -> Matrix3<f64> {
        self.cart_from_frac.transpose() * self.cart_from_frac
    }

    pub fn to_cart(&self, frac: &Vector3<f64>) -> Vector3<f64> {
        self.cart_from_frac * frac
    }

    pub fn to_frac(&self, cart: &Vector3<f64>) -> Vector3<f64> {
        self.frac_from_cart * cart
    }

    /// Reciprocal lattice with the 2π factor (Å⁻¹), pymatgen's `reciprocal_lattice`.
    pub fn reciprocal_lattice(&self) -> Lattice {
        let m = self.frac_from_cart.transpose() * (2.0 * std::f64::consts::PI);
        Lattice::from_cart_from_frac(m).expect("reciprocal of a regular lattice is regular")
    }

    /// Reciprocal lattice without 2π (Å⁻¹), pymatgen's `reciprocal_lattice_crystallographic`.
    pub fn reciprocal_lattice_crystallographic(&self) -> Lattice {
        Lattice::from_cart_from_frac(self.frac_from_cart.transpose())
            .expect("reciprocal of a regular lattice is regular")
    }

    /// Spacing between lattice planes perpendicular to reciprocal vector i (Å): 1/|b*_i|.
    pub fn plane_spacings(&self) -> [f64; 3] {
        [0, 1, 2].map(|i| 1.0 / self.frac_from_cart.row(i).norm())
    }

    /// Niggli-reduced lattice (Grosse-Kunstleve, Sauter & Adams 2004) and the integer matrix `t` with
    /// `reduced.cart_from_frac = self.cart_from_frac * t`. The result is right-handed.
    ///
    /// Comparisons use pymatgen's tolerance, ε = [`NIGGLI_TOL`] × V^(1/3) on the metric entries (Å²), so
    /// that cells at the edge of a Niggli condition (an angle within ε of 90°, two lengths within ε of
    /// each other) reduce as in pymatgen's `get_niggli_reduced_lattice`: with a tighter ε a 90.0001°
    /// angle would make a type-I (all acute) cell where pymatgen keeps a type-II one. The reduction
    /// starts from moyo's (tight-tolerance) Niggli cell, so even strongly skewed input converges in a
    /// few steps; then pymatgen's steps A1–A8 run on the metric.
    pub fn niggli_reduced(&self) -> (Lattice, Matrix3<i32>) {
        // moyo's reduction works on the column basis. Scale to unit volume so its absolute epsilon acts
        // like a relative tolerance.
        // LLL first: moyo's steps subtract one vector at a time, which for a strongly skewed basis
        // (one vector 1e4 times another, far off axis) means millions of steps.
        let s = self.volume().cbrt();
        let t_lll = lll_reduce(&self.cart_from_frac);
        let scaled = moyo::base::Lattice { basis: self.cart_from_frac * t_lll.map(|x| x as f64) / s };
        let (_, t0) = scaled.unchecked_niggli_reduce();
        let eps = NIGGLI_TOL * s;
        let mut t = t_lll * t0;
        let metric = |t: &Matrix3<i32>| {
            let b = self.cart_from_frac * t.map(|x| x as f64);
            b.transpose() * b
        };
        let params =
            |g: &Matrix3<f64>| (g[(0, 0)], g[(1, 1)], g[(2, 2)], 2.0 * g[(1, 2)], 2.0 * g[(0, 2)], 2.0 * g[(0, 1)]);
        let sign = |x: f64| if x > 0.0 { 1 } else { -1 };
        let sign_eps = |x: f64| if x.abs() < eps { 0 } else { sign(x) };
        for _ in 0..1000 {
            let (a, b, _, e, n, _) = params(&metric(&t));
            // A1: order a ≤ b.
            if b + eps < a || ((a - b).abs() < eps && e.abs() > n.abs() + eps) {
                t *= Matrix3::new(0, -1, 0, -1, 0, 0, 0, 0, -1);
            }
            let (_, b, c, _, n, y) = params(&metric(&t));
            // A2: order b ≤ c.
            if c + eps < b || ((b - c).abs() < eps && n.abs() > y.abs() + eps) {
                t *= Matrix3::new(-1, 0, 0, 0, 0, -1, 0, -1, 0);
                continue;
            }
            let (_, _, _, e, n, y) = params(&metric(&t));
            let (l, m, k) = (sign_eps(e), sign_eps(n), sign_eps(y));
            if l * m * k == 1 {
                // A3: all angles acute.
                t *= Matrix3::from_diagonal(&nalgebra::Vector3::new(l, m, k));
            } else {
                // A4: all angles non-acute.
                let (mut i, mut j, mut kk) =
                    (if l == 1 { -1 } else { 1 }, if m == 1 { -1 } else { 1 }, if k == 1 { -1 } else { 1 });
                if i * j * kk == -1 {
                    if k == 0 {
                        kk = -1;
                    } else if m == 0 {
                        j = -1;
                    } else if l == 0 {
                        i = -1;
                    }
                }
                t *= Matrix3::from_diagonal(&nalgebra::Vector3::new(i, j, kk));
            }
            let (a, b, _, e, n, y) = params(&metric(&t));
            // A5–A8: shorten by adding or subtracting one vector.
            if e.abs() > b + eps || ((e - b).abs() < eps && y - eps > 2.0 * n) || ((e + b).abs() < eps && -eps > y) {
                t *= Matrix3::new(1, 0, 0, 0, 1, -sign(e), 0, 0, 1);
                continue;
            }
            if n.abs() > a + eps || ((a - n).abs() < eps && y - eps > 2.0 * e) || ((a + n).abs() < eps && -eps > y) {
                t *= Matrix3::new(1, 0, -sign(n), 0, 1, 0, 0, 0, 1);
                continue;
            }
            if y.abs() > a + eps || ((a - y).abs() < eps && n - eps > 2.0 * e) || ((a + y).abs() < eps && -eps > n) {
                t *= Matrix3::new(1, -sign(y), 0, 0, 1, 0, 0, 0, 1);
                continue;
            }
            let sum = e + n + y + a + b;
            if -eps > sum || (sum.abs() < eps && eps < y + (a + n) * 2.0) {
                t *= Matrix3::new(1, 0, 1, 0, 1, 1, 0, 0, 1);
                continue;
            }
            break;
        }
        // Right-handed without changing the metric: invert all three vectors.
        if t.map(|x| x as f64).determinant() * self.cart_from_frac.determinant() < 0.0 {
            t = -t;
        }
        let l = Lattice::from_cart_from_frac(self.cart_from_frac * t.map(|x| x as f64))
            .expect("unimodular transform keeps volume");
        (l, t)
    }

    /// Lattice scaled isotropically to volume `v` (Å³).
    pub fn scaled_to_volume(&self, v: f64) -> Result<Lattice, CrystalError> {
        let f = (v / self.volume()).cbrt();
        Lattice::from_cart_from_frac(self.cart_from_frac * f)
    }

    /// Lattice of a supercell whose vectors are integer combinations: new column j = Σ_i B_i m_ij.
    pub fn supercell(&self, m: &Matrix3<i32>) -> Result<Lattice, CrystalError> {
        Lattice::from_cart_from_frac(self.cart_from_frac * m.map(|x| x as f64))
    }
}

/// LLL reduction (Lenstra, Lenstra & Lovász 1982; δ = 0.99) of a column basis: the unimodular
/// integer matrix `t` such that `basis * t` is LLL-reduced. Exact integer bookkeeping, floating-point
/// Gram–Schmidt recomputed after every change (three vectors, so the cost is negligible).
fn lll_reduce(basis: &Matrix3<f64>) -> Matrix3<i32> {
    const DELTA: f64 = 0.99;
    let mut b: [Vector3<f64>; 3] = [basis.column(0).into(), basis.column(1).into(), basis.column(2).into()];
    let mut t = Matrix3::<i32>::identity();
    let gram_schmidt = |b: &[Vector3<f64>; 3]| {
        let mut bs = *b;
        let mut mu = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..i {
                mu[i][j] = b[i].dot(&bs[j]) / bs[j].norm_squared();
                bs[i] -= mu[i][j] * bs[j];
            }
        }
        (bs, mu)
    };
    let mut k = 1;
    // Each swap decreases a positive potential; the cap only guards against floating-point cycling.
    for _ in 0..10_000 {
        if k >= 3 {
            break;
        }
        for j in (0..k).rev() {
            let (_, mu) = gram_schmidt(&b);
            let q = mu[k][j].round();
            if q != 0.0 {
                // Integer steps that would overflow end the preconditioning (the later reductions finish it).
                let Some(col) = (q.abs() < i32::MAX as f64)
                    .then(|| {
                        let qi = q as i32;
                        [0, 1, 2].map(|r| qi.checked_mul(t[(r, j)]).and_then(|x| t[(r, k)].checked_sub(x)))
                    })
                    .and_then(|c| Some([c[0]?, c[1]?, c[2]?]))
                else {
                    return t;
                };
                b[k] -= q * b[j];
                for (r, v) in col.into_iter().enumerate() {
                    t[(r, k)] = v;
                }
            }
        }
        let (bs, mu) = gram_schmidt(&b);
        if bs[k].norm_squared() >= (DELTA - mu[k][k - 1].powi(2)) * bs[k - 1].norm_squared() {
            k += 1;
        } else {
            b.swap(k, k - 1);
            t.swap_columns(k, k - 1);
            k = (k - 1).max(1);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * (1.0 + a.abs())
    }

    #[test]
    fn parameters_round_trip() {
        let p = LatticeParams { a: 3.0, b: 4.5, c: 7.2, alpha_deg: 81.0, beta_deg: 100.0, gamma_deg: 117.0 };
        let l = Lattice::from_parameters(p).unwrap();
        let q = l.params();
        for (x, y) in [
            (p.a, q.a),
            (p.b, q.b),
            (p.c, q.c),
            (p.alpha_deg, q.alpha_deg),
            (p.beta_deg, q.beta_deg),
            (p.gamma_deg, q.gamma_deg),
        ] {
            assert!(close(x, y), "{x} vs {y}");
        }
        // c along z as in pymatgen
        let rows = l.row_vectors();
        assert!(close(rows[2][0], 0.0) && close(rows[2][1], 0.0) && close(rows[2][2], 7.2));
    }

    #[test]
    fn frac_cart_identity_and_reciprocal() {
        let l = Lattice::from_row_vectors([[4.0, 0.1, 0.0], [1.9, 3.7, 0.2], [0.3, -0.5, 5.1]]).unwrap();
        let f = Vector3::new(0.1, -0.7, 2.3);
        assert!((l.to_frac(&l.to_cart(&f)) - f).norm() < 1e-12);
        let r = l.reciprocal_lattice();
        let prod = l.cart_from_frac().transpose() * r.cart_from_frac();
        assert!((prod - Matrix3::identity() * 2.0 * std::f64::consts::PI).norm() < 1e-9);
    }

    #[test]
    fn rejects_degenerate() {
        assert!(Lattice::from_row_vectors([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).is_err());
        assert!(Lattice::from_row_vectors([[f64::NAN, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).is_err());
        let bad = LatticeParams { a: 1.0, b: 1.0, c: 1.0, alpha_deg: 0.0, beta_deg: 90.0, gamma_deg: 90.0 };
        assert!(Lattice::from_parameters(bad).is_err());
    }

    #[test]
    fn niggli_of_an_extremely_skewed_basis_is_fast_and_exact() {
        // Found by the POSCAR fuzzer: a 0.546 × 5.43 × 5.43 Å cell whose third vector runs 5·10⁴ Å
        // along b. Walking one vector at a time this takes ~10⁴ steps per unit; LLL makes it instant.
        let l = Lattice::from_row_vectors([[0.546, 0.0, 0.0], [0.0, 5.43, 0.0], [1.0, 5.43e4 + 0.2, 5.43]]).unwrap();
        let (r, t) = l.niggli_reduced();
        assert!(close(r.volume(), l.volume()));
        assert_eq!(t.map(|x| x as f64).determinant().abs().round(), 1.0);
        let p = r.params();
        let mut lengths = [p.a, p.b, p.c];
        lengths.sort_by(f64::total_cmp);
        assert!((lengths[0] - 0.546).abs() < 1e-9, "{lengths:?}");
        assert!(lengths[2] < 6.0, "{lengths:?}");
        assert!(Lattice::from_row_vectors([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 2.2e110, 1.0]]).is_err());
    }

    #[test]
    fn niggli_is_idempotent_and_keeps_volume() {
        // A cubic 3 Å lattice written in a skewed unimodular basis.
        let l = Lattice::from_row_vectors([[3.0, 0.0, 0.0], [6.0, 3.0, 0.0], [3.0, 9.0, 3.0]]).unwrap();
        let (r, t) = l.niggli_reduced();
        assert!(close(r.volume(), l.volume()));
        assert_eq!(t.map(|x| x as f64).determinant().abs().round(), 1.0);
        let (rr, _) = r.niggli_reduced();
        let (p, q) = (r.params(), rr.params());
        assert!(close(p.a, q.a) && close(p.b, q.b) && close(p.c, q.c));
        assert!(close(p.a, 3.0) && close(p.b, 3.0) && close(p.c, 3.0));
    }
}
