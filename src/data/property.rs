//! The one registry of property names: every name a candidate can carry, a filter (`--where`), a sort
//! key (`--sort`), a screening constraint or objective, an evolution objective or a generation target
//! may use, with its unit and meaning. An unknown name is an error that offers the closest known names
//! (`bandgap` → `band_gap`), so a misspelling is never read as "no such value" and silently matches
//! nothing.
//!
//! Names come in three places ([`Place`]): columns of the candidate row (`formula`, `n_sites`, …),
//! numeric properties stored per candidate (`band_gap`, `e_above_hull`, …; mean and σ), and the user's
//! annotations (`favourite`, `tag`).

use std::fmt;

/// What kind of value a property holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A real number in the property's unit.
    Real,
    /// A whole number (counts, ids, space-group numbers).
    Integer,
    /// 1 for yes, 0 for no.
    Flag,
    /// Text, compared with `=` / `!=` to a quoted value.
    Text,
}

/// Where a property lives in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A column of the candidate row.
    Column,
    /// A stored numeric property (value and optional σ) of the candidate.
    Stored,
    /// The user's annotation of the candidate.
    Annotation,
}

/// One registered property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property {
    pub name: &'static str,
    /// The unit values are stored and compared in (`""` for pure numbers and text).
    pub unit: &'static str,
    pub kind: Kind,
    pub place: Place,
    pub description: &'static str,
}

impl Property {
    pub fn is_numeric(&self) -> bool {
        self.kind != Kind::Text
    }
}

const fn p(name: &'static str, unit: &'static str, kind: Kind, place: Place, description: &'static str) -> Property {
    Property { name, unit, kind, place, description }
}

use Kind::{Flag, Integer, Real, Text};
use Place::{Annotation, Column, Stored};

/// Every property name Geode knows, in the order `geode properties` lists them.
pub const PROPERTIES: &[Property] = &[
    // The candidate row.
    p("id", "", Integer, Column, "candidate id in the project"),
    p("run_id", "", Integer, Column, "the run that made the candidate"),
    p("seq", "", Integer, Column, "position of the candidate in its run's output"),
    p("n_sites", "", Integer, Column, "atoms in the stored cell"),
    p("formula", "", Text, Column, "reduced formula, pymatgen order (e.g. 'LiFePO4')"),
    p("chemical_system", "", Text, Column, "elements joined by '-', alphabetical (e.g. 'Fe-Li-O-P')"),
    p("stage", "", Text, Column, "how far the candidate got (e.g. 'passed', 'individual', 'relaxed')"),
    p("source", "", Text, Column, "where it came from (template, dataset entry, input file)"),
    // Annotations.
    p("favourite", "", Flag, Annotation, "marked as a favourite"),
    p("tag", "", Text, Annotation, "one of the candidate's tags (`tag = 'x'` or `has_tag('x')`)"),
    // Properties of materials.
    p("formation_energy_per_atom", "eV/atom", Real, Stored, "formation energy ΔH_f (DFT or predicted, with σ)"),
    p("band_gap", "eV", Real, Stored, "band gap (DFT or predicted, with σ)"),
    p("e_above_hull", "eV/atom", Real, Stored, "energy above the convex hull (0 on it, negative below)"),
    p("e_above_hull_upper", "eV/atom", Real, Stored, "energy above the hull at the prediction's upper bound"),
    p("formation_energy_per_atom_composition", "eV/atom", Real, Stored, "formation energy by the composition model"),
    p("band_gap_composition", "eV", Real, Stored, "band gap by the composition model"),
    p("head_formation_energy_per_atom", "eV/atom", Real, Stored, "the generator's own head for ΔH_f at the code"),
    p("head_band_gap", "eV", Real, Stored, "the generator's own head for the band gap at the code"),
    p("density", "g/cm³", Real, Stored, "mass density"),
    p("volume_per_atom", "Å³/atom", Real, Stored, "cell volume per atom"),
    p("min_distance", "Å", Real, Stored, "shortest interatomic distance"),
    p("space_group", "", Integer, Stored, "international space-group number (1-230)"),
    p("n_atoms", "", Integer, Stored, "atoms in the enumerated cell"),
    // Energies from a potential.
    p("energy", "eV", Real, Stored, "total energy from the potential"),
    p("energy_per_atom", "eV/atom", Real, Stored, "energy per atom from the potential"),
    p("initial_energy_per_atom", "eV/atom", Real, Stored, "energy per atom before relaxation"),
    p("relaxed_energy_per_atom", "eV/atom", Real, Stored, "energy per atom after relaxation"),
    p(
        "relaxed_e_above_hull",
        "eV/atom",
        Real,
        Stored,
        "energy above the hull after relaxation (the complete OQMD hull by default; `hull = \"potential\"`: the potential's own)",
    ),
    p(
        "relaxed_formation_energy_per_atom",
        "eV/atom",
        Real,
        Stored,
        "formation energy after relaxation on the hull's scale (OQMD's by default)",
    ),
    p("fmax", "eV/Å", Real, Stored, "largest force on an atom"),
    p("pressure_gpa", "GPa", Real, Stored, "pressure, −trace(σ)/3"),
    p("steps", "", Integer, Stored, "relaxation steps taken"),
    p("relax_steps", "", Integer, Stored, "relaxation steps taken"),
    p("step", "", Integer, Stored, "relaxation step of a trajectory frame"),
    p("converged", "", Flag, Stored, "the relaxation reached fmax"),
    p("relax_converged", "", Flag, Stored, "the relaxation reached fmax"),
    // Screening, search and generation.
    p("valid", "", Flag, Stored, "structurally valid (no atoms closer than 0.5 Å)"),
    p("structurally_valid", "", Flag, Stored, "no atoms closer than 0.5 Å, volume ≥ 0.1 Å³/atom"),
    p("compositionally_valid", "", Flag, Stored, "charge-balanced by SMACT's rules"),
    p("novel", "", Flag, Stored, "no match in the training set"),
    p("substitution_probability", "", Real, Stored, "Hautier substitution probability of the template swap"),
    p("p_constraints", "", Real, Stored, "probability that every constraint holds (0-1)"),
    p("pareto_rank", "", Integer, Stored, "non-dominated front (0 = Pareto front)"),
    p("crowding_distance", "", Real, Stored, "NSGA-II crowding distance within the front"),
    p("distance_to_target", "", Real, Stored, "distance of the prediction to the target window (target's unit)"),
    p("generation", "", Integer, Stored, "evolution generation of the individual"),
    p("fitness", "", Real, Stored, "the first objective's cost (lower is better)"),
    p("duplicate_of", "", Integer, Stored, "sequence number of the individual this one duplicates"),
    p(
        "out_of_domain",
        "",
        Flag,
        Stored,
        "outside a property model's domain of applicability (far from its training data in its representation)",
    ),
];

