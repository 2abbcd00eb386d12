//! Cameras whose frames come from a program's standard output (board config `camera.kind =
//! "rpicam"` or `"command"`). The program is fer-device's child: fer-device stays the main
//! process, so systemd's readiness and watchdog work. A start counts once the first frame has
//! come; the program exiting or sending no frame for `camera.stall_ms` is a lost camera for
//! [`CameraSource`](super::camera::CameraSource), which starts it again with backoff. Its stderr
//! is kept, the last lines quoted when it fails.
//!
//! `rpicam`: a Raspberry Pi Camera Module is a libcamera camera: its V4L2 nodes give raw Bayer
//! data that libcamera's pipeline (ISP, tuning, exposure control) turns into pictures, and
//! libcamera's V4L2 compatibility layer works by `LD_PRELOAD`, which a static binary ignores.
//! So fer-device runs Raspberry Pi OS's own `rpicam-vid`:
//!
//! ```text
//! rpicam-vid -t 0 -n --codec yuv420 --width W --height H --framerate FPS --flush -o - [rpicam_args]
//! ```
//!
//! Each frame is an unpadded planar YUV 4:2:0 picture in full range (rpicam-vid asks libcamera
//! for the JPEG colour space with this codec), decoded as [`RawFormat::Yuvj420`].
//!
//! `command`: `camera.command` as given, its frames `camera.command_format` at the configured
//! size (a Jetson's CSI camera through GStreamer, a network camera through ffmpeg, ...).

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fer_core::board::{CameraConfig, CameraKind};

use super::camera::{CameraDevice, CameraOpener, GrabError};
use super::pixels::{decode_raw_as, frame_bytes, ColorMode, RawFormat};

/// Lines of the program's stderr kept for messages.
const KEPT_LINES: usize = 6;

/// Starts the program that a `rpicam` or `command` camera reads.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOpener {
    /// `Rpicam` or `Command`: which config fields a message should point to.
    pub kind: CameraKind,
    /// The program and its arguments.
    pub program: String,
    pub args: Vec<String>,
    pub format: RawFormat,
    pub width: u32,
    pub height: u32,
    pub stall: Duration,
    /// What its frames are decoded to (gray: the luma they carry, no colour conversion).
    pub color: ColorMode,
}

impl CommandOpener {
    /// What the board config's camera runs, its frames decoded to `color`; `None` for a V4L2
    /// camera.
    pub fn for_camera(c: &CameraConfig, color: ColorMode) -> Option<CommandOpener> {
        let (program, args, format) = match c.kind {
            CameraKind::V4l2 => return None,
            CameraKind::Rpicam => {
                let mut args: Vec<String> = ["-t", "0", "-n", "--codec", "yuv420"].map(String::from).into();
                for (flag, value) in [("--width", c.width), ("--height", c.height), ("--framerate", c.fps)] {
                    args.extend([flag.to_string(), value.to_string()]);
                }
                args.extend(["--flush", "-o", "-"].map(String::from));
                args.extend(c.rpicam_args.iter().cloned());
                (c.rpicam_command.clone(), args, RawFormat::Yuvj420)
            }
            CameraKind::Command => {
                let (program, args) = c.command.split_first()?;
                (program.clone(), args.to_vec(), c.command_format)
            }
        };
        let stall = Duration::from_millis(c.stall_ms);
        Some(CommandOpener { kind: c.kind, program, args, format, width: c.width, height: c.height, stall, color })
    }
}

/// A running camera program.
pub struct CommandCamera {
    child: Arc<Mutex<Child>>,
    stdout: ChildStdout,
    /// Its stderr's last lines, and whether it has been read to the end.
    log: Arc<Mutex<(VecDeque<String>, bool)>>,
    /// To the stall guard: `true` when a read for a frame starts, `false` when the frame is in.
    /// Only time spent waiting for the program counts: a slow pipeline (a debug build, a busy
    /// board) that reads the next frame late is no stalled camera.
    waiting: mpsc::Sender<bool>,
    /// Set by the stall guard when it stopped the program.
    stalled: Arc<AtomicBool>,
    stall: Duration,
    format: RawFormat,
    width: u32,
    height: u32,
    color: ColorMode,
    buf: Vec<u8>,
    /// The first frame, read by `open` to know that the camera works.
    first: Option<image::DynamicImage>,
}

impl CameraOpener for CommandOpener {
    type Device = CommandCamera;

