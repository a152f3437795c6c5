//! Local structure order parameters (Zimmermann et al., Front. Mater. 4, 34 (2017); Zimmermann & Jain,
//! RSC Adv. 10, 6063 (2020)): how closely the neighbours of a site resemble a target motif (tetrahedron,
//! octahedron, …), each between 0 and ~1. A port of the motifs of pymatgen's `LocalStructOrderParams`
//! that matminer's `CrystalNNFingerprint.from_preset("ops")` uses, with the parameters it passes
//! (pymatgen's `op_params.yaml` and `cn_opt_params.yaml`), plus Steinhardt's q₂, q₄, q₆.
//!
//! Every motif but q_l puts each neighbour j in turn at the north pole, each other neighbour k on the
//! prime meridian (polar angle θ_k), and scores the remaining neighbours m by Gaussians of their polar
//! angle θ_m and cosines of their azimuth φ_m around the target positions. "max" motifs take the best
//! (j, k) frame; "bent" averages; "bcc" sums over j < k. Input: neighbour offsets from the site (Å,
//! Cartesian). Validated through the fingerprint in `tests/crystalnn_matminer.rs`.

use std::f64::consts::PI;

use nalgebra::Vector3;

/// Parameters of the angular motifs (names as in pymatgen; angles in radians, targets in units of π).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MotifParams {
    /// Target angle (fraction of π) and inverse Gaussian width.
    pub ta: f64,
    pub igw_ta: f64,
    /// Inverse Gaussian width for angles away from the equatorial plane.
    pub igw_ep: f64,
    /// Factor on and exponent of the azimuthal cosine.
    pub fac_aa: f64,
    pub exp_cos_aa: f64,
    /// Smallest polar angle of a south-pole neighbour, its inverse Gaussian width and weight.
    pub min_spp: f64,
    pub igw_spp: f64,
    pub w_spp: f64,
    /// Cuboctahedron: the polar window (4 = lower, 2 = upper bound) and the widths (5, 6).
    pub cuboct: [f64; 4],
}

/// One order parameter type with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OrderParam {
    SingleBond,
    Bent(MotifParams),
    TriPlanMax(MotifParams),
    TetMax(MotifParams),
    /// T-shaped, trigonal / square / pentagonal / hexagonal pyramids.
    Pyramid(MotifParams),
    /// Square planar, see-saw-like (tri_bipyr with CN 4), bipyramids, octahedron, hexagonal planar: the
    /// "south pole" family.
    Bipyramid {
        p: MotifParams,
        hex_plan: bool,
    },
    SeeSawRect(MotifParams),
    PentPlanMax(MotifParams),
    Bcc(MotifParams),
    CuboctMax(MotifParams),
    /// Steinhardt's bond orientational order parameter q_l.
    Q(u32),
}

const VERY_SMALL: f64 = 1e-12;

fn gauss(x: f64) -> f64 {
    (-0.5 * x * x).exp()
}

fn gram_schmidt(v: &Vector3<f64>, u: &Vector3<f64>) -> Vector3<f64> {
    v - u * (v.dot(u) / u.dot(u))
}

fn legendre(l: u32, x: f64) -> f64 {
    let (mut p0, mut p1) = (1.0, x);
    if l == 0 {
        return p0;
    }
    for n in 1..l {
        let n = n as f64;
        let p2 = ((2.0 * n + 1.0) * x * p1 - n * p0) / (n + 1.0);
        p0 = p1;
        p1 = p2;
    }
    p1
}

impl OrderParam {
    /// The order parameter of a site with these neighbour offsets (Å), `None` where pymatgen gives None
    /// (too few neighbours for the motif).
    pub fn value(&self, offsets: &[Vector3<f64>]) -> Option<f64> {
        let n = offsets.len();
        let dist: Vec<f64> = offsets.iter().map(|v| v.norm()).collect();
        let unit: Vec<Vector3<f64>> = offsets.iter().zip(&dist).map(|(v, d)| v / *d).collect();
        match *self {
            OrderParam::SingleBond => {
                let mut d = dist.clone();
                d.sort_by(f64::total_cmp);
                match d.len() {
                    0 => Some(0.0),
                    1 => Some(1.0),
                    _ => Some(1.0 - d[0] / d[1]),
                }
            }
            OrderParam::Q(l) => {
                if n == 0 {
                    return None;
                }
                // Addition theorem: Σ_m |Σ_j Y_lm(r̂_j)|² = (2l + 1)/(4π) Σ_jk P_l(r̂_j · r̂_k).
                let s: f64 =
                    unit.iter().flat_map(|a| unit.iter().map(move |b| legendre(l, a.dot(b).clamp(-1.0, 1.0)))).sum();
                Some(s.max(0.0).sqrt() / n as f64)
            }
            _ => self.angular(&unit),
        }
    }

