//! fer-trainer's integration tests, one module per subject, in one test binary: ten binaries
//! that each linked libtorch and tract took ~21 s of compile and link to build and ran one after
//! another (~147 s in CI); one builds in ~9 s and runs its tests side by side (~119 s).
//! BENCHMARKS.md, "CI", session 17.

mod common;
mod crash_report;

mod builtin_roundtrip;
mod export_tract;
mod finetune_init;
mod import_efficientnet;
mod import_faceapi;
mod import_keras;
mod pytorch_parity;
mod quantize_ort;
mod resume_report;
mod train_smoke;
