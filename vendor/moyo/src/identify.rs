mod layer;
mod magnetic_space_group;
mod normalizer;
mod point_group;
mod rotation_type;
mod space_group;

pub use layer::{LayerGroup, LayerPointGroup, integral_normalizer_2_1};
pub use magnetic_space_group::MagneticSpaceGroup;
pub use normalizer::{Normalizer, integral_normalizer};
pub use point_group::PointGroup;
pub use space_group::SpaceGroup;
pub(crate) use space_group::match_origin_shift;

pub(super) use magnetic_space_group::{
    family_space_group_from_magnetic_space_group,
    primitive_maximal_space_subgroup_from_magnetic_space_group,
};
