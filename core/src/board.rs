//! Board configuration: one TOML file per board in `board-configs/` saying which camera, display,
//! model, thread count and detection/tracking parameters the device program uses there.
//!
//! ```
//! # use fer_core::board::BoardConfig;
//! let cfg = BoardConfig::from_toml(std::path::Path::new("inline.toml"), r#"
//!     name = "my-pi"
//!     [camera]
//!     [display]
//!     kind = "none"
//!     [model]
//!     manifest = "models/mini-xception-fer2013/manifest.json"
//! "#).unwrap();
//! assert_eq!(cfg.camera.width, 640);
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::parse::{self, FileError, Syntax};

/// A board's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    /// Short board name, e.g. `rpi4`.
    pub name: String,
    /// Free text shown by `fer-device check-config`.
    #[serde(default)]
    pub description: String,
    /// Camera.
    pub camera: CameraConfig,
    /// Display.
    pub display: DisplayConfig,
    /// Classifier model and inference threads.
    pub model: ModelConfig,
    /// Face detection.
    #[serde(default)]
    pub detection: DetectionConfig,
    /// Face tracking and label smoothing.
    #[serde(default)]
    pub tracking: TrackingConfig,
}

/// Camera pixel format requested from V4L2 (the closest the driver offers is taken; frames in
/// any format it delivers are decoded). YUYV costs 0.18x MJPEG's decoding per 640x480 frame on
/// a Cortex-A72 (3.4 against 19.2 M instructions, BENCHMARKS.md) but 9x its USB bandwidth
/// (18.4 MB/s at 30 fps, within USB 2.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Motion JPEG (most USB webcams; lowest USB bandwidth, for large frames or a busy bus).
    Mjpeg,
    /// Packed YUV 4:2:2 (most UVC webcams).
    Yuyv,
}

/// A camera frame's pixel format, as frames arrive from a driver, a file or a program's pipe
/// (decoded by fer-device's `source::pixels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawFormat {
    /// One JPEG image per frame (Huffman tables optional).
    Mjpeg,
    /// 4:2:2, two pixels in four bytes: Y0 U Y1 V.
    Yuyv,
    /// 4:2:0: the Y plane, then one plane of interleaved U V for each 2x2 block.
    Nv12,
    /// 4:2:0 planar (I420): the Y plane, the U plane, the V plane (one U and V per 2x2 block).
    Yuv420,
    /// [`RawFormat::Yuv420`] in full range (Y 0-255 for black-white, as JPEG): a Raspberry Pi
    /// Camera Module's frames from `rpicam-vid --codec yuv420`.
    Yuvj420,
    /// 8-bit luminance.
    Gray,
    /// 8-bit R G B.
    Rgb,
    /// 8-bit B G R.
    Bgr,
}

impl std::fmt::Display for RawFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RawFormat::Mjpeg => "MJPEG",
            RawFormat::Yuyv => "YUYV",
            RawFormat::Nv12 => "NV12",
            RawFormat::Yuv420 => "YUV420",
            RawFormat::Yuvj420 => "YUVJ420",
            RawFormat::Gray => "GRAY",
            RawFormat::Rgb => "RGB",
            RawFormat::Bgr => "BGR",
        })
    }
}

impl std::str::FromStr for RawFormat {
    type Err = String;

    /// `mjpeg`, `yuyv`, `nv12`, `yuv420`, `yuvj420`, `gray`, `rgb` or `bgr`.
    fn from_str(s: &str) -> Result<RawFormat, String> {
        Ok(match s {
            "mjpeg" => RawFormat::Mjpeg,
            "yuyv" => RawFormat::Yuyv,
            "nv12" => RawFormat::Nv12,
            "yuv420" => RawFormat::Yuv420,
            "yuvj420" => RawFormat::Yuvj420,
            "gray" => RawFormat::Gray,
            "rgb" => RawFormat::Rgb,
            "bgr" => RawFormat::Bgr,
            other => {
                return Err(format!(
                    "unknown pixel format {other:?}: use mjpeg, yuyv, nv12, yuv420, yuvj420, gray, rgb or bgr"
                ))
            }
        })
    }
}

