//! `fer-device`: the on-board program: `run` (frames -> faces -> emotions -> JSON lines and
//! annotated frames) and `check-config`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use fer_core::board::{BoardConfig, CameraKind, DetectorKind, DisplayConfig};
use fer_core::manifest::ModelManifest;
use fer_core::preprocess::ColorMode;
use fer_core::Emotion;
use fer_device::classify::TractClassifier;
use fer_device::detect::{DetectParams, HaarCascade};
use fer_device::pipeline::{FaceFinder, FrameResult, JsonLines, Pass, Pipeline};
use fer_device::present::panels::{panel_size, PanelScreens};
use fer_device::present::screen::Screen;
use fer_device::present::{draw_faces, open_display, PngPresenter, Presenter, RgbCanvas, ThreadedPresenter};
use fer_device::source::{
    FolderSource, FrameSource, MjpegSource, Polled, Prefetch, RawSource, SingleImage, SourceError,
};
use fer_device::track::{Probs, Tracker};

#[derive(Parser)]
#[command(name = "fer-device", version, about = "fer-edge on-board program")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline on a source and write one JSON line per frame.
    ///
    /// Ctrl-C or SIGTERM (`systemctl stop`) ends the run after the frame in hand, also while
    /// the camera sends nothing: its JSON line and the summary are written, the display says
    /// "stopped", exit status 0. A second signal kills at once. After 2 s without a frame the
    /// display says "no frames" (its results would be stale). Started by systemd with a notify
    /// socket ($NOTIFY_SOCKET, Type=notify), it says READY=1 once its source is open, pings the
    /// watchdog ($WATCHDOG_USEC) from its frame loop, sends --status-every's lines as the unit's
    /// status and STOPPING=1 at the end.
    ///
    /// Examples:
    ///   fer-device run --board board-configs/rpi4.toml --source image:photo.jpg --headless
    ///   fer-device run --board board-configs/rpi4.toml --source folder:frames/ --json out.jsonl --annotated out/
    ///   fer-device run --board board-configs/rpi4.toml --source photos:holiday/ --headless --annotated out/
    ///   cat cam.mjpeg | fer-device run --board board-configs/rpi4.toml --source mjpeg:- --headless
    Run(RunArgs),
    /// Measure per-stage latency (decode, detect, classify, track, draw), frames per second and
    /// peak RSS on a source; prints a table and JSON.
    ///
    /// Example: fer-device bench --board board-configs/rpi4.toml --source folder:frames/ --passes 3
    Bench {
        #[command(flatten)]
        common: PipelineArgs,
        /// Passes over the source.
        #[arg(long, default_value_t = 3)]
        passes: usize,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Run as a VM's init (scripts/arm-cost.sh --pipeline): mount /proc first, skip the
        /// Python onnxruntime comparison, power the machine off at the end.
        #[arg(long)]
        poweroff: bool,
        /// Compare the classifier with onnxruntime loaded from this `libonnxruntime.so` (in this
        /// process: no Python needed, as on a board) instead of .venv-ref's Python onnxruntime.
        #[arg(long)]
        onnxruntime: Option<PathBuf>,
    },
    /// Time batch-1 inference of ONNX models in tract (one thread), the models interleaved, and
    /// print the time per inference of each, with the classifier's plan and tract's own. Under
    /// QEMU with `-icount shift=0` the guest clock counts instructions, so the figures are guest
    /// instructions (scripts/arm-cost.sh runs this as PID 1 of an aarch64 VM with --poweroff).
    ///
    /// Example: fer-device bench-models models/a/model.onnx models/b/model.onnx --iterations 50
    BenchModels {
        /// ONNX files ([N, C, H, W] float input).
        #[arg(required = true)]
        models: Vec<PathBuf>,
        #[arg(long, default_value_t = 50)]
        iterations: usize,
        /// Run as a VM's init: mount /proc first, power the machine off at the end.
        #[arg(long)]
        poweroff: bool,
        /// Also time every node of each plan and print the time per op kind (median run).
        #[arg(long)]
        profile: bool,
        /// With --profile: how many of the slowest nodes to list (0: every node).
        #[arg(long, default_value_t = 12)]
        profile_nodes: usize,
        /// Threads for tract's matrix products (as a board's `model.threads`).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Which plans to time: the classifier's (`fer`), tract's own (`tract`), or both.
        #[arg(long, value_enum, default_value_t = PlanChoice::Both)]
        plan: PlanChoice,
        /// Also run each model in onnxruntime, loaded from this `libonnxruntime.so` (e.g. the
        /// one in PyPI's onnxruntime wheel, `onnxruntime/capi/`), one thread, interleaved with
        /// the plans: its time, the ratio, and how far its output is from the first plan's.
        #[arg(long)]
        onnxruntime: Option<PathBuf>,
    },
    /// Time the decoding of a camera frame in each pixel format a V4L2 camera can deliver (MJPEG
    /// without Huffman tables as UVC cameras send it, YUYV, NV12, gray, RGB), made from a
    /// photograph scaled to the camera's size; one thread, the formats interleaved, median of
    /// `--iterations`, each as a ratio to MJPEG. Under QEMU icount the figures are guest
    /// instructions (scripts/arm-cost.sh --decode). Built with `--features camera`, nokhwa's own
    /// YUYV conversion is timed too.
    ///
    /// Example: fer-device bench-decode .cache/fixtures/astronaut.png --width 640 --height 480
    BenchDecode {
        /// A photograph (PNG/JPEG), resized to WIDTHxHEIGHT.
        image: PathBuf,
        #[arg(long, default_value_t = 640)]
        width: u32,
        #[arg(long, default_value_t = 480)]
        height: u32,
        #[arg(long, default_value_t = 20)]
        iterations: usize,
        /// Run as a VM's init: mount /proc first, power the machine off at the end.
        #[arg(long)]
        poweroff: bool,
    },
    /// Time the cascade detector alone on photographs (one thread, median of `--iterations`)
    /// and OpenCV's `detectMultiScale` with the same cascade, parameters and gray image in the
    /// same run (Python: $FER_ORT_PYTHON or .venv-ref/bin/python with scripts/haar_reference.py),
    /// and report whether both found the same boxes.
    ///
    /// Example: fer-device bench-detect .cache/fixtures/astronaut.png --detector lbp --iterations 20
    BenchDetect {
        /// Photographs (PNG/JPEG), converted to gray as the pipeline does.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[arg(long, default_value = "haar", value_parser = ["haar", "lbp"])]
        detector: String,
        /// Cascade XML instead of Debian's opencv-data file for --detector.
        #[arg(long)]
        cascade: Option<PathBuf>,
        #[arg(long, default_value_t = 1.1)]
        scale_factor: f64,
        #[arg(long, default_value_t = 3)]
        min_neighbors: usize,
        /// Smallest face side in pixels.
        #[arg(long, default_value_t = 24)]
        min_size: u32,
        #[arg(long, default_value_t = 10)]
        iterations: usize,
        /// Threads scanning our pyramid's levels (OpenCV always runs on one).
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Validate board configs and report, for each, whether its model, cascade, camera and
    /// display can be found on this machine and opened by this user (with the device's owner,
    /// group and mode, and what would let the user open it), and whether this build has camera
    /// support. Exits 1 if a config is invalid.
    ///
    /// Example: fer-device check-config board-configs/*.toml
    CheckConfig {
        /// Board config files.
        #[arg(required = true)]
        boards: Vec<PathBuf>,
    },
}

