//! The V4L2 camera through nokhwa (feature `camera`): `/dev/videoN` at the board config's
//! resolution, rate and pixel format (closest the driver offers). Frames are decoded by
//! [`pixels`](super::pixels) in whatever format the driver delivers (MJPEG with or without
//! Huffman tables, YUYV, NV12, gray, RGB, BGR), not by nokhwa, whose MJPEG decoder needs the C
//! libjpeg of the `mozjpeg` crate.

use fer_core::board::{CameraConfig, PixelFormat};
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution};

use super::camera::{CameraDevice, CameraOpener, GrabError};
use super::pixels::{decode_raw_as, ColorMode, RawFormat};

/// Opens the configured V4L2 device.
pub struct V4lOpener {
    pub config: CameraConfig,
    /// What frames are decoded to (gray: the luma they carry, no colour conversion).
    pub color: ColorMode,
}

/// An open nokhwa camera with its stream running.
pub struct V4lCamera(nokhwa::Camera, ColorMode);

impl CameraOpener for V4lOpener {
    type Device = V4lCamera;

    fn open(&mut self) -> Result<V4lCamera, String> {
        let c = &self.config;
        let index = CameraIndex::Index(video_index(std::path::Path::new(&c.device))?);
        let format = match c.format {
            PixelFormat::Mjpeg => FrameFormat::MJPEG,
            PixelFormat::Yuyv => FrameFormat::YUYV,
        };
        let wanted = CameraFormat::new(Resolution::new(c.width, c.height), format, c.fps);
        let requested = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(wanted));
        let mut cam = nokhwa::Camera::new(index, requested).map_err(|e| format!("cannot open: {e}"))?;
        cam.open_stream().map_err(|e| format!("cannot start streaming: {e}"))?;
        Ok(V4lCamera(cam, self.color))
    }

    fn name(&self) -> String {
        self.config.device.clone()
    }
}

/// N of the `/dev/videoN` node that `device` is or links to: nokhwa opens cameras by that
/// number (given any other string it fails with "invalid digit found in string"), while the
/// stable names a board config wants are udev's links, e.g.
/// `/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920-video-index0` -> `../../video0`.
pub fn video_index(device: &std::path::Path) -> Result<u32, String> {
    let index = |p: &std::path::Path| {
        p.file_name()?.to_str()?.strip_prefix("video")?.parse::<u32>().ok().filter(|_| p.starts_with("/dev"))
    };
    let mut path = device.to_path_buf();
    for _ in 0..16 {
        if let Some(n) = index(&path) {
            return Ok(n);
        }
        match std::fs::read_link(&path) {
            Ok(target) => path = path.parent().unwrap_or(std::path::Path::new("/")).join(target),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("no such device".into()),
            Err(_) if path == device => return Err("not a V4L2 video node (/dev/videoN) nor a link to one".into()),
            Err(_) => return Err(format!("links to {}, not a V4L2 video node (/dev/videoN)", path.display())),
        }
        // Resolve `..` lexically: the link's target need not exist (a camera unplugged).
        path = path.components().fold(std::path::PathBuf::new(), |mut p, c| {
            match c {
                std::path::Component::ParentDir => {
                    p.pop();
                }
                c => p.push(c),
            }
            p
        });
    }
    Err(format!("{}: too many levels of links", device.display()))
}

impl CameraDevice for V4lCamera {
    fn grab(&mut self) -> Result<image::DynamicImage, GrabError> {
        let buffer = self.0.frame().map_err(|e| GrabError::Lost(e.to_string()))?;
        let format = match buffer.source_frame_format() {
            FrameFormat::MJPEG => RawFormat::Mjpeg,
            FrameFormat::YUYV => RawFormat::Yuyv,
            FrameFormat::NV12 => RawFormat::Nv12,
            FrameFormat::GRAY => RawFormat::Gray,
            FrameFormat::RAWRGB => RawFormat::Rgb,
            FrameFormat::RAWBGR => RawFormat::Bgr,
        };
        let size = buffer.resolution();
        decode_raw_as(format, size.width(), size.height(), buffer.buffer(), self.1).map_err(GrabError::Frame)
    }
}

#[cfg(test)]
mod tests {
    use super::video_index;
    use std::path::Path;

    #[test]
    fn device_links_resolve_to_the_video_node_number() {
        assert_eq!(video_index(Path::new("/dev/video0")), Ok(0));
        assert_eq!(video_index(Path::new("/dev/video12")), Ok(12));
        // udev's stable names: relative links (`../../video3` under /dev/v4l/by-id), here up to
        // / from a scratch folder; the node need not exist (nokhwa then says so).
        let dir = std::env::temp_dir().join(format!("fer-v4l-{}", std::process::id()));
        let by_id = dir.join("v4l/by-id");
        std::fs::create_dir_all(&by_id).unwrap();
        let up = "../".repeat(by_id.components().filter(|c| matches!(c, std::path::Component::Normal(_))).count());
        let cam = by_id.join("usb-046d_HD_Pro_Webcam_C920-video-index0");
        std::os::unix::fs::symlink(format!("{up}dev/video3"), &cam).unwrap();
        let alias = dir.join("camera");
        std::os::unix::fs::symlink(&cam, &alias).unwrap();
        let plain = dir.join("plain");
        std::fs::write(&plain, b"").unwrap();
        let to_plain = dir.join("to-plain");
        std::os::unix::fs::symlink("plain", &to_plain).unwrap();
        let loop_link = dir.join("loop");
        std::os::unix::fs::symlink("loop", &loop_link).unwrap();
        let results = [&cam, &alias, &dir.join("missing"), &plain, &to_plain, &loop_link].map(|p| video_index(p));
        std::fs::remove_dir_all(&dir).unwrap();
        let [cam, alias, missing, plain, to_plain, looped] = results;
        assert_eq!(cam, Ok(3));
        assert_eq!(alias, Ok(3));
        assert_eq!(missing, Err("no such device".into()));
        assert_eq!(plain, Err("not a V4L2 video node (/dev/videoN) nor a link to one".into()));
        assert_eq!(
            to_plain,
            Err(format!("links to {}, not a V4L2 video node (/dev/videoN)", dir.join("plain").display()))
        );
        assert!(looped.unwrap_err().ends_with("loop: too many levels of links"));
        assert_eq!(
            video_index(Path::new("/dev/null")),
            Err("not a V4L2 video node (/dev/videoN) nor a link to one".into())
        );
    }
}
