//! The built-in dataset exported as a FER-2013 CSV and as image folders reads back, through the
//! real loaders, as exactly the same faces and labels.

use fer_trainer::datasets::builtin::{generate, BuiltinConfig, ClassBalance};
use fer_trainer::datasets::{fer2013, folders, Dataset, OnError, Sample, Split};

fn same(a: &[Sample], b: &[Sample]) {
    assert_eq!(a.len(), b.len());
    // Folder order is by class then file name; CSV order is as written. Compare as multisets.
    let key = |s: &Sample| (s.label.index(), s.image.as_raw().clone());
    let mut ka: Vec<_> = a.iter().map(key).collect();
    let mut kb: Vec<_> = b.iter().map(key).collect();
    ka.sort();
    kb.sort();
    assert!(ka == kb, "samples differ after the round trip");
}

#[test]
fn builtin_round_trips_through_csv_and_folders() {
    let cfg = BuiltinConfig { seed: 5, size: 48, train: 35, val: 14, test: 21, balance: ClassBalance::Fer2013Like };
    let ds = generate(&cfg);
    let dir = std::env::temp_dir().join(format!("fer-roundtrip-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let csv = dir.join("fer2013.csv");
    fer2013::write_csv(&ds, &csv).unwrap();
    let from_csv = fer2013::load_csv(&csv, OnError::Fail).unwrap();
    folders::write_fer_folders(&ds, &dir.join("folders")).unwrap();
    let from_dirs = folders::load_fer_folders(&dir.join("folders"), OnError::Fail).unwrap();

    for split in Split::ALL {
        same(ds.split(split), from_csv.split(split));
        same(ds.split(split), from_dirs.split(split));
        assert_eq!(Dataset::class_counts(ds.split(split)), Dataset::class_counts(from_csv.split(split)));
    }
    assert!(from_csv.report.skipped.is_empty() && from_dirs.report.skipped.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stratified_validation_split_keeps_class_proportions() {
    let mut ds = generate(&BuiltinConfig { seed: 2, size: 48, train: 700, val: 0, test: 0, ..Default::default() });
    ds.stratified_val_split(0.2, 9);
    assert_eq!(Dataset::class_counts(&ds.val), [20; 7]);
    assert_eq!(Dataset::class_counts(&ds.train), [80; 7]);
    let again = {
        let mut d = generate(&BuiltinConfig { seed: 2, size: 48, train: 700, val: 0, test: 0, ..Default::default() });
        d.stratified_val_split(0.2, 9);
        d
    };
    assert!(ds.val.iter().zip(&again.val).all(|(a, b)| a.image == b.image), "split must be deterministic");
}

/// `fer-train dataset builtin ... | head -0`: the reader is gone before the first line. The
/// program ends on SIGPIPE as other tools do (it panicked in println!), its files written.
#[test]
fn output_into_a_closed_pipe_ends_quietly_with_the_files_written() {
    use std::os::unix::process::ExitStatusExt;
    let dir = std::env::temp_dir().join(format!("fer-closed-pipe-{}", std::process::id()));
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fer-train"))
        .args(["dataset", "builtin", "--train", "0", "--val", "0", "--test", "7", "--out"])
        .arg(&dir)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?} {err}", out.status);
    assert!(dir.join("fer2013.csv").is_file(), "the dataset was written before the output");
    std::fs::remove_dir_all(&dir).unwrap();
}
