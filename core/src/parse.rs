//! Reading TOML/JSON files into typed structs with errors that name the file and the field.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A file that could not be read or parsed, or whose contents are invalid.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("{path}: cannot read: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    /// Syntax or type error; `field` is the dotted path to the offending field (`.` for the root).
    #[error("{path}: field `{field}`: {message}")]
    Parse { path: PathBuf, field: String, message: String },
    /// The file parsed but a value is not acceptable.
    #[error("{path}: field `{field}`: {problem}")]
    Invalid { path: PathBuf, field: String, problem: String },
}

impl FileError {
    /// The dotted field path the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            FileError::Io { .. } => None,
            FileError::Parse { field, .. } | FileError::Invalid { field, .. } => Some(field),
        }
    }

    pub(crate) fn invalid(path: &Path, field: impl Into<String>, problem: impl fmt::Display) -> FileError {
        FileError::Invalid { path: path.to_path_buf(), field: field.into(), problem: problem.to_string() }
    }
}

/// File syntax.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Syntax {
    Toml,
    Json,
}

pub(crate) fn read(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|error| FileError::Io { path: path.to_path_buf(), error })
}

/// Deserializes `text` (the contents of `path`), reporting the path of the failing field.
pub(crate) fn parse<T: DeserializeOwned>(path: &Path, text: &str, syntax: Syntax) -> Result<T, FileError> {
    let err = |field: String, message: String| FileError::Parse { path: path.to_path_buf(), field, message };
    match syntax {
        Syntax::Toml => {
            let de = toml::Deserializer::new(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let field = e.path().to_string();
                err(field, one_line(&e.into_inner().to_string()))
            })
        }
        Syntax::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let field = e.path().to_string();
                err(field, e.into_inner().to_string())
            })?;
            de.end().map_err(|e| err(".".into(), e.to_string()))?;
            Ok(value)
        }
    }
}

/// toml's messages span several lines (a source excerpt with a caret); keep them readable in one.
/// Drops the excerpt lines (`12 | thread = 3`, `| ^^^`) and keeps "at line L, column C: message".
fn one_line(msg: &str) -> String {
    let kept: Vec<&str> = msg.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains('|')).collect();
    kept.join(": ")
}
