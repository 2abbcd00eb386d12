//! Live camera frames with reconnection. [`CameraSource`] wraps any [`CameraOpener`]: the first
//! open must succeed (a missing camera is a clear error naming the device); after that a camera
//! that stops delivering frames (unplugged, driver reset) is closed and reopened with
//! exponential backoff (`camera.retry_ms` doubling up to `camera.retry_max_ms`), each attempt
//! reported on stderr, and the program keeps running. A frame that arrives but cannot be
//! decoded (a corrupt MJPEG frame) is a per-frame error: the camera stays open, unless
//! [`BAD_FRAMES_BEFORE_REOPEN`] frames in a row fail, which is treated as a lost camera. The
//! V4L2 opener (nokhwa) is in [`v4l`](super::v4l) behind the `camera` feature; tests use
//! scripted fakes.

use std::path::PathBuf;
use std::time::Duration;

use super::{Frame, FrameSource, SourceError};

/// Why a grab gave no frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrabError {
    /// The device failed (unplugged, driver error): close it and reopen.
    Lost(String),
    /// A frame came but could not be decoded: skip it, the camera goes on.
    Frame(String),
}

/// Consecutive undecodable frames after which the camera is closed and reopened.
pub const BAD_FRAMES_BEFORE_REOPEN: u32 = 30;

/// An open camera.
pub trait CameraDevice {
    /// Blocks for the next frame.
    fn grab(&mut self) -> Result<image::DynamicImage, GrabError>;
}

/// Opens a camera (again).
pub trait CameraOpener {
    type Device: CameraDevice;
    fn open(&mut self) -> Result<Self::Device, String>;
    /// Device name for messages, e.g. `/dev/video0`.
    fn name(&self) -> String;
}

/// Reconnection delays in milliseconds: `first`, doubling, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first_ms: u64,
    pub max_ms: u64,
}

impl Backoff {
    /// The delay before attempt `n` (0-based) after a loss.
    pub fn delay(&self, n: u32) -> Duration {
        Duration::from_millis(self.first_ms.saturating_mul(1u64 << n.min(32)).min(self.max_ms))
    }
}

/// A camera as a [`FrameSource`] that survives losing the camera.
pub struct CameraSource<O: CameraOpener> {
    opener: O,
    device: Option<O::Device>,
    backoff: Backoff,
    index: u64,
    /// Reconnection attempts since the camera was lost.
    attempts: u32,
    /// Undecodable frames in a row.
    bad_frames: u32,
    /// The camera was reopened since the last frame (the next frame starts a new scene).
    reopened: bool,
    sleep: Box<dyn FnMut(Duration)>,
    /// Messages about losses and reconnections (stderr by default).
    report: Box<dyn FnMut(&str)>,
}

impl<O: CameraOpener> CameraSource<O> {
    /// Opens the camera once; failure is fatal here (nothing to recover to).
    pub fn open(mut opener: O, backoff: Backoff) -> Result<Self, SourceError> {
        let device =
            opener.open().map_err(|message| SourceError::Fatal { path: PathBuf::from(opener.name()), message })?;
        Ok(CameraSource {
            opener,
            device: Some(device),
            backoff,
            index: 0,
            attempts: 0,
            bad_frames: 0,
            reopened: false,
            sleep: Box::new(std::thread::sleep),
            report: Box::new(|m| eprintln!("{m}")),
        })
    }

    /// Replaces the sleeping and reporting functions (tests).
    pub fn with_hooks(mut self, sleep: impl FnMut(Duration) + 'static, report: impl FnMut(&str) + 'static) -> Self {
        self.sleep = Box::new(sleep);
        self.report = Box::new(report);
        self
    }
}

