//! `fer-train`: datasets, training and export for fer-edge.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use fer_core::{ContemptPolicy, Emotion};
use fer_trainer::datasets::builtin::{self, BuiltinConfig, ClassBalance};
use fer_trainer::datasets::{ckplus, fer2013, folders, Dataset, OnError, Split};

#[derive(Parser)]
#[command(name = "fer-train", version, about = "fer-edge host trainer: datasets, training, export")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate, export and inspect datasets.
    #[command(subcommand)]
    Dataset(DatasetCmd),
}

#[derive(Subcommand)]
enum DatasetCmd {
    /// Generate the built-in synthetic face dataset and write it as a FER-2013 CSV, as image
    /// folders, and a preview sheet (one row per emotion, FER-2013 order).
    ///
    /// Example: fer-train dataset builtin --out out/builtin --train 1400 --test 700
    Builtin {
        /// Output folder (gets fer2013.csv, folders/{train,val,test}/<emotion>/, preview.png).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 14000)]
        train: usize,
        #[arg(long, default_value_t = 2100)]
        val: usize,
        #[arg(long, default_value_t = 2100)]
        test: usize,
        /// Image side in pixels.
        #[arg(long, default_value_t = 48)]
        size: u32,
        #[arg(long, value_enum, default_value_t = ClassBalance::Uniform)]
        balance: ClassBalance,
    },
    /// Load a dataset with the real loaders and print class counts and every skipped input.
    ///
    /// Example: fer-train dataset inspect --fer2013-csv ~/data/fer2013.csv
    Inspect {
        /// FER-2013 CSV (emotion,pixels,Usage).
        #[arg(long, group = "source")]
        fer2013_csv: Option<PathBuf>,
        /// FER-2013 image folders (train|test/<emotion>/*.png).
        #[arg(long, group = "source")]
        folders: Option<PathBuf>,
        /// CK+ class folders (anger, contempt, ..., surprise[, neutral]).
        #[arg(long, group = "source")]
        ckplus: Option<PathBuf>,
        /// What CK+'s contempt class becomes.
        #[arg(long, value_enum, default_value_t = ContemptArg::Drop)]
        contempt: ContemptArg,
        /// Skip and report bad rows/files, or stop at the first.
        #[arg(long, value_enum, default_value_t = OnError::Skip)]
        on_error: OnError,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ContemptArg {
    Drop,
    AsDisgust,
    AsNeutral,
}

impl From<ContemptArg> for ContemptPolicy {
    fn from(c: ContemptArg) -> Self {
        match c {
            ContemptArg::Drop => ContemptPolicy::Drop,
            ContemptArg::AsDisgust => ContemptPolicy::AsDisgust,
            ContemptArg::AsNeutral => ContemptPolicy::AsNeutral,
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Dataset(DatasetCmd::Builtin { out, seed, train, val, test, size, balance }) => {
            let cfg = BuiltinConfig { seed, size, train, val, test, balance };
            let ds = builtin::generate(&cfg);
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            if size == fer2013::SIDE {
                fer2013::write_csv(&ds, &out.join("fer2013.csv"))?;
            }
            folders::write_fer_folders(&ds, &out.join("folders"))?;
            preview(&ds, &out.join("preview.png"))?;
            let cfg_path = out.join("builtin-config.json");
            std::fs::write(&cfg_path, serde_json::to_string_pretty(&cfg)? + "\n")
                .with_context(|| format!("writing {}", cfg_path.display()))?;
            println!("{ds}");
            println!("wrote {}", out.display());
        }
        Command::Dataset(DatasetCmd::Inspect { fer2013_csv, folders: dirs, ckplus: ck, contempt, on_error }) => {
            let ds = match (fer2013_csv, dirs, ck) {
                (Some(p), _, _) => fer2013::load_csv(&p, on_error)?,
                (_, Some(p), _) => folders::load_fer_folders(&p, on_error)?,
                (_, _, Some(p)) => ckplus::load(&p, contempt.into(), on_error)?,
                _ => anyhow::bail!("name a dataset: --fer2013-csv, --folders or --ckplus"),
            };
            for p in &ds.report.skipped {
                eprintln!("skipped: {p}");
            }
            println!("{ds}");
        }
    }
    Ok(())
}

/// A contact sheet: one row per emotion (FER-2013 order), up to 12 training faces each.
fn preview(ds: &Dataset, path: &std::path::Path) -> Result<()> {
    let samples = ds.split(Split::Train);
    let Some(first) = samples.first() else { return Ok(()) };
    let side = first.image.width();
    let cols = 12u32;
    let mut sheet = image::GrayImage::new(cols * side, Emotion::ALL.len() as u32 * side);
    for (row, e) in Emotion::ALL.iter().enumerate() {
        for (col, s) in samples.iter().filter(|s| s.label == *e).take(cols as usize).enumerate() {
            image::imageops::replace(&mut sheet, &s.image, (col as u32 * side) as i64, (row as u32 * side) as i64);
        }
    }
    sheet.save(path).with_context(|| format!("writing {}", path.display()))
}