/// Which camera `--source camera` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraKind {
    /// A V4L2 camera (USB webcams): `device`, through nokhwa (fer-device built with the
    /// `camera` feature, as the board packages are).
    #[default]
    V4l2,
    /// A Raspberry Pi Camera Module (a libcamera camera, not a plain V4L2 device): fer-device
    /// runs `rpicam_command` (rpicam-vid, from Raspberry Pi OS's rpicam-apps) and reads its
    /// full-range YUV 4:2:0 frames from a pipe, restarting it when it stops or stalls.
    Rpicam,
    /// Any program that writes raw `width` x `height` frames of `command_format` to its
    /// standard output, run as `command` and restarted like rpicam-vid: a Jetson's CSI camera
    /// through GStreamer (`nvarguscamerasrc ... ! fdsink`), a network camera through ffmpeg.
    Command,
}

/// Camera settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// `v4l2` (default) or `rpicam`.
    #[serde(default)]
    pub kind: CameraKind,
    /// V4L2 device node, `/dev/videoN` or a link to one: udev's stable names such as
    /// `/dev/v4l/by-id/usb-...-video-index0` keep pointing at the same camera when USB devices
    /// are enumerated in another order. Not used by `rpicam` (see `rpicam_args`).
    #[serde(default = "default_camera_device")]
    pub device: String,
    /// Frame width in pixels.
    #[serde(default = "default_camera_width")]
    pub width: u32,
    /// Frame height in pixels.
    #[serde(default = "default_camera_height")]
    pub height: u32,
    /// Requested frames per second.
    #[serde(default = "default_fps")]
    pub fps: u32,
    /// Pixel format: `yuyv` (default) or `mjpeg` (V4L2; rpicam-vid's frames are always YUV
    /// 4:2:0).
    #[serde(default = "default_pixel_format")]
    pub format: PixelFormat,
    /// `rpicam`: the program run, `rpicam-vid` (found on `PATH`) by default; `libcamera-vid` on
    /// Raspberry Pi OS 11 (Bullseye), or a path.
    #[serde(default = "default_rpicam_command")]
    pub rpicam_command: String,
    /// `rpicam`: arguments added after fer-device's own (`-t 0 -n --codec yuv420 --width W
    /// --height H --framerate FPS --flush -o -`), e.g. `["--camera", "1"]` for the second
    /// camera of a Pi 5, `["--rotation", "180"]`, `["--hflip"]`.
    #[serde(default)]
    pub rpicam_args: Vec<String>,
    /// `command`: the program and its arguments, e.g. `["ffmpeg", "-loglevel", "error", "-i",
    /// "rtsp://cam/stream", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "640x480", "-"]`.
    #[serde(default)]
    pub command: Vec<String>,
    /// `command`: the frames' pixel format: `yuyv`, `nv12`, `yuv420` (limited range, as ffmpeg's
    /// `yuv420p` and GStreamer's I420), `yuvj420` (full range), `gray`, `rgb` or `bgr`.
    #[serde(default = "default_command_format")]
    pub command_format: RawFormat,
    /// `rpicam` and `command`: a frame awaited this long (milliseconds; also the first frame
    /// after a start) counts as a lost camera: the program is stopped and started again. Only
    /// time spent waiting on the program counts, not the pipeline's own time per frame.
    #[serde(default = "default_stall_ms")]
    pub stall_ms: u64,
    /// First delay before reopening a lost camera, in milliseconds; doubles up to `retry_max_ms`.
    #[serde(default = "default_retry_ms")]
    pub retry_ms: u64,
    /// Longest delay between reopen attempts, in milliseconds.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
}