    fn angular(&self, r: &[Vector3<f64>]) -> Option<f64> {
        let n = r.len();
        let ipi = 1.0 / PI;
        let mut total = 0.0; // bent, bcc
        let mut total_norm = 0.0;
        let mut best: Option<f64> = None; // max motifs
        for j in 0..n {
            let z = r[j];
            for k in 0..n {
                if j == k {
                    continue;
                }
                let mut q = 0.0;
                let mut norm = 0.0;
                let thetak = z.dot(&r[k]).clamp(-1.0, 1.0).acos();
                let x = gram_schmidt(&r[k], &z);
                let flag_x = x.norm() < VERY_SMALL;
                let x = if flag_x { x } else { x / x.norm() };
                match *self {
                    OrderParam::Bent(p) => {
                        q += gauss(p.igw_ta * (thetak * ipi - p.ta));
                        norm += 1.0;
                    }
                    OrderParam::TriPlanMax(p) | OrderParam::TetMax(p) => {
                        q += gauss(p.igw_ta * (thetak * ipi - p.ta));
                        norm += 1.0;
                    }
                    OrderParam::Pyramid(p) => {
                        q += gauss(p.igw_ep * (thetak * ipi - 0.5));
                        norm += 1.0;
                    }
                    OrderParam::CuboctMax(p) => {
                        if thetak >= p.min_spp {
                            q += p.w_spp * gauss(p.igw_spp * (thetak * ipi - 1.0));
                            norm += p.w_spp;
                        }
                    }
                    OrderParam::Bipyramid { p, hex_plan } => {
                        if thetak < p.min_spp {
                            let t = if hex_plan {
                                p.igw_ta * ((thetak * ipi - 0.5).abs() - p.ta)
                            } else {
                                p.igw_ep * (thetak * ipi - 0.5)
                            };
                            q += gauss(t);
                            norm += 1.0;
                        }
                    }
                    OrderParam::SeeSawRect(p) => {
                        if thetak < p.min_spp {
                            q += gauss(p.igw_ep * (thetak * ipi - 0.5));
                            norm += 1.0;
                        }
                    }
                    OrderParam::PentPlanMax(p) => {
                        let c = if thetak <= p.ta * PI { 0.4 } else { 0.8 };
                        q += gauss(p.igw_ta * (thetak * ipi - c));
                        norm += 1.0;
                    }
                    OrderParam::Bcc(p) => {
                        if j < k && thetak >= p.min_spp {
                            q += p.w_spp * gauss(p.igw_spp * (thetak * ipi - 1.0));
                            norm += p.w_spp;
                        }
                    }
                    OrderParam::SingleBond | OrderParam::Q(_) => unreachable!("not angular"),
                }
                if !flag_x {
                    for (m, rm) in r.iter().enumerate() {
                        if m == j || m == k {
                            continue;
                        }
                        let thetam = z.dot(rm).clamp(-1.0, 1.0).acos();
                        let x2 = gram_schmidt(rm, &z);
                        let flag_x2 = x2.norm() < VERY_SMALL;
                        let phi = if flag_x2 { 0.0 } else { (x2 / x2.norm()).dot(&x).clamp(-1.0, 1.0).acos() };
                        if let OrderParam::Bipyramid { p, .. } | OrderParam::SeeSawRect(p) = *self
                            && thetam >= p.min_spp
                        {
                            q += gauss(p.igw_spp * (thetam * ipi - 1.0));
                            norm += 1.0;
                        }
                        if flag_x2 {
                            continue;
                        }
                        match *self {
                            OrderParam::TriPlanMax(p) | OrderParam::TetMax(p) => {
                                q +=
                                    gauss(p.igw_ta * (thetam * ipi - p.ta)) * (p.fac_aa * phi).cos().powf(p.exp_cos_aa);
                                norm += 1.0;
                            }
                            OrderParam::PentPlanMax(p) => {
                                let c = if thetam <= p.ta * PI { 0.4 } else { 0.8 };
                                q += gauss(p.igw_ta * (thetam * ipi - c)) * phi.cos() * phi.cos();
                                norm += 1.0;
                            }
                            OrderParam::Pyramid(p) => {
                                q += (p.fac_aa * phi).cos().powf(p.exp_cos_aa) * gauss(p.igw_ep * (thetam * ipi - 0.5));
                                norm += 1.0;
                            }
                            OrderParam::Bipyramid { p, hex_plan } => {
                                if thetam < p.min_spp && thetak < p.min_spp {
                                    let t = if hex_plan {
                                        p.igw_ta * ((thetam * ipi - 0.5).abs() - p.ta)
                                    } else {
                                        p.igw_ep * (thetam * ipi - 0.5)
                                    };
                                    q += (p.fac_aa * phi).cos().powf(p.exp_cos_aa) * gauss(t);
                                    norm += 1.0;
                                }
                            }
                            OrderParam::Bcc(p) => {
                                if j < k && thetak < p.min_spp {
                                    let fac = if thetak > 0.5 * PI { 1.0 } else { -1.0 };
                                    let t = (thetam - 0.5 * PI) / (1.0f64 / 3.0).asin();
                                    q += fac * (3.0 * phi).cos() * (0.5f64).exp() * t * gauss(t);
                                    norm += 1.0;
                                }
                            }
                            OrderParam::SeeSawRect(p) => {
                                if thetam < p.min_spp && thetak < p.min_spp && phi < 0.75 * PI {
                                    q += (p.fac_aa * phi).cos().powf(p.exp_cos_aa)
                                        * gauss(p.igw_ep * (thetam * ipi - 0.5));
                                    norm += 1.0;
                                }
                            }
                            OrderParam::CuboctMax(p) => {
                                let [upper, lower, w5, w6] = p.cuboct;
                                if thetam < p.min_spp && lower < thetak && thetak < upper {
                                    if lower < thetam && thetam < upper {
                                        q += phi.cos() * phi.cos() * gauss(w5 * (thetam * ipi - 0.5));
                                        norm += 1.0;
                                    } else if thetam < lower {
                                        let t = 0.0556 * ((phi - 0.5 * PI).cos() - 0.81649658);
                                        q += gauss(t) * gauss(w6 * (thetam * ipi - 1.0 / 3.0));
                                        norm += 1.0;
                                    } else if thetam > upper {
                                        let t = 0.0556 * ((phi - 0.5 * PI).cos() - 0.81649658);
                                        q += gauss(t) * gauss(w6 * (thetam * ipi - 2.0 / 3.0));
                                        norm += 1.0;
                                    }
                                }
                            }
                            OrderParam::Bent(_) | OrderParam::SingleBond | OrderParam::Q(_) => {}
                        }
                    }
                }
                match self {
                    OrderParam::Bent(_) | OrderParam::Bcc(_) => {
                        total += q;
                        total_norm += norm;
                    }
                    _ => {
                        let v = if norm > 1e-12 { q / norm } else { 0.0 };
                        best = Some(best.map_or(v, |b: f64| b.max(v)));
                    }
                }
            }
        }
        match self {
            OrderParam::Bent(_) => (total_norm > 1e-12).then(|| total / total_norm),
            OrderParam::Bcc(_) => (n > 3).then(|| total / (0.5 * (n * (6 + (n - 2) * (n - 3))) as f64)),
            _ => {
                if n > 1 {
                    best
                } else {
                    None
                }
            }
        }
    }
}

