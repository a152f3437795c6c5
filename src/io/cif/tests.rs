//! Tests of the CIF reader and writer.
use std::fmt::Display;

use nalgebra::{Matrix3, Vector3};

use super::sites::*;
use super::writer::*;
use super::*;
use crate::crystal::{Element, Lattice, LatticeParams, Structure};
use serde_json::Value as Json;

const P: &str = "x.cif";

fn opts() -> CifOptions {
    CifOptions::default()
}

fn read(text: &str) -> Vec<Structure> {
    match parse(text, P, &opts()) {
        Ok(v) => v,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn read_one(text: &str) -> Structure {
    let mut v = read(text);
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn err(text: &str) -> String {
    match parse(text, P, &opts()) {
        Ok(v) => panic!("expected an error, got {} structures", v.len()),
        Err(e) => e.to_string(),
    }
}

fn el(s: &str) -> Element {
    Element::from_symbol(s).unwrap()
}

fn count(s: &Structure, sym: &str) -> usize {
    s.species().iter().filter(|e| e.symbol() == sym).count()
}

fn cell(
    a: impl Display,
    b: impl Display,
    c: impl Display,
    al: impl Display,
    be: impl Display,
    ga: impl Display,
) -> String {
    format!(
        "_cell_length_a {a}\n_cell_length_b {b}\n_cell_length_c {c}\n_cell_angle_alpha {al}\n_cell_angle_beta {be}\n_cell_angle_gamma {ga}\n"
    )
}

const SITES_HEAD: &str =
    "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n";

fn nacl_asym(symmetry: &str) -> String {
    format!(
        "data_NaCl\n{}{symmetry}\n{SITES_HEAD}Na1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\n",
        cell(5.64, 5.64, 5.64, 90, 90, 90)
    )
}

fn has_site(s: &Structure, sym: &str, f: [f64; 3]) -> bool {
    let f = Vector3::from(f);
    s.species().iter().zip(s.frac_coords()).any(|(e, g)| e.symbol() == sym && same_position(g, &f, 1e-6))
}

// ---- tokenizer ----

#[test]
fn tokenizer_handles_quotes_text_fields_comments_and_lines() {
    let text = "# comment\ndata_a\n_t1 'it''s' # c\n_t2 \"a b\"\n_t3\n;line one\nline two\n;\n_t4 'x'y z' _t5 ?\n_t6 a#b\nloop_ _l 1 2\n";
    let toks = tokenize(text, P).unwrap();
    let vals: Vec<(String, bool, usize)> = toks
        .iter()
        .filter_map(|t| match &t.tok {
            Tok::Value(v) => Some((v.text.clone(), v.quoted, t.line)),
            _ => None,
        })
        .collect();
    assert_eq!(vals[0], ("it''s".into(), true, 3));
    assert_eq!(vals[1], ("a b".into(), true, 4));
    assert_eq!(vals[2], ("line one\nline two".into(), true, 6));
    assert_eq!(vals[3], ("x'y z".into(), true, 9));
    assert_eq!(vals[4], ("?".into(), false, 9));
    assert_eq!(vals[5], ("a#b".into(), false, 10));
    assert_eq!(vals[6].2, 11);
    assert_eq!(toks[0], Token { tok: Tok::Data("a".into()), line: 2 });
    assert!(toks.iter().any(|t| t.tok == Tok::Tag("_t5".into()) && t.line == 9));
    assert!(toks.iter().any(|t| t.tok == Tok::Loop && t.line == 11));
    // A quoted '?' is a string, not unknown.
    assert!(!Val { text: "?".into(), quoted: true }.is_null());
}

#[test]
fn numbers_with_uncertainties() {
    for (t, v) in [
        ("5.431(2)", 5.431),
        ("0.25(1)", 0.25),
        ("-.5", -0.5),
        ("1e-3", 1e-3),
        ("+2.", 2.0),
        ("3", 3.0),
        ("1.5E+2(12)", 150.0),
        (".5(3)", 0.5),
    ] {
        assert_eq!(parse_cif_number(t), Some(v), "{t}");
    }
    for t in ["", "nan", "inf", "1.2.3", "(2)", "1(2", "1(a)", "e5", "1e", "--1", "0x10", "1/2"] {
        assert_eq!(parse_cif_number(t), None, "{t}");
    }
}

#[test]
fn symmetry_operation_strings() {
    let op = parse_symop("x,y+1/2,-z").unwrap();
    assert_eq!(op.rot, Matrix3::new(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0));
    assert_eq!(op.trans, Vector3::new(0.0, 0.5, 0.0));
    let op = parse_symop("-x+y, 1/2+x, z-0.25").unwrap();
    assert_eq!(op.rot, Matrix3::new(-1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0));
    assert_eq!(op.trans, Vector3::new(0.0, 0.5, -0.25));
    assert_eq!(parse_symop("+x,+y,+z").unwrap().rot, Matrix3::identity());
    let op = parse_symop("x-y,x,z+5/6").unwrap();
    assert!((op.trans[2] - 5.0 / 6.0).abs() < 1e-15);
    let op = parse_symop("X, Y, Z+1/2, +1").unwrap();
    assert_eq!(op.trans, Vector3::new(0.0, 0.0, 0.5));
    assert!(parse_symop("x,y").unwrap_err().contains("2 comma-separated parts"));
    assert!(parse_symop("x,q,z").unwrap_err().contains("'q'"));
    assert!(parse_symop("x,x,z").unwrap_err().contains("determinant 0"));
    assert!(parse_symop("x,y+,z").unwrap_err().contains("ends with a sign"));
    assert!(parse_symop("x,y,z+1/0").is_err());
    assert!(parse_symop("x,,z").is_err());
}

// ---- symmetry expansion ----

#[test]
fn nacl_from_operations_symbols_hall_and_number() {
    let ops_loop = {
        let mut s = String::from("loop_\n_space_group_symop_id\n_space_group_symop_operation_xyz\n");
        for (i, op) in hall_operations(523).unwrap().iter().enumerate() {
            let part = |k: usize| {
                let mut t = String::new();
                for (j, v) in ["x", "y", "z"].iter().enumerate() {
                    let c = op.rot[(k, j)];
                    if c != 0.0 {
                        t.push_str(if c > 0.0 { "+" } else { "-" });
                        t.push_str(v);
                    }
                }
                if op.trans[k] != 0.0 {
                    t.push_str(&format!("+{}", op.trans[k]));
                }
                t
            };
            s.push_str(&format!("{} '{}, {}, {}'\n", i + 1, part(0), part(1), part(2)));
        }
        s
    };
    for sym in [
        ops_loop.as_str(),
        "_symmetry_space_group_name_H-M 'F m -3 m'",
        "_space_group_name_H-M_alt 'Fm-3m'",
        "_symmetry_space_group_name_H-M 'Fm3m'",
        "_space_group_name_Hall '-F 4 2 3'",
        "_space_group_IT_number 225",
        "_symmetry_Int_Tables_number 225",
    ] {
        let s = read_one(&nacl_asym(sym));
        assert_eq!(s.n_sites(), 8, "{sym}");
        assert_eq!(count(&s, "Na"), 4, "{sym}");
        assert!(has_site(&s, "Cl", [0.0, 0.0, 0.5]), "{sym}");
        assert!(has_site(&s, "Na", [0.5, 0.0, 0.5]), "{sym}");
        let labels = &s.site_properties["label"];
        assert_eq!(labels.len(), 8);
        assert_eq!(labels.iter().filter(|l| l.as_str() == Some("Cl1")).count(), 4);
    }
}

#[test]
fn rutile_from_hermann_mauguin_only() {
    let text = format!(
        "data_rutile\n{}_symmetry_space_group_name_H-M 'P 42/m n m'\n{SITES_HEAD}Ti1 Ti 0 0 0\nO1 O 0.3053(2) 0.3053(2) 0\n",
        cell(4.5937, 4.5937, 2.9587, 90, 90, 90)
    );
    let s = read_one(&text);
    assert_eq!(s.n_sites(), 6);
    assert_eq!(count(&s, "Ti"), 2);
    assert!(has_site(&s, "Ti", [0.5, 0.5, 0.5]));
    assert!(has_site(&s, "O", [0.6947, 0.6947, 0.0]));
    assert!(has_site(&s, "O", [0.8053, 0.1947, 0.5]));
    assert_eq!(s.properties["cif_block"], "rutile");
    // Same from the symbol with underscores and without spaces.
    let text2 = text.replace("'P 42/m n m'", "P4_2/mnm");
    assert_eq!(read_one(&text2).n_sites(), 6);
}

/// Bi2Te3 (R-3m, hexagonal setting): Te1 3a, Bi 6c, Te2 6c → 15 sites.
fn bi2te3(symbol: &str, cellp: &str) -> String {
    format!(
        "data_Bi2Te3\n{cellp}_symmetry_space_group_name_H-M '{symbol}'\n{SITES_HEAD}Te1 Te 0 0 0\nBi1 Bi 0 0 0.4001\nTe2 Te 0 0 0.7907\n"
    )
}

#[test]
fn rhombohedral_groups_in_both_settings() {
    let hex = cell(4.386, 4.386, 30.497, 90, 90, 120);
    for sym in ["R -3 m", "R -3 m :H", "R-3m H", "R -3 2/m"] {
        let s = read_one(&bi2te3(sym, &hex));
        assert_eq!(s.n_sites(), 15, "{sym}");
        assert_eq!(count(&s, "Bi"), 6);
        assert!(has_site(&s, "Te", [2.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]), "{sym}");
    }
    // The same crystal on its rhombohedral cell: x, x, x positions.
    let rho = cell(10.473, 10.473, 10.473, 24.17, 24.17, 24.17);
    let text = format!(
        "data_r\n{rho}_symmetry_space_group_name_H-M 'R -3 m'\n{SITES_HEAD}Te1 Te 0 0 0\nBi1 Bi 0.4001 0.4001 0.4001\nTe2 Te 0.7907 0.7907 0.7907\n"
    );
    let s = read_one(&text);
    assert_eq!(s.n_sites(), 5);
    let s = read_one(&text.replace("'R -3 m'", "'R -3 m :R'"));
    assert_eq!(s.n_sites(), 5);
    let s = read_one(&text.replace("_symmetry_space_group_name_H-M 'R -3 m'", "_space_group_IT_number 166"));
    assert_eq!(s.n_sites(), 5);
}

#[test]
fn hermann_mauguin_lookup_variants() {
    let c = LatticeParams { a: 5.0, b: 6.0, c: 7.0, alpha_deg: 90.0, beta_deg: 100.0, gamma_deg: 90.0 };
    let num = |h: i32| moyo::data::hall_symbol_entry(h).unwrap().number;
    assert_eq!(find_hm("P 21/c", &c), Some(81));
    assert_eq!(find_hm("P 1 21/c 1", &c), Some(81));
    assert_eq!(find_hm("P 21/n", &c), Some(82));
    assert_eq!(find_hm("Pnma", &c).map(num), Some(62));
    assert_eq!(find_hm("P b n m", &c).map(num), Some(62));
    assert_eq!(find_hm("Cmca", &c).map(num), Some(64));
    assert_eq!(find_hm("C m c e", &c).map(num), Some(64));
    assert_eq!(find_hm("F d -3 m", &c), Some(525));
    assert_eq!(find_hm("F d -3 m :2", &c), Some(526));
    assert_eq!(find_hm("Fd-3mZ", &c), None); // a suffix needs a space or a colon
    assert_eq!(find_hm("F d -3 m Z", &c), Some(526));
    assert_eq!(find_hm("P 63/m m c", &c).map(num), Some(194));
    assert_eq!(find_hm("Q 1", &c), None);
    assert_eq!(find_hm("I 21/b 21/c 21/a", &c).map(num), Some(73));
    assert_eq!(find_hm("P 4/m 21/b 2/m", &c).map(num), Some(127));
    assert_eq!(find_hm("P 42/m 2/m 2/c", &c).map(num), Some(131));
    assert_eq!(find_hm("P 4/m 2/m 2/m", &c).map(num), Some(123));
    assert_eq!(reduce_full("p42/m2/m2/c"), "p42/mmc");
    assert_eq!(find_hall("-P 2ybc"), Some((81, None)));
    assert_eq!(find_hall("R 3 -2\""), Some((hall_of("R 3 -2\""), None)));
    assert_eq!(find_hall("P 31 2 (0 0 4)").map(|x| x.0).map(num), Some(151));
    let (h, shift) = find_hall("-P 4 2 3 (1 1 1)").unwrap();
    assert_eq!(num(h), 221);
    assert!(shift.is_some());
    assert_eq!(find_hall("-P 4 2 3 (nan 0 0)"), None);
}

fn hall_of(symbol: &str) -> i32 {
    hall_entries().find(|e| normalize_hall(e.hall_symbol) == normalize_hall(symbol)).unwrap().hall_number
}

#[test]
fn hall_origin_shift_moves_the_inversion_centre() {
    // Inversion at (1/24, 1/24, 1/24) instead of the origin: -x+1/12 for each axis.
    let ops = shifted_operations(2, Some(Vector3::new(1.0, 1.0, 1.0) / 24.0)).unwrap();
    let inv = ops.iter().find(|o| o.rot == -Matrix3::identity()).unwrap();
    assert!((inv.trans - Vector3::repeat(1.0 / 12.0)).norm() < 1e-12);
}

#[test]
fn centred_operations_include_translations() {
    assert_eq!(hall_operations(523).unwrap().len(), 192); // Fm-3m: 48 × 4
    assert_eq!(hall_operations(458).unwrap().len(), 36); // R-3m hexagonal: 12 × 3
    assert_eq!(hall_operations(1).unwrap().len(), 1);
}

#[test]
fn no_symmetry_means_p1() {
    let s = read_one(&format!("data_p1\n{}{SITES_HEAD}Na1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\n", cell(3, 3, 3, 90, 90, 90)));
    assert_eq!(s.n_sites(), 2);
}

#[test]
fn one_third_snapping_merges_hexagonal_images() {
    // 0.3333 / 0.6667 with the P 63/m m c operations: 2 Ni (2a) + 2 As (2c) after snapping.
    let text = format!(
        "data_NiAs\n{}_symmetry_space_group_name_H-M 'P 63/m m c'\n{SITES_HEAD}Ni1 Ni 0 0 0\nAs1 As 0.3333 0.6667 0.25\n",
        cell(3.619, 3.619, 5.034, 90, 90, 120)
    );
    let s = read_one(&text);
    assert_eq!(s.n_sites(), 4);
    assert!(has_site(&s, "As", [2.0 / 3.0, 1.0 / 3.0, 0.75]));
}

#[test]
fn cartesian_coordinates_when_fractional_are_missing() {
    let text = format!(
        "data_c\n{}loop_\n_atom_site_label\n_atom_site_Cartn_x\n_atom_site_Cartn_y\n_atom_site_Cartn_z\nNa1 0 0 0\nCl1 2 3 2.5\n",
        cell(4, 6, 5, 90, 90, 90)
    );
    let s = read_one(&text);
    assert!(has_site(&s, "Cl", [0.5, 0.5, 0.5]));
    // Oblique cell: the fractional result does not depend on the orientation of the Cartesian frame.
    let p = LatticeParams { a: 4.0, b: 5.0, c: 6.0, alpha_deg: 80.0, beta_deg: 95.0, gamma_deg: 110.0 };
    let m = cif_cartesian_to_frac(&p).unwrap().try_inverse().unwrap();
    let f = Vector3::new(0.1, 0.2, 0.3);
    let cart = m * f;
    let text = format!(
        "data_c\n{}loop_\n_atom_site_type_symbol\n_atom_site_Cartn_x\n_atom_site_Cartn_y\n_atom_site_Cartn_z\nO {} {} {}\n",
        cell(4, 5, 6, 80, 95, 110),
        cart[0],
        cart[1],
        cart[2]
    );
    let s = read_one(&text);
    assert!((s.frac_coords()[0] - f).norm() < 1e-9);
    // And the Cartesian frame is a real orthogonalisation: lengths agree.
    assert!(((m * Vector3::new(0.0, 0.0, 1.0)).norm() - 6.0).abs() < 1e-9);
}

#[test]
fn same_species_listed_twice_merges_and_split_sites_add_up() {
    let base = cell(4, 4, 4, 90, 90, 90);
    let s = read_one(&format!("data_d\n{base}{SITES_HEAD}Fe1 Fe 0 0 0\nFe2 Fe 1.00001 0 0\n"));
    assert_eq!(s.n_sites(), 1);
    assert_eq!(s.site_properties["label"][0], "Fe1");
    let head = SITES_HEAD.replace("_fract_z\n", "_fract_z\n_atom_site_occupancy\n");
    let s = read_one(&format!("data_d\n{base}{head}Fe1 Fe 0 0 0 0.5\nFe2 Fe 0 0 0 0.5\n"));
    assert_eq!(s.n_sites(), 1);
    // Two halves of different species are disorder.
    let e = err(&format!("data_d\n{base}{head}Fe1 Fe 0 0 0 0.5\nCo2 Co 0 0 0 0.5\n"));
    assert!(e.contains("share one position"), "{e}");
    // Zero occupancy: nothing there.
    let s = read_one(&format!("data_d\n{base}{head}Fe1 Fe 0 0 0 1\nCo2 Co 0 0 0 0\n"));
    assert_eq!(s.species(), &[el("Fe")]);
}

// ---- occupancies ----

fn partial_text() -> String {
    format!(
        "data_p\n{}loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n_atom_site_occupancy\nFe1 Fe 0 0 0 0.5\nMn1 Mn 0 0 0 0.3\nO1 O 0.5 0.5 0.5 1.0\nCu1 Cu 0.5 0 0 0.75\n",
        cell(4, 4, 4, 90, 90, 90)
    )
}

#[test]
fn partial_occupancy_is_an_error_by_default() {
    let e = err(&partial_text());
    assert!(e.contains("sites \"Fe1\" (Fe, occupancy 0.5) and \"Mn1\" (Mn, occupancy 0.3) share one position"), "{e}");
    assert!(e.contains("--order-partial") && e.contains("line 16, x.cif"), "{e}");
    let single = format!("data_p\n{}{}_atom_site_occupancy\nFe1 Fe 0 0 0 0.5\n", cell(4, 4, 4, 90, 90, 90), SITES_HEAD);
    let e = err(&single);
    assert_eq!(
        e,
        "site \"Fe1\" has occupancy 0.5; Geode stores ordered structures only (`geode convert --order-partial` keeps the majority species) (line 15, x.cif)"
    );
    let over = single.replace("0 0 0 0.5", "0 0 0 1.2(1)");
    assert!(err(&over).contains("occupancy 1.2, expected at most 1"));
    // Close enough to 1 is full.
    assert_eq!(read_one(&single.replace("0 0 0 0.5", "0 0 0 0.99995")).n_sites(), 1);
}

#[test]
fn ordering_keeps_the_majority_species_and_notes_the_rest() {
    let o = CifOptions { order_partial_occupancies: true, ..CifOptions::default() };
    let s = parse(&partial_text(), P, &o).unwrap().remove(0);
    assert_eq!(s.n_sites(), 3);
    assert_eq!(s.species(), &[el("Fe"), el("O"), el("Cu")]);
    let notes = s.properties["cif_ordering_notes"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].as_str().unwrap().contains("kept Fe (occupancy 0.5), dropped Mn \"Mn1\" (occupancy 0.3, line 16)"),
        "{notes:?}"
    );
    assert!(notes[1].as_str().unwrap().contains("\"Cu1\" (line 18): kept Cu with occupancy 0.75"), "{notes:?}");
    assert_eq!(s.site_properties["label"][0], "Fe1");
}

// ---- blocks and properties ----

#[test]
fn multiple_blocks_skip_those_without_atoms() {
    let text = format!(
        "data_global\n_publ_section_title\n;\nA paper\n;\n{}\n{}",
        nacl_asym("_space_group_IT_number 225"),
        nacl_asym("").replace("data_NaCl", "data_second")
    );
    let v = read(&text);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].n_sites(), 8);
    assert_eq!(v[1].n_sites(), 2);
    assert_eq!(v[1].properties["cif_block"], "second");
}

