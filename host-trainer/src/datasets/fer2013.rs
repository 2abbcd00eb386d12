//! FER-2013 in its original CSV form: `emotion,pixels,Usage`, one 48×48 gray face per row as 2304
//! space-separated values, `Usage` one of Training / PublicTest / PrivateTest. Columns are found by
//! header name (Kaggle's `icml_face_data.csv` writes ` Usage` and ` pixels` with a leading space);
//! a file without `Usage` (Kaggle's `train.csv`) is all training data.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use fer_core::Emotion;
use image::GrayImage;

use super::{Dataset, DatasetError, LoadReport, OnError, Problem, Sample, Split};

/// FER-2013 image side.
pub const SIDE: u32 = 48;

/// Reads a FER-2013 CSV. `PublicTest` rows become the validation split, `PrivateTest` the test split.
pub fn load_csv(path: &Path, on_error: OnError) -> Result<Dataset, DatasetError> {
    let io = |error| DatasetError::Io { path: path.to_path_buf(), error };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut lines = BufReader::new(file).lines();
    let header = lines
        .next()
        .ok_or_else(|| DatasetError::Layout { path: path.to_path_buf(), message: "empty file (no header)".into() })?
        .map_err(io)?;
    let cols: Vec<String> = header.split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
    let col = |name: &str| cols.iter().position(|c| c == name);
    let (Some(ci_emotion), Some(ci_pixels)) = (col("emotion"), col("pixels")) else {
        return Err(DatasetError::Layout {
            path: path.to_path_buf(),
            message: format!("header {header:?} lacks the `emotion` and `pixels` columns"),
        });
    };
    let ci_usage = col("usage");

    let mut ds = Dataset { name: format!("fer2013-csv:{}", path.display()), ..Default::default() };
    let mut report = LoadReport::default();
    for (i, line) in lines.enumerate() {
        let lineno = i + 2;
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        match parse_row(&line, cols.len(), ci_emotion, ci_pixels, ci_usage) {
            Ok((split, sample)) => ds.split_mut(split).push(sample),
            Err(message) => {
                report.problem(on_error, Problem { file: path.to_path_buf(), line: Some(lineno), message })?
            }
        }
    }
    ds.report = report;
    Ok(ds)
}

fn parse_row(
    line: &str,
    ncols: usize,
    ci_emotion: usize,
    ci_pixels: usize,
    ci_usage: Option<usize>,
) -> Result<(Split, Sample), String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    if fields.len() != ncols {
        return Err(format!("{} fields, expected {ncols}", fields.len()));
    }
    let emotion_text = fields[ci_emotion];
    let code: i64 = emotion_text.parse().map_err(|_| format!("emotion {emotion_text:?} is not an integer"))?;
    let label = Emotion::from_index(code).map_err(|e| e.to_string())?;
    let split = match ci_usage.map(|c| fields[c]) {
        None | Some("Training") => Split::Train,
        Some("PublicTest") => Split::Val,
        Some("PrivateTest") => Split::Test,
        Some(other) => return Err(format!("Usage {other:?} is not Training, PublicTest or PrivateTest")),
    };
    let mut pixels = Vec::with_capacity((SIDE * SIDE) as usize);
    for (k, tok) in fields[ci_pixels].split_ascii_whitespace().enumerate() {
        let v: u8 = tok.parse().map_err(|_| format!("pixel {k} is {tok:?}, not an integer in 0..=255"))?;
        pixels.push(v);
    }
    if pixels.len() != (SIDE * SIDE) as usize {
        return Err(format!("{} pixels, expected {} (48x48)", pixels.len(), SIDE * SIDE));
    }
    let image = GrayImage::from_raw(SIDE, SIDE, pixels).expect("2304 pixels make a 48x48 image");
    Ok((split, Sample { image, label, subject: None }))
}