/// What every pipeline command needs.
#[derive(clap::Args)]
struct PipelineArgs {
    /// Board config (camera, display, model, detection, tracking).
    #[arg(long)]
    board: PathBuf,
    /// camera | folder:PATH | photos:PATH | image:PATH | mjpeg:PATH | FORMAT:WIDTHxHEIGHT:PATH.
    /// `camera` is the board config's: a V4L2 camera, or a Camera Module through rpicam-vid
    /// (`camera.kind`). FORMAT one of yuyv, nv12, yuv420, yuvj420, gray, rgb, bgr: raw camera
    /// frames as `v4l2-ctl --stream-to` records them, `ffmpeg -pix_fmt yuv420p` writes them
    /// (yuv420: limited range) or `rpicam-vid --codec yuv420 -o -` does (yuvj420: full range)
    /// (PATH `-` reads stdin, for mjpeg and raw frames). `folder:` reads its files,
    /// sorted by name, as the frames of one scene (faces are tracked from file to file);
    /// `photos:` as unrelated photographs (each searched whole, its faces new ones). A frame of
    /// another size than the last starts a new scene in any source.
    #[arg(long, default_value = "camera")]
    source: String,
    /// Model manifest, instead of the board config's `model.manifest`.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Treat each whole frame as one face (inputs that are already face crops).
    #[arg(long)]
    whole_frame: bool,
    /// Override the board's detection.detect_width (0 = detect at full resolution, e.g. for
    /// photographs with small faces).
    #[arg(long)]
    detect_width: Option<u32>,
    /// Override the board's detection.min_face (smallest face side in frame pixels).
    #[arg(long)]
    min_face: Option<u32>,
    /// Override the board's detection.max_faces (faces classified per frame, largest first).
    #[arg(long)]
    max_faces: Option<usize>,
    /// What frames are decoded to. auto: a camera's frames (camera, mjpeg:, and yuyv, nv12,
    /// yuv420, yuvj420 frames) to gray when nothing needs their colour (a gray model — the face
    /// detector and the screen's face crop are gray anyway — and no --annotated frames): their
    /// luma is used as it comes, without converting it to RGB and back; otherwise RGB (image
    /// files carry no luma of their own). gray: any source, also with --annotated (gray
    /// pictures); refused for a colour model.
    #[arg(long, value_enum, default_value_t = FrameColor::Auto)]
    frame_color: FrameColor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FrameColor {
    Auto,
    Rgb,
    Gray,
}

/// Whether the source `spec` names sends luma that needs no colour conversion: a camera's
/// frames, YUV frames, JPEG (Y'CbCr) frames.
fn carries_luma(spec: &str) -> bool {
    matches!(source_kind(spec).0, "camera" | "mjpeg" | "yuyv" | "nv12" | "yuv420" | "yuvj420")
}

/// " (N older camera frames skipped for newer ones)" for a live camera, or nothing.
fn skipped_note(skipped: u64) -> String {
    if skipped == 0 {
        return String::new();
    }
    format!(" ({skipped} older camera frames skipped for newer ones)")
}

fn color_name(color: ColorMode) -> &'static str {
    match color {
        ColorMode::Gray => "gray",
        ColorMode::Rgb => "rgb",
    }
}

/// What `a`'s frames are decoded to for a model taking `model` faces, `annotated` frames wanted
/// or not (see `--frame-color`).
fn frame_color(a: &PipelineArgs, model: ColorMode, annotated: bool) -> Result<ColorMode> {
    Ok(match a.frame_color {
        FrameColor::Rgb => ColorMode::Rgb,
        FrameColor::Gray if model == ColorMode::Rgb => {
            bail!("--frame-color gray: the model takes colour faces (its manifest's input.color is rgb)")
        }
        FrameColor::Gray => ColorMode::Gray,
        FrameColor::Auto if model == ColorMode::Gray && !annotated && carries_luma(&a.source) => ColorMode::Gray,
        FrameColor::Auto => ColorMode::Rgb,
    })
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    common: PipelineArgs,
    /// Do not drive the board's display.
    #[arg(long, conflicts_with = "display")]
    headless: bool,
    /// Where the screen goes instead of the board's display: "png:DIR" writes every screen, as
    /// the board's panel (size, mono/colour) would show it, to DIR/screen-NNNNNN.png.
    #[arg(long)]
    display: Option<String>,
    /// JSON-lines output file ("-" = stdout, the default; "none" = no JSON lines, e.g. in the
    /// board's service, where the display is the output; ./none is a file of that name).
    #[arg(long, default_value = "-")]
    json: PathBuf,
    /// Write each frame with boxes and labels drawn as PNG into this folder.
    #[arg(long)]
    annotated: Option<PathBuf>,
    /// Stop after this many frames (0 = all).
    #[arg(long, default_value_t = 0)]
    max_frames: u64,
    /// Frames read and decoded ahead on a second thread while the current one is processed
    /// (0 = read on the main thread, one core; then a source that stalls also holds up a stop
    /// signal and the display's "no frames" until its next frame).
    #[arg(long, default_value_t = 2)]
    prefetch: usize,
    /// With --source camera: process every frame the camera sends, in order, however far the
    /// pipeline falls behind. By default the frame-reading thread reads the camera as fast as
    /// it sends and the pipeline takes its newest frame, skipping older ones (what is shown is
    /// what the camera sees now; the JSON's frame numbers show the gaps). With --prefetch 0 the
    /// camera is read on the main thread, every frame in order.
    #[arg(long)]
    every_frame: bool,
    /// Every this many seconds, a status line on stderr (the journal, under systemd): frames
    /// and their rate since the last line, faces, errors (0 = none).
    #[arg(long, default_value_t = 0)]
    status_every: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_)) {
        // A report piped into `head` ends quietly once the reader is gone, as other tools do
        // (Rust ignores SIGPIPE, and println! panics on the broken pipe). `run` keeps ignoring
        // it: its writes fail with an error it reports, after its summary and "stopped" screen.
        // SAFETY: before any thread is started; the default disposition needs no handler.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Debian's opencv-data location of the cascade for `kind`.
fn default_cascade(kind: DetectorKind) -> &'static str {
    match kind {
        DetectorKind::Haar => "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml",
        DetectorKind::Lbp => "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml",
    }
}

/// Where `min_face` asks for faces smaller than the cascade can find in the camera's frames (its
/// window, scaled up by the detection pass's downscaling): says which sizes are missed.
fn min_face_note(cfg: &BoardConfig, cascade: &Path) -> Option<String> {
    let (ww, _) = HaarCascade::load(cascade).ok()?.window();
    let (d, width) = (&cfg.detection, cfg.camera.width);
    let scale = if d.detect_width > 0 && width > d.detect_width { width as f64 / d.detect_width as f64 } else { 1.0 };
    let smallest = (ww as f64 * scale).ceil() as u32;
    (d.min_face < smallest).then(|| {
        format!(
            "detection.min_face {} px is below the smallest face this cascade can find in {width}-px-wide \
             frames ({smallest} px: its {ww}-px window{}); faces of {}-{} px are missed",
            d.min_face,
            if scale > 1.0 { format!(" at detect_width {}", d.detect_width) } else { String::new() },
            d.min_face,
            smallest - 1,
        )
    })
}

/// What this binary was built for and with: the first line of `check-config`.
fn build_line() -> String {
    let camera = if cfg!(feature = "camera") {
        "V4L2 camera (nokhwa) built in"
    } else {
        "no V4L2 camera support (files, pipes, camera programs; build with --features camera)"
    };
    format!("fer-device {} for {}-linux: {camera}", env!("CARGO_PKG_VERSION"), std::env::consts::ARCH)
}

/// `check-config`'s report on a valid config: its model, cascade, camera and display, each
/// found or not on this machine, and whether this process can open it as the pipeline would.
fn check_lines(cfg: &BoardConfig) -> Vec<String> {
    use fer_device::access::{describe, Need};
    let mut lines = Vec::new();
    let manifest = Path::new(&cfg.model.manifest);
    let model = match ModelManifest::load(manifest) {
        Ok(m) => match m.verified_onnx_path(manifest) {
            Ok(onnx) => format!("{} ({}, hash verified)", onnx.display(), m.name),
            Err(e) => format!("unusable: {e}"),
        },
        Err(e) => format!("unusable: {e}"),
    };
    lines.push(format!("model    {model}"));
    let cascade =
        if cfg.detection.cascade.is_empty() { default_cascade(cfg.detection.detector) } else { &cfg.detection.cascade };
    lines.push(format!("cascade  {cascade}: {}", describe(Path::new(cascade), Need::Read)));
    if let Some(note) = min_face_note(cfg, Path::new(cascade)) {
        lines.push(format!("note     {note}"));
    }
    let c = &cfg.camera;
    let rw = |p: &str| describe(Path::new(p), Need::ReadWrite);
    match c.kind {
        CameraKind::V4l2 => {
            let format = match c.format {
                fer_core::board::PixelFormat::Mjpeg => "MJPEG",
                fer_core::board::PixelFormat::Yuyv => "YUYV",
            };
            lines.push(format!(
                "camera   {} ({}x{} {format} at {} fps): {}",
                c.device,
                c.width,
                c.height,
                c.fps,
                rw(&c.device)
            ));
            if let Some(note) = fer_device::access::not_a_webcam(Path::new(&c.device), Path::new("/sys")) {
                lines.push(format!("note     {note}"));
            }
        }
        CameraKind::Command => {
            let program = c.command.first().map(String::as_str).unwrap_or_default();
            let found = match fer_device::access::find_program(program) {
                Some(path) => format!("runs {}", path.display()),
                None => "not found on this machine".into(),
            };
            lines.push(format!(
                "camera   {program} (command, {}x{} {} frames on its output): {found}",
                c.width, c.height, c.command_format
            ));
        }
        CameraKind::Rpicam => {
            let program = match fer_device::access::find_program(&c.rpicam_command) {
                Some(path) => format!("runs {}", path.display()),
                None => "not found on this machine (sudo apt install rpicam-apps)".into(),
            };
            lines.push(format!(
                "camera   {} (Camera Module, {}x{} YUV 4:2:0 at {} fps): {program}",
                c.rpicam_command, c.width, c.height, c.fps
            ));
            // What libcamera opens: the media controller graphs and the DMA buffer heaps.
            let nodes = fer_device::access::libcamera_nodes(Path::new("/dev"));
            if nodes.is_empty() {
                lines.push(
                    "camera   /dev/media*: not found on this machine (no libcamera camera: is a Camera Module \
                     connected, and camera_auto_detect=1 in config.txt?)"
                        .into(),
                );
            }
            for node in nodes {
                lines.push(format!("camera   {} (libcamera): {}", node.display(), describe(&node, Need::ReadWrite)));
            }
        }
    }
    match &cfg.display {
        DisplayConfig::None => lines.push("display  none".into()),
        DisplayConfig::Ssd1306 { i2c_bus, address, .. } => {
            lines.push(format!("display  ssd1306 at {address:#04x} on {i2c_bus}: {}", rw(i2c_bus)))
        }
        DisplayConfig::St7789(p) | DisplayConfig::Ili9341(p) => {
            lines.push(format!("display  SPI panel on {}: {}", p.spi, rw(&p.spi)));
            lines.push(format!("gpio     {} (panel control pins): {}", p.gpio_chip, rw(&p.gpio_chip)));
        }
        DisplayConfig::Framebuffer { device } => lines.push(format!("display  framebuffer {device}: {}", rw(device))),
    }
    lines
}

