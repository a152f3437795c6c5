mod layer;
mod primitive_cell;
mod primitive_symmetry_search;
mod solve;
mod symmetry_search;

pub use layer::LayerPrimitiveSymmetrySearch;
pub use solve::{
    PeriodicNeighbor, PeriodicNeighborSearch, solve_correspondence, solve_correspondence_naive,
};

pub(crate) use layer::{LayerPrimitiveCell, is_layer_block_form};
pub(super) use primitive_cell::{PrimitiveCell, PrimitiveMagneticCell};
pub(crate) use primitive_symmetry_search::search_bravais_group;
pub(super) use primitive_symmetry_search::{
    PrimitiveMagneticSymmetrySearch, magnetic_operations_in_magnetic_cell, operations_in_cell,
    operations_in_cell_from_linear_and_translations,
};
pub(super) use symmetry_search::{
    iterative_layer_symmetry_search, iterative_magnetic_symmetry_search, iterative_symmetry_search,
};