#[test]
fn dotted_tags_and_single_atom_without_loop() {
    let text = "data_x\n_cell.length_a 3\n_cell.length_b 3\n_cell.length_c 3\n_cell.angle_alpha 90\n_cell.angle_beta 90\n_cell.angle_gamma 90\n_atom_site.label Po1\n_atom_site.fract_x 0\n_atom_site.fract_y 0\n_atom_site.fract_z 0\n";
    let s = read_one(text);
    assert_eq!(s.species(), &[el("Po")]);
}

#[test]
fn labels_decide_the_element_without_type_symbols() {
    let text = format!(
        "data_x\n{}loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\nFe2+ 0 0 0\nO1 0.5 0.5 0.5\n'Cl 2' 0.5 0 0\n",
        cell(4, 4, 4, 90, 90, 90)
    );
    let s = read_one(&text);
    assert_eq!(s.species(), &[el("Fe"), el("O"), el("Cl")]);
    assert_eq!(s.site_properties["label"][2], "Cl 2");
}

// ---- errors ----

#[test]
fn error_unterminated_quote_and_text_field() {
    let e = err("data_a\n_cell_length_a 'abc\n");
    assert!(e.contains("unterminated quoted value") && e.contains("line 2"), "{e}");
    let e = err("data_a\n_title\n;some text\nmore\n");
    assert!(e.contains("text field opened with ';' is never closed") && e.contains("line 3"), "{e}");
}