/// Properties registered while the program runs: the targets of a user's models (read from their cards)
/// and those a project's runs stored (read when the project opens). Each is leaked once, so a name
/// registered twice is one `&'static Property`.
static USER: std::sync::RwLock<Vec<&'static Property>> = std::sync::RwLock::new(Vec::new());

/// Every registered property: the built-in ones, then those registered since the program started.
pub fn all() -> Vec<&'static Property> {
    let user = USER.read().unwrap_or_else(|e| e.into_inner());
    PROPERTIES.iter().chain(user.iter().copied()).collect()
}

/// The user property (registered at run time, not built in) of this name.
pub fn user(name: &str) -> Option<&'static Property> {
    USER.read().unwrap_or_else(|e| e.into_inner()).iter().find(|p| p.name == name).copied()
}

/// True for a name a user may give a property: 1–64 characters of `a-z`, `0-9` and `_`, starting with a
/// letter (so it can stand in `--where` and in TOML without quoting).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Register a user property (a model's target) as a stored real number. A built-in or earlier name with
/// the same unit is returned as it is; the same name with another unit, or a name that is not
/// [`valid_name`], is refused with a message that says why.
pub fn register(name: &str, unit: &str, description: &str) -> Result<&'static Property, String> {
    if !valid_name(name) {
        return Err(format!(
            "property name {name:?}: expected 1-64 characters of a-z, 0-9 and _, starting with a letter"
        ));
    }
    let same = |p: &Property| {
        if p.unit == unit {
            Ok(())
        } else {
            Err(format!(
                "property {name:?} is already known with unit {:?}, not {unit:?}",
                if p.unit.is_empty() { "(none)" } else { p.unit }
            ))
        }
    };
    if let Some(p) = PROPERTIES.iter().find(|p| p.name == name) {
        if p.place != Place::Stored || !p.is_numeric() {
            return Err(format!("{name:?} is a built-in {} name, not a property a model may predict", place_word(p)));
        }
        return same(p).map(|_| p);
    }
    let mut user = USER.write().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = user.iter().find(|p| p.name == name) {
        return same(p).map(|_| *p);
    }
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    let p: &'static Property = Box::leak(Box::new(Property {
        name: leak(name),
        unit: leak(unit),
        kind: Kind::Real,
        place: Place::Stored,
        description: leak(if description.is_empty() { "a user model's target" } else { description }),
    }));
    user.push(p);
    Ok(p)
}

