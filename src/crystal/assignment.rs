//! Linear assignment (minimum-cost bipartite matching) for small dense `f64` cost matrices.
//!
//! The solver is the shortest-augmenting-path form of the Hungarian / Kuhn–Munkres method with dual
//! variables, as described by D. F. Crouse, "On implementing 2D rectangular assignment algorithms",
//! IEEE Trans. Aerosp. Electron. Syst. 52(4), 1679–1696 (2016), pp. 1685–1686 — the same method
//! behind SciPy's `linear_sum_assignment`, which pymatgen's `StructureMatcher` calls. Ties are
//! broken as SciPy breaks them (columns scanned from the last, a free column preferred among equal
//! path costs), so that degenerate problems pick the same optimum as pymatgen does.
//!
//! Complexity O(n_rows² · n_cols); intended for the ≲ 100 × 100 problems of site matching.

/// An optimal assignment: row `i` is matched to column `col_for_row[i]`; `cost` is the sum of the
/// matched entries of the original matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub col_for_row: Vec<usize>,
    pub cost: f64,
}

/// Minimum-cost assignment of every row to a distinct column.
///
/// `cost` is row-major with `n_rows × n_cols` entries and `n_rows <= n_cols` (rectangular problems
/// leave `n_cols - n_rows` columns unused). Entries may be `+∞` (forbidden pairs). Returns `None`
/// when the shape is inconsistent, `n_rows > n_cols`, an entry is NaN or `-∞`, or no finite
/// assignment exists. An empty problem (`n_rows == 0`) has the empty assignment of cost 0.
pub fn linear_sum_assignment(n_rows: usize, n_cols: usize, cost: &[f64]) -> Option<Assignment> {
    if n_rows.checked_mul(n_cols)? != cost.len() || n_rows > n_cols {
        return None;
    }
    if n_rows == 0 {
        return Some(Assignment { col_for_row: Vec::new(), cost: 0.0 });
    }
    if cost.iter().any(|c| c.is_nan() || *c == f64::NEG_INFINITY) {
        return None;
    }
    // Shift to non-negative costs: the optimum is unchanged.
    let min = cost.iter().copied().fold(f64::INFINITY, f64::min);
    let shifted: Vec<f64> = if min.is_finite() { cost.iter().map(|c| c - min).collect() } else { cost.to_vec() };

    let mut u = vec![0.0; n_rows];
    let mut v = vec![0.0; n_cols];
    let mut shortest = vec![f64::INFINITY; n_cols];
    let mut path = vec![usize::MAX; n_cols];
    let mut col_for_row = vec![usize::MAX; n_rows];
    let mut row_for_col = vec![usize::MAX; n_cols];
    let mut seen_row = vec![false; n_rows];
    let mut seen_col = vec![false; n_cols];
    let mut remaining: Vec<usize> = Vec::with_capacity(n_cols);

    for cur_row in 0..n_rows {
        // Dijkstra-like search for the shortest augmenting path from `cur_row` to a free column,
        // on reduced costs c_ij - u_i - v_j (non-negative by the dual invariant).
        remaining.clear();
        remaining.extend((0..n_cols).rev());
        seen_row.fill(false);
        seen_col.fill(false);
        shortest.fill(f64::INFINITY);
        let mut min_val = 0.0;
        let mut i = cur_row;
        let sink = loop {
            seen_row[i] = true;
            let mut lowest = f64::INFINITY;
            let mut index = usize::MAX;
            for (it, &j) in remaining.iter().enumerate() {
                let r = min_val + shifted[i * n_cols + j] - u[i] - v[j];
                if r < shortest[j] {
                    path[j] = i;
                    shortest[j] = r;
                }
                if shortest[j] < lowest || (shortest[j] == lowest && row_for_col[j] == usize::MAX) {
                    lowest = shortest[j];
                    index = it;
                }
            }
            min_val = lowest;
            if index == usize::MAX || !min_val.is_finite() {
                return None; // every remaining column is forbidden: infeasible
            }
            let j = remaining[index];
            seen_col[j] = true;
            remaining.swap_remove(index);
            if row_for_col[j] == usize::MAX {
                break j;
            }
            i = row_for_col[j];
        };

        // Update the dual variables.
        u[cur_row] += min_val;
        for r in 0..n_rows {
            if seen_row[r] && r != cur_row {
                u[r] += min_val - shortest[col_for_row[r]];
            }
        }
        for c in 0..n_cols {
            if seen_col[c] {
                v[c] -= min_val - shortest[c];
            }
        }

        // Augment along the path back to `cur_row`.
        let mut j = sink;
        loop {
            let r = path[j];
            row_for_col[j] = r;
            std::mem::swap(&mut col_for_row[r], &mut j);
            if r == cur_row {
                break;
            }
        }
    }

    let total = col_for_row.iter().enumerate().map(|(r, &c)| cost[r * n_cols + c]).sum();
    Some(Assignment { col_for_row, cost: total })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exhaustive minimum over all injections rows → columns, for cross-checking.
    fn brute(n_rows: usize, n_cols: usize, cost: &[f64]) -> f64 {
        fn rec(r: usize, n_rows: usize, n_cols: usize, cost: &[f64], used: &mut [bool], acc: f64, best: &mut f64) {
            if r == n_rows {
                *best = best.min(acc);
                return;
            }
            for c in 0..n_cols {
                if !used[c] {
                    used[c] = true;
                    rec(r + 1, n_rows, n_cols, cost, used, acc + cost[r * n_cols + c], best);
                    used[c] = false;
                }
            }
        }
        let mut best = f64::INFINITY;
        rec(0, n_rows, n_cols, cost, &mut vec![false; n_cols], 0.0, &mut best);
        best
    }

    /// Small deterministic pseudo-random numbers (xorshift), enough for test matrices.
    fn lcg(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn known_example() {
        // SciPy's documentation example: optimum 5 with rows → [1, 0, 2].
        let c = [4.0, 1.0, 3.0, 2.0, 0.0, 5.0, 3.0, 2.0, 2.0];
        let a = linear_sum_assignment(3, 3, &c).unwrap();
        assert_eq!(a.col_for_row, vec![1, 0, 2]);
        assert_eq!(a.cost, 5.0);
    }

    #[test]
    fn constant_matrix_gives_identity() {
        let c = vec![1.0; 16];
        let a = linear_sum_assignment(4, 4, &c).unwrap();
        assert_eq!(a.col_for_row, vec![0, 1, 2, 3]);
    }

    #[test]
    fn matches_brute_force_on_random_matrices() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for trial in 0..200 {
            let n_rows = 1 + trial % 6;
            let n_cols = n_rows + (trial / 6) % 3;
            let integer = trial % 4 == 0;
            let c: Vec<f64> = (0..n_rows * n_cols)
                .map(|_| {
                    let x = lcg(&mut seed) * 10.0;
                    if integer { x.floor() } else { x - 3.0 }
                })
                .collect();
            let a = linear_sum_assignment(n_rows, n_cols, &c).unwrap();
            let mut cols = a.col_for_row.clone();
            cols.sort_unstable();
            cols.dedup();
            assert_eq!(cols.len(), n_rows, "columns must be distinct");
            let best = brute(n_rows, n_cols, &c);
            assert!((a.cost - best).abs() < 1e-9, "trial {trial}: {} vs {best}", a.cost);
        }
    }

    #[test]
    fn forbidden_entries_and_infeasible() {
        let inf = f64::INFINITY;
        let c = [inf, 1.0, 2.0, inf];
        let a = linear_sum_assignment(2, 2, &c).unwrap();
        assert_eq!(a.col_for_row, vec![1, 0]);
        assert_eq!(a.cost, 3.0);
        assert!(linear_sum_assignment(2, 2, &[inf, 1.0, inf, 2.0]).is_none());
        assert!(linear_sum_assignment(1, 1, &[inf]).is_none());
    }

    #[test]
    fn odd_input_does_not_panic() {
        assert_eq!(linear_sum_assignment(0, 0, &[]).unwrap().cost, 0.0);
        assert_eq!(linear_sum_assignment(0, 3, &[]).unwrap().col_for_row.len(), 0);
        assert!(linear_sum_assignment(2, 1, &[1.0, 2.0]).is_none());
        assert!(linear_sum_assignment(2, 2, &[1.0, 2.0]).is_none());
        assert!(linear_sum_assignment(1, 2, &[f64::NAN, 2.0]).is_none());
        assert!(linear_sum_assignment(usize::MAX, 2, &[]).is_none());
        // Huge but finite entries (pymatgen's 1e20 sentinel) are fine.
        let a = linear_sum_assignment(2, 2, &[1e20, 0.0, 0.0, 1e20]).unwrap();
        assert_eq!(a.cost, 0.0);
    }
}