#[test]
fn error_truncated_file() {
    let e = err("data_a\n_cell_length_a 4\n_cell_length_b");
    assert!(e.contains("file ends after tag _cell_length_b, expected its value (line 3"), "{e}");
    let e = err("data_a\n_cell_length_a\n_cell_length_b 4\n");
    assert!(e.contains("tag _cell_length_a is followed by tag _cell_length_b") && e.contains("line 2"), "{e}");
    let e = err("data_a\nloop_\n");
    assert!(e.contains("loop_ is followed by the end of the file") && e.contains("line 2"), "{e}");
    let e = err("");
    assert!(e.contains("no CIF content"), "{e}");
    let e = err("data_a\n_cell_length_a 4\n");
    assert!(e.contains("data_a has no atom sites"), "{e}");
}

#[test]
fn error_missing_loop_values_names_the_loop_line() {
    let text = format!("data_a\n{}{SITES_HEAD}Na1 Na 0 0 0\nCl1 Cl 0.5 0.5\n", cell(4, 4, 4, 90, 90, 90));
    let e = err(&text);
    assert!(
        e.contains(
            "loop with 5 tags (_atom_site_label, _atom_site_type_symbol, _atom_site_fract_x, _atom_site_fract_y, …) has 9 values"
        ),
        "{e}"
    );
    assert!(e.contains("(line 8, x.cif)"), "{e}");
}