fn place_word(p: &Property) -> &'static str {
    match p.place {
        Place::Column => "candidate column",
        Place::Annotation => "annotation",
        Place::Stored => "property",
    }
}

/// An unknown property name, with the closest known names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProperty {
    pub name: String,
    pub suggestions: Vec<&'static str>,
}

impl fmt::Display for UnknownProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown property {:?}", self.name)?;
        match self.suggestions.as_slice() {
            [] => write!(f, " (`geode properties` lists every name)"),
            [one] => write!(f, " (did you mean {one}?)"),
            many => write!(f, " (did you mean one of {}?)", many.join(", ")),
        }
    }
}

impl std::error::Error for UnknownProperty {}

/// The registered property of this exact name.
pub fn lookup(name: &str) -> Result<&'static Property, UnknownProperty> {
    if let Some(p) = PROPERTIES.iter().find(|p| p.name == name) {
        return Ok(p);
    }
    let all = all();
    all.iter().find(|p| p.name == name).copied().ok_or_else(|| UnknownProperty {
        name: name.to_string(),
        suggestions: closest(name, all.iter().map(|p| p.name)),
    })
}

/// Up to three of `known` closest to `name`: the same letters apart from case, `_`, `-` and spaces
/// first, then by edit distance (at most a third of the name's length, at least 2), then names that
/// contain it or that it contains.
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let fold =
        |s: &str| s.chars().filter(|c| !matches!(c, '_' | '-' | ' ')).flat_map(char::to_lowercase).collect::<String>();
    let target = fold(name);
    if target.is_empty() {
        return Vec::new();
    }
    let limit = (target.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &'a str)> = known
        .into_iter()
        .filter_map(|k| {
            let f = fold(k);
            if f == target {
                return Some((0, k));
            }
            let d = strsim::damerau_levenshtein(&f, &target);
            if d <= limit {
                Some((d, k))
            } else if target.len() >= 3 && (f.contains(&target) || (f.len() >= 4 && target.contains(&f))) {
                Some((limit + 1 + f.len().abs_diff(target.len()), k))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    // Only the nearest (and names one step further): `bandgap` is `band_gap`, not also `head_band_gap`.
    let best = scored.first().map_or(0, |s| s.0);
    scored.into_iter().filter(|(d, _)| *d <= best + 1).take(3).map(|(_, k)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_snake_case() {
        let mut names: Vec<&str> = PROPERTIES.iter().map(|p| p.name).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')));
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a property is registered twice");
    }

    #[test]
    fn misspellings_get_the_right_suggestion() {
        assert_eq!(lookup("band_gap").unwrap().unit, "eV");
        let e = lookup("bandgap").unwrap_err();
        assert_eq!(e.suggestions.first(), Some(&"band_gap"));
        assert!(e.to_string().contains("did you mean band_gap?"), "{e}");
        assert_eq!(lookup("e_above_hul").unwrap_err().suggestions.first(), Some(&"e_above_hull"));
        assert_eq!(lookup("Band_Gap").unwrap_err().suggestions.first(), Some(&"band_gap"));
        assert_eq!(lookup("formation_energy").unwrap_err().suggestions.first(), Some(&"formation_energy_per_atom"));
        assert!(lookup("hull").unwrap_err().suggestions.contains(&"e_above_hull"));
        let none = lookup("zzzzzzzz").unwrap_err();
        assert!(none.suggestions.is_empty());
    }

    #[test]
    fn user_properties_join_the_registry_once() {
        let p = register("refractive_index_test", "", "refractive index n").unwrap();
        assert!(std::ptr::eq(p, register("refractive_index_test", "", "").unwrap()));
        assert_eq!(lookup("refractive_index_test").unwrap().description, "refractive index n");
        assert_eq!(lookup("refractive_index_tset").unwrap_err().suggestions, vec!["refractive_index_test"]);
        assert!(register("refractive_index_test", "eV", "").unwrap_err().contains("already known"));
        assert!(std::ptr::eq(register("band_gap", "eV", "").unwrap(), lookup("band_gap").unwrap()));
        assert!(register("band_gap", "meV", "").is_err());
        assert!(register("formula", "", "").unwrap_err().contains("candidate column"));
        assert!(register("Bulk Modulus", "GPa", "").is_err());
        assert!(all().iter().any(|p| p.name == "refractive_index_test"));
        let none = lookup("zzzzzzzz").unwrap_err();
        assert!(none.suggestions.is_empty());
        assert!(none.to_string().contains("geode properties"));
    }
}
