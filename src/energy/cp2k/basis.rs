//! Which GTH pseudopotential and MOLOPT basis set each element gets, read from CP2K's own data files
//! (Debian's `cp2k-data`: `GTH_POTENTIALS`, `BASIS_MOLOPT`, `BASIS_MOLOPT_UZH`).
//!
//! An element's pseudopotential is `GTH-PBE-q<N>` (the file's default entry, the one aliased `GTH-PBE`),
//! and its basis the first of the chosen family with the same valence N: `<F>-MOLOPT-SR-GTH-q<N>`
//! (short-range, `BASIS_MOLOPT`), `<F>-MOLOPT-PBE-GTH-q<N>` (`BASIS_MOLOPT_UZH`), `<F>-MOLOPT-GTH-q<N>`.
//! Elements with no such pair are unsupported and named in the error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::crystal::Element;

/// The basis-set files the input names (in CP2K's data directory).
pub const BASIS_FILES: [&str; 2] = ["BASIS_MOLOPT", "BASIS_MOLOPT_UZH"];
/// The pseudopotential file.
pub const POTENTIAL_FILE: &str = "GTH_POTENTIALS";

/// One element's pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindChoice {
    /// e.g. `DZVP-MOLOPT-SR-GTH-q4`.
    pub basis: String,
    /// e.g. `GTH-PBE-q4`.
    pub potential: String,
    /// Valence electrons of the pseudopotential.
    pub valence: u32,
}

/// The per-element choices for one basis family (`DZVP`, `TZVP`, `TZV2P`).
#[derive(Debug, Clone)]
pub struct BasisTable {
    pub data_dir: PathBuf,
    pub family: String,
    kinds: BTreeMap<String, KindChoice>,
}

/// Names defined in a CP2K data file, per element: every name on an entry's header line (`El NAME [ALIAS…]`).
fn names(path: &Path) -> Result<BTreeMap<String, Vec<Vec<String>>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for line in text.lines() {
        let t = line.trim();
        let mut words = t.split_whitespace();
        let (Some(el), Some(first)) = (words.next(), words.next()) else { continue };
        // Header lines start with an element symbol followed by a name holding letters (data lines are numbers).
        if Element::from_symbol(el).is_err() || !first.chars().any(|c| c.is_ascii_alphabetic()) {
            continue;
        }
        let mut all = vec![first.to_string()];
        all.extend(words.map(str::to_string));
        out.entry(el.to_string()).or_default().push(all);
    }
    Ok(out)
}

/// The valence of a `…-q<N>` name.
fn valence_of(name: &str) -> Option<u32> {
    name.rsplit_once("-q").and_then(|(_, n)| n.parse().ok())
}

impl BasisTable {
    /// Read the data files in `data_dir` for the basis family `family` (`DZVP`, `TZVP`, `TZV2P`).
    pub fn load(data_dir: &Path, family: &str) -> Result<BasisTable, String> {
        let potentials = names(&data_dir.join(POTENTIAL_FILE))?;
        let mut bases: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for f in BASIS_FILES {
            let p = data_dir.join(f);
            if p.is_file() {
                for (el, entries) in names(&p)? {
                    bases.entry(el).or_default().extend(entries);
                }
            }
        }
        let family = family.to_ascii_uppercase();
        let patterns = [
            format!("{family}-MOLOPT-SR-GTH-q"),
            format!("{family}-MOLOPT-PBE-GTH-q"),
            format!("{family}-MOLOPT-GTH-q"),
        ];
        let mut kinds = BTreeMap::new();
        for (el, entries) in &potentials {
            // The default PBE potential: the entry aliased plain `GTH-PBE`, else the first GTH-PBE-qN.
            let pbe: Vec<&String> =
                entries.iter().filter_map(|names| names.iter().find(|n| n.starts_with("GTH-PBE-q"))).collect();
            let default = entries
                .iter()
                .find(|names| names.iter().any(|n| n == "GTH-PBE"))
                .and_then(|names| names.iter().find(|n| n.starts_with("GTH-PBE-q")));
            let mut order: Vec<&String> = default.into_iter().collect();
            order.extend(pbe.into_iter().filter(|p| Some(*p) != default));
            let el_bases: Vec<&String> = bases.get(el).map(|v| v.iter().flatten().collect()).unwrap_or_default();
            'pot: for pot in order {
                let Some(q) = valence_of(pot) else { continue };
                for pat in &patterns {
                    let want = format!("{pat}{q}");
                    if el_bases.iter().any(|b| **b == want) {
                        kinds.insert(el.clone(), KindChoice { basis: want, potential: pot.clone(), valence: q });
                        break 'pot;
                    }
                }
            }
        }
        if kinds.is_empty() {
            return Err(format!(
                "no {family}-MOLOPT basis with a matching GTH-PBE potential in {}",
                data_dir.display()
            ));
        }
        Ok(BasisTable { data_dir: data_dir.to_path_buf(), family, kinds })
    }

    /// The pair for `element`, if the data files hold one.
    pub fn get(&self, element: Element) -> Option<&KindChoice> {
        self.kinds.get(element.symbol())
    }

    /// Every supported element symbol.
    pub fn elements(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }
}

/// CP2K's data directory: `$CP2K_DATA_DIR`, else Debian's `/usr/share/cp2k` (package `cp2k-data`).
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("CP2K_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/share/cp2k"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valences_and_headers() {
        assert_eq!(valence_of("GTH-PBE-q12"), Some(12));
        assert_eq!(valence_of("DZVP-MOLOPT-SR-GTH-q4"), Some(4));
        assert_eq!(valence_of("GTH-PBE"), None);
        let dir = std::env::temp_dir().join(format!("geode-basis-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(POTENTIAL_FILE),
            "# comment\nSi GTH-PBE-q4 GTH-PBE\n  2 2\n  0.44 1 -6.26\nMg GTH-PBE-q10 GTH-PBE\n 4\nMg GTH-PBE-q2\n 2\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("BASIS_MOLOPT"),
            "Si DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q4\n 1\nMg DZVP-MOLOPT-SR-GTH DZVP-MOLOPT-SR-GTH-q10\n 1\n",
        )
        .unwrap();
        let t = BasisTable::load(&dir, "dzvp").unwrap();
        let si = t.get(Element::from_symbol("Si").unwrap()).unwrap();
        assert_eq!((si.basis.as_str(), si.potential.as_str(), si.valence), ("DZVP-MOLOPT-SR-GTH-q4", "GTH-PBE-q4", 4));
        assert_eq!(t.get(Element::from_symbol("Mg").unwrap()).unwrap().potential, "GTH-PBE-q10");
        assert!(t.get(Element::from_symbol("Fe").unwrap()).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
