//! The V4L2 camera through nokhwa (feature `camera`): `/dev/videoN` at the board config's
//! resolution, rate and pixel format (closest the driver offers). Frames are decoded by
//! [`pixels`](super::pixels) in whatever format the driver delivers (MJPEG with or without
//! Huffman tables, YUYV, NV12, gray, RGB, BGR), not by nokhwa, whose MJPEG decoder needs the C
//! libjpeg of the `mozjpeg` crate.

use fer_core::board::{CameraConfig, PixelFormat};
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution};

use super::camera::{CameraDevice, CameraOpener, GrabError};
use super::pixels::{decode_raw, RawFormat};

/// Opens the configured V4L2 device.
pub struct V4lOpener {
    pub config: CameraConfig,
}

/// An open nokhwa camera with its stream running.
pub struct V4lCamera(nokhwa::Camera);

impl CameraOpener for V4lOpener {
    type Device = V4lCamera;

    fn open(&mut self) -> Result<V4lCamera, String> {
        let c = &self.config;
        let index = match c.device.strip_prefix("/dev/video").and_then(|n| n.parse::<u32>().ok()) {
            Some(n) => CameraIndex::Index(n),
            None => CameraIndex::String(c.device.clone()),
        };
        let format = match c.format {
            PixelFormat::Mjpeg => FrameFormat::MJPEG,
            PixelFormat::Yuyv => FrameFormat::YUYV,
        };
        let wanted = CameraFormat::new(Resolution::new(c.width, c.height), format, c.fps);
        let requested = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(wanted));
        let mut cam = nokhwa::Camera::new(index, requested).map_err(|e| format!("cannot open: {e}"))?;
        cam.open_stream().map_err(|e| format!("cannot start streaming: {e}"))?;
        Ok(V4lCamera(cam))
    }

    fn name(&self) -> String {
        self.config.device.clone()
    }
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
        decode_raw(format, size.width(), size.height(), buffer.buffer()).map_err(GrabError::Frame)
    }
}