/// Writes `ds` as a FER-2013 CSV (train → Training, val → PublicTest, test → PrivateTest). Images
/// must be 48×48.
pub fn write_csv(ds: &Dataset, path: &Path) -> Result<(), DatasetError> {
    let io = |error| DatasetError::Io { path: path.to_path_buf(), error };
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    writeln!(w, "emotion,pixels,Usage").map_err(io)?;
    for (split, usage) in [(Split::Train, "Training"), (Split::Val, "PublicTest"), (Split::Test, "PrivateTest")] {
        for s in ds.split(split) {
            if s.image.dimensions() != (SIDE, SIDE) {
                return Err(DatasetError::Layout {
                    path: path.to_path_buf(),
                    message: format!("FER-2013 CSV needs 48x48 images, got {:?}", s.image.dimensions()),
                });
            }
            let px: Vec<String> = s.image.as_raw().iter().map(u8::to_string).collect();
            writeln!(w, "{},{},{}", s.label.index(), px.join(" "), usage).map_err(io)?;
        }
    }
    w.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(emotion: &str, fill: &str, n: usize, usage: &str) -> String {
        format!("{emotion},{},{usage}", vec![fill; n].join(" "))
    }

    /// Writes `text` to a file of the temporary folder; the test removes it.
    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("fer2013-test-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_splits_and_reports_bad_rows_with_line_numbers() {
        let text = [
            "emotion, pixels, Usage".to_string(),
            row("3", "7", 2304, "Training"),
            row("0", "1", 2304, "PublicTest"),
            row("6", "255", 2304, "PrivateTest"),
            row("9", "1", 2304, "Training"),   // line 5: bad label
            row("2", "1", 2303, "Training"),   // line 6: short row
            row("2", "256", 2304, "Training"), // line 7: pixel out of range
            row("2", "1", 2304, "Validation"), // line 8: bad usage
            "1,2".to_string(),                 // line 9: too few fields
            row("x", "1", 2304, "Training"),   // line 10: non-integer label
        ]
        .join("\n");
        let p = write("a.csv", &text);
        let ds = load_csv(&p, OnError::Skip).unwrap();
        assert_eq!((ds.train.len(), ds.val.len(), ds.test.len()), (1, 1, 1));
        assert_eq!(ds.train[0].label, Emotion::Happy);
        assert_eq!(ds.train[0].image.get_pixel(47, 47).0, [7]);
        assert_eq!(ds.test[0].label, Emotion::Neutral);
        let lines: Vec<Option<usize>> = ds.report.skipped.iter().map(|p| p.line).collect();
        assert_eq!(lines, [Some(5), Some(6), Some(7), Some(8), Some(9), Some(10)]);
        let msgs: Vec<String> = ds.report.skipped.iter().map(|p| p.to_string()).collect();
        assert!(msgs[0].contains("a.csv:5:") && msgs[0].contains("out of range"), "{}", msgs[0]);
        assert!(msgs[1].contains("2303 pixels"), "{}", msgs[1]);
        assert!(msgs[2].contains("\"256\""), "{}", msgs[2]);
        assert!(msgs[3].contains("Validation"), "{}", msgs[3]);

        let err = load_csv(&p, OnError::Fail).unwrap_err().to_string();
        assert!(err.contains("a.csv:5:"), "{err}");
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn header_problems_are_layout_errors() {
        let p = write("b.csv", "label,data\n");
        assert!(load_csv(&p, OnError::Skip).unwrap_err().to_string().contains("lacks the `emotion`"));
        std::fs::remove_file(p).unwrap();
        let p = write("c.csv", "");
        assert!(load_csv(&p, OnError::Skip).unwrap_err().to_string().contains("empty file"));
        std::fs::remove_file(p).unwrap();
        let missing = std::env::temp_dir().join("does-not-exist-fer.csv");
        assert!(load_csv(&missing, OnError::Skip).unwrap_err().to_string().contains("does-not-exist-fer.csv"));
    }

    #[test]
    fn kaggle_train_csv_without_usage_is_all_training() {
        let p = write("train.csv", &format!("emotion,pixels\n4,{}", vec!["9"; 2304].join(" ")));
        let ds = load_csv(&p, OnError::Fail).unwrap();
        assert_eq!(ds.train.len(), 1);
        assert_eq!(ds.train[0].label, Emotion::Sad);
        std::fs::remove_file(p).unwrap();
    }
}