/// pymatgen's default parameters for a motif name (`op_params.yaml`), as the fingerprint uses them.
fn defaults(name: &str) -> MotifParams {
    let p = MotifParams::default();
    match name {
        "bent" => MotifParams { ta: 1.0, igw_ta: 8.667, ..p },
        "T" => MotifParams { igw_ep: 15.5, fac_aa: 1.0, exp_cos_aa: 2.0, ..p },
        "see_saw_rect" => {
            MotifParams { min_spp: 2.356194490192345, igw_spp: 11.5, igw_ep: 27.0, fac_aa: 2.0, exp_cos_aa: 2.0, ..p }
        }
        "tet_max" => MotifParams { igw_ta: 18.5, ta: 0.6081734479693927, fac_aa: 1.5, exp_cos_aa: 2.0, ..p },
        "oct_max" => MotifParams {
            min_spp: 2.356194490192345,
            igw_spp: 15.0,
            igw_ep: 18.0,
            w_spp: 1.0,
            fac_aa: 2.0,
            exp_cos_aa: 2.0,
            ..p
        },
        "bcc" => MotifParams { min_spp: 2.5261129449194057, igw_spp: 15.0, w_spp: 6.0, ..p },
        "tri_plan_max" => MotifParams { igw_ta: 17.5, ta: 0.66666666667, fac_aa: 1.0, exp_cos_aa: 2.0, ..p },
        "sq_plan_max" => MotifParams {
            min_spp: 2.356194490192345,
            igw_spp: 13.5,
            igw_ep: 17.7,
            w_spp: 1.0,
            fac_aa: 1.0,
            exp_cos_aa: 2.0,
            ..p
        },
        "pent_plan_max" => MotifParams { ta: 0.6, igw_ta: 19.333, ..p },
        "tri_pyr" => MotifParams { igw_ep: 15.5, fac_aa: 1.5, exp_cos_aa: 2.0, ..p },
        "sq_pyr" => MotifParams { igw_ep: 14.9, fac_aa: 2.0, exp_cos_aa: 2.0, ..p },
        "pent_pyr" => MotifParams { igw_ep: 13.8, fac_aa: 2.5, exp_cos_aa: 2.0, ..p },
        "hex_pyr" => MotifParams { igw_ep: 12.5, fac_aa: 3.0, exp_cos_aa: 2.0, ..p },
        "tri_bipyr" => MotifParams {
            min_spp: 2.356194490192345,
            igw_spp: 12.0,
            igw_ep: 16.6,
            fac_aa: 1.5,
            exp_cos_aa: 2.0,
            w_spp: 1.0,
            ..p
        },
        "pent_bipyr" => MotifParams {
            min_spp: 2.356194490192345,
            igw_spp: 12.5,
            igw_ep: 14.75,
            fac_aa: 2.5,
            exp_cos_aa: 2.0,
            w_spp: 1.0,
            ..p
        },
        "hex_bipyr" => MotifParams {
            min_spp: 2.356194490192345,
            igw_spp: 14.1,
            igw_ep: 13.6,
            fac_aa: 3.0,
            exp_cos_aa: 2.0,
            w_spp: 1.0,
            ..p
        },
        "cuboct_max" => MotifParams {
            min_spp: 2.792526803190927,
            igw_spp: 28.75,
            w_spp: 1.8,
            cuboct: [1.8325957145940461, 1.3089969389957472, 25.5, 31.25],
            ..p
        },
        "hex_plan_max" => MotifParams {
            min_spp: 2.6179938779914944,
            igw_spp: 7.5,
            w_spp: 1.0,
            fac_aa: 1.0,
            exp_cos_aa: 2.0,
            igw_ta: 25.0,
            ta: 0.16666667,
            ..p
        },
        _ => p,
    }
}

