//! fer-trainer: the host side of fer-edge.
//!
//! - [`datasets`]: FER-2013 (CSV and folders), CK+ folders with subject-independent folds, and the
//!   built-in synthetic faces that make everything work without downloads.
//!
//! ```
//! use fer_trainer::datasets::builtin::{generate, BuiltinConfig};
//! let ds = generate(&BuiltinConfig { train: 14, val: 0, test: 7, ..Default::default() });
//! assert_eq!(ds.train.len(), 14);
//! ```

pub mod datasets;
pub mod export;
pub mod import;
pub mod metrics;
pub mod models;
pub mod quantize;
pub mod report;
pub mod rng;
pub mod train;
