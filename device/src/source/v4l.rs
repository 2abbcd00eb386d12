//! The V4L2 camera through nokhwa (feature `camera`): `/dev/videoN` at the board config's
//! resolution, rate and pixel format (closest the driver offers); MJPEG and YUYV frames are
//! decoded to RGB by nokhwa.

use fer_core::board::{CameraConfig, PixelFormat};
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution};

use super::camera::{CameraDevice, CameraOpener};

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
    fn grab(&mut self) -> Result<image::DynamicImage, String> {
        let buffer = self.0.frame().map_err(|e| e.to_string())?;
        let rgb = buffer.decode_image::<RgbFormat>().map_err(|e| format!("cannot decode the frame: {e}"))?;
        Ok(image::DynamicImage::ImageRgb8(rgb))
    }
}