fn default_camera_device() -> String {
    "/dev/video0".into()
}
fn default_camera_width() -> u32 {
    640
}
fn default_camera_height() -> u32 {
    480
}
fn default_fps() -> u32 {
    30
}
fn default_pixel_format() -> PixelFormat {
    PixelFormat::Yuyv
}
fn default_rpicam_command() -> String {
    "rpicam-vid".into()
}
fn default_stall_ms() -> u64 {
    5000
}
fn default_command_format() -> RawFormat {
    RawFormat::Yuv420
}
fn default_retry_ms() -> u64 {
    250
}
fn default_retry_max_ms() -> u64 {
    5000
}

/// Screen rotation in degrees clockwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Rotation {
    #[default]
    #[serde(rename = "0")]
    Deg0,
    #[serde(rename = "90")]
    Deg90,
    #[serde(rename = "180")]
    Deg180,
    #[serde(rename = "270")]
    Deg270,
}

/// An SPI TFT panel (ST7789, ILI9341) driven through mipidsi.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpiPanelConfig {
    /// spidev node, e.g. `/dev/spidev0.0`.
    pub spi: String,
    /// SPI clock in Hz.
    #[serde(default = "default_spi_hz")]
    pub spi_hz: u32,
    /// GPIO character device for the control pins.
    #[serde(default = "default_gpio_chip")]
    pub gpio_chip: String,
    /// GPIO line of the data/command pin.
    pub dc_pin: u32,
    /// GPIO line of the reset pin, if wired.
    #[serde(default)]
    pub reset_pin: Option<u32>,
    /// GPIO line of the backlight enable, if wired.
    #[serde(default)]
    pub backlight_pin: Option<u32>,
    /// Panel width in pixels (before rotation).
    pub width: u16,
    /// Panel height in pixels (before rotation).
    pub height: u16,
    /// Rotation: "0", "90", "180" or "270".
    #[serde(default)]
    pub rotation: Rotation,
    /// Invert colours (most ST7789 modules need it).
    #[serde(default)]
    pub invert_colors: bool,
}

fn default_spi_hz() -> u32 {
    32_000_000
}
fn default_gpio_chip() -> String {
    "/dev/gpiochip0".into()
}

/// The display, chosen by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DisplayConfig {
    /// No display (headless).
    None,
    /// SSD1306 monochrome OLED over I²C.
    Ssd1306 {
        /// I²C bus device, e.g. `/dev/i2c-1`.
        i2c_bus: String,
        /// 7-bit I²C address (0x3C or 0x3D on common modules).
        #[serde(default = "default_ssd1306_address")]
        address: u8,
        /// Panel height: 64 or 32 (width is always 128).
        #[serde(default = "default_ssd1306_height")]
        height: u16,
        /// Rotation: "0", "90", "180" or "270".
        #[serde(default)]
        rotation: Rotation,
    },
    /// ST7789 colour TFT over SPI (e.g. 240×240 modules).
    St7789(SpiPanelConfig),
    /// ILI9341 colour TFT over SPI (320×240).
    Ili9341(SpiPanelConfig),
    /// Linux framebuffer (HDMI, DSI or an fbtft panel).
    Framebuffer {
        /// Framebuffer device, e.g. `/dev/fb0`.
        #[serde(default = "default_fb")]
        device: String,
    },
}

fn default_ssd1306_address() -> u8 {
    0x3C
}
fn default_ssd1306_height() -> u16 {
    64
}
fn default_fb() -> String {
    "/dev/fb0".into()
}

/// Classifier model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Path of the model's `manifest.json` (relative paths are relative to the working
    /// directory); the manifest names the ONNX file and its SHA-256.
    pub manifest: String,
    /// Threads for tract's matrix products. 1 is fastest for the 48-64 px models shipped here
    /// (2 threads measured 2x slower on x86: BENCHMARKS.md); more may pay off for larger models.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Threads that classify the faces of one frame at once, each an even share of them as one
    /// batch (the pipeline's thread and up to `face_threads - 1` more). 1: every face of a frame
    /// on the pipeline's thread, one batch. Set it to the board's cores for several faces at a
    /// time (BENCHMARKS.md: the group photograph); it does not change the results.
    #[serde(default = "default_threads")]
    pub face_threads: usize,
}

