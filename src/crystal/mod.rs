//! Crystal core: the domain vocabulary every other module speaks.
//!
//! Floor: depends only on `nalgebra`, `moyo` and `serde`; never on `io`, `chem`, `data` or anything above.
//! Conventions: lengths in Å, angles in radians inside (degrees only in [`LatticeParams`]), fractional
//! coordinates are relative to the lattice vectors, Cartesian ones in Å. The lattice basis is stored as
//! columns (`cart_from_frac`), as in moyo; humans write rows, hence [`Lattice::from_row_vectors`].

pub mod assignment;
pub mod bonds;
pub mod composition;
pub mod crystal_nn;
pub mod element;
pub mod error;
pub mod fingerprint;
pub mod lattice;
pub mod matcher;
pub mod neighbors;
pub mod order_params;
pub mod site_fingerprint;
pub mod structure;
pub mod symmetry;
pub mod validity;
pub mod voronoi;
pub mod wyckoff;

pub use composition::Composition;
pub use element::{Element, ElementData};
pub use error::CrystalError;
pub use lattice::{Lattice, LatticeParams};
pub use neighbors::NeighborList;
pub use structure::Structure;
