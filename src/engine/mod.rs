//! The shared compute engine: jobs with progress, events, cancellation, pause and checkpoints; one
//! shared rayon pool; a priority queue; and the SQLite project store every run writes to.
//!
//! Floor: may use `crystal`, `chem`, `io`, `data`, `ml` (and later `energy`, `search`); never `studio`
//! or `cli`, which are its two faces.
//!
//! Life cycle of a run: `queued` → `running` ⇄ `paused` → `finished` | `cancelled` | `failed`.
//! A job is a sequence of *steps*; after each step the engine commits the step's candidates, metrics,
//! progress and the job's checkpoint in one transaction. A killed process leaves the run `running`
//! with its last checkpoint; `resume` restores the checkpoint and continues, so the final results
//! equal those of an uninterrupted run with the same seed.

pub mod error;
pub mod executor;
pub mod job;
pub mod jobs;
pub mod query;
pub mod runner;
pub mod spec;
pub mod store;

pub use error::JobError;
pub use job::{Event, EventKind, Job, JobContext, Progress, StepOutcome};
pub use runner::{Engine, RunHandle};
pub use spec::{RunConfig, RunSpec};
pub use store::{NewCandidate, NewModel, PropValue, RunStatus, Store};