fn default_threads() -> usize {
    1
}

/// Face detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    /// OpenCV Haar cascade (`haarcascade_frontalface_default.xml`).
    Haar,
    /// OpenCV LBP cascade (`lbpcascade_frontalface_improved.xml`): faster, slightly less accurate.
    Lbp,
}

/// Face detection parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionConfig {
    /// Detector.
    #[serde(default = "default_detector")]
    pub detector: DetectorKind,
    /// Cascade XML; empty means the file from Debian's `opencv-data` package for `detector`.
    #[serde(default)]
    pub cascade: String,
    /// Frames are downscaled to this width before detection (0 = full resolution).
    #[serde(default = "default_detect_width")]
    pub detect_width: u32,
    /// Scale step between pyramid levels, as OpenCV's `scaleFactor` (> 1).
    #[serde(default = "default_scale_factor")]
    pub scale_factor: f32,
    /// Neighbouring detections needed to keep a face, as OpenCV's `minNeighbors`.
    #[serde(default = "default_min_neighbors")]
    pub min_neighbors: u32,
    /// Smallest face, in pixels of the full-resolution frame.
    #[serde(default = "default_min_face")]
    pub min_face: u32,
    /// Most faces classified per frame (largest first).
    #[serde(default = "default_max_faces")]
    pub max_faces: usize,
    /// Full-frame detection every N frames; in between, only where the faces of the last frame
    /// are predicted to be, and the whole frame again when one is not found there (1 = always).
    #[serde(default = "default_full_every")]
    pub full_detect_every: u32,
    /// A due full pass is skipped while the scene is still: no 16×16-pixel block of the frame,
    /// away from the faces tracked (what region passes search), has a mean gray level more than
    /// this many levels (of 255) from the frame of the last full pass. Those passes would find
    /// what it found: the tracked faces get region passes, and with none tracked no detector
    /// runs (JSON `detection`: `unchanged`). Likewise a tracked face whose region-pass area has
    /// no block moved by more than this since a detector found it there keeps that box, without
    /// a region pass (`kept` when every face does). A full pass that runs searches only where
    /// a block moved by more than this since the full passes last searched it, and finds what
    /// they found elsewhere (`full_changed`). 0 = never skipped, and every full pass searches
    /// the whole frame.
    /// Sensor noise moves a block's mean by well under 1 level; a face coming into view by tens.
    #[serde(default)]
    pub still_threshold: f32,
    /// Even in a still scene, a full pass over the whole frame at least every this many frames,
    /// and each face found by a detector at least as often.
    #[serde(default = "default_still_full_every")]
    pub still_full_every: u32,
    /// Threads scanning the detection pyramid's levels in parallel, full and region passes (same
    /// faces for any count): the pipeline's own and `threads - 1` kept, asleep between passes.
    #[serde(default = "default_threads")]
    pub threads: usize,
}

fn default_detector() -> DetectorKind {
    DetectorKind::Haar
}
fn default_detect_width() -> u32 {
    320
}
fn default_scale_factor() -> f32 {
    1.1
}
fn default_min_neighbors() -> u32 {
    3
}
fn default_min_face() -> u32 {
    48
}
fn default_max_faces() -> usize {
    4
}
fn default_full_every() -> u32 {
    5
}
fn default_still_full_every() -> u32 {
    30
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            detector: default_detector(),
            cascade: String::new(),
            detect_width: default_detect_width(),
            scale_factor: default_scale_factor(),
            min_neighbors: default_min_neighbors(),
            min_face: default_min_face(),
            max_faces: default_max_faces(),
            full_detect_every: default_full_every(),
            still_threshold: 0.0,
            still_full_every: default_still_full_every(),
            threads: default_threads(),
        }
    }
}

/// How per-face probabilities are smoothed over frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmoothingKind {
    /// Exponential moving average with `ema_alpha`.
    Ema,
    /// Mean over the last `window` frames.
    Window,
}