impl<O: CameraOpener> FrameSource for CameraSource<O> {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        loop {
            let device = match self.device.as_mut() {
                Some(d) => d,
                None => {
                    let delay = self.backoff.delay(self.attempts);
                    self.attempts += 1;
                    (self.sleep)(delay);
                    match self.opener.open() {
                        Ok(d) => {
                            (self.report)(&format!(
                                "camera {}: reopened after {} attempt(s)",
                                self.opener.name(),
                                self.attempts
                            ));
                            self.attempts = 0;
                            self.reopened = true;
                            self.device.insert(d)
                        }
                        Err(e) => {
                            let next = self.backoff.delay(self.attempts).as_millis();
                            (self.report)(&format!(
                                "camera {}: reopen failed ({e}); retrying in {next} ms",
                                self.opener.name()
                            ));
                            continue;
                        }
                    }
                }
            };
            match device.grab() {
                Ok(image) => {
                    let new_scene = std::mem::take(&mut self.reopened);
                    let frame = Frame { index: self.index, name: format!("camera#{}", self.index), image, new_scene };
                    self.index += 1;
                    self.bad_frames = 0;
                    return Ok(Some(frame));
                }
                Err(GrabError::Frame(message)) => {
                    let path = PathBuf::from(format!("{}#{}", self.opener.name(), self.index));
                    self.index += 1;
                    self.bad_frames += 1;
                    if self.bad_frames >= BAD_FRAMES_BEFORE_REOPEN {
                        (self.report)(&format!(
                            "camera {}: {} frames in a row could not be decoded (last: {message}); reopening in {} ms",
                            self.opener.name(),
                            self.bad_frames,
                            self.backoff.delay(0).as_millis()
                        ));
                        self.bad_frames = 0;
                        self.device = None;
                    }
                    return Err(SourceError::Frame { path, message });
                }
                Err(GrabError::Lost(e)) => {
                    (self.report)(&format!(
                        "camera {}: lost ({e}); reopening in {} ms",
                        self.opener.name(),
                        self.backoff.delay(0).as_millis()
                    ));
                    self.device = None;
                }
            }
        }
    }

    fn describe(&self) -> String {
        format!("camera {}", self.opener.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;

    /// A camera whose grabs follow a script: `true` = a frame, `false` = a device error.
    struct Scripted(Rc<RefCell<VecDeque<bool>>>);
    impl CameraDevice for Scripted {
        fn grab(&mut self) -> Result<image::DynamicImage, GrabError> {
            match self.0.borrow_mut().pop_front() {
                Some(true) => Ok(image::DynamicImage::new_luma8(4, 4)),
                _ => Err(GrabError::Lost("VIDIOC_DQBUF: No such device".into())),
            }
        }
    }
    /// Opens succeed or fail by script.
    struct Opener {
        opens: VecDeque<bool>,
        grabs: Rc<RefCell<VecDeque<bool>>>,
    }
    impl CameraOpener for Opener {
        type Device = Scripted;
        fn open(&mut self) -> Result<Scripted, String> {
            match self.opens.pop_front() {
                Some(true) => Ok(Scripted(self.grabs.clone())),
                _ => Err("No such file or directory".into()),
            }
        }
        fn name(&self) -> String {
            "/dev/video9".into()
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let b = Backoff { first_ms: 250, max_ms: 2000 };
        let d: Vec<u64> = (0..6).map(|n| b.delay(n).as_millis() as u64).collect();
        assert_eq!(d, vec![250, 500, 1000, 2000, 2000, 2000]);
    }

    #[test]
    fn a_missing_camera_is_a_clear_error() {
        let o = Opener { opens: VecDeque::from([false]), grabs: Default::default() };
        let e = CameraSource::open(o, Backoff { first_ms: 1, max_ms: 1 }).err().unwrap().to_string();
        assert!(e.contains("/dev/video9") && e.contains("No such file"), "{e}");
    }

    #[test]
    fn a_lost_camera_is_reopened_with_backoff_and_frames_continue() {
        // Frame, frame, lost; reopen fails three times, then succeeds; frame.
        let grabs = Rc::new(RefCell::new(VecDeque::from([true, true, false, true])));
        let o = Opener { opens: VecDeque::from([true, false, false, false, true]), grabs };
        let slept = Rc::new(RefCell::new(Vec::new()));
        let log = Rc::new(RefCell::new(Vec::new()));
        let (s2, l2) = (slept.clone(), log.clone());
        let mut cam = CameraSource::open(o, Backoff { first_ms: 100, max_ms: 300 }).unwrap().with_hooks(
            move |d| s2.borrow_mut().push(d.as_millis() as u64),
            move |m| l2.borrow_mut().push(m.to_string()),
        );
        let frames: Vec<(String, bool)> =
            (0..3).map(|_| cam.next_frame().unwrap().unwrap()).map(|f| (f.name, f.new_scene)).collect();
        // The frame after the reopening starts a new scene (faces seen before are stale).
        let expected = [("camera#0", false), ("camera#1", false), ("camera#2", true)].map(|(n, s)| (n.to_string(), s));
        assert_eq!(frames, expected);
        assert_eq!(*slept.borrow(), vec![100, 200, 300, 300]);
        let log = log.borrow();
        assert!(log[0].contains("lost") && log[0].contains("/dev/video9"), "{log:?}");
        assert_eq!(log.iter().filter(|m| m.contains("reopen failed")).count(), 3, "{log:?}");
        assert!(log.last().unwrap().contains("reopened after 4 attempt(s)"), "{log:?}");
    }

    /// Frames by script: `true` decodes, `false` is a corrupt frame (never a device error).
    struct Corrupting(Rc<RefCell<VecDeque<bool>>>);
    impl CameraDevice for Corrupting {
        fn grab(&mut self) -> Result<image::DynamicImage, GrabError> {
            match self.0.borrow_mut().pop_front() {
                Some(true) => Ok(image::DynamicImage::new_luma8(4, 4)),
                _ => Err(GrabError::Frame("not a decodable image (JPEG)".into())),
            }
        }
    }
    struct CorruptOpener {
        opened: Rc<RefCell<u32>>,
        grabs: Rc<RefCell<VecDeque<bool>>>,
    }
    impl CameraOpener for CorruptOpener {
        type Device = Corrupting;
        fn open(&mut self) -> Result<Corrupting, String> {
            *self.opened.borrow_mut() += 1;
            Ok(Corrupting(self.grabs.clone()))
        }
        fn name(&self) -> String {
            "/dev/video9".into()
        }
    }

    #[test]
    fn corrupt_frames_are_skipped_and_only_a_long_run_of_them_reopens_the_camera() {
        let n = BAD_FRAMES_BEFORE_REOPEN as usize;
        // Good, two corrupt, good; then `n` corrupt in a row, then good.
        let mut script = vec![true, false, false, true];
        script.extend(std::iter::repeat_n(false, n));
        script.push(true);
        let grabs = Rc::new(RefCell::new(VecDeque::from(script)));
        let opened = Rc::new(RefCell::new(0));
        let o = CorruptOpener { opened: opened.clone(), grabs };
        let log = Rc::new(RefCell::new(Vec::new()));
        let l2 = log.clone();
        let mut cam = CameraSource::open(o, Backoff { first_ms: 1, max_ms: 1 })
            .unwrap()
            .with_hooks(|_| {}, move |m| l2.borrow_mut().push(m.to_string()));
        let mut seen = Vec::new();
        for _ in 0..4 + n + 1 {
            seen.push(match cam.next_frame() {
                Ok(Some(f)) => f.name,
                Ok(None) => "end".into(),
                Err(e @ SourceError::Frame { .. }) => format!("skipped {e}"),
                Err(e) => format!("fatal {e}"),
            });
        }
        assert_eq!(
            seen[..4],
            [
                "camera#0",
                "skipped /dev/video9#1: not a decodable image (JPEG)",
                "skipped /dev/video9#2: not a decodable image (JPEG)",
                "camera#3"
            ]
        );
        assert!(seen[4..4 + n].iter().all(|s| s.starts_with("skipped")), "{seen:?}");
        assert_eq!(seen[4 + n], format!("camera#{}", 4 + n));
        // Opened once at the start, once after the run of `n`; the two single ones did not.
        assert_eq!(*opened.borrow(), 2);
        let log = log.borrow();
        assert!(log[0].contains(&format!("{n} frames in a row could not be decoded")), "{log:?}");
        assert!(log[1].contains("reopened after 1 attempt(s)"), "{log:?}");
        assert_eq!(log.len(), 2, "{log:?}");
    }
}
