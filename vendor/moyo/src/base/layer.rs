mod lattice_2d;
mod layer_cell;
mod layer_lattice;

pub use lattice_2d::Lattice2D;
pub use layer_cell::LayerCell;
pub use layer_lattice::LayerLattice;
