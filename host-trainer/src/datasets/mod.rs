//! Datasets: FER-2013 (CSV and image folders), CK+ folders, and the built-in synthetic faces.
//!
//! Every loader returns a [`Dataset`] of labelled gray images plus a [`LoadReport`] listing each
//! malformed row or unreadable file with its path (and line), so a researcher sees exactly what
//! was skipped. With [`OnError::Fail`] the first problem is returned as an error instead.

pub mod builtin;
pub mod ckplus;
pub mod fer2013;
pub mod folders;

use std::fmt;
use std::path::PathBuf;

use fer_core::{Emotion, NUM_EMOTIONS};
use image::GrayImage;

/// One labelled face image.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The face, 8-bit gray (FER-2013 and CK+ are gray; colour folders are converted with BT.601).
    pub image: GrayImage,
    pub label: Emotion,
    /// Subject id (CK+ `S005`), for subject-independent splits.
    pub subject: Option<String>,
}

/// Which part of a dataset a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// What to do with a malformed row or unreadable image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnError {
    /// Report it, count it, skip it (default).
    #[default]
    Skip,
    /// Stop at the first problem.
    Fail,
}

/// One skipped input.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line for CSV rows.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file.display(), l, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Dataset errors.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{0}")]
    Bad(Problem),
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },
}

/// Problems met while loading.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub skipped: Vec<Problem>,
}

impl LoadReport {
    /// Records `problem`, or returns it as an error under [`OnError::Fail`].
    pub(crate) fn problem(&mut self, on_error: OnError, problem: Problem) -> Result<(), DatasetError> {
        match on_error {
            OnError::Fail => Err(DatasetError::Bad(problem)),
            OnError::Skip => {
                self.skipped.push(problem);
                Ok(())
            }
        }
    }
}

/// A loaded dataset.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub name: String,
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    pub test: Vec<Sample>,
    pub report: LoadReport,
}

impl Dataset {
    pub fn split(&self, s: Split) -> &[Sample] {
        match s {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    pub(crate) fn split_mut(&mut self, s: Split) -> &mut Vec<Sample> {
        match s {
            Split::Train => &mut self.train,
            Split::Val => &mut self.val,
            Split::Test => &mut self.test,
        }
    }

    /// Samples per class in canonical order.
    pub fn class_counts(samples: &[Sample]) -> [usize; NUM_EMOTIONS] {
        let mut c = [0; NUM_EMOTIONS];
        for s in samples {
            c[s.label.index()] += 1;
        }
        c
    }

    /// Moves a stratified `fraction` of the training samples into `val` (when `val` is empty),
    /// choosing deterministically from `seed`.
    pub fn stratified_val_split(&mut self, fraction: f32, seed: u64) {
        if !self.val.is_empty() || fraction <= 0.0 {
            return;
        }
        let mut by_class: Vec<Vec<Sample>> = vec![Vec::new(); NUM_EMOTIONS];
        for s in self.train.drain(..) {
            by_class[s.label.index()].push(s);
        }
        for (c, mut items) in by_class.into_iter().enumerate() {
            let mut rng = crate::rng::Rng::for_item(seed, 0x5EED, c as u64);
            // Fisher–Yates, then the first k go to validation.
            for i in (1..items.len()).rev() {
                items.swap(i, rng.below(i + 1));
            }
            let k = ((items.len() as f32) * fraction).round() as usize;
            let rest = items.split_off(k.min(items.len()));
            self.val.extend(items);
            self.train.extend(rest);
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dataset {}", self.name)?;
        write!(f, "  {:<6}", "split")?;
        for e in Emotion::ALL {
            write!(f, " {:>8}", e.name())?;
        }
        writeln!(f, " {:>8}", "total")?;
        for s in Split::ALL {
            let samples = self.split(s);
            write!(f, "  {:<6}", s.name())?;
            for c in Dataset::class_counts(samples) {
                write!(f, " {c:>8}")?;
            }
            writeln!(f, " {:>8}", samples.len())?;
        }
        write!(f, "  skipped inputs: {}", self.report.skipped.len())
    }
}