/// The board config's camera: a program's frames (rpicam-vid or `camera.command`; any build) or a
/// V4L2 camera's, reopened with backoff when lost.
fn open_camera(cfg: &BoardConfig, color: ColorMode) -> Result<Box<dyn FrameSource>> {
    use fer_device::source::camera::{Backoff, CameraSource};
    let backoff = Backoff { first_ms: cfg.camera.retry_ms, max_ms: cfg.camera.retry_max_ms };
    match fer_device::source::command::CommandOpener::for_camera(&cfg.camera, color) {
        Some(opener) => Ok(Box::new(CameraSource::open(opener, backoff)?)),
        None => open_v4l2(cfg, backoff, color),
    }
}

#[cfg(feature = "camera")]
fn open_v4l2(
    cfg: &BoardConfig,
    backoff: fer_device::source::camera::Backoff,
    color: ColorMode,
) -> Result<Box<dyn FrameSource>> {
    use fer_device::source::camera::CameraSource;
    let opener = fer_device::source::v4l::V4lOpener { config: cfg.camera.clone(), color };
    Ok(Box::new(CameraSource::open(opener, backoff)?))
}

#[cfg(not(feature = "camera"))]
fn open_v4l2(cfg: &BoardConfig, _: fer_device::source::camera::Backoff, _: ColorMode) -> Result<Box<dyn FrameSource>> {
    bail!(
        "camera {}: this build has no V4L2 camera support (build fer-device with --features camera, \
         which needs libclang-dev), or camera.kind = \"rpicam\" for a Raspberry Pi Camera Module; or use \
         --source folder:PATH, photos:PATH, image:PATH or mjpeg:PATH",
        cfg.camera.device
    )
}

/// A `--source` spec's kind and argument (`folder:PATH` -> `folder`, `PATH`; `camera` -> `camera`, "").
fn source_kind(spec: &str) -> (&str, &str) {
    spec.split_once(':').unwrap_or((spec, ""))
}

/// The source `spec` names, its frames decoded to `color`.
fn open_source(spec: &str, cfg: &BoardConfig, color: ColorMode) -> Result<Box<dyn FrameSource>> {
    let (kind, arg) = source_kind(spec);
    let path = Path::new(arg);
    Ok(match kind {
        "folder" => Box::new(FolderSource::open(path)?.with_color(color)),
        "photos" => Box::new(FolderSource::open(path)?.photos().with_color(color)),
        "image" => Box::new(SingleImage::open(path)?.with_color(color)),
        "mjpeg" => Box::new(MjpegSource::open(path)?.with_color(color)),
        "camera" => open_camera(cfg, color)?,
        "yuyv" | "nv12" | "yuv420" | "yuvj420" | "gray" | "rgb" | "bgr" => {
            Box::new(RawSource::open(kind.parse().map_err(anyhow::Error::msg)?, arg)?.with_color(color))
        }
        other => bail!(
            "unknown source kind {other:?}: use camera, folder:PATH, photos:PATH, image:PATH, mjpeg:PATH or \
             yuyv|nv12|yuv420|yuvj420|gray|rgb|bgr:WIDTHxHEIGHT:PATH"
        ),
    })
}

fn probs_json(p: &Probs) -> serde_json::Value {
    Emotion::ALL
        .iter()
        .map(|e| (e.name().to_string(), serde_json::json!(p[e.index()])))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Adds a frame found by `pass` with `detect_ms` of detection to `kinds` (pass, frames, ms).
fn count_pass(kinds: &mut Vec<(Pass, usize, f64)>, pass: Pass, detect_ms: f64) {
    match kinds.iter_mut().find(|k| k.0 == pass) {
        Some(k) => (k.1, k.2) = (k.1 + 1, k.2 + detect_ms),
        None => kinds.push((pass, 1, detect_ms)),
    }
}

/// A pass's name as in the JSON lines.
fn pass_name(pass: Pass) -> String {
    serde_json::json!(pass).as_str().unwrap_or("?").to_string()
}

fn frame_json(r: &FrameResult, t0: std::time::Instant) -> serde_json::Value {
    let faces: Vec<serde_json::Value> = r
        .faces
        .iter()
        .map(|f| {
            serde_json::json!({
                "id": f.id,
                "box": f.bbox,
                "label": f.label,
                "confidence": f.confidence,
                "uncertain": f.uncertain,
                "probs": probs_json(&f.probs),
                "smoothed": probs_json(&f.smoothed),
            })
        })
        .collect();
    serde_json::json!({
        "time_ms": t0.elapsed().as_secs_f64() * 1e3,
        "frame": r.frame,
        "source": r.source,
        "width": r.width,
        "height": r.height,
        "faces": faces,
        "detection": r.detection,
        "timings_ms": r.timings,
    })
}

/// Loads the board config, model and detector.
/// The board config with the command line's overrides, validated.
fn load_board(a: &PipelineArgs) -> Result<BoardConfig> {
    let mut cfg = BoardConfig::load(&a.board)?;
    if let Some(w) = a.detect_width {
        cfg.detection.detect_width = w;
    }
    if let Some(m) = a.min_face {
        cfg.detection.min_face = m;
    }
    if let Some(m) = a.max_faces {
        cfg.detection.max_faces = m;
    }
    cfg.validate(&a.board)?;
    Ok(cfg)
}

/// Wall time of the start-up steps, ms: loading the model (manifest, hash, ONNX, tract's
/// optimisation and our rewrites) and the detector (the cascade's XML).
struct Startup {
    model_ms: f64,
    detector_ms: f64,
}

/// A start-up step, as the context of its error: `run` shows `screen` on the display when the
/// step fails (a board without a terminal says why it is not running), the error itself goes to
/// stderr (the journal, under systemd).
#[derive(Debug)]
struct StartStep {
    what: &'static str,
    board: PathBuf,
    screen: &'static str,
    /// Said after the step: where a relative path that is not there was looked for.
    note: String,
}

impl std::fmt::Display for StartStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}{}", self.what, self.board.display(), self.note)
    }
}

/// For a relative `path` (of the config's `field`) that is not there: that it was looked for
/// from the working directory (a board config run from another directory than the one its paths
/// were written for); else nothing.
fn relative_note(field: &str, path: &Path) -> String {
    match std::env::current_dir() {
        Ok(cwd) if path.is_relative() && !path.exists() => {
            format!(" ({field} {} is relative to the working directory, {})", path.display(), cwd.display())
        }
        _ => String::new(),
    }
}

/// Shows `message` on the display, if there is one, and gives `e` back: for errors that end
/// `run` before its first frame.
fn failed_to_start(presenter: &mut Option<Box<dyn Presenter>>, message: &str, e: anyhow::Error) -> anyhow::Error {
    if let Some(p) = presenter.as_mut() {
        // The error that ends the run matters more than one of the display.
        let _ = p.show(&Screen::status(message));
    }
    e
}

