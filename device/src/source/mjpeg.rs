//! Motion-JPEG streams: concatenated JPEG images (raw `.mjpeg` files, or a multipart HTTP body
//! saved to a file or piped on stdin). Frames are cut at JPEG start/end-of-image markers, so
//! multipart headers between frames are skipped.

use std::io::Read;
use std::path::PathBuf;

use super::{decode, ColorMode, Frame, FrameSource, SourceError};

/// An MJPEG stream from any reader.
pub struct MjpegSource {
    name: PathBuf,
    reader: Box<dyn Read>,
    buf: Vec<u8>,
    eof: bool,
    index: u64,
    color: ColorMode,
}

impl MjpegSource {
    /// `name` is used in messages (a path, or `-` for stdin).
    pub fn new(name: impl Into<PathBuf>, reader: Box<dyn Read>) -> MjpegSource {
        MjpegSource { name: name.into(), reader, buf: Vec::new(), eof: false, index: 0, color: ColorMode::Rgb }
    }

    /// Frames decoded to `color` (RGB unless told; gray: each JPEG's Y component only).
    pub fn with_color(self, color: ColorMode) -> MjpegSource {
        MjpegSource { color, ..self }
    }

    pub fn open(path: &std::path::Path) -> Result<MjpegSource, SourceError> {
        if path.as_os_str() == "-" {
            return Ok(MjpegSource::new("-", Box::new(std::io::stdin())));
        }
        let f = std::fs::File::open(path)
            .map_err(|e| SourceError::Fatal { path: path.to_path_buf(), message: format!("cannot open: {e}") })?;
        Ok(MjpegSource::new(path, Box::new(std::io::BufReader::new(f))))
    }

    fn fill(&mut self) -> Result<bool, SourceError> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 64 * 1024];
        let n = self
            .reader
            .read(&mut chunk)
            .map_err(|e| SourceError::Fatal { path: self.name.clone(), message: format!("read error: {e}") })?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }
}

fn find(hay: &[u8], needle: [u8; 2], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(2).position(|w| w == needle).map(|p| p + from)
}

impl FrameSource for MjpegSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        loop {
            if let Some(start) = find(&self.buf, [0xFF, 0xD8], 0) {
                if let Some(end) = find(&self.buf, [0xFF, 0xD9], start + 2) {
                    let jpeg: Vec<u8> = self.buf.drain(..end + 2).skip(start).collect();
                    let index = self.index;
                    self.index += 1;
                    let path = self.name.join(format!("frame#{index}"));
                    let image = decode(&jpeg, &path, self.color)?;
                    return Ok(Some(Frame { index, name: format!("stream#{index}"), new_scene: false, image }));
                }
            } else if self.buf.len() > 1 {
                // No start marker: keep only a possible half marker.
                let keep = self.buf.split_off(self.buf.len() - 1);
                self.buf = keep;
            }
            if !self.fill()? {
                if self.buf.iter().any(|b| *b != b'\r' && *b != b'\n') && find(&self.buf, [0xFF, 0xD8], 0).is_some() {
                    let message = format!("stream ends inside frame {} (truncated JPEG)", self.index);
                    self.buf.clear();
                    return Err(SourceError::Frame { path: self.name.clone(), message });
                }
                return Ok(None);
            }
        }
    }

    fn describe(&self) -> String {
        format!("MJPEG stream {}", self.name.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, RgbImage};

    fn jpeg(v: u8) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        RgbImage::from_pixel(16, 8, image::Rgb([v, v, v])).write_to(&mut out, ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn splits_concatenated_and_multipart_frames_and_reports_truncation() {
        let mut stream = Vec::new();
        stream.extend(jpeg(10));
        stream.extend(b"\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\n");
        stream.extend(jpeg(200));
        let third = jpeg(90);
        stream.extend(&third[..third.len() / 2]);
        let mut s = MjpegSource::new("cam.mjpeg", Box::new(std::io::Cursor::new(stream)));
        let a = s.next_frame().unwrap().unwrap();
        let b = s.next_frame().unwrap().unwrap();
        assert_eq!((a.index, b.index), (0, 1));
        assert_eq!(a.image.width(), 16);
        let luma = |f: &Frame| f.image.to_luma8().get_pixel(4, 4).0[0] as i32;
        assert!((luma(&a) - 10).abs() < 4 && (luma(&b) - 200).abs() < 4);
        let err = s.next_frame().unwrap_err().to_string();
        assert!(err.contains("cam.mjpeg") && err.contains("truncated"), "{err}");
        assert!(s.next_frame().unwrap().is_none());
    }

    #[test]
    fn a_recorded_uvc_stream_without_huffman_tables_decodes() {
        // What `ffmpeg -f v4l2 -input_format mjpeg -i /dev/video0 -c copy cam.mjpeg` saves from
        // most UVC cameras: JPEG frames without DHT segments.
        let frame = |v: u8| {
            let rgb = RgbImage::from_fn(16, 8, |x, _| image::Rgb([v, (x * 16) as u8, v]));
            crate::source::pixels::encode_raw(&rgb, crate::source::pixels::RawFormat::Mjpeg).unwrap()
        };
        let stream = [frame(30), frame(220)].concat();
        let mut s = MjpegSource::new("uvc.mjpeg", Box::new(std::io::Cursor::new(stream)));
        for v in [30, 220] {
            let f = s.next_frame().unwrap().unwrap();
            let p = f.image.to_rgb8().get_pixel(8, 4).0;
            assert!((i32::from(p[0]) - v).abs() < 6 && (i32::from(p[1]) - 128).abs() < 12, "{p:?} vs {v}");
        }
        assert!(s.next_frame().unwrap().is_none());
    }
}
