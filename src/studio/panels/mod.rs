//! One file per studio panel; each adds `*_ui` methods to [`super::app::StudioApp`], reading the
//! app's caches and asking for changes through its methods (select, start_run, export…).

pub mod evolution;
pub mod explorer;
pub mod hull;
pub mod inspector;
pub mod latent;
pub mod models;
pub mod plots;
pub mod raster;
pub mod runs;
pub mod screening;
pub mod trajectory;