fn build_pipeline(
    a: &PipelineArgs,
    cfg: BoardConfig,
) -> Result<(BoardConfig, PathBuf, Pipeline<HaarCascade, TractClassifier>, Startup)> {
    let manifest = a.model.clone().unwrap_or_else(|| PathBuf::from(&cfg.model.manifest));
    let t = std::time::Instant::now();
    let classifier = TractClassifier::load(&manifest, cfg.model.threads)
        .and_then(|c| c.with_face_threads(cfg.model.face_threads))
        .with_context(|| StartStep {
            what: "loading the model",
            board: a.board.clone(),
            screen: "model error",
            note: relative_note(if a.model.is_some() { "--model" } else { "model.manifest" }, &manifest),
        })?;
    let model_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = std::time::Instant::now();
    let finder = if a.whole_frame {
        FaceFinder::WholeFrame
    } else {
        let cascade = if cfg.detection.cascade.is_empty() {
            default_cascade(cfg.detection.detector)
        } else {
            &cfg.detection.cascade
        };
        let mut haar = HaarCascade::load(Path::new(cascade)).with_context(|| StartStep {
            what: "loading the face detector",
            board: a.board.clone(),
            screen: "detector error",
            note: relative_note("detection.cascade", Path::new(cascade)),
        })?;
        haar.params = DetectParams {
            scale_factor: cfg.detection.scale_factor as f64,
            min_neighbors: cfg.detection.min_neighbors as usize,
            threads: cfg.detection.threads,
            ..DetectParams::default()
        };
        FaceFinder::Detect(haar)
    };
    let startup = Startup { model_ms, detector_ms: t.elapsed().as_secs_f64() * 1e3 };
    let pipeline = Pipeline::new(finder, classifier, Tracker::new(cfg.tracking.clone()), cfg.detection.clone());
    Ok((cfg, manifest, pipeline, startup))
}

/// How long `run` waits for a frame before its screen says "no frames" (the results shown are
/// stale: a camera being reopened, a stalled stream).
const NO_FRAMES_NOTICE: std::time::Duration = std::time::Duration::from_secs(2);

/// `run --status-every`: when the next status line is due, and the frame rate since the last.
struct StatusClock {
    every: Option<std::time::Duration>,
    last: std::time::Instant,
    frames_then: u64,
}

impl StatusClock {
    fn new(every_s: u64, now: std::time::Instant) -> StatusClock {
        StatusClock { every: (every_s > 0).then(|| std::time::Duration::from_secs(every_s)), last: now, frames_then: 0 }
    }

    /// `Some(frames per second since the last line)` when a line is due at `now`, `frames` being
    /// the run's count so far.
    fn due(&mut self, now: std::time::Instant, frames: u64) -> Option<f64> {
        let every = self.every?;
        let elapsed = now.duration_since(self.last);
        if elapsed < every {
            return None;
        }
        let fps = (frames - self.frames_then) as f64 / elapsed.as_secs_f64();
        (self.last, self.frames_then) = (now, frames);
        Some(fps)
    }
}

/// Set by SIGINT or SIGTERM: `run` stops after the frame in hand (a second signal kills).
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Ctrl-C and `systemctl stop` end a run cleanly: the frame in hand is finished, its JSON line
/// written, the display says "stopped" and the summary is printed. The handler is reset by
/// the first signal (SA_RESETHAND), so a second one kills at once.
fn stop_on_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that only stores to an atomic
        // (async-signal-safe); the old action is not needed.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_stop_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                eprintln!("fer-device: cannot catch signal {signal}: {}", std::io::Error::last_os_error());
            }
        }
    }
}