#[test]
fn error_non_finite_numbers() {
    let text = nacl_asym("").replace("Cl1 Cl 0.5 0.5 0.5", "Cl1 Cl 0.5 NaN 0.5");
    let e = err(&text);
    assert!(e.contains("_atom_site_fract_y is \"NaN\", expected a finite number (line 16"), "{e}");
    let e = err(&nacl_asym("").replace("_cell_length_b 5.64", "_cell_length_b inf"));
    assert!(e.contains("_cell_length_b is \"inf\"") && e.contains("line 3"), "{e}");
    let e = err(&nacl_asym("").replace("_cell_length_b 5.64", "_cell_length_b 1e999"));
    assert!(e.contains("expected a finite number"), "{e}");
    let e = err(&nacl_asym("").replace("Cl1 Cl 0.5 0.5 0.5", "Cl1 Cl 0.5 abc 0.5"));
    assert!(e.contains("_atom_site_fract_y is \"abc\", expected a number"), "{e}");
}

#[test]
fn error_bad_cells() {
    let e = err(&nacl_asym("").replace("_cell_length_c 5.64", "_cell_length_c -1"));
    assert!(e.contains("cell length _cell_length_c = -1 Å, expected a positive length (line 4"), "{e}");
    let e = err(&nacl_asym("").replace("_cell_length_a 5.64", "_cell_length_a 0"));
    assert!(e.contains("_cell_length_a = 0 Å"), "{e}");
    let bad = nacl_asym("")
        .replace("_cell_angle_alpha 90", "_cell_angle_alpha 120")
        .replace("_cell_angle_beta 90", "_cell_angle_beta 120")
        .replace("_cell_angle_gamma 90", "_cell_angle_gamma 120");
    let e = err(&bad);
    assert!(e.contains("give a cell of zero volume") && e.contains("line 7"), "{e}");
    let e = err(&nacl_asym("").replace("_cell_angle_beta 90", "_cell_angle_beta 180"));
    assert!(e.contains("_cell_angle_beta = 180°") && e.contains("line 6"), "{e}");
    let e = err(&nacl_asym("")
        .replace("_cell_angle_alpha 90", "_cell_angle_alpha 10")
        .replace("_cell_angle_beta 90", "_cell_angle_beta 10"));
    assert!(e.contains("zero volume"), "{e}");
}