    fn open(&mut self) -> Result<CommandCamera, String> {
        let len = frame_bytes(self.format, self.width, self.height)?;
        let not_found = || match self.kind {
            CameraKind::Rpicam => "not found: install Raspberry Pi OS's rpicam-apps (sudo apt install rpicam-apps), \
                                   or set camera.rpicam_command (libcamera-vid on Raspberry Pi OS 11)"
                .to_string(),
            _ => "not found (camera.command's program: a path, or a name on PATH)".to_string(),
        };
        // Looked up first, as the shell would: where a spawn cannot report a failed exec (under
        // qemu-user, whose vfork is a fork), a missing program would pass for one that exited 127.
        if crate::access::find_program(&self.program).is_none() {
            return Err(not_found());
        }
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => not_found(),
                _ => format!("cannot run it: {e}"),
            })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (waiting, heard) = mpsc::channel::<bool>();
        // From here on, dropping `camera` (an error below) stops the program.
        let mut camera = CommandCamera {
            child: Arc::new(Mutex::new(child)),
            stdout,
            log: Arc::new(Mutex::new((VecDeque::new(), false))),
            waiting,
            stalled: Arc::new(AtomicBool::new(false)),
            stall: self.stall,
            format: self.format,
            width: self.width,
            height: self.height,
            color: self.color,
            buf: vec![0; len],
            first: None,
        };
        let kept = camera.log.clone();
        std::thread::Builder::new()
            .name("camera-stderr".into())
            .spawn(move || {
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                    if kept.0.len() == KEPT_LINES {
                        kept.0.pop_front();
                    }
                    kept.0.push_back(line);
                }
                kept.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        let (guarded, flag, stall) = (camera.child.clone(), camera.stalled.clone(), camera.stall);
        // The stall guard: a read that waits `stall` for its frame (the first one included) stops
        // the program, whose pipe then ends: the blocked read returns and the camera counts as lost.
        std::thread::Builder::new()
            .name("camera-stall".into())
            .spawn(move || {
                let mut reading = false;
                loop {
                    let next = if reading {
                        heard.recv_timeout(stall)
                    } else {
                        heard.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
                    };
                    match next {
                        Ok(r) => reading = r,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            flag.store(true, Ordering::SeqCst);
                            let _ = guarded.lock().unwrap_or_else(|e| e.into_inner()).kill();
                            break;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        match camera.grab() {
            Ok(image) => camera.first = Some(image),
            Err(GrabError::Lost(e) | GrabError::Frame(e)) => return Err(e),
        }
        Ok(camera)
    }

    fn name(&self) -> String {
        self.program.clone()
    }
}

impl CommandCamera {
    /// Why the program's frames ended: it was stopped for a stall, or it exited (with its status
    /// and last stderr lines).
    fn ended(&mut self, partial: usize) -> String {
        let status = {
            let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
            // Its output ended: it exits now (closing its output may come first), or it is of
            // no use and stopped after half a second.
            let deadline = std::time::Instant::now() + Duration::from_millis(500);
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                    Ok(None) => {
                        let _ = child.kill();
                        break child.wait();
                    }
                    Err(e) => break Err(e),
                }
            }
        };
        // Its stderr reaches its end once it exited (unless a child of its own holds it open).
        for _ in 0..20 {
            if self.log.lock().unwrap_or_else(|e| e.into_inner()).1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let last: Vec<String> = self.log.lock().unwrap_or_else(|e| e.into_inner()).0.iter().cloned().collect();
        let said = if last.is_empty() { String::new() } else { format!(": {}", last.join(" | ")) };
        let inside = if partial > 0 {
            format!(" inside a frame ({partial} of its {} bytes)", self.buf.len())
        } else {
            String::new()
        };
        if self.stalled.load(Ordering::SeqCst) {
            format!("sent no frame for {} ms{inside}: stopped it{said}", self.stall.as_millis())
        } else {
            let status = status.map_or_else(|e| format!("status unknown: {e}"), |s| s.to_string());
            format!("ended{inside} ({status}){said}")
        }
    }
}

impl CameraDevice for CommandCamera {
    fn grab(&mut self) -> Result<image::DynamicImage, GrabError> {
        if let Some(image) = self.first.take() {
            return Ok(image);
        }
        let _ = self.waiting.send(true);
        let mut filled = 0;
        while filled < self.buf.len() {
            match self.stdout.read(&mut self.buf[filled..]) {
                Ok(0) => return Err(GrabError::Lost(self.ended(filled))),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(GrabError::Lost(format!("reading its frames: {e}"))),
            }
        }
        let _ = self.waiting.send(false);
        decode_raw_as(self.format, self.width, self.height, &self.buf, self.color).map_err(GrabError::Frame)
    }
}

impl Drop for CommandCamera {
    /// Stops the program (the camera is free for the next start) and reaps it.
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::camera::{Backoff, CameraSource};
    use crate::source::pixels::encode_raw;
    use crate::source::FrameSource;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    /// A scratch folder with a fake rpicam-vid: `script` is the shell script's body, run with
    /// rpicam-vid's arguments; `$D` is the folder. The config's camera is the fake's.
    fn fake(name: &str, script: &str) -> (PathBuf, CameraConfig) {
        let dir = std::env::temp_dir().join(format!("fer-rpicam-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rpicam-vid");
        std::fs::write(&path, format!("#!/bin/sh\nD={}\n{script}\n", dir.display())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = CameraConfig {
            kind: fer_core::board::CameraKind::Rpicam,
            device: "/dev/video0".into(),
            width: 64,
            height: 48,
            fps: 15,
            format: fer_core::board::PixelFormat::Yuyv,
            rpicam_command: path.display().to_string(),
            rpicam_args: vec!["--camera".into(), "1".into()],
            command: Vec::new(),
            command_format: RawFormat::Yuv420,
            stall_ms: 400,
            retry_ms: 1,
            retry_max_ms: 1,
        };
        (dir, config)
    }

    fn opener_of(config: &CameraConfig) -> CommandOpener {
        CommandOpener::for_camera(config, ColorMode::Rgb).expect("a camera program")
    }

    /// `n` full-range 64x48 frames of gray `v + 10 i` for frame `i`.
    fn frames(dir: &Path, n: u8, v: u8) -> PathBuf {
        let path = dir.join(format!("frames-{n}-{v}.yuv"));
        let bytes: Vec<u8> = (0..n)
            .flat_map(|i| {
                let g = v + 10 * i;
                encode_raw(&image::RgbImage::from_pixel(64, 48, image::Rgb([g, g, g])), RawFormat::Yuvj420).unwrap()
            })
            .collect();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn gray(image: &image::DynamicImage) -> u8 {
        image.to_rgb8().get_pixel(10, 10).0[1]
    }

    #[test]
    fn frames_come_from_rpicam_vid_with_the_configured_arguments() {
        let (dir, config) =
            fake("frames", "echo \"$@\" >\"$D/args\"; echo 'libcamera: started' >&2; exec cat \"$D/frames-3-50.yuv\"");
        frames(&dir, 3, 50);
        let mut opener = opener_of(&config);
        let mut cam = opener.open().unwrap();
        let args = std::fs::read_to_string(dir.join("args")).unwrap();
        assert_eq!(args.trim(), "-t 0 -n --codec yuv420 --width 64 --height 48 --framerate 15 --flush -o - --camera 1");
        // Full range: gray 50, 60, 70 come back as they were (limited-range decoding would not).
        let got: Vec<u8> = (0..3).map(|_| gray(&cam.grab().unwrap())).collect();
        assert_eq!(got, [50, 60, 70]);
        let Err(GrabError::Lost(e)) = cam.grab() else { panic!("a fourth frame") };
        assert_eq!(e, "ended (exit status: 0): libcamera: started");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_start_is_an_error_with_what_rpicam_vid_said() {
        let (dir, config) = fake(
            "nocam",
            "echo 'Preview window unavailable' >&2; echo 'ERROR: *** no cameras available ***' >&2; exit 255",
        );
        let mut opener = opener_of(&config);
        let e = opener.open().err().unwrap();
        assert_eq!(e, "ended (exit status: 255): Preview window unavailable | ERROR: *** no cameras available ***");
        // As CameraSource reports it: the program named.
        let e = CameraSource::open(opener, Backoff { first_ms: 1, max_ms: 1 }).err().unwrap().to_string();
        assert!(e.starts_with(&format!("{}: ended (exit status: 255)", dir.join("rpicam-vid").display())), "{e}");
        // Half a frame, then the end.
        let (dir2, config) = fake("half", "head -c 100 \"$D/frames-1-20.yuv\"");
        frames(&dir2, 1, 20);
        let e = opener_of(&config).open().err().unwrap();
        assert!(e.contains("ended inside a frame (100 of its 4608 bytes)"), "{e}");
        // Not installed.
        let (dir3, mut config) = fake("missing", "");
        config.rpicam_command = "/nonexistent/rpicam-vid".into();
        let e = opener_of(&config).open().err().unwrap();
        assert!(e.starts_with("not found: ") && e.contains("sudo apt install rpicam-apps"), "{e}");
        for d in [dir, dir2, dir3] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn a_command_camera_runs_its_command_as_given_in_its_format() {
        let (dir, mut config) = fake("command", "");
        // Limited-range YUV 4:2:0 (ffmpeg's yuv420p): gray 16 + 219 g / 255 for gray g.
        let frames: Vec<u8> = [40u8, 200]
            .iter()
            .flat_map(|&g| {
                encode_raw(&image::RgbImage::from_pixel(64, 48, image::Rgb([g; 3])), RawFormat::Yuv420).unwrap()
            })
            .collect();
        std::fs::write(dir.join("limited.yuv"), frames).unwrap();
        config.kind = fer_core::board::CameraKind::Command;
        config.command =
            ["sh", "-c", &format!("echo \"$0 $1\" >{0}/args; exec cat {0}/limited.yuv", dir.display()), "x", "y z"]
                .map(String::from)
                .into();
        let opener = opener_of(&config);
        assert_eq!((opener.program.as_str(), opener.format), ("sh", RawFormat::Yuv420));
        let mut cam = opener.clone().open().unwrap();
        assert_eq!([gray(&cam.grab().unwrap()), gray(&cam.grab().unwrap())], [40, 200]);
        assert!(matches!(cam.grab(), Err(GrabError::Lost(e)) if e == "ended (exit status: 0)"));
        assert_eq!(std::fs::read_to_string(dir.join("args")).unwrap(), "x y z\n", "arguments passed as given");
        config.command = vec!["/nonexistent/gst-launch-1.0".into()];
        let e = opener_of(&config).open().err().unwrap();
        assert_eq!(e, "not found (camera.command's program: a path, or a name on PATH)");
        config.kind = fer_core::board::CameraKind::V4l2;
        assert_eq!(CommandOpener::for_camera(&config, ColorMode::Rgb), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_slow_reader_is_no_stalled_camera() {
        // Frames read 600 ms apart with a 400 ms stall limit: the program waits on the pipe, not
        // the other way round; it is not stopped.
        let (dir, config) = fake("slow", "cat \"$D/frames-3-50.yuv\"; exec sleep 3600");
        frames(&dir, 3, 50);
        let mut cam = opener_of(&config).open().unwrap();
        for want in [50, 60, 70] {
            std::thread::sleep(Duration::from_millis(600));
            assert_eq!(gray(&cam.grab().unwrap()), want);
        }
        // And then it is waited for: 400 ms, not longer.
        let t = std::time::Instant::now();
        let Err(GrabError::Lost(e)) = cam.grab() else { panic!("a fourth frame") };
        assert!(e.starts_with("sent no frame for 400 ms: stopped it"), "{e}");
        // (Stopped while the frames were being read slowly, it would have ended at once.)
        assert!((Duration::from_millis(350)..Duration::from_millis(3000)).contains(&t.elapsed()), "{:?}", t.elapsed());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stalled_rpicam_vid_is_stopped_and_started_again() {
        // Each start writes two frames (gray 30, 40, then 130, 140 on the second start) and then
        // hangs: after 400 ms without a frame it is stopped, the camera reopened.
        let script = "n=$(cat \"$D/starts\" 2>/dev/null || echo 0); n=$((n + 1)); echo $n >\"$D/starts\"
if [ $n = 1 ]; then cat \"$D/frames-2-30.yuv\"; else cat \"$D/frames-2-130.yuv\"; fi
exec sleep 3600";
        let (dir, config) = fake("stall", script);
        frames(&dir, 2, 30);
        frames(&dir, 2, 130);
        let reports = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = reports.clone();
        let mut source = CameraSource::open(opener_of(&config), Backoff { first_ms: 1, max_ms: 1 })
            .unwrap()
            .with_hooks(|_| {}, move |m| seen.lock().unwrap().push(m.to_string()));
        let t = std::time::Instant::now();
        let got: Vec<(u8, bool)> = (0..4)
            .map(|_| {
                let f = source.next_frame().unwrap().unwrap();
                (gray(&f.image), f.new_scene)
            })
            .collect();
        assert_eq!(got, [(30, false), (40, false), (130, true), (140, false)]);
        assert!(t.elapsed() >= Duration::from_millis(400), "{:?}", t.elapsed());
        let reports = reports.lock().unwrap().join("\n");
        assert!(reports.contains("sent no frame for 400 ms: stopped it"), "{reports}");
        assert!(reports.contains("reopened after 1 attempt(s)"), "{reports}");
        drop(source);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
