//! Reader for ASE SQLite databases (`ase.db`, schema versions ≥ 5): the `systems` table's atomic
//! numbers (int32 blob), Cartesian positions (float64 blob, Å), cell (float64 3×3, rows are lattice
//! vectors, Å), pbc bitmask and `key_value_pairs` JSON. Rows that are not fully periodic with a
//! regular cell are reported as errors naming the row id.

use std::path::Path;

use nalgebra::Vector3;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value};

use super::{IoError, python_json_to_strict};
use crate::crystal::{Element, Lattice, Structure};

/// One row of an ASE database.
#[derive(Debug, Clone)]
pub struct AseRow {
    /// ASE's integer row id.
    pub id: i64,
    pub unique_id: Option<String>,
    pub structure: Structure,
    /// The row's `key_value_pairs` (ASE's user keys such as `energy_pa`, `bandgap`).
    pub key_value_pairs: Map<String, Value>,
}

fn decode_f64(blob: &[u8], what: &str, id: i64, path: &str) -> Result<Vec<f64>, IoError> {
    if !blob.len().is_multiple_of(8) {
        return Err(IoError::whole(
            path,
            format!("row {id}: {what} blob has {} bytes, not a multiple of 8", blob.len()),
        ));
    }
    Ok(blob.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8"))).collect())
}

fn decode_numbers(blob: &[u8], id: i64, path: &str) -> Result<Vec<i64>, IoError> {
    // ASE stores int64 arrays as int32; accept int64 too when the length says so is impossible to tell
    // in general, so follow ASE: int32 little-endian.
    if !blob.len().is_multiple_of(4) {
        return Err(IoError::whole(
            path,
            format!("row {id}: numbers blob has {} bytes, not a multiple of 4", blob.len()),
        ));
    }
    Ok(blob.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().expect("chunk of 4")) as i64).collect())
}

/// Read every row of the `systems` table.
pub fn read(path: &Path) -> Result<Vec<AseRow>, IoError> {
    let mut rows = Vec::new();
    for_each_row(path, |r| {
        rows.push(r?);
        Ok(())
    })?;
    Ok(rows)
}

/// Stream rows to `f`; a row that cannot become a structure is passed as `Err` so the caller can skip
/// it or stop (returning `Err` from `f` stops the scan).
pub fn for_each_row(
    path: &Path,
    mut f: impl FnMut(Result<AseRow, IoError>) -> Result<(), IoError>,
) -> Result<(), IoError> {
    let name = path.display().to_string();
    let sql_err = |e: rusqlite::Error| IoError::whole(&name, format!("not a readable ASE database: {e}"));
    if !path.exists() {
        return Err(IoError::Os { path: name.clone(), message: "no such file".into() });
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(sql_err)?;
    let mut stmt = conn
        .prepare("SELECT id, unique_id, numbers, positions, cell, pbc, key_value_pairs FROM systems ORDER BY id")
        .map_err(sql_err)?;
    let mut q = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = q.next().map_err(sql_err)? {
        let id: i64 = row.get(0).map_err(sql_err)?;
        let unique_id: Option<String> = row.get(1).ok();
        let numbers: Option<Vec<u8>> = row.get(2).map_err(sql_err)?;
        let positions: Option<Vec<u8>> = row.get(3).map_err(sql_err)?;
        let cell: Option<Vec<u8>> = row.get(4).map_err(sql_err)?;
        let pbc: Option<i64> = row.get(5).map_err(sql_err)?;
        let kvp: Option<String> = row.get(6).map_err(sql_err)?;
        let built = (|| {
            let numbers = decode_numbers(&numbers.unwrap_or_default(), id, &name)?;
            let positions = decode_f64(&positions.unwrap_or_default(), "positions", id, &name)?;
            let cell = decode_f64(&cell.unwrap_or_default(), "cell", id, &name)?;
            if positions.len() != 3 * numbers.len() {
                return Err(IoError::whole(
                    &name,
                    format!("row {id}: {} atomic numbers but {} position values", numbers.len(), positions.len()),
                ));
            }
            if cell.len() != 9 {
                return Err(IoError::whole(&name, format!("row {id}: cell has {} values, expected 9", cell.len())));
            }
            if pbc.unwrap_or(0) & 7 != 7 {
                return Err(IoError::whole(
                    &name,
                    format!("row {id}: not periodic in all three directions (pbc bitmask {})", pbc.unwrap_or(0)),
                ));
            }
            let rows = [[cell[0], cell[1], cell[2]], [cell[3], cell[4], cell[5]], [cell[6], cell[7], cell[8]]];
            let lattice =
                Lattice::from_row_vectors(rows).map_err(|e| IoError::whole(&name, format!("row {id}: {e}")))?;
            let species = numbers
                .iter()
                .map(|&z| Element::from_z(z.clamp(0, 1000) as u32))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| IoError::whole(&name, format!("row {id}: {e}")))?;
            let cart: Vec<Vector3<f64>> = positions.chunks_exact(3).map(|p| Vector3::new(p[0], p[1], p[2])).collect();
            let structure = Structure::from_cart(lattice, species, &cart)
                .map_err(|e| IoError::whole(&name, format!("row {id}: {e}")))?;
            let key_value_pairs = match kvp.as_deref() {
                None | Some("") => Map::new(),
                Some(t) => match serde_json::from_str::<Value>(&python_json_to_strict(t)) {
                    Ok(Value::Object(m)) => m,
                    Ok(_) => {
                        return Err(IoError::whole(&name, format!("row {id}: key_value_pairs is not a JSON object")));
                    }
                    Err(e) => {
                        return Err(IoError::whole(&name, format!("row {id}: key_value_pairs is not valid JSON: {e}")));
                    }
                },
            };
            Ok(AseRow { id, unique_id, structure, key_value_pairs })
        })();
        f(built)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_tokens() {
        let t = r#"{"a": NaN, "b": "NaN \" Infinity", "c": -Infinity, "d": [Infinity, 1.5]}"#;
        let v: Value = serde_json::from_str(&python_json_to_strict(t)).unwrap();
        assert!(v["a"].is_null() && v["c"].is_null() && v["d"][0].is_null());
        assert_eq!(v["b"], "NaN \" Infinity");
        assert_eq!(v["d"][1], 1.5);
    }

    #[test]
    fn missing_and_foreign_files_are_errors() {
        let e = read(Path::new("/nonexistent/x.db")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/x.db"), "{e}");
        let dir = std::env::temp_dir().join(format!("geode-asedb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("junk.db");
        std::fs::write(&p, b"this is not sqlite at all").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("junk.db") && e.contains("ASE database"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
