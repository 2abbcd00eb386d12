//! Raw camera frames from a file or stdin: consecutive uncompressed frames of one pixel format
//! and size, as `v4l2-ctl --stream-mmap --stream-to=cam.yuv` or `ffmpeg -f v4l2 -i /dev/video0
//! -f rawvideo -pix_fmt yuyv422 cam.yuv` record them — so a camera can be recorded once and
//! replayed through the pipeline, or piped in without the `camera` feature. Spec on the command
//! line: `FORMAT:WIDTHxHEIGHT:PATH` with FORMAT one of yuyv, nv12, yuv420, yuvj420, gray, rgb,
//! bgr (`-`: stdin).

use std::io::Read;
use std::path::PathBuf;

use super::pixels::{decode_raw_as, frame_bytes, ColorMode, RawFormat};
use super::{Frame, FrameSource, SourceError};

/// Fixed-size raw frames from any reader.
pub struct RawSource {
    name: PathBuf,
    reader: Box<dyn Read>,
    format: RawFormat,
    width: u32,
    height: u32,
    buf: Vec<u8>,
    index: u64,
    done: bool,
    color: ColorMode,
}

impl RawSource {
    /// `name` is used in messages; an impossible size (odd width for YUYV, ...) is fatal.
    pub fn new(
        name: impl Into<PathBuf>,
        reader: Box<dyn Read>,
        format: RawFormat,
        width: u32,
        height: u32,
    ) -> Result<RawSource, SourceError> {
        let name = name.into();
        let len =
            frame_bytes(format, width, height).map_err(|message| SourceError::Fatal { path: name.clone(), message })?;
        Ok(RawSource {
            name,
            reader,
            format,
            width,
            height,
            buf: vec![0; len],
            index: 0,
            done: false,
            color: ColorMode::Rgb,
        })
    }

    /// Frames decoded to `color` (RGB unless told; gray: the luma the frames carry, see
    /// [`decode_raw_as`]).
    pub fn with_color(self, color: ColorMode) -> RawSource {
        RawSource { color, ..self }
    }

    /// Opens `WIDTHxHEIGHT:PATH` (the part of the spec after `FORMAT:`) for `format`.
    pub fn open(format: RawFormat, spec: &str) -> Result<RawSource, SourceError> {
        let bad = |message: String| SourceError::Fatal { path: PathBuf::from(spec), message };
        let (size, path) = spec
            .split_once(':')
            .ok_or_else(|| bad(format!("expected {}:WIDTHxHEIGHT:PATH", format.to_string().to_lowercase())))?;
        let (width, height) = size
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
            .ok_or_else(|| bad(format!("{size:?} is not a frame size like 640x480")))?;
        frame_bytes(format, width, height).map_err(bad)?;
        if path == "-" {
            return RawSource::new("-", Box::new(std::io::stdin()), format, width, height);
        }
        let file = std::fs::File::open(path)
            .map_err(|e| SourceError::Fatal { path: PathBuf::from(path), message: format!("cannot open: {e}") })?;
        RawSource::new(path, Box::new(std::io::BufReader::new(file)), format, width, height)
    }
}

impl FrameSource for RawSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let mut filled = 0;
        while filled < self.buf.len() {
            match self.reader.read(&mut self.buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Err(SourceError::Fatal { path: self.name.clone(), message: format!("read error: {e}") });
                }
            }
        }
        let index = self.index;
        if filled < self.buf.len() {
            self.done = true;
            if filled == 0 {
                return Ok(None);
            }
            return Err(SourceError::Frame {
                path: self.name.clone(),
                message: format!(
                    "stream ends inside frame {index}: {filled} of its {} bytes (truncated, or not {}x{} {})",
                    self.buf.len(),
                    self.width,
                    self.height,
                    self.format
                ),
            });
        }
        self.index += 1;
        let image = decode_raw_as(self.format, self.width, self.height, &self.buf, self.color)
            .map_err(|message| SourceError::Frame { path: self.name.join(format!("frame#{index}")), message })?;
        Ok(Some(Frame { index, name: format!("stream#{index}"), image, new_scene: false }))
    }

    fn describe(&self) -> String {
        format!("raw {}x{} {} frames {}", self.width, self.height, self.format, self.name.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::pixels::encode_raw;
    use image::RgbImage;

    #[test]
    fn frames_are_cut_by_size_and_a_short_tail_is_reported() {
        let frame = |v: u8| encode_raw(&RgbImage::from_pixel(8, 4, image::Rgb([v, v, v])), RawFormat::Yuyv).unwrap();
        let mut stream = [frame(20), frame(200)].concat();
        stream.extend(&frame(90)[..10]);
        let mut s = RawSource::new("cam.yuv", Box::new(std::io::Cursor::new(stream)), RawFormat::Yuyv, 8, 4).unwrap();
        for (i, v) in [(0, 20), (1, 200)] {
            let f = s.next_frame().unwrap().unwrap();
            assert_eq!((f.index, f.image.width(), f.image.height()), (i, 8, 4));
            let got = i32::from(f.image.to_rgb8().get_pixel(3, 2).0[1]);
            assert!((got - v).abs() <= 2, "frame {i}: {got} vs {v}");
        }
        let err = s.next_frame().unwrap_err().to_string();
        assert!(err.contains("cam.yuv") && err.contains("frame 2: 10 of its 64 bytes"), "{err}");
        assert!(s.next_frame().unwrap().is_none());
    }

    #[test]
    fn specs_are_parsed_and_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("fer-raw-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.raw");
        std::fs::write(&path, [7u8; 12]).unwrap();
        let mut s = RawSource::open(RawFormat::Gray, &format!("4x3:{}", path.display())).unwrap();
        assert_eq!(s.next_frame().unwrap().unwrap().image.to_luma8().get_pixel(3, 2).0, [7]);
        assert!(s.next_frame().unwrap().is_none());
        let err = |spec: &str, f| RawSource::open(f, spec).err().unwrap().to_string();
        assert!(err("640x480", RawFormat::Yuyv).contains("yuyv:WIDTHxHEIGHT:PATH"));
        assert!(err("640-480:x.yuv", RawFormat::Yuyv).contains("not a frame size"));
        assert!(err("641x480:x.yuv", RawFormat::Yuyv).contains("even width"));
        let missing = err(&format!("4x4:{}", dir.join("none.yuv").display()), RawFormat::Nv12);
        assert!(missing.contains("none.yuv") && missing.contains("cannot open"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