#[test]
fn error_missing_cell_tags() {
    let e = err(&nacl_asym("").replace("_cell_length_b 5.64\n", ""));
    assert!(e.contains("_cell_length_b is missing in data_NaCl") && e.contains("line 1"), "{e}");
    let no_cell = format!("data_a\n{SITES_HEAD}Na1 Na 0 0 0\n");
    let e = err(&no_cell);
    assert!(e.contains("data_a has atom sites but no _cell_length_a/b/c") && e.contains("line 1"), "{e}");
    let e = err(&nacl_asym("").replace("_cell_length_a 5.64", "_cell_length_a ?"));
    assert!(e.contains("_cell_length_a is unknown"), "{e}");
    // Missing angles take the dictionary default of 90°.
    let s = read_one(&nacl_asym("").replace("_cell_angle_gamma 90\n", ""));
    assert!((s.lattice.params().gamma_deg - 90.0).abs() < 1e-9);
}

#[test]
fn error_missing_coordinates() {
    let text = format!("data_a\n{}loop_\n_atom_site_label\n_atom_site_occupancy\nNa1 1\n", cell(4, 4, 4, 90, 90, 90));
    let e = err(&text);
    assert!(e.contains("atom sites in data_a have no coordinates") && e.contains("line 8"), "{e}");
    let text = format!(
        "data_a\n{}loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\nNa1 0 0\n",
        cell(4, 4, 4, 90, 90, 90)
    );
    let e = err(&text);
    assert!(e.contains("no _atom_site_fract_z column") && e.contains("line 8"), "{e}");
    let e = err(&nacl_asym("").replace("Cl1 Cl 0.5 0.5 0.5", "Cl1 Cl 0.5 ? 0.5"));
    assert!(e.contains("site \"Cl1\" has _atom_site_fract_y = \"?\", expected a number (line 16"), "{e}");
}

#[test]
fn error_unknown_element_names_label_and_line() {
    let text = format!("data_bad\n{}{SITES_HEAD}Na1 Na 0 0 0\nQ1 Qq 0.5 0.5 0.5\n", cell(4, 4, 4, 90, 90, 90));
    let e = err(&text);
    assert_eq!(
        e,
        "unknown element in site \"Q1\" (type symbol \"Qq\"), expected an element symbol such as Fe or O2- (line 15, x.cif)"
    );
}

