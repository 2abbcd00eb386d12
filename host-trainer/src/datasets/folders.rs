//! Image-folder datasets: FER-2013 as distributed on Kaggle in folders
//! (`train|test[/val]/<class>/*.png|jpg`) and the per-class folders of CK+ (see [`super::ckplus`]).
//! Class and split folder names are matched case-insensitively; files are read in sorted order.

use std::path::{Path, PathBuf};

use fer_core::Emotion;
use image::GrayImage;

use super::{Dataset, DatasetError, LoadReport, OnError, Problem, Sample, Split};

/// Sorted entries of a directory.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let io = |error| DatasetError::Io { path: dir.to_path_buf(), error };
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(io)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>().map_err(io)?;
    v.sort();
    Ok(v)
}

/// Decodes an image file to 8-bit gray (BT.601 luma for colour files, as fer-core does).
pub(crate) fn read_gray(path: &Path) -> Result<GrayImage, String> {
    let img = image::ImageReader::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?
        .decode()
        .map_err(|e| format!("not a readable image: {e}"))?;
    Ok(fer_core::preprocess::to_gray8(&img))
}

/// Loads every image of one class folder into `out`, recording unreadable files.
pub(crate) fn load_class_dir(
    dir: &Path,
    mut label_for: impl FnMut(&Path) -> Option<(Emotion, Option<String>)>,
    out: &mut Vec<Sample>,
    report: &mut LoadReport,
    on_error: OnError,
) -> Result<(), DatasetError> {
    for file in sorted_entries(dir)? {
        if !file.is_file() || !fer_core::preprocess::is_image_path(&file) {
            continue;
        }
        let Some((label, subject)) = label_for(&file) else { continue };
        match read_gray(&file) {
            Ok(image) => out.push(Sample { image, label, subject }),
            Err(message) => report.problem(on_error, Problem { file, line: None, message })?,
        }
    }
    Ok(())
}

fn split_of(name: &str) -> Option<Split> {
    match name.to_ascii_lowercase().as_str() {
        "train" | "training" => Some(Split::Train),
        "val" | "valid" | "validation" | "publictest" => Some(Split::Val),
        "test" | "testing" | "privatetest" => Some(Split::Test),
        _ => None,
    }
}

/// Loads `root/{train,val,test}/<emotion>/*` (at least `train/`). Class folders may use any
/// synonym `fer_core::Emotion::from_name` accepts (`Angry`, `anger`, `sadness`, ...).
pub fn load_fer_folders(root: &Path, on_error: OnError) -> Result<Dataset, DatasetError> {
    let mut ds = Dataset { name: format!("fer2013-folders:{}", root.display()), ..Default::default() };
    let mut report = LoadReport::default();
    let mut found_train = false;
    for split_dir in sorted_entries(root)? {
        let Some(split) = split_dir.is_dir().then(|| split_of(&file_name(&split_dir))).flatten() else { continue };
        found_train |= split == Split::Train;
        for class_dir in sorted_entries(&split_dir)? {
            if !class_dir.is_dir() {
                continue;
            }
            match Emotion::from_name(&file_name(&class_dir)) {
                Ok(label) => {
                    load_class_dir(&class_dir, |_| Some((label, None)), ds.split_mut(split), &mut report, on_error)?
                }
                Err(e) => report.problem(
                    on_error,
                    Problem { file: class_dir.clone(), line: None, message: format!("class folder skipped: {e}") },
                )?,
            }
        }
    }
    if !found_train {
        return Err(DatasetError::Layout {
            path: root.to_path_buf(),
            message: "no train/ folder (expected train/<emotion>/*.png, test/<emotion>/*.png)".into(),
        });
    }
    ds.report = report;
    Ok(ds)
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Writes `ds` as `root/{train,val,test}/<emotion>/<index>.png` (val only when non-empty).
pub fn write_fer_folders(ds: &Dataset, root: &Path) -> Result<(), DatasetError> {
    for split in Split::ALL {
        let samples = ds.split(split);
        if samples.is_empty() && split == Split::Val {
            continue;
        }
        for e in Emotion::ALL {
            let dir = root.join(split.name()).join(e.name());
            std::fs::create_dir_all(&dir).map_err(|error| DatasetError::Io { path: dir.clone(), error })?;
        }
        for (i, s) in samples.iter().enumerate() {
            let path = root.join(split.name()).join(s.label.name()).join(format!("{i:06}.png"));
            s.image
                .save(&path)
                .map_err(|e| DatasetError::Layout { path: path.clone(), message: format!("cannot write PNG: {e}") })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fer-folders-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn reads_case_insensitive_classes_and_reports_corrupt_files_and_unknown_classes() {
        let root = tmp("a");
        for (split, class, n) in [("train", "Happy", 2), ("train", "anger", 1), ("Test", "SAD", 1)] {
            let d = root.join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..n {
                GrayImage::from_pixel(48, 48, Luma([i as u8 * 10])).save(d.join(format!("{i}.png"))).unwrap();
            }
        }
        std::fs::write(root.join("train/Happy/broken.png"), b"\x89PNG not really").unwrap();
        std::fs::write(root.join("train/Happy/notes.txt"), b"ignored").unwrap();
        std::fs::create_dir_all(root.join("train/bored")).unwrap();

        let ds = load_fer_folders(&root, OnError::Skip).unwrap();
        assert_eq!(Dataset::class_counts(&ds.train), [1, 0, 0, 2, 0, 0, 0]);
        assert_eq!(Dataset::class_counts(&ds.test), [0, 0, 0, 0, 1, 0, 0]);
        let skipped: Vec<String> = ds.report.skipped.iter().map(|p| p.to_string()).collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped.iter().any(|s| s.contains("broken.png") && s.contains("not a readable image")), "{skipped:?}");
        assert!(skipped.iter().any(|s| s.contains("bored") && s.contains("unknown emotion")), "{skipped:?}");

        let err = load_fer_folders(&root, OnError::Fail).unwrap_err().to_string();
        assert!(err.contains("broken.png") || err.contains("bored"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_train_folder_is_a_layout_error() {
        let root = tmp("b");
        std::fs::create_dir_all(root.join("images")).unwrap();
        let err = load_fer_folders(&root, OnError::Skip).unwrap_err().to_string();
        assert!(err.contains("no train/ folder"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
