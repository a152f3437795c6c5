//! Small dense algebra in pymatgen's row-vector convention (a lattice is `[a, b, c]` as rows and
//! `cart = frac · M`), summed in numpy's order, and pymatgen's own LLL reduction (δ = 0.75, banker's
//! rounding). Kept apart from nalgebra and from [`crate::crystal::Lattice`]'s LLL (δ = 0.99, a Niggli
//! preconditioner) on purpose: the matcher must reproduce pymatgen's candidate bases and rounding
//! exactly, and these are ports of the code it runs.

// Small dense linear algebra on row-vector conventions (pymatgen's): a lattice is `[a, b, c]` as
// rows and `cart = frac · M`.
// ---------------------------------------------------------------------------------------------

pub(super) type V3 = [f64; 3];
pub(super) type M3 = [[f64; 3]; 3];

pub(super) fn dot(a: &V3, b: &V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(super) fn norm(a: &V3) -> f64 {
    dot(a, a).sqrt()
}

pub(super) fn sub(a: &V3, b: &V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Row vector times matrix: Σ_i v_i M_i, in numpy's summation order.
pub(super) fn vec_mat(v: &V3, m: &M3) -> V3 {
    [0, 1, 2].map(|j| v[0] * m[0][j] + v[1] * m[1][j] + v[2] * m[2][j])
}

pub(super) fn mat_mul(a: &M3, b: &M3) -> M3 {
    [0, 1, 2].map(|i| vec_mat(&a[i], b))
}

pub(super) fn det(m: &M3) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

pub(super) fn inv(m: &M3) -> Option<M3> {
    let d = det(m);
    if d == 0.0 || !d.is_finite() {
        return None;
    }
    let c = |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let out = [
        [c(1, 1, 2, 2) / d, -c(0, 1, 2, 2) / d, c(0, 1, 1, 2) / d],
        [-c(1, 0, 2, 2) / d, c(0, 0, 2, 2) / d, -c(0, 0, 1, 2) / d],
        [c(1, 0, 2, 1) / d, -c(0, 0, 2, 1) / d, c(0, 0, 1, 1) / d],
    ];
    out.iter().flatten().all(|x| x.is_finite()).then_some(out)
}

pub(super) fn lengths(m: &M3) -> V3 {
    [0, 1, 2].map(|i| norm(&m[i]))
}

/// Angles α, β, γ in degrees, as pymatgen's `Lattice.angles`.
pub(super) fn angles_deg(m: &M3) -> V3 {
    let l = lengths(m);
    [0, 1, 2].map(|i| {
        let (j, k) = ((i + 1) % 3, (i + 2) % 3);
        (dot(&m[j], &m[k]) / (l[j] * l[k])).clamp(-1.0, 1.0).acos().to_degrees()
    })
}

/// pymatgen's `Lattice.from_parameters` (c along z, a in the xz plane), angles in degrees.
pub(super) fn from_parameters(p: &[f64; 6]) -> M3 {
    let [a, b, c, al, be, ga] = *p;
    let (al, be, ga) = (al.to_radians(), be.to_radians(), ga.to_radians());
    let val = ((al.cos() * be.cos() - ga.cos()) / (al.sin() * be.sin())).clamp(-1.0, 1.0);
    let gamma_star = val.acos();
    [
        [a * be.sin(), 0.0, a * be.cos()],
        [-b * al.sin() * gamma_star.cos(), b * al.sin() * gamma_star.sin(), b * al.cos()],
        [0.0, 0.0, c],
    ]
}

pub(super) fn parameters(m: &M3) -> [f64; 6] {
    let l = lengths(m);
    let a = angles_deg(m);
    [l[0], l[1], l[2], a[0], a[1], a[2]]
}

/// Lengths of the reciprocal lattice vectors *with* the 2π factor (pymatgen's
/// `reciprocal_lattice.abc`); `None` for a singular lattice.
pub(super) fn reciprocal_abc(m: &M3) -> Option<V3> {
    let i = inv(m)?;
    // Reciprocal rows are the columns of M⁻¹ (times 2π).
    Some([0, 1, 2].map(|k| norm(&[i[0][k], i[1][k], i[2][k]]) * 2.0 * std::f64::consts::PI))
}

pub(super) fn wrap(x: f64) -> f64 {
    x - x.floor()
}

pub(super) fn wrap3(v: &V3) -> V3 {
    v.map(wrap)
}

/// Lenstra–Lenstra–Lovász reduction with δ = 0.75, a port of pymatgen's `Lattice._calculate_lll`
/// (including its banker's rounding). Returns the reduced rows and the mapping `T` (rows) with
/// `reduced = T · M`.
pub(super) fn lll_reduce(m: &M3) -> (M3, M3) {
    const DELTA: f64 = 0.75;
    let mut a = *m; // a[i] is basis vector i
    let mut b = [[0.0; 3]; 3];
    let mut u = [[0.0; 3]; 3];
    let mut mm = [0.0; 3];
    let mut map = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]; // map[k] = column k of pymatgen's mapping

    let gram_schmidt = |a: &M3, b: &mut M3, u: &mut M3, mm: &mut V3, s: usize| {
        for j in 0..s {
            u[s][j] = dot(&a[s], &b[j]) / mm[j];
        }
        let mut v = a[s];
        for j in 0..s {
            for d in 0..3 {
                v[d] -= u[s][j] * b[j][d];
            }
        }
        b[s] = v;
        mm[s] = dot(&v, &v);
    };
    for s in 0..3 {
        gram_schmidt(&a, &mut b, &mut u, &mut mm, s);
    }

    let mut k = 2usize;
    let mut guard = 0;
    while k <= 3 {
        guard += 1;
        if guard > 10_000 {
            break; // non-finite or absurd input; return what we have
        }
        for i in (1..k).rev() {
            let q = u[k - 1][i - 1].round_ties_even();
            if q != 0.0 && q.is_finite() {
                for d in 0..3 {
                    a[k - 1][d] -= q * a[i - 1][d];
                    map[k - 1][d] -= q * map[i - 1][d];
                }
                let prev = u[i - 1];
                for (x, p) in u[k - 1].iter_mut().zip(prev).take(i - 1) {
                    *x -= q * p;
                }
                u[k - 1][i - 1] -= q;
            }
        }
        if dot(&b[k - 1], &b[k - 1]) >= (DELTA - u[k - 1][k - 2].abs().powi(2)) * dot(&b[k - 2], &b[k - 2]) {
            k += 1;
        } else {
            a.swap(k - 1, k - 2);
            map.swap(k - 1, k - 2);
            for s in (k - 1)..(k + 1) {
                gram_schmidt(&a, &mut b, &mut u, &mut mm, s - 1);
            }
            if k > 2 {
                k -= 1;
            } else {
                for r in k..3 {
                    for c in (k - 2)..k {
                        u[r][c] = dot(&a[r], &b[c]) / mm[c];
                    }
                }
            }
        }
    }
    (a, map)
}