#[test]
fn error_bad_symmetry() {
    let text = nacl_asym("loop_\n_symmetry_equiv_pos_as_xyz\n'x,y,z'\n'x,y'\n");
    let e = err(&text);
    assert!(e.contains("symmetry operation \"x,y\" has 2 comma-separated parts") && e.contains("line 11"), "{e}");
    let e = err(&nacl_asym("_symmetry_space_group_name_H-M 'X 99'"));
    assert!(e.contains("unknown space group Hermann-Mauguin symbol \"X 99\"") && e.contains("line 8"), "{e}");
    let e = err(&nacl_asym("_space_group_IT_number 231"));
    assert!(e.contains("space group number 231, expected an integer from 1 to 230"), "{e}");
    // An unknown Hall symbol falls back to a known H-M symbol.
    let s = read_one(&nacl_asym("_space_group_name_Hall 'weird'\n_space_group_name_H-M_alt 'F m -3 m'"));
    assert_eq!(s.n_sites(), 8);
}

#[test]
fn error_control_characters_and_stray_values() {
    let e = err("data_a\n_cell_length_a 4\u{1}\n");
    assert!(e.contains("control character U+0001") && e.contains("line 2"), "{e}");
    let e = err("\u{0}\u{7f}garbage");
    assert!(e.contains("control character"), "{e}");
    let e = err("data_a\n_cell_length_a 4 5\n");
    assert!(e.contains("value \"5\" does not follow a tag") && e.contains("line 2"), "{e}");
}

#[test]
fn accepts_bom_crlf_cr_and_utf8_text() {
    let text = nacl_asym("_space_group_IT_number 225")
        .replace("data_NaCl\n", "data_NaCl\n_publ_author_name 'Schönfeld, Å.' # ü\n");
    assert_eq!(read_one(&format!("\u{feff}{text}")).n_sites(), 8);
    assert_eq!(read_one(&text.replace('\n', "\r\n")).n_sites(), 8);
    assert_eq!(read_one(&text.replace('\n', "\r")).n_sites(), 8);
    let with_field = text.replace("data_NaCl\n", "data_NaCl\n_title\n;\nü\n;\n");
    assert_eq!(read_one(&with_field.replace('\n', "\r\n")).n_sites(), 8);
}

#[test]
fn never_panics_on_mutated_files() {
    let (text, _) = asset("quoted_labels_uncertainties.cif");
    let chars: Vec<char> = text.chars().collect();
    for i in (0..chars.len()).step_by(3) {
        for c in ['\'', '"', ';', '_', '#', '\n', '.'] {
            let mut m = chars.clone();
            m[i] = c;
            let t: String = m.into_iter().collect();
            let _ = parse(&t, P, &opts());
        }
    }
}

#[test]
fn never_panics_on_prefixes_of_a_valid_file() {
    let full = write(&read_one(&nacl_asym("_space_group_IT_number 225")), "NaCl");
    let text = format!("{}\n{}", nacl_asym("_symmetry_space_group_name_H-M 'F m -3 m'"), full);
    for (i, _) in text.char_indices() {
        let _ = parse(&text[..i], P, &opts());
    }
}

// ---- writer ----

fn sample() -> Structure {
    let l = Lattice::from_parameters(LatticeParams {
        a: 3.1,
        b: 4.2,
        c: 5.3,
        alpha_deg: 81.0,
        beta_deg: 97.0,
        gamma_deg: 105.5,
    })
    .unwrap();
    Structure::from_frac(
        l,
        vec![el("Fe"), el("O"), el("O"), el("Li")],
        vec![
            Vector3::new(0.0, 0.0, 0.0),
            Vector3::new(0.123456789012, 0.987654321098, 0.5),
            Vector3::new(1.25, -0.1, 0.999999999),
            Vector3::new(0.3, 0.7, 0.1),
        ],
    )
    .unwrap()
}

#[test]
fn writer_layout_like_pymatgen() {
    let text = write(&sample(), "my block");
    assert!(text.contains("data_my_block\n"));
    assert!(text.contains("_symmetry_space_group_name_H-M   'P 1'\n"));
    assert!(text.contains("_cell_length_a   3.10000000\n"));
    assert!(text.contains("_cell_angle_gamma   105.50000000\n"));
    assert!(text.contains("_symmetry_Int_Tables_number   1\n"));
    assert!(text.contains("_chemical_formula_structural   LiFeO2\n"), "{text}");
    assert!(text.contains("_chemical_formula_sum   'Li1 Fe1 O2'\n"), "{text}");
    assert!(text.contains("_cell_formula_units_Z   1\n"));
    assert!(text.contains("  1  'x, y, z'\n"));
    assert!(text.contains("  Fe  Fe0  1  0.0000000000  0.0000000000  0.0000000000  1\n"), "{text}");
    assert!(text.contains("  O  O2  1  0.2500000000  0.9000000000  0.9999999990  1\n"), "{text}");
}

#[test]
fn read_back_our_own_output() {
    let s = sample();
    let text = write(&s, "sample");
    let r = read_one(&text);
    assert_eq!(r.species(), s.species());
    let (p, q) = (s.lattice.params(), r.lattice.params());
    for (x, y) in [
        (p.a, q.a),
        (p.b, q.b),
        (p.c, q.c),
        (p.alpha_deg, q.alpha_deg),
        (p.beta_deg, q.beta_deg),
        (p.gamma_deg, q.gamma_deg),
    ] {
        assert!((x - y).abs() < 1e-8, "{x} vs {y}");
    }
    // Same lattice vectors (pymatgen orientation on both sides) and positions to 1e-6 Å.
    for (a, b) in s.lattice.row_vectors().iter().zip(r.lattice.row_vectors().iter()) {
        for k in 0..3 {
            assert!((a[k] - b[k]).abs() < 1e-6);
        }
    }
    for (f, g) in s.wrapped().cart_coords().iter().zip(r.cart_coords()) {
        assert!((f - g).norm() < 1e-6, "{f} vs {g}");
    }
    assert_eq!(r.site_properties["label"], vec![Json::from("Fe0"), "O1".into(), "O2".into(), "Li3".into()]);
    assert_eq!(r.properties["cif_block"], "sample");
    // Labels read from a file are written back unchanged, and the text is stable.
    let again = write(&r, "sample");
    assert_eq!(write(&read_one(&again), "sample"), again);
    // Non-unique labels fall back to generated ones.
    let mut t = s.clone();
    t.site_properties.insert("label".into(), vec!["A".into(), "A".into(), "B".into(), "C".into()]);
    assert!(write(&t, "x").contains("  Fe  Fe0  1"));
}