/// Tracking and smoothing parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingConfig {
    /// Minimum IoU for a detection to continue an existing track.
    #[serde(default = "default_iou")]
    pub iou_match: f32,
    /// Frames a track survives without a matching detection.
    #[serde(default = "default_max_missed")]
    pub max_missed: u32,
    /// Smoothing method.
    #[serde(default = "default_smoothing")]
    pub smoothing: SmoothingKind,
    /// EMA weight of the newest frame, in (0, 1].
    #[serde(default = "default_alpha")]
    pub ema_alpha: f32,
    /// Window length for `window` smoothing, in frames.
    #[serde(default = "default_window")]
    pub window: usize,
    /// A new label replaces the shown one only when its smoothed probability exceeds the shown
    /// label's by this margin (hysteresis against flicker).
    #[serde(default = "default_hysteresis")]
    pub hysteresis: f32,
    /// Below this smoothed probability the face is shown as uncertain.
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f32,
}

fn default_iou() -> f32 {
    0.3
}
fn default_max_missed() -> u32 {
    5
}
fn default_smoothing() -> SmoothingKind {
    SmoothingKind::Ema
}
fn default_alpha() -> f32 {
    0.4
}
fn default_window() -> usize {
    5
}
fn default_hysteresis() -> f32 {
    0.1
}
fn default_min_confidence() -> f32 {
    0.35
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            iou_match: default_iou(),
            max_missed: default_max_missed(),
            smoothing: default_smoothing(),
            ema_alpha: default_alpha(),
            window: default_window(),
            hysteresis: default_hysteresis(),
            min_confidence: default_min_confidence(),
        }
    }
}

impl BoardConfig {
    /// Reads and validates a board config.
    pub fn load(path: &Path) -> Result<BoardConfig, FileError> {
        let text = parse::read(path)?;
        Self::from_toml(path, &text)
    }