fn run_pipeline(r: RunArgs) -> Result<bool> {
    let a = &r.common;
    let cfg = load_board(a)?;
    // The display first: a missing panel is found before the model is loaded.
    let mut presenter: Option<Box<dyn Presenter>> = match (&r.display, r.headless) {
        (_, true) => None,
        (Some(d), _) => {
            let dir = d.strip_prefix("png:").with_context(|| format!("--display {d}: expected png:DIR"))?;
            let (size, mono) = panel_size(&cfg.display);
            Some(Box::new(PngPresenter::new(Path::new(dir), size, mono)?))
        }
        (None, false) if cfg.display == DisplayConfig::None => None,
        // A panel on its own thread: its bus transfer overlaps the next frames' processing.
        (None, false) => {
            let display = cfg.display.clone();
            let p = ThreadedPresenter::spawn(move || {
                open_display(&display).map(|p| p.expect("every display kind but none opens a presenter"))
            })
            .with_context(|| {
                format!("{}: opening the display (pass --headless to run without it)", a.board.display())
            })?;
            Some(Box::new(p))
        }
    };
    let (cfg, manifest, mut pipeline, _) = build_pipeline(a, cfg).map_err(|e| {
        let screen = e.downcast_ref::<StartStep>().map_or("start-up error", |s| s.screen);
        failed_to_start(&mut presenter, screen, e)
    })?;
    let color = frame_color(a, pipeline.classifier.manifest().input.color, r.annotated.is_some())
        .map_err(|e| failed_to_start(&mut presenter, "start-up error", e))?;
    if let Some(p) = &presenter {
        eprintln!("fer-device: display {}", p.describe());
    }
    let mut fps = 0f32;
    let mut last_frame = std::time::Instant::now();
    let opened = if r.prefetch > 0 {
        let (spec, board) = (a.source.clone(), cfg.clone());
        let open = move || open_source(&spec, &board, color);
        if source_kind(&a.source).0 == "camera" && !r.every_frame {
            Prefetch::spawn_newest(open).map(|p| Box::new(p) as Box<dyn FrameSource>)
        } else {
            Prefetch::spawn(r.prefetch, open).map(|p| Box::new(p) as Box<dyn FrameSource>)
        }
    } else {
        open_source(&a.source, &cfg, color)
    };
    let mut source = opened.map_err(|e| {
        let screen = if a.source == "camera" { "no camera" } else { "no input" };
        failed_to_start(&mut presenter, screen, e)
    })?;
    let mut out = match r.json.as_os_str().to_str() {
        Some("none") => None,
        Some("-") => Some(JsonLines::new(Box::new(std::io::stdout()) as Box<dyn Write>)),
        _ => {
            if let Some(dir) = r.json.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let file = std::fs::File::create(&r.json).with_context(|| format!("creating {}", r.json.display()))?;
            Some(JsonLines::new(Box::new(file) as Box<dyn Write>))
        }
    };
    let mut write_json = |value: serde_json::Value| match out.as_mut() {
        Some(o) => o.write(&value),
        None => Ok(()),
    };
    if let Some(dir) = &r.annotated {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    eprintln!(
        "fer-device: {}, {} frames -> {} ({})",
        source.describe(),
        color_name(color),
        manifest.display(),
        cfg.name
    );
    let t0 = std::time::Instant::now();
    let (mut frames, mut faces, mut errors) = (0u64, 0usize, 0u64);
    let mut kinds = Vec::new();
    let mut status_clock = StatusClock::new(r.status_every, t0);
    stop_on_signals();
    // Under systemd with Type=notify: started now (model loaded, source open), then watchdog
    // pings from the frame loop and the status lines as the unit's status.
    let mut notifier = fer_device::notify::Notifier::from_env();
    let notify = |notifier: &mut Option<fer_device::notify::Notifier>, message: &str| {
        if let Some(Err(e)) = notifier.as_ref().map(|n| n.send(message)) {
            eprintln!("fer-device: notifying systemd: {e}; no more notifications");
            *notifier = None;
        }
    };
    notify(&mut notifier, &format!("READY=1\nSTATUS={}", source.describe()));
    // Shows a status instead of stale results; a display that fails is reported, not fatal.
    let status = |presenter: &mut Option<Box<dyn Presenter>>, message: &str, errors: &mut u64| {
        if let Some(Err(e)) = presenter.as_mut().map(|p| p.show(&Screen::status(message))) {
            *errors += 1;
            eprintln!("display: {e}");
        }
    };
    loop {
        if r.max_frames > 0 && frames >= r.max_frames {
            break;
        }
        // Wait for the next frame, watching for a stop signal; a source read ahead on another
        // thread gives up every 50 ms, so a camera being reopened or a quiet pipe cannot hold
        // the stop up, and after NO_FRAMES_NOTICE without a frame the screen says so.
        let waiting_since = std::time::Instant::now();
        let mut noticed = false;
        let next = loop {
            if STOP.load(std::sync::atomic::Ordering::SeqCst) {
                break None;
            }
            let now = std::time::Instant::now();
            if let Some(rate) = status_clock.due(now, frames) {
                let line = format!(
                    "{frames} frames ({rate:.1} fps since the last){}, {faces} faces, {errors} errors in {:.0} s",
                    skipped_note(source.skipped()),
                    t0.elapsed().as_secs_f64()
                );
                eprintln!("fer-device: status: {line}");
                notify(&mut notifier, &format!("STATUS={line}"));
            }
            if let Some(Err(e)) = notifier.as_mut().map(|n| n.ping_if_due(now)) {
                eprintln!("fer-device: systemd's watchdog: {e}; no more notifications");
                notifier = None;
            }
            match source.poll_frame(std::time::Duration::from_millis(50)) {
                Polled::Next(next) => break Some(next),
                Polled::Waiting if !noticed && waiting_since.elapsed() >= NO_FRAMES_NOTICE => {
                    noticed = true;
                    eprintln!("fer-device: no frame for {} s", NO_FRAMES_NOTICE.as_secs());
                    status(&mut presenter, "no frames", &mut errors);
                }
                Polled::Waiting => {}
            }
        };
        let Some(next) = next else {
            status(&mut presenter, "stopped", &mut errors);
            break;
        };
        let frame = match next {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(SourceError::Frame { path, message }) => {
                errors += 1;
                eprintln!("skipped {}: {message}", path.display());
                write_json(serde_json::json!({"source": path, "error": message}))?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        frames += 1;
        let result = match pipeline.process(&frame) {
            Ok(r) => r,
            Err(e) => {
                errors += 1;
                eprintln!("frame {} ({}): {e}", frame.index, frame.name);
                write_json(serde_json::json!({"frame": frame.index, "source": frame.name, "error": e.to_string()}))?;
                continue;
            }
        };
        faces += result.faces.len();
        count_pass(&mut kinds, result.detection, result.timings.detect_ms);
        write_json(frame_json(&result, t0))?;
        let now = std::time::Instant::now();
        let dt = now.duration_since(last_frame).as_secs_f32().max(1e-6);
        last_frame = now;
        fps = if frames == 1 {
            0.0
        } else if fps == 0.0 {
            1.0 / dt
        } else {
            0.9 * fps + 0.1 / dt
        };
        if let Some(p) = presenter.as_mut() {
            let crop = main_face_crop(&frame.image, &result.faces);
            if let Err(e) = p.show(&Screen::frame(&result.faces, crop.as_ref(), fps)) {
                // The results are already written; a display that fails is reported, not fatal.
                errors += 1;
                eprintln!("display: {e}");
            }
        }
        if let Some(dir) = &r.annotated {
            let mut canvas = RgbCanvas(fer_core::preprocess::to_rgb8(&frame.image));
            draw_faces(&mut canvas, &result.faces).expect("drawing into memory cannot fail");
            let stem = Path::new(&frame.name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let path = dir.join(format!("{:06}-{stem}.png", frame.index));
            canvas.0.save(&path).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if STOP.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!("fer-device: stopped by a signal");
    }
    notify(&mut notifier, "STOPPING=1");
    eprintln!(
        "fer-device: {frames} frames{}, {faces} faces, {errors} errors in {:.1} s",
        skipped_note(source.skipped()),
        t0.elapsed().as_secs_f64()
    );
    if !kinds.is_empty() {
        let passes: Vec<String> = kinds.iter().map(|(k, n, _)| format!("{} {n}", pass_name(*k))).collect();
        eprintln!("fer-device: detection passes: {}", passes.join(", "));
    }
    if let Some(summary) = presenter.as_ref().and_then(|p| p.summary()) {
        eprintln!("fer-device: display {summary}");
    }
    Ok(true)
}

/// Gray crop of the first (main) face, for the screen.
fn main_face_crop(image: &image::DynamicImage, faces: &[fer_device::track::TrackedFace]) -> Option<image::GrayImage> {
    let b = &faces.first()?.bbox;
    let (x0, y0) = ((b.x.max(0.0) as u32).min(image.width()), (b.y.max(0.0) as u32).min(image.height()));
    let (x1, y1) = ((x0 + b.w as u32).min(image.width()), (y0 + b.h as u32).min(image.height()));
    // Only the face's pixels: converting the whole frame to gray for them cost a frame copy.
    Some(fer_core::preprocess::to_gray8_region(image, &fer_core::preprocess::CropRect { x0, y0, x1, y1 }))
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn bench(a: PipelineArgs, passes: usize, json: Option<PathBuf>, in_vm: bool, ort_lib: Option<&Path>) -> Result<bool> {
    // A library named but unusable is an error before anything runs.
    let ort_lib = ort_lib.map(fer_device::onnxruntime::OnnxRuntime::load).transpose()?;
    let (cfg, manifest, mut pipeline, startup) = build_pipeline(&a, load_board(&a)?)?;
    let color = frame_color(&a, pipeline.classifier.manifest().input.color, false)?;
    // "draw": boxes and labels into the frame copy; "screen": the board display's screen
    // rendered in memory in its pixel type, and the windows changed since the last one (the
    // bus transfer to the panel is not included).
    let stages = ["decode", "detect", "classify", "track", "draw", "screen", "total"];
    let mut screens = PanelScreens::new(&cfg.display);
    let mut changed_pixels = 0u64;
    let mut ms: Vec<Vec<f64>> = vec![Vec::new(); stages.len()];
    let mut faces = 0usize;
    // Detection passes by kind: (kind, frames, detect ms).
    let mut kinds: Vec<(Pass, usize, f64)> = Vec::new();
    for _ in 0..passes.max(1) {
        let mut source = open_source(&a.source, &cfg, color)?;
        loop {
            let t = std::time::Instant::now();
            let frame = match source.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(SourceError::Frame { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let decode = t.elapsed().as_secs_f64() * 1e3;
            let r = pipeline.process(&frame)?;
            let t = std::time::Instant::now();
            let mut canvas = RgbCanvas(fer_core::preprocess::to_rgb8(&frame.image));
            draw_faces(&mut canvas, &r.faces).expect("drawing into memory cannot fail");
            let draw = t.elapsed().as_secs_f64() * 1e3;
            let t = std::time::Instant::now();
            let crop = main_face_crop(&frame.image, &r.faces);
            changed_pixels += screens.render(&Screen::frame(&r.faces, crop.as_ref(), 30.0));
            let screen = t.elapsed().as_secs_f64() * 1e3;
            faces += r.faces.len();
            let (d, c, k) = (r.timings.detect_ms, r.timings.classify_ms, r.timings.track_ms);
            count_pass(&mut kinds, r.detection, d);
            for (i, v) in [decode, d, c, k, draw, screen, decode + d + c + k + draw + screen].into_iter().enumerate() {
                ms[i].push(v);
            }
        }
    }
    anyhow::ensure!(!ms[0].is_empty(), "{}: no frames", a.source);
    let stat = |v: &Vec<f64>| {
        let mut s = v.clone();
        s.sort_by(f64::total_cmp);
        let pick = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
        (s.iter().sum::<f64>() / s.len() as f64, pick(0.5), pick(0.95))
    };
    println!(
        "fer-device bench: {} ({} frames) on {} ({}), {} frames, {faces} faces",
        a.source,
        color_name(color),
        cfg.name,
        manifest.display(),
        ms[0].len()
    );
    println!("{:<10} {:>9} {:>9} {:>9}", "stage", "mean ms", "p50 ms", "p95 ms");
    let mut rows = serde_json::Map::new();
    for (name, v) in stages.iter().zip(&ms) {
        let (mean, p50, p95) = stat(v);
        println!("{name:<10} {mean:>9.3} {p50:>9.3} {p95:>9.3}");
        rows.insert(name.to_string(), serde_json::json!({"mean_ms": mean, "p50_ms": p50, "p95_ms": p95}));
    }
    let passes_json: Vec<serde_json::Value> = kinds
        .iter()
        .map(|(kind, n, d)| {
            println!("detection {:<16} {n:>5} frames, mean {:.3} ms", pass_name(*kind), d / *n as f64);
            serde_json::json!({"pass": kind, "frames": n, "detect_mean_ms": d / *n as f64})
        })
        .collect();
    println!(
        "start-up: model {:.3} ms (manifest, hash, ONNX, optimised plan), detector {:.3} ms",
        startup.model_ms, startup.detector_ms
    );
    let changed_share = changed_pixels as f64 / (ms[0].len() as u64 * screens.pixels()) as f64;
    println!("screen: {:.1} % of the display's pixels in changed windows a frame", changed_share * 100.0);
    let fps = 1e3 / stat(&ms[6]).0;
    let rss = peak_rss_mib();
    println!("fps {fps:.1}, peak RSS {}", rss.map(|r| format!("{r:.1} MiB")).unwrap_or_else(|| "unknown".into()));
    let onnx = ModelManifest::load(&manifest)?.verified_onnx_path(&manifest)?;
    let (tract_ms, ort) = if in_vm && ort_lib.is_none() {
        let (plan, input) = bench_plan(&onnx, 1, fer_device::classify::PlanKind::Fer)?;
        (tract_median_ms(&plan, &input, 20)?, Err("a VM's init".into()))
    } else {
        tract_vs_ort(&onnx, if in_vm { 20 } else { 200 }, ort_lib.as_ref())?
    };
    let ort_json = match &ort {
        Ok(OrtComparison { ms: ort_ms, max_abs_diff }) => {
            println!(
                "classifier alone, batch 1, 1 thread: tract {tract_ms:.3} ms, onnxruntime {ort_ms:.3} ms (onnxruntime/tract = {:.2}); outputs differ by at most {max_abs_diff:.2e}",
                ort_ms / tract_ms
            );
            serde_json::json!({
                "tract_ms": tract_ms,
                "onnxruntime_ms": ort_ms,
                "onnxruntime_over_tract": ort_ms / tract_ms,
                "max_abs_diff_vs_onnxruntime": max_abs_diff,
            })
        }
        Err(why) => {
            println!("classifier alone, batch 1, 1 thread: tract {tract_ms:.3} ms; onnxruntime not compared: {why}");
            serde_json::json!({"tract_ms": tract_ms, "onnxruntime": why})
        }
    };
    if let Some(path) = json {
        let doc = serde_json::json!({
            "board": cfg.name, "source": a.source, "frame_color": color_name(color), "model": manifest, "frames": ms[0].len(), "faces": faces,
            "stages": rows, "detection_passes": passes_json,
            "startup_ms": {"model": startup.model_ms, "detector": startup.detector_ms}, "fps": fps, "screen_changed_share": changed_share, "peak_rss_mib": rss, "classifier": ort_json,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(true)
}

/// What PID 1 of a benchmark VM needs.
mod as_init {
    /// Mounts /proc (tract reads /proc/cpuinfo to pick ARM kernels) and /sys (onnxruntime's
    /// cpuinfo reads the CPU topology there); errors are reported only.
    pub fn mount_proc() {
        for (fs, dir) in [(c"proc", c"/proc"), (c"sysfs", c"/sys")] {
            let _ = std::fs::create_dir_all(dir.to_str().unwrap_or("/"));
            // SAFETY: plain libc call with NUL-terminated static strings.
            let rc = unsafe { libc::mount(fs.as_ptr(), dir.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
            if rc != 0 {
                println!("note: mounting {dir:?} failed: {}", std::io::Error::last_os_error());
            }
        }
    }

    /// Flushes and powers the machine off (PID 1 must not exit).
    pub fn power_off() -> ! {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: sync and reboot take no pointers; RB_POWER_OFF needs CAP_SYS_BOOT (PID 1 has it).
        unsafe {
            libc::sync();
            libc::reboot(libc::RB_POWER_OFF);
        }
        std::process::exit(0)
    }
}

/// A batch-1 tract plan for an ONNX file with `[N, C, H, W]` input, and a constant input for it.
fn bench_plan(
    p: &Path,
    threads: usize,
    kind: fer_device::classify::PlanKind,
) -> Result<(std::sync::Arc<tract_onnx::prelude::TypedSimplePlan>, tract_onnx::prelude::Tensor)> {
    use tract_onnx::prelude::*;
    use tract_onnx::tract_hir::infer::Factoid;
    let model = fer_core::tract::onnx()
        .model_for_path(p)
        .with_context(|| format!("{}: not a loadable ONNX model", p.display()))?;
    let fact = model.input_fact(0)?.clone();
    // The batch may be symbolic: C, H, W come from the declared shape, the batch is 1.
    let dims: Vec<Option<i64>> = fact.shape.dims().map(|d| d.concretize().and_then(|t| t.to_i64().ok())).collect();
    let dims = match dims.as_slice() {
        [_, Some(c), Some(h), Some(w)] => [1, *c as usize, *h as usize, *w as usize],
        _ => bail!("{}: input shape {:?} is not [N, C, H, W]", p.display(), fact.shape),
    };
    let options = fer_device::classify::run_options(threads);
    let plan = fer_device::classify::optimized_plan(&model, &dims, &options, kind)
        .with_context(|| format!("{}: optimizing", p.display()))?;
    let input: Tensor = tract_ndarray::ArrayD::from_elem(dims.to_vec(), 0.1f32).into_tensor();
    plan.run(tvec![input.clone().into()]).with_context(|| format!("{}: running", p.display()))?;
    Ok((plan, input))
}

/// Median latency in ms of `runs` runs of `plan` on `input` (one reused run state).
fn tract_median_ms(
    plan: &std::sync::Arc<tract_onnx::prelude::TypedSimplePlan>,
    input: &tract_onnx::prelude::Tensor,
    runs: usize,
) -> Result<f64> {
    use tract_onnx::prelude::*;
    let mut state = plan.spawn()?;
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = std::time::Instant::now();
        state.run(tvec![input.clone().into()])?;
        t.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// Runs a reference script (`$FER_ORT_PYTHON` or .venv-ref/bin/python, installed by
/// scripts/setup.sh) with `args` and returns its stdout, or why it could not give one.
fn python_reference(script: &str, what: &str, args: &[std::ffi::OsString]) -> std::result::Result<String, String> {
    let python =
        std::env::var_os("FER_ORT_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".venv-ref/bin/python"));
    let o = std::process::Command::new(&python)
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {} {script} ({e}); run scripts/setup.sh", python.display()))?;
    if !o.status.success() {
        return Err(format!("{what} failed: {}", String::from_utf8_lossy(&o.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// What onnxruntime says of a model, next to tract.
struct OrtComparison {
    /// Median batch-1 latency, one thread.
    ms: f64,
    /// Largest |tract − onnxruntime| over the model's outputs for one pseudo-random input.
    max_abs_diff: f32,
}

/// Median batch-1 latency in ms of `onnx` in tract (this process, one thread, the classifier's
/// plan) and in onnxruntime, one thread, measured back to back, and how far apart their
/// outputs are on one pseudo-random input. onnxruntime is the loaded library `ort` where
/// given (its failures are errors), else Python ($FER_ORT_PYTHON or
/// .venv-ref/bin/python with scripts/ort_reference.py), where the onnxruntime side is
/// `Err(reason)` if it is missing.
fn tract_vs_ort(
    model_path: &Path,
    runs: usize,
    ort: Option<&fer_device::onnxruntime::OnnxRuntime>,
) -> Result<(f64, std::result::Result<OrtComparison, String>)> {
    use tract_onnx::prelude::*;
    let (plan, input) = bench_plan(model_path, 1, fer_device::classify::PlanKind::Fer)?;
    let tract_ms = tract_median_ms(&plan, &input, runs)?;
    let shape = input.shape().to_vec();
    // Outputs: the same input in both runtimes, values in [0, 1) like a normalised face.
    let mut seed = 0x2545_f491_u32;
    let x: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32
        })
        .collect();
    let ours = plan.run(tvec![Tensor::from_shape(&shape, &x)?.into()])?.remove(0);
    let ours = ours.to_plain_array_view::<f32>()?.iter().copied().collect::<Vec<f32>>();
    let compare = |ort_ms: f64, theirs: Vec<f32>| {
        if theirs.len() != ours.len() {
            bail!("{}: tract gives {} outputs, onnxruntime {}", model_path.display(), ours.len(), theirs.len());
        }
        let max_abs_diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        Ok((tract_ms, Ok(OrtComparison { ms: ort_ms, max_abs_diff })))
    };
    if let Some(ort) = ort {
        let mut session = ort.session(model_path, 1)?;
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let theirs = session.run(&x, &dims)?;
        let mut t = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t0 = std::time::Instant::now();
            session.run(&x, &dims)?;
            t.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        t.sort_by(f64::total_cmp);
        return compare(t[t.len() / 2], theirs);
    }
    let mut args: Vec<std::ffi::OsString> = vec!["bench".into(), model_path.into()];
    args.extend([shape[1], shape[2], shape[3], runs].map(|v| v.to_string().into()));
    let ort_ms = python_reference("scripts/ort_reference.py", "onnxruntime", &args).and_then(|text| {
        text.trim().parse::<f64>().map_err(|e| format!("unexpected onnxruntime output {text:?}: {e}"))
    });
    let ort_ms = match ort_ms {
        Ok(ms) => ms,
        Err(why) => return Ok((tract_ms, Err(why))),
    };
    let dir = std::env::temp_dir().join(format!("fer-device-ort-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let (inp, out) = (dir.join("in.f32"), dir.join("out.f32"));
    std::fs::write(&inp, x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
        .with_context(|| format!("{}: cannot write", inp.display()))?;
    let mut args: Vec<std::ffi::OsString> = vec!["run".into(), model_path.into(), inp.clone().into()];
    args.extend([1, shape[1], shape[2], shape[3]].map(|v| v.to_string().into()));
    args.push(out.clone().into());
    let theirs = python_reference("scripts/ort_reference.py", "onnxruntime", &args).and_then(|_| {
        std::fs::read(&out)
            .map_err(|e| format!("{}: {e}", out.display()))
            .map(|b| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<f32>>())
    });
    let _ = std::fs::remove_dir_all(&dir);
    match theirs {
        Ok(theirs) => compare(ort_ms, theirs),
        Err(why) => Ok((tract_ms, Err(why))),
    }
}

/// `bench-models`: per-inference time of each model and plan, interleaved rounds, median reported.
fn bench_models(
    models: &[PathBuf],
    iterations: usize,
    profile: Option<usize>,
    threads: usize,
    plan: PlanChoice,
    onnxruntime: Option<&Path>,
) -> Result<()> {
    use fer_device::classify::PlanKind;
    use tract_onnx::prelude::*;
    let kinds: &[(PlanKind, &str)] = match plan {
        PlanChoice::Fer => &[(PlanKind::Fer, "fer")],
        PlanChoice::Tract => &[(PlanKind::Tract, "tract")],
        PlanChoice::Both => &[(PlanKind::Fer, "fer"), (PlanKind::Tract, "tract")],
    };
    let ort = onnxruntime.map(fer_device::onnxruntime::OnnxRuntime::load).transpose()?;
    {
        use fer_device::classify::kernels;
        // Which builds of our kernels this machine runs (they decide the figures).
        let int8 = kernels::int8_build().map_or("none (f32 kernels)".to_string(), |b| format!("{b:?}"));
        println!(
            "kernels: 1x1 and direct convolutions {}, QDQ 1x1 and direct convolutions in integers {int8}",
            kernels::build().name()
        );
    }
    if let Some(ort) = &ort {
        println!("bench-models onnxruntime {} ({})", ort.version(), onnxruntime.unwrap_or(Path::new("")).display());
    }
    let mut plans = Vec::new();
    let mut sessions = Vec::new();
    for p in models {
        for &(kind, name) in kinds {
            let (plan, input) = bench_plan(p, threads, kind)?;
            let state = plan.spawn()?;
            plans.push((p, name, plan, input, state));
        }
        if let Some(ort) = &ort {
            // Its output on the same input, against the first plan's.
            let (.., plan, input, _) = plans.last().context("no plan")?;
            let ours = plan.run(tvec![input.clone().into()])?.remove(0);
            let ours = ours.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
            let shape: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
            let data = input.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
            let mut session = ort.session(p, threads)?;
            let theirs = session.run(&data, &shape)?;
            if theirs.len() != ours.len() {
                bail!("{}: onnxruntime gave {} outputs, tract {}", p.display(), theirs.len(), ours.len());
            }
            let diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            println!("bench-models {} onnxruntime max_abs_diff {diff:.3e} outputs {}", p.display(), ours.len());
            sessions.push((session, data, shape));
        }
    }
    let mut times: Vec<Vec<u128>> = vec![Vec::with_capacity(iterations); plans.len()];
    let mut ort_times: Vec<Vec<u128>> = vec![Vec::with_capacity(iterations); sessions.len()];
    for _ in 0..iterations {
        for (i, (.., input, state)) in plans.iter_mut().enumerate() {
            let t0 = std::time::Instant::now();
            state.run(tvec![input.clone().into()])?;
            times[i].push(t0.elapsed().as_nanos());
        }
        for (i, (session, data, shape)) in sessions.iter_mut().enumerate() {
            let t0 = std::time::Instant::now();
            session.run(data, shape)?;
            ort_times[i].push(t0.elapsed().as_nanos());
        }
    }
    let mut medians = Vec::new();
    for ((p, name, ..), t) in plans.iter().zip(&mut times) {
        t.sort_unstable();
        let median = t[t.len() / 2];
        medians.push(median);
        println!(
            "bench-models {} plan {name} median_ns {median} min_ns {} iterations {iterations} threads {threads}",
            p.display(),
            t[0]
        );
    }
    for (p, t) in models.iter().zip(&mut ort_times) {
        t.sort_unstable();
        println!(
            "bench-models {} onnxruntime median_ns {} min_ns {} iterations {iterations} threads {threads}",
            p.display(),
            t[t.len() / 2],
            t[0]
        );
    }
    for (i, p) in models.iter().enumerate() {
        let first = medians[kinds.len() * i] as f64;
        if kinds.len() == 2 {
            let tract = medians[2 * i + 1] as f64;
            println!(
                "bench-models {} fer/tract {:.3} (tract's own plan takes {:.2}x our time)",
                p.display(),
                first / tract,
                tract / first
            );
        }
        if let Some(t) = ort_times.get(i) {
            let ort = t[t.len() / 2] as f64;
            let plan = kinds[0].1;
            println!(
                "bench-models {} onnxruntime/{plan} {:.3} (above 1: plan {plan} is the faster)",
                p.display(),
                ort / first
            );
        }
    }
    if let Some(nodes) = profile {
        for (p, name, plan, input, _) in &plans {
            print_op_profile(&format!("{} plan {name}", p.display()), plan, input, iterations, nodes)?;
        }
    }
    Ok(())
}

/// Which tract plans `bench-models` times.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PlanChoice {
    /// What the classifier runs: tract's optimiser after fer-edge's rewrites and kernels.
    Fer,
    /// tract's optimiser without our graph rewrites (where tract itself moves a depthwise
    /// convolution channel-last, it still runs the channel-inner kernel we register).
    Tract,
    /// Both, interleaved, with the ratio.
    Both,
}

/// `bench-detect`: our cascade vs OpenCV's on the same gray images, same parameters.
/// `fer-device bench-decode`: see its help.
fn bench_decode(path: &Path, width: u32, height: u32, iterations: usize) -> Result<()> {
    use fer_device::source::pixels::{decode_raw_as, encode_raw, frame_bytes, RawFormat};
    // Every format is made from one picture: NV12's size rules (even, non-zero) hold for all.
    frame_bytes(RawFormat::Nv12, width, height).map_err(|e| anyhow::anyhow!("--width/--height: {e}"))?;
    let photo = image::open(path).with_context(|| format!("{}: cannot read image", path.display()))?;
    let rgb = image::imageops::resize(&photo.to_rgb8(), width, height, image::imageops::FilterType::Triangle);
    let formats = [
        RawFormat::Mjpeg,
        RawFormat::Yuyv,
        RawFormat::Nv12,
        RawFormat::Yuv420,
        RawFormat::Yuvj420,
        RawFormat::Gray,
        RawFormat::Rgb,
    ];
    let frames: Vec<Vec<u8>> =
        formats.iter().map(|&f| encode_raw(&rgb, f)).collect::<Result<_, _>>().map_err(anyhow::Error::msg)?;
    type Decoder<'a> = (String, usize, Box<dyn Fn(&[u8]) -> Result<(), String> + 'a>);
    let decoder = |i: usize, f: RawFormat, color: ColorMode| -> Decoder {
        let name = if color == ColorMode::Gray { format!("{f} to gray") } else { f.to_string() };
        (name, i, Box::new(move |d| decode_raw_as(f, width, height, d, color).map(drop)))
    };
    // Every format to RGB, then the camera formats to gray (`--frame-color`: the luma only).
    let decoders: Vec<Decoder> = (formats.iter().enumerate().map(|(i, &f)| decoder(i, f, ColorMode::Rgb)))
        .chain(formats.iter().enumerate().take(5).map(|(i, &f)| decoder(i, f, ColorMode::Gray)))
        .collect();
    #[cfg(feature = "camera")]
    let decoders = {
        let mut d = decoders;
        d.push((
            "YUYV (nokhwa)".into(),
            1,
            Box::new(|d| nokhwa::utils::yuyv422_to_rgb(d, false).map(drop).map_err(|e| e.to_string())),
        ));
        d
    };
    let mut times = vec![Vec::with_capacity(iterations); decoders.len()];
    for _ in 0..iterations.max(1) {
        for ((_, frame, decode), t) in decoders.iter().zip(&mut times) {
            let t0 = std::time::Instant::now();
            decode(&frames[*frame]).map_err(anyhow::Error::msg)?;
            t.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let medians: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect();
    println!("bench-decode {} as a {width}x{height} camera frame, median of {iterations}, one thread", path.display());
    println!("{:<16} {:>10} {:>10} {:>12}", "format", "bytes", "ms", "vs MJPEG");
    for ((name, frame, _), ms) in decoders.iter().zip(&medians) {
        println!("{name:<16} {:>10} {ms:>10.3} {:>12.3}", frames[*frame].len(), ms / medians[0]);
    }
    Ok(())
}

fn bench_detect(images: &[PathBuf], cascade: &Path, p: &DetectParams, iterations: usize) -> Result<()> {
    let detector = HaarCascade::load(cascade)?;
    let mut ours = Vec::new();
    for path in images {
        let img = image::open(path).with_context(|| format!("{}: cannot read image", path.display()))?;
        let gray = fer_core::preprocess::to_gray8(&img);
        let mut times = Vec::new();
        let mut boxes = Vec::new();
        for _ in 0..iterations.max(1) {
            let t0 = std::time::Instant::now();
            boxes = detector.detect_rects(&gray, p);
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let mut boxes: Vec<[i32; 4]> = boxes.iter().map(|r| [r.x, r.y, r.w, r.h]).collect();
        boxes.sort();
        ours.push((gray.dimensions(), times[times.len() / 2], boxes));
    }
    let mut args: Vec<std::ffi::OsString> = vec!["bench".into(), cascade.into()];
    args.extend(
        [p.scale_factor.to_string(), p.min_neighbors.to_string(), p.min_size.to_string(), iterations.to_string()]
            .map(Into::into),
    );
    args.extend(images.iter().map(Into::into));
    let opencv: std::result::Result<Vec<serde_json::Value>, String> =
        python_reference("scripts/haar_reference.py", "OpenCV", &args).and_then(|text| {
            text.lines()
                .map(|l| serde_json::from_str(l).map_err(|e| format!("unexpected OpenCV output {l:?}: {e}")))
                .collect()
        });
    println!(
        "bench-detect {} scale {} neighbours {} min {} px, median of {iterations}, ours on {} thread(s), OpenCV on 1",
        cascade.display(),
        p.scale_factor,
        p.min_neighbors,
        p.min_size,
        p.threads
    );
    println!("{:<40} {:>10} {:>9} {:>11} {:>8}  boxes", "image", "size", "ours ms", "OpenCV ms", "ratio");
    for (i, (path, ((w, h), ms, boxes))) in images.iter().zip(&ours).enumerate() {
        let (cv_ms, same) = match &opencv {
            Ok(rows) => {
                let row = rows.get(i).context("OpenCV printed fewer rows than images")?;
                let cv_boxes: Vec<[i32; 4]> = serde_json::from_value(row["boxes"].clone())?;
                let same = if &cv_boxes == boxes {
                    format!("{} identical", boxes.len())
                } else {
                    format!("DIFFER: ours {}, OpenCV {}", boxes.len(), cv_boxes.len())
                };
                (row["median_ms"].as_f64().context("OpenCV row without median_ms")?, same)
            }
            Err(_) => (f64::NAN, format!("{} (OpenCV not run)", boxes.len())),
        };
        println!(
            "{:<40} {:>10} {ms:>9.2} {cv_ms:>11.2} {:>8.2}  {same}",
            path.display(),
            format!("{w}x{h}"),
            ms / cv_ms
        );
    }
    if let Err(why) = opencv {
        println!("OpenCV not compared: {why}");
    }
    Ok(())
}

/// Median time per node over `iterations` runs, summed per op kind, largest first, then the
/// slowest nodes with what each computes.
fn print_op_profile(
    p: &str,
    plan: &std::sync::Arc<tract_onnx::prelude::TypedSimplePlan>,
    input: &tract_onnx::prelude::Tensor,
    iterations: usize,
    listed: usize,
) -> Result<()> {
    use tract_onnx::prelude::*;
    let nodes = plan.model().nodes().len();
    let mut per_node: Vec<Vec<u64>> = vec![Vec::with_capacity(iterations); nodes];
    let mut state = plan.spawn()?;
    for _ in 0..iterations {
        state.run_plan_with_eval(tvec![input.clone().into()], |ctx, op_state, node, inputs| {
            let t0 = std::time::Instant::now();
            let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
            per_node[node.id].push(t0.elapsed().as_nanos() as u64);
            out
        })?;
    }
    let mut kinds: std::collections::BTreeMap<String, (u64, usize)> = Default::default();
    let mut slowest = Vec::new();
    for (id, t) in per_node.iter_mut().enumerate() {
        if t.is_empty() {
            continue;
        }
        t.sort_unstable();
        let op = plan.model().node(id).op().name().to_string();
        let e = kinds.entry(op).or_default();
        e.0 += t[t.len() / 2];
        e.1 += 1;
        slowest.push((t[t.len() / 2], id));
    }
    let total: u64 = kinds.values().map(|v| v.0).sum();
    let mut rows: Vec<_> = kinds.into_iter().collect();
    rows.sort_by_key(|(_, (ns, _))| std::cmp::Reverse(*ns));
    println!("profile {p} (sum of per-node medians {:.3} ms)", total as f64 / 1e6);
    for (op, (ns, n)) in rows {
        println!("  {op:<28} {n:>3} nodes {:>8.3} ms {:>5.1} %", ns as f64 / 1e6, 100.0 * ns as f64 / total as f64);
    }
    slowest.sort_unstable_by_key(|&(ns, _)| std::cmp::Reverse(ns));
    println!("  slowest nodes:");
    let listed = if listed == 0 { slowest.len() } else { listed };
    for (ns, id) in slowest.into_iter().take(listed) {
        let node = plan.model().node(id);
        let info = node.op().info().unwrap_or_default().join("; ");
        println!("  {:>8.3} ms  {} ({}): {info}", ns as f64 / 1e6, node.name, node.op().name());
    }
    Ok(())
}

fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Run(args) => run_pipeline(args),
        Command::Bench { common, passes, json, poweroff, onnxruntime } => {
            if poweroff {
                as_init::mount_proc();
            }
            let result = bench(common, passes, json, poweroff, onnxruntime.as_deref());
            if let (Err(e), true) = (&result, poweroff) {
                // The VM's console is stdout; elsewhere main reports it on stderr.
                println!("error: {e:#}");
            }
            if poweroff {
                as_init::power_off();
            }
            result
        }
        Command::BenchModels { models, iterations, poweroff, profile, profile_nodes, threads, plan, onnxruntime } => {
            if poweroff {
                as_init::mount_proc();
            }
            let profile = profile.then_some(profile_nodes);
            let result = bench_models(&models, iterations, profile, threads, plan, onnxruntime.as_deref());
            if let (Err(e), true) = (&result, poweroff) {
                // The VM's console is stdout; elsewhere main reports it on stderr.
                println!("error: {e:#}");
            }
            if poweroff {
                as_init::power_off();
            }
            result.map(|_| true)
        }
        Command::BenchDecode { image, width, height, iterations, poweroff } => {
            if poweroff {
                as_init::mount_proc();
            }
            let result = bench_decode(&image, width, height, iterations);
            if let (Err(e), true) = (&result, poweroff) {
                println!("error: {e:#}");
            }
            if poweroff {
                as_init::power_off();
            }
            result.map(|_| true)
        }
        Command::BenchDetect {
            images,
            detector,
            cascade,
            scale_factor,
            min_neighbors,
            min_size,
            iterations,
            threads,
        } => {
            let kind = if detector == "lbp" { DetectorKind::Lbp } else { DetectorKind::Haar };
            let cascade = cascade.unwrap_or_else(|| PathBuf::from(default_cascade(kind)));
            let p = DetectParams { scale_factor, min_neighbors, min_size, threads, ..DetectParams::default() };
            bench_detect(&images, &cascade, &p, iterations).map(|_| true)
        }
        Command::CheckConfig { boards } => {
            println!("build   {}", build_line());
            let mut all_valid = true;
            for path in boards {
                match BoardConfig::load(&path) {
                    Err(e) => {
                        all_valid = false;
                        println!("INVALID {e}");
                    }
                    Ok(cfg) => {
                        println!("ok      {}: {} ({})", path.display(), cfg.name, cfg.description);
                        for line in check_lines(&cfg) {
                            println!("        {line}");
                        }
                    }
                }
            }
            Ok(all_valid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn status_lines_come_when_due_with_the_rate_since_the_last() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut off = StatusClock::new(0, t0);
        assert_eq!(off.due(at(3_600_000), 100), None);
        let mut c = StatusClock::new(10, t0);
        assert_eq!(c.due(at(9_999), 300), None);
        // 300 frames in the first 10 s: 30 fps; then 100 more in the next 12.5 s: 8 fps.
        assert_eq!(c.due(at(10_000), 300), Some(30.0));
        assert_eq!(c.due(at(19_999), 390), None);
        assert_eq!(c.due(at(22_500), 400), Some(8.0));
        // No frames at all (a camera gone quiet): still a line, at 0 fps.
        assert_eq!(c.due(at(32_500), 400), Some(0.0));
    }

    #[test]
    fn frames_are_gray_only_where_nothing_needs_their_colour() {
        use ColorMode::{Gray, Rgb};
        let args = |source: &str, color: &str| {
            let cli = Cli::try_parse_from([
                "fer-device",
                "bench",
                "--board",
                "b.toml",
                "--source",
                source,
                "--frame-color",
                color,
            ])
            .unwrap();
            let Command::Bench { common, .. } = cli.command else { panic!("not bench") };
            common
        };
        for source in ["camera", "yuyv:640x480:-", "yuvj420:640x480:cam.yuv", "mjpeg:-", "nv12:4x4:f", "yuv420:4x4:f"] {
            assert_eq!(frame_color(&args(source, "auto"), Gray, false).unwrap(), Gray, "{source}");
            // Annotated frames, a colour model: RGB.
            assert_eq!(frame_color(&args(source, "auto"), Gray, true).unwrap(), Rgb, "{source}");
            assert_eq!(frame_color(&args(source, "auto"), Rgb, false).unwrap(), Rgb, "{source}");
        }
        // Image files have no luma of their own to save a conversion.
        for source in ["image:a.png", "folder:f", "photos:p", "rgb:4x4:f", "gray:4x4:f"] {
            assert_eq!(frame_color(&args(source, "auto"), Gray, false).unwrap(), Rgb, "{source}");
        }
        assert_eq!(frame_color(&args("image:a.png", "gray"), Gray, true).unwrap(), Gray);
        assert_eq!(frame_color(&args("camera", "rgb"), Gray, false).unwrap(), Rgb);
        let refused = frame_color(&args("camera", "gray"), Rgb, false).unwrap_err().to_string();
        assert!(refused.contains("--frame-color gray") && refused.contains("colour faces"), "{refused}");
    }
}