#[test]
fn read_back_symmetrised_structures() {
    let s = read_one(&bi2te3("R -3 m", &cell(4.386, 4.386, 30.497, 90, 90, 120)));
    let r = read_one(&write(&s, "Bi2Te3"));
    assert_eq!(r.n_sites(), 15);
    for (f, g) in s.frac_coords().iter().zip(r.frac_coords()) {
        assert!(same_position(f, g, 1e-9));
    }
    assert!(
        write(&s, "x")
            .contains("_chemical_formula_structural   Bi2Te3\n_chemical_formula_sum   'Bi6 Te9'\n_cell_volume")
    );
    assert!(write(&s, "x").contains("_cell_formula_units_Z   3\n"));
}

#[test]
fn value_quoting() {
    assert_eq!(cif_value("Fe1"), "Fe1");
    assert_eq!(cif_value("Fe 1"), "'Fe 1'");
    assert_eq!(cif_value("a' b"), "\"a' b\"");
    assert_eq!(cif_value("?"), "'?'");
    assert_eq!(cif_value("_x"), "'_x'");
    assert_eq!(cif_value("data_x"), "'data_x'");
    assert_eq!(fixed(-1e-12, 10), "0.0000000000");
}

/// Writes sample CIFs and the values they hold to `target/cif-roundtrip/` for
/// `scripts/check_cif_roundtrip.py` (pymatgen and ASE read-back), and reads them back itself.
#[test]
fn write_roundtrip_samples() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("cif-roundtrip");
    std::fs::create_dir_all(&dir).unwrap();
    let mut samples: Vec<(String, Structure)> = vec![("triclinic_LiFeO2".into(), sample())];
    samples.push(("NaCl_Fm-3m".into(), read_one(&nacl_asym("_space_group_IT_number 225"))));
    samples.push(("Bi2Te3_R-3m".into(), read_one(&bi2te3("R -3 m", &cell(4.386, 4.386, 30.497, 90, 90, 120)))));
    let rutile = format!(
        "data_rutile\n{}_symmetry_space_group_name_H-M 'P 42/m n m'\n{SITES_HEAD}Ti1 Ti 0 0 0\nO1 O 0.3053 0.3053 0\n",
        cell(4.5937, 4.5937, 2.9587, 90, 90, 90)
    );
    samples.push(("TiO2_rutile".into(), read_one(&rutile)));
    let mono = format!(
        "data_mono\n{}_symmetry_space_group_name_H-M 'P 21/c'\n{SITES_HEAD}Zr1 Zr 0.2754 0.0395 0.2083\nO1 O 0.0700 0.3317 0.3447\nO2 O 0.4496 0.7569 0.4792\n",
        cell(5.1505, 5.2116, 5.3173, 90, 99.23, 90)
    );
    samples.push(("ZrO2_P21c".into(), read_one(&mono)));
    for (name, s) in &samples {
        std::fs::write(dir.join(format!("{name}.cif")), write(s, name)).unwrap();
        let w = s.wrapped();
        let p = s.lattice.params();
        let expected = serde_json::json!({
            "abc": [p.a, p.b, p.c],
            "angles": [p.alpha_deg, p.beta_deg, p.gamma_deg],
            "matrix": s.lattice.row_vectors(),
            "species": s.species().iter().map(|e| e.symbol()).collect::<Vec<_>>(),
            "frac_coords": w.frac_coords().iter().map(|f| [f[0], f[1], f[2]]).collect::<Vec<_>>(),
        });
        std::fs::write(dir.join(format!("{name}.json")), serde_json::to_string_pretty(&expected).unwrap()).unwrap();
        // Geode reads its own file back to the same cell and sites.
        let back = crate::io::read_structures(&dir.join(format!("{name}.cif"))).unwrap();
        let b = back[0].wrapped();
        let q = b.lattice.params();
        assert_eq!(b.species(), w.species(), "{name}");
        for (x, y) in [(p.a, q.a), (p.b, q.b), (p.c, q.c), (p.alpha_deg, q.alpha_deg), (p.gamma_deg, q.gamma_deg)] {
            assert!((x - y).abs() < 1e-6, "{name}: {x} vs {y}");
        }
        for (f, g) in w.frac_coords().iter().zip(b.frac_coords()) {
            let d = (f - g).map(|x| x - x.round());
            assert!(d.norm() < 1e-6, "{name}: {f:?} vs {g:?}");
        }
    }
}

// ---- test assets ----

fn asset(name: &str) -> (String, String) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/cif").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (text, path.display().to_string())
}

fn read_asset(name: &str) -> Vec<Structure> {
    let (text, path) = asset(name);
    parse(&text, &path, &opts()).unwrap_or_else(|e| panic!("{e}"))
}

fn formula(s: &Structure) -> String {
    s.composition().formula()
}

