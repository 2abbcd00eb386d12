//! Image files: a folder of PNG/JPEG files in sorted order (the frames of one scene, or unrelated
//! photographs), or one image.

use std::path::{Path, PathBuf};

use super::{decode, ColorMode, Frame, FrameSource, SourceError};

/// PNG/JPEG files of a folder, sorted by name: the frames of one scene (faces are tracked from
/// file to file), or, [`FolderSource::photos`], unrelated photographs (each a scene of its own).
#[derive(Debug)]
pub struct FolderSource {
    dir: PathBuf,
    files: Vec<PathBuf>,
    next: usize,
    photos: bool,
    color: ColorMode,
}

impl FolderSource {
    pub fn open(dir: &Path) -> Result<FolderSource, SourceError> {
        let fatal = |message: String| SourceError::Fatal { path: dir.to_path_buf(), message };
        let entries = std::fs::read_dir(dir).map_err(|e| fatal(format!("cannot read folder: {e}")))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && fer_core::preprocess::is_image_path(p))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(fatal("no PNG or JPEG files".into()));
        }
        Ok(FolderSource { dir: dir.to_path_buf(), files, next: 0, photos: false, color: ColorMode::Rgb })
    }

    /// The files are unrelated photographs: every frame starts a new scene.
    pub fn photos(self) -> FolderSource {
        FolderSource { photos: true, ..self }
    }

    /// Frames decoded to `color` (RGB unless told; see [`super::pixels::decode_raw_as`]).
    pub fn with_color(self, color: ColorMode) -> FolderSource {
        FolderSource { color, ..self }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl FrameSource for FolderSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        let Some(path) = self.files.get(self.next).cloned() else { return Ok(None) };
        let index = self.next as u64;
        self.next += 1;
        let bytes = std::fs::read(&path)
            .map_err(|e| SourceError::Frame { path: path.clone(), message: format!("cannot read: {e}") })?;
        let image = decode(&bytes, &path, self.color)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Some(Frame { index, name, image, new_scene: self.photos }))
    }

    fn describe(&self) -> String {
        let (kind, scene) = if self.photos { ("photos", ", each a scene of its own") } else { ("folder", "") };
        format!("{kind} {} ({} images{scene})", self.dir.display(), self.files.len())
    }
}

/// One image file, one frame.
#[derive(Debug)]
pub struct SingleImage {
    path: PathBuf,
    done: bool,
    color: ColorMode,
}

impl SingleImage {
    pub fn open(path: &Path) -> Result<SingleImage, SourceError> {
        if !path.is_file() {
            return Err(SourceError::Fatal { path: path.to_path_buf(), message: "no such file".into() });
        }
        Ok(SingleImage { path: path.to_path_buf(), done: false, color: ColorMode::Rgb })
    }

    /// The image decoded to `color` (RGB unless told).
    pub fn with_color(self, color: ColorMode) -> SingleImage {
        SingleImage { color, ..self }
    }
}

impl FrameSource for SingleImage {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(None);
        }
        let bytes = std::fs::read(&self.path)
            .map_err(|e| SourceError::Fatal { path: self.path.clone(), message: format!("cannot read: {e}") })?;
        let image = decode(&bytes, &self.path, self.color)?;
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Some(Frame { index: 0, name, image, new_scene: false }))
    }

    fn describe(&self) -> String {
        format!("image {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};

    #[test]
    fn sorted_frames_and_a_corrupt_file_is_reported_then_skipped() {
        let dir = std::env::temp_dir().join(format!("fer-folder-src-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        GrayImage::from_pixel(8, 8, Luma([1])).save(dir.join("b.png")).unwrap();
        GrayImage::from_pixel(8, 8, Luma([2])).save(dir.join("a.png")).unwrap();
        std::fs::write(dir.join("c.jpg"), b"garbage").unwrap();
        std::fs::write(dir.join("notes.txt"), b"ignored").unwrap();
        GrayImage::from_pixel(8, 8, Luma([3])).save(dir.join("d.png")).unwrap();
        let mut s = FolderSource::open(&dir).unwrap();
        assert_eq!(s.len(), 4);
        let f = s.next_frame().unwrap().unwrap();
        assert_eq!((f.index, f.name.as_str(), f.image.to_luma8().get_pixel(0, 0).0[0]), (0, "a.png", 2));
        assert!(!f.new_scene, "a folder's files are one scene");
        assert_eq!(s.next_frame().unwrap().unwrap().name, "b.png");
        let err = s.next_frame().unwrap_err();
        assert!(matches!(err, SourceError::Frame { .. }));
        assert!(err.to_string().contains("c.jpg") && err.to_string().contains("not a decodable image"), "{err}");
        assert_eq!(s.next_frame().unwrap().unwrap().name, "d.png");
        assert!(s.next_frame().unwrap().is_none());
        let mut p = FolderSource::open(&dir).unwrap().photos();
        assert!(p.describe().starts_with("photos") && p.describe().contains("each a scene of its own"));
        let scenes = [p.next_frame(), p.next_frame(), p.next_frame(), p.next_frame()]
            .map(|f| f.ok().flatten().map(|f| f.new_scene));
        assert_eq!(scenes, [Some(true), Some(true), None, Some(true)], "every photograph a new scene, c.jpg an error");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_and_empty_folders_are_fatal_errors_naming_the_path() {
        let e = FolderSource::open(Path::new("/nonexistent/frames")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/frames"), "{e}");
        let dir = std::env::temp_dir().join(format!("fer-empty-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(FolderSource::open(&dir).unwrap_err().to_string().contains("no PNG or JPEG"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(SingleImage::open(Path::new("/nonexistent.png")).is_err());
    }
}