    /// Parses and validates board-config TOML; `path` is used in errors.
    pub fn from_toml(path: &Path, text: &str) -> Result<BoardConfig, FileError> {
        let cfg: BoardConfig = parse::parse(path, text, Syntax::Toml)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks value ranges; errors name `path` and the field.
    pub fn validate(&self, path: &Path) -> Result<(), FileError> {
        let bad = |field: &str, problem: String| Err(FileError::invalid(path, field, problem));
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty".into());
        }
        let c = &self.camera;
        if !(16..=4096).contains(&c.width) || !(16..=4096).contains(&c.height) {
            return bad("camera.width", format!("{}x{} is outside 16..=4096", c.width, c.height));
        }
        if !(1..=240).contains(&c.fps) {
            return bad("camera.fps", format!("{} is outside 1..=240", c.fps));
        }
        if c.retry_ms == 0 || c.retry_max_ms < c.retry_ms {
            return bad(
                "camera.retry_max_ms",
                format!("retry_ms {} must be > 0 and <= retry_max_ms {}", c.retry_ms, c.retry_max_ms),
            );
        }
        if c.kind == CameraKind::Rpicam {
            // libcamera pads the rows of other widths; a pipe carries no stride to undo that.
            if !c.width.is_multiple_of(64) || !c.height.is_multiple_of(2) {
                return bad(
                    "camera.width",
                    format!(
                        "{}x{}: rpicam frames need a width that is a multiple of 64 and an even height \
                         (320x240, 640x480, 1280x720, ...)",
                        c.width, c.height
                    ),
                );
            }
            if c.rpicam_command.trim().is_empty() {
                return bad("camera.rpicam_command", "must not be empty".into());
            }
        }
        if c.kind == CameraKind::Command {
            if c.command.first().is_none_or(|p| p.trim().is_empty()) {
                return bad("camera.command", "must name a program: [\"program\", \"argument\", ...]".into());
            }
            if c.command_format == RawFormat::Mjpeg {
                return bad("camera.command_format", "mjpeg frames have no fixed size: use a raw format".into());
            }
        }
        if c.stall_ms < 100 {
            return bad("camera.stall_ms", format!("{} ms is below 100", c.stall_ms));
        }
        match &self.display {
            DisplayConfig::None | DisplayConfig::Framebuffer { .. } => {}
            DisplayConfig::Ssd1306 { address, height, .. } => {
                if !(0x08..=0x77).contains(address) {
                    return bad("display.address", format!("{address:#04x} is not a 7-bit I2C device address"));
                }
                if *height != 64 && *height != 32 {
                    return bad("display.height", format!("{height} must be 64 or 32"));
                }
            }
            DisplayConfig::St7789(p) | DisplayConfig::Ili9341(p) => {
                if p.width == 0 || p.height == 0 || p.width > 480 || p.height > 480 {
                    return bad("display.width", format!("{}x{} is outside 1..=480", p.width, p.height));
                }
                let pins = [Some(p.dc_pin), p.reset_pin, p.backlight_pin];
                let wired: Vec<u32> = pins.iter().flatten().copied().collect();
                for (i, pin) in wired.iter().enumerate() {
                    if wired[..i].contains(pin) {
                        return bad("display", format!("GPIO line {pin} is used for two pins"));
                    }
                }
                if !(1_000_000..=100_000_000).contains(&p.spi_hz) {
                    return bad("display.spi_hz", format!("{} is outside 1 MHz..=100 MHz", p.spi_hz));
                }
            }
        }
        if self.model.manifest.trim().is_empty() {
            return bad("model.manifest", "must not be empty".into());
        }
        if !(1..=64).contains(&self.model.threads) {
            return bad("model.threads", format!("{} is outside 1..=64", self.model.threads));
        }
        if !(1..=64).contains(&self.model.face_threads) {
            return bad("model.face_threads", format!("{} is outside 1..=64", self.model.face_threads));
        }
        let d = &self.detection;
        if !(1..=64).contains(&d.threads) {
            return bad("detection.threads", format!("{} is outside 1..=64", d.threads));
        }
        if !(d.scale_factor > 1.0 && d.scale_factor <= 2.0) {
            return bad("detection.scale_factor", format!("{} must be in (1, 2]", d.scale_factor));
        }
        if d.detect_width != 0 && !(64..=4096).contains(&d.detect_width) {
            return bad("detection.detect_width", format!("{} must be 0 or in 64..=4096", d.detect_width));
        }
        if d.min_face < 12 {
            return bad("detection.min_face", format!("{} is below the cascade's 12-pixel minimum", d.min_face));
        }
        if d.max_faces == 0 {
            return bad("detection.max_faces", "must be at least 1".into());
        }
        if d.full_detect_every == 0 {
            return bad("detection.full_detect_every", "must be at least 1".into());
        }
        if !(0.0..=255.0).contains(&d.still_threshold) {
            return bad("detection.still_threshold", format!("{} is outside 0..=255 gray levels", d.still_threshold));
        }
        if d.still_full_every == 0 {
            return bad("detection.still_full_every", "must be at least 1".into());
        }
        let t = &self.tracking;
        if !(t.iou_match > 0.0 && t.iou_match <= 1.0) {
            return bad("tracking.iou_match", format!("{} must be in (0, 1]", t.iou_match));
        }
        if !(t.ema_alpha > 0.0 && t.ema_alpha <= 1.0) {
            return bad("tracking.ema_alpha", format!("{} must be in (0, 1]", t.ema_alpha));
        }
        if t.window == 0 || t.window > 120 {
            return bad("tracking.window", format!("{} is outside 1..=120", t.window));
        }
        if !(0.0..1.0).contains(&t.hysteresis) {
            return bad("tracking.hysteresis", format!("{} must be in [0, 1)", t.hysteresis));
        }
        if !(0.0..=1.0).contains(&t.min_confidence) {
            return bad("tracking.min_confidence", format!("{} must be in [0, 1]", t.min_confidence));
        }
        Ok(())
    }
}