#[test]
fn asset_multi_block_text_fields() {
    let v = read_asset("multi_block_text_fields.cif");
    assert_eq!(v.len(), 2);
    assert_eq!(formula(&v[0]), "Na4 Cl4");
    assert_eq!(v[0].properties["cif_block"], "NaCl");
    assert!(has_site(&v[0], "Cl", [0.0, 0.5, 0.0]));
    assert_eq!(formula(&v[1]), "Cs1 Cl1");
    assert_eq!(v[1].properties["cif_block"], "CsCl");
    assert!(has_site(&v[1], "Cl", [0.5, 0.5, 0.5]));
    assert!((v[0].lattice.params().a - 5.6402).abs() < 1e-12);
}

#[test]
fn asset_quoted_labels_uncertainties() {
    let s = read_asset("quoted_labels_uncertainties.cif").remove(0);
    assert_eq!(formula(&s), "Ti2 O4");
    assert!(has_site(&s, "O", [0.1947, 0.8053, 0.5]));
    let labels: Vec<&str> = s.site_properties["label"].iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(labels, ["Ti 1", "Ti 1", "O 'a'", "O 'a'", "O 'a'", "O 'a'"]);
    // Labels with spaces are written under generated names, quoted ones never break the file.
    let text = write(&s, "rutile");
    assert!(text.contains("  Ti  Ti0  1"));
    assert_eq!(read_one(&text).n_sites(), 6);
}

#[test]
fn asset_ops_with_id_mixed_styles() {
    let s = read_asset("ops_with_id_mixed_styles.cif").remove(0);
    assert_eq!(formula(&s), "Al12 O18");
    // The same crystal from its Hall symbol alone.
    let h = read_asset("hall_only_corundum.cif").remove(0);
    assert_eq!(formula(&h), "Al12 O18");
    for (e, f) in h.species().iter().zip(h.frac_coords()) {
        assert!(has_site(&s, e.symbol(), [f[0], f[1], f[2]]), "{e} at {f}");
    }
}

#[test]
fn asset_hm_only_origin_choice() {
    let s = read_asset("hm_only_origin_choice.cif").remove(0);
    assert_eq!(formula(&s), "Si8");
    assert!(has_site(&s, "Si", [0.875, 0.375, 0.375]));
    // Nearest neighbours at a√3/4: the diamond structure, not two interpenetrating copies.
    let d = (0..s.n_sites())
        .flat_map(|j| (0..j).map(move |i| (i, j)))
        .map(|(i, j)| s.distance(i, j))
        .fold(f64::MAX, f64::min);
    assert!((d - 5.4309 * 3f64.sqrt() / 4.0).abs() < 1e-6, "{d}");
}

#[test]
fn asset_partial_occupancy() {
    let (text, path) = asset("partial_occupancy.cif");
    let e = parse(&text, &path, &opts()).unwrap_err().to_string();
    assert!(e.contains("sites \"Fe1\" (Fe, occupancy 0.6) and \"Mn1\" (Mn, occupancy 0.4) share one position"), "{e}");
    assert!(e.contains("(line 20, "), "{e}");
    let o = CifOptions { order_partial_occupancies: true, ..CifOptions::default() };
    let s = parse(&text, &path, &o).unwrap().remove(0);
    assert_eq!(formula(&s), "Fe4 O4");
    let notes: Vec<&str> =
        s.properties["cif_ordering_notes"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("dropped Mn"), "{notes:?}");
    assert!(notes[1].contains("\"O1\" (line 21): kept O with occupancy 0.95"), "{notes:?}");
}

#[test]
fn asset_rhombohedral_it_number() {
    let s = read_asset("rhombohedral_it_number.cif").remove(0);
    assert_eq!(formula(&s), "Bi2 Te3");
    assert!(has_site(&s, "Bi", [0.5999, 0.5999, 0.5999]));
}

#[test]
fn asset_cartesian_dotted_tags() {
    let s = read_asset("cartesian_dotted_tags.cif").remove(0);
    assert_eq!(s.species(), &[el("Cs"), el("Cl")]);
    assert!(has_site(&s, "Cl", [0.5, 0.5, 0.5]));
    assert_eq!(s.site_properties["label"][1], "Cl");
}

#[test]
fn asset_cod_minerals() {
    let s = read_asset("cod_9007661_MoS2_3R.cif").remove(0);
    assert_eq!(formula(&s), "Mo3 S6");
    assert_eq!(s.properties["cif_block"], "9007661");
    let s = read_asset("cod_9017338_cristobalite.cif").remove(0);
    assert_eq!(formula(&s), "Si4 O8");
    // Operations removed: the Hall symbol, then the H-M symbol, then the number give the same sites.
    let (text, path) = asset("cod_9017338_cristobalite.cif");
    let no_ops = text.replace("_space_group_symop_operation_xyz", "_geode_removed");
    let no_hall = no_ops.replace("_space_group_name_Hall", "_geode_removed_hall");
    let no_hm = no_hall
        .replace("_space_group_name_H-M_alt", "_geode_x1")
        .replace("_symmetry_space_group_name_H-M", "_geode_x2");
    for variant in [no_ops, no_hall, no_hm] {
        let t = parse(&variant, &path, &opts()).unwrap().remove(0);
        assert_eq!(t.n_sites(), 12);
        for (e, f) in t.species().iter().zip(t.frac_coords()) {
            assert!(has_site(&s, e.symbol(), [f[0], f[1], f[2]]));
        }
    }
}

#[test]
fn every_asset_is_listed_in_the_readme() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/cif");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".cif") {
            n += 1;
            assert!(readme.contains(&name), "{name} is not in tests/assets/cif/README.md");
        }
    }
    assert!(n >= 6);
}
