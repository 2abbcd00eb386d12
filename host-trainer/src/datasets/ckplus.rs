//! CK+ (Extended Cohn-Kanade) as per-class folders — `anger, contempt, disgust, fear, happy,
//! sadness, surprise[, neutral]` — of frames named `S005_001_00000011.png` (subject, sequence,
//! frame). Contempt is mapped by a [`ContemptPolicy`]. CK+ has no official split: use
//! [`subject_folds`] for subject-independent k-fold cross-validation.

use std::collections::BTreeMap;
use std::path::Path;

use fer_core::{CkLabel, ContemptPolicy};

use super::folders::{file_name, load_class_dir, sorted_entries};
use super::{Dataset, DatasetError, LoadReport, OnError, Problem, Sample};

/// The subject id (`S005`) at the start of a CK+ file name, if it has one.
pub fn subject_of(file_name: &str) -> Option<String> {
    let id = file_name.split('_').next()?;
    let digits = id.strip_prefix('S').or_else(|| id.strip_prefix('s'))?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| format!("S{digits}"))
}

/// Loads CK+ class folders under `root`; every sample goes to `train` (split with
/// [`subject_folds`]). Files whose names carry no subject id are reported and skipped, since they
/// would break subject independence.
pub fn load(root: &Path, policy: ContemptPolicy, on_error: OnError) -> Result<Dataset, DatasetError> {
    let mut ds = Dataset { name: format!("ckplus:{}", root.display()), ..Default::default() };
    let mut report = LoadReport::default();
    let mut classes = 0;
    for class_dir in sorted_entries(root)? {
        if !class_dir.is_dir() {
            continue;
        }
        let label = match CkLabel::from_folder(&file_name(&class_dir)) {
            Ok(l) => l,
            Err(e) => {
                report.problem(
                    on_error,
                    Problem { file: class_dir.clone(), line: None, message: format!("class folder skipped: {e}") },
                )?;
                continue;
            }
        };
        classes += 1;
        let Some(emotion) = label.to_emotion(policy) else { continue };
        let mut unnamed = Vec::new();
        load_class_dir(
            &class_dir,
            |file| match subject_of(&file_name(file)) {
                Some(s) => Some((emotion, Some(s))),
                None => {
                    unnamed.push(file.to_path_buf());
                    None
                }
            },
            &mut ds.train,
            &mut report,
            on_error,
        )?;
        for file in unnamed {
            report.problem(
                on_error,
                Problem { file, line: None, message: "no subject id (expected S<digits>_...)".into() },
            )?;
        }
    }
    if classes == 0 {
        return Err(DatasetError::Layout {
            path: root.to_path_buf(),
            message: "no CK+ class folders (anger, contempt, disgust, fear, happy, sadness, surprise, neutral)".into(),
        });
    }
    ds.report = report;
    Ok(ds)
}

/// Assigns each sample a fold in `0..k` so that no subject appears in two folds, balancing fold
/// sizes greedily (largest subject first into the smallest fold; ties by subject id, so the result
/// is deterministic).
pub fn subject_folds(samples: &[Sample], k: usize) -> Vec<usize> {
    assert!(k >= 2, "k-fold needs k >= 2");
    let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
    for s in samples {
        *sizes.entry(s.subject.as_deref().unwrap_or("")).or_default() += 1;
    }
    let mut subjects: Vec<(&str, usize)> = sizes.into_iter().collect();
    subjects.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut fold_size = vec![0usize; k];
    let mut fold_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (subject, n) in subjects {
        let f = (0..k).min_by_key(|&f| (fold_size[f], f)).expect("k >= 2");
        fold_size[f] += n;
        fold_of.insert(subject, f);
    }
    samples.iter().map(|s| fold_of[s.subject.as_deref().unwrap_or("")]).collect()
}

/// Train/test datasets for fold `fold` of `folds` (as produced by [`subject_folds`]).
pub fn fold_split(ds: &Dataset, folds: &[usize], fold: usize) -> Dataset {
    let mut out = Dataset { name: format!("{} fold {fold}", ds.name), ..Default::default() };
    for (s, f) in ds.train.iter().zip(folds) {
        if *f == fold {
            out.test.push(s.clone())
        } else {
            out.train.push(s.clone())
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fer_core::Emotion;
    use image::{GrayImage, Luma};
    use std::collections::BTreeSet;

    #[test]
    fn subject_ids_parse() {
        assert_eq!(subject_of("S005_001_00000011.png").as_deref(), Some("S005"));
        assert_eq!(subject_of("s132_002_00000014.png").as_deref(), Some("S132"));
        assert_eq!(subject_of("face_001.png"), None);
        assert_eq!(subject_of("S_001.png"), None);
    }

    fn make_ck(root: &Path) {
        let files = [
            ("anger", "S010_004_00000019.png"),
            ("anger", "S011_004_00000021.png"),
            ("contempt", "S138_008_00000009.png"),
            ("happy", "S010_006_00000015.png"),
            ("happy", "S022_003_00000014.png"),
            ("sadness", "S011_002_00000022.png"),
            ("surprise", "S022_001_00000030.png"),
            ("surprise", "no_subject.png"),
        ];
        for (class, name) in files {
            let d = root.join(class);
            std::fs::create_dir_all(&d).unwrap();
            GrayImage::from_pixel(64, 64, Luma([100])).save(d.join(name)).unwrap();
        }
    }

    #[test]
    fn loads_with_contempt_policy_and_folds_are_subject_independent() {
        let root = std::env::temp_dir().join(format!("ckplus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        make_ck(&root);

        let dropped = load(&root, ContemptPolicy::Drop, OnError::Skip).unwrap();
        assert_eq!(dropped.train.len(), 6);
        assert_eq!(dropped.report.skipped.len(), 1);
        assert!(dropped.report.skipped[0].to_string().contains("no_subject.png"));
        let as_disgust = load(&root, ContemptPolicy::AsDisgust, OnError::Skip).unwrap();
        assert_eq!(Dataset::class_counts(&as_disgust.train)[Emotion::Disgust.index()], 1);
        assert!(load(&root, ContemptPolicy::Drop, OnError::Fail).is_err());

        let folds = subject_folds(&as_disgust.train, 3);
        for f in 0..3 {
            let split = fold_split(&as_disgust, &folds, f);
            let train: BTreeSet<_> = split.train.iter().map(|s| s.subject.clone()).collect();
            let test: BTreeSet<_> = split.test.iter().map(|s| s.subject.clone()).collect();
            assert!(train.is_disjoint(&test), "fold {f}: {train:?} vs {test:?}");
            assert_eq!(split.train.len() + split.test.len(), 7);
        }
        // S010, S011, S022 have 2 samples each, S138 one: sizes are balanced to 3, 2, 2.
        let mut sizes = [0; 3];
        folds.iter().for_each(|f| sizes[*f] += 1);
        sizes.sort();
        assert_eq!(sizes, [2, 2, 3]);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