fn bent(ta: f64, igw_ta: f64) -> OrderParam {
    OrderParam::Bent(MotifParams { ta, igw_ta, ..MotifParams::default() })
}

fn bipyr(name: &str) -> OrderParam {
    OrderParam::Bipyramid { p: defaults(name), hex_plan: name == "hex_plan_max" }
}

/// The motifs of matminer's `CrystalNNFingerprint.from_preset("ops")` for each coordination number
/// 1–24, after the CN weight itself ("wt", not listed here), with their feature labels.
pub fn ops_preset(cn: usize) -> Vec<(&'static str, OrderParam)> {
    let d = MotifParams::default();
    let q = || vec![("q2", OrderParam::Q(2)), ("q4", OrderParam::Q(4)), ("q6", OrderParam::Q(6))];
    match cn {
        1 => vec![("sgl_bd", OrderParam::SingleBond)],
        2 => vec![
            ("L-shaped", bent(0.5, 15.15)),
            ("water-like", bent(0.5802777777777778, 13.95)),
            ("bent 120 degrees", bent(0.666666666667, 13.25)),
            ("bent 150 degrees", bent(0.833333333333333, 12.45)),
            ("linear", bent(1.0, 8.667)),
        ],
        3 => vec![
            ("trigonal planar", OrderParam::TriPlanMax(defaults("tri_plan_max"))),
            (
                "trigonal non-coplanar",
                OrderParam::TetMax(MotifParams {
                    ta: 0.6081734479693927,
                    igw_ta: 18.33,
                    fac_aa: 1.5,
                    exp_cos_aa: 2.0,
                    ..d
                }),
            ),
            ("T-shaped", OrderParam::Pyramid(defaults("T"))),
        ],
        4 => vec![
            ("square co-planar", bipyr("sq_plan_max")),
            ("tetrahedral", OrderParam::TetMax(defaults("tet_max"))),
            ("rectangular see-saw-like", OrderParam::SeeSawRect(defaults("see_saw_rect"))),
            (
                "see-saw-like",
                OrderParam::Bipyramid {
                    p: MotifParams {
                        min_spp: 2.356194490192345,
                        igw_ep: 15.75,
                        igw_spp: 12.75,
                        fac_aa: 1.5,
                        exp_cos_aa: 2.0,
                        w_spp: 1.0,
                        ..d
                    },
                    hex_plan: false,
                },
            ),
            ("trigonal pyramidal", OrderParam::Pyramid(defaults("tri_pyr"))),
        ],
        5 => vec![
            ("pentagonal planar", OrderParam::PentPlanMax(defaults("pent_plan_max"))),
            ("square pyramidal", OrderParam::Pyramid(defaults("sq_pyr"))),
            ("trigonal bipyramidal", bipyr("tri_bipyr")),
        ],
        6 => vec![
            ("hexagonal planar", bipyr("hex_plan_max")),
            ("octahedral", bipyr("oct_max")),
            ("pentagonal pyramidal", OrderParam::Pyramid(defaults("pent_pyr"))),
        ],
        7 => vec![
            ("hexagonal pyramidal", OrderParam::Pyramid(defaults("hex_pyr"))),
            ("pentagonal bipyramidal", bipyr("pent_bipyr")),
        ],
        8 => vec![
            ("body-centered cubic", OrderParam::Bcc(defaults("bcc"))),
            ("hexagonal bipyramidal", bipyr("hex_bipyr")),
        ],
        9..=11 => q(),
        12 => {
            let mut v = vec![("cuboctahedral", OrderParam::CuboctMax(defaults("cuboct_max")))];
            v.extend(q());
            v
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: f64, y: f64, z: f64) -> Vector3<f64> {
        Vector3::new(x, y, z)
    }

    #[test]
    fn ideal_motifs_score_near_one() {
        let oct = [v(1., 0., 0.), v(-1., 0., 0.), v(0., 1., 0.), v(0., -1., 0.), v(0., 0., 1.), v(0., 0., -1.)];
        assert!((bipyr("oct_max").value(&oct).unwrap() - 1.0).abs() < 1e-9);
        let tet = [v(1., 1., 1.), v(1., -1., -1.), v(-1., 1., -1.), v(-1., -1., 1.)];
        assert!(OrderParam::TetMax(defaults("tet_max")).value(&tet).unwrap() > 0.99);
        assert!(bipyr("sq_plan_max").value(&tet).unwrap() < 0.2);
        let lin = [v(1., 0., 0.), v(-1., 0., 0.)];
        assert!((bent(1.0, 8.667).value(&lin).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn steinhardt_q_of_simple_cubic_and_fcc_shells() {
        // Known values: simple cubic q4 = 0.7638, q6 = 0.3536; fcc q4 = 0.1909, q6 = 0.5745.
        let sc = [v(1., 0., 0.), v(-1., 0., 0.), v(0., 1., 0.), v(0., -1., 0.), v(0., 0., 1.), v(0., 0., -1.)];
        assert!((OrderParam::Q(4).value(&sc).unwrap() - 0.7638).abs() < 1e-4);
        assert!((OrderParam::Q(6).value(&sc).unwrap() - 0.3536).abs() < 1e-4);
        let mut fcc = Vec::new();
        for (a, b) in [(1., 1.), (1., -1.), (-1., 1.), (-1., -1.)] {
            fcc.extend([v(a, b, 0.), v(a, 0., b), v(0., a, b)]);
        }
        assert!((OrderParam::Q(4).value(&fcc).unwrap() - 0.1909).abs() < 1e-4);
        assert!((OrderParam::Q(6).value(&fcc).unwrap() - 0.5745).abs() < 1e-4);
    }
}
