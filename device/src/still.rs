//! Whether a scene has changed: the mean gray level of each 16×16-pixel block of a frame, to
//! compare with the blocks of a frame that a detector searched, the whole of it (the last full
//! pass) or around a face (the pipeline's `detection.still_threshold`).

use fer_core::preprocess::FaceBox;

use crate::detect::Changed;
use image::DynamicImage;

/// A block's side, in frame pixels.
pub const BLOCK: u32 = 16;

/// The pixel sums of a frame's whole 16×16-pixel blocks, row by row (a last partial row or
/// column of blocks, under 16 pixels, is left out): of its gray levels, or of a colour frame's
/// red, green and blue levels together.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocks {
    /// The frame's width and height.
    pub size: (u32, u32),
    /// Blocks in a row.
    pub cols: usize,
    /// Values a pixel adds to its block's sum: 1 (gray) or 3 (RGB).
    pub channels: u32,
    pub sums: Vec<u32>,
}

impl Blocks {
    /// The blocks of `frame`: gray or RGB as it comes (a colour frame is not converted to
    /// gray for this: 0.15 M Cortex-A72 instructions a 640x480 gray frame, 0.40 an RGB one,
    /// where converting it took 1.3), other layouts converted to gray.
    pub fn of(frame: &DynamicImage) -> Blocks {
        match frame {
            DynamicImage::ImageLuma8(g) => Blocks::of_bytes(g.as_raw(), g.dimensions(), 1),
            DynamicImage::ImageRgb8(c) => Blocks::of_bytes(c.as_raw(), c.dimensions(), 3),
            other => {
                let g = fer_core::preprocess::to_gray8(other);
                Blocks::of_bytes(g.as_raw(), g.dimensions(), 1)
            }
        }
    }

    /// Rows of `w` pixels of `channels` bytes each.
    fn of_bytes(raw: &[u8], (w, h): (u32, u32), channels: u32) -> Blocks {
        let (cols, rows) = ((w / BLOCK) as usize, (h / BLOCK) as usize);
        let (b, row) = (BLOCK as usize, (w * channels) as usize);
        let bytes = b * channels as usize;
        let mut sums = vec![0u32; cols * rows];
        // A block row's 16 rows added byte column by byte column (16 × 255 fits 16 bits; this
        // vectorises as whole rows), then each block's columns.
        let mut columns = vec![0u16; cols * bytes];
        for (by, acc) in sums.chunks_exact_mut(cols.max(1)).enumerate().take(rows) {
            columns.fill(0);
            for y in by * b..(by + 1) * b {
                for (c, &v) in columns.iter_mut().zip(&raw[y * row..y * row + cols * bytes]) {
                    *c += v as u16;
                }
            }
            for (a, block) in acc.iter_mut().zip(columns.chunks_exact(bytes)) {
                *a = block.iter().map(|&c| c as u32).sum();
            }
        }
        Blocks { size: (w, h), cols, channels, sums }
    }

    /// Whether a block outside every box of `masks` has a mean level more than `threshold`
    /// levels from its mean in `earlier`; always for frames of other sizes or colours.
    pub fn changed(&self, earlier: &Blocks, threshold: f32, masks: &[FaceBox]) -> bool {
        let mut masked = vec![false; self.sums.len()];
        for m in masks {
            self.each_under(m, |i| masked[i] = true);
        }
        self.differs(earlier) || (0..self.sums.len()).any(|i| !masked[i] && self.moved(earlier, threshold, i))
    }

    /// Whether a block under `region` has a mean level more than `threshold` levels from its
    /// mean in `earlier`; always for frames of other sizes or colours.
    pub fn changed_in(&self, earlier: &Blocks, threshold: f32, region: &FaceBox) -> bool {
        if self.differs(earlier) {
            return true;
        }
        let mut moved = false;
        self.each_under(region, |i| moved |= self.moved(earlier, threshold, i));
        moved
    }

    /// Whether each block's mean level is more than `threshold` levels from its mean in
    /// `earlier`; `None` for frames of other sizes or colours.
    pub fn moved_blocks(&self, earlier: &Blocks, threshold: f32) -> Option<Vec<bool>> {
        (!self.differs(earlier)).then(|| (0..self.sums.len()).map(|i| self.moved(earlier, threshold, i)).collect())
    }

    /// These blocks where `moved`, `earlier`'s elsewhere.
    pub fn where_moved(&self, earlier: &Blocks, moved: &[bool]) -> Blocks {
        let sums = self.sums.iter().zip(&earlier.sums).zip(moved).map(|((&now, &then), &m)| if m { now } else { then });
        Blocks { size: self.size, cols: self.cols, channels: self.channels, sums: sums.collect() }
    }

    /// [`Changed`] cells: these blocks, `moved` or not.
    pub fn changed_cells(&self, moved: &[bool]) -> Changed {
        Changed::new(self.size, BLOCK, self.cols, moved)
    }

    /// Frames of other sizes or colours.
    fn differs(&self, earlier: &Blocks) -> bool {
        self.size != earlier.size || self.channels != earlier.channels || self.sums.len() != earlier.sums.len()
    }

    /// Whether block `i`'s mean moved by more than `threshold` levels.
    fn moved(&self, earlier: &Blocks, threshold: f32, i: usize) -> bool {
        self.sums[i].abs_diff(earlier.sums[i]) as f32 > threshold * (BLOCK * BLOCK * self.channels) as f32
    }

    /// Calls `f` with the index of each block that `r` overlaps.
    fn each_under(&self, r: &FaceBox, mut f: impl FnMut(usize)) {
        let rows = self.sums.len() / self.cols.max(1);
        let b = BLOCK as f32;
        let span = |lo: f32, len: f32, n: usize| {
            let first = (lo / b).floor().max(0.0) as usize;
            let end = (((lo + len) / b).ceil().max(0.0) as usize).min(n);
            first..end.max(first)
        };
        for y in span(r.y, r.h, rows) {
            span(r.x, r.w, self.cols).for_each(|x| f(y * self.cols + x));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn blocks(g: GrayImage) -> Blocks {
        Blocks::of(&DynamicImage::ImageLuma8(g))
    }

    #[test]
    fn block_sums_by_hand() {
        // 40×35: two whole blocks a row, two rows (the last 8 columns and 3 rows left out).
        let img = GrayImage::from_fn(40, 35, |x, y| {
            Luma([if x < 16 {
                1
            } else if y < 16 {
                2
            } else {
                (x % 3) as u8
            }])
        });
        let b = blocks(img.clone());
        assert_eq!((b.size, b.cols), ((40, 35), 2));
        // Block (1, 1): columns 16..32, x % 3 = 1, 2, 0, 1, ... : 16, 17, ..., 31 -> 5 zeros,
        // 6 ones (16, 19, .., 31), 5 twos; 16 rows of 6 + 10 = 16.
        assert_eq!(b.sums, [256, 512, 256, 16 * 16]);
        // Any pixels: each block's sum as the pixels' (up to 255 each, no overflow).
        let img = GrayImage::from_fn(100, 70, |x, y| Luma([((x * 37 + y * 91 + x * y) % 256) as u8]));
        let b = blocks(img.clone());
        assert_eq!((b.cols, b.sums.len()), (6, 6 * 4));
        for (i, &sum) in b.sums.iter().enumerate() {
            let (bx, by) = ((i % 6) as u32 * 16, (i / 6) as u32 * 16);
            let direct: u32 = (by..by + 16)
                .flat_map(|y| (bx..bx + 16).map(move |x| (x, y)))
                .map(|(x, y)| img.get_pixel(x, y).0[0] as u32)
                .sum();
            assert_eq!(sum, direct, "block {i}");
        }
        let white = blocks(GrayImage::from_pixel(16, 16, Luma([255])));
        assert_eq!(white.sums, [255 * 256]);
        // A colour frame: each block the sum of its pixels' red, green and blue levels.
        let rgb = RgbImage::from_fn(40, 35, |x, y| Rgb([(x % 7) as u8, (y * 3 % 11) as u8, ((x + y) % 256) as u8]));
        let c = Blocks::of(&DynamicImage::ImageRgb8(rgb.clone()));
        assert_eq!((c.cols, c.channels, c.sums.len()), (2, 3, 4));
        for (i, &sum) in c.sums.iter().enumerate() {
            let (bx, by) = ((i % 2) as u32 * 16, (i / 2) as u32 * 16);
            let pixels = (by..by + 16).flat_map(|y| (bx..bx + 16).map(move |x| (x, y)));
            let direct: u32 = pixels.map(|(x, y)| rgb.get_pixel(x, y).0.iter().map(|&v| v as u32).sum::<u32>()).sum();
            assert_eq!(sum, direct, "block {i}");
        }
        let tiny = blocks(GrayImage::new(15, 40));
        assert_eq!((tiny.cols, tiny.sums.len()), (0, 0));
    }

    #[test]
    fn a_change_counts_outside_the_masks_and_above_the_threshold() {
        let base = GrayImage::from_pixel(64, 48, Luma([100]));
        let before = blocks(base.clone());
        assert!(!before.changed(&before, 0.0, &[]));
        // One block (2, 1) of 4×3 gets 64 of its 256 pixels 20 levels brighter: its mean
        // moves by 5 levels.
        let mut after = base.clone();
        for y in 16..20 {
            for x in 32..48 {
                after.put_pixel(x, y, Luma([120]));
            }
        }
        let after = blocks(after);
        assert!(after.changed(&before, 4.9, &[]));
        assert!(!after.changed(&before, 5.0, &[]), "not more than 5 levels");
        // A box over any part of the block masks it; one beside it does not.
        let over = FaceBox { x: 47.0, y: 31.5, w: 10.0, h: 1.0 };
        assert!(!after.changed(&before, 1.0, &[over]));
        let beside = FaceBox { x: 48.0, y: 0.0, w: 16.0, h: 48.0 };
        assert!(after.changed(&before, 1.0, &[beside]));
        // Boxes partly or wholly off the frame.
        let off = [FaceBox { x: -30.0, y: -30.0, w: 10.0, h: 10.0 }, FaceBox { x: 60.0, y: 40.0, w: 90.0, h: 90.0 }];
        assert!(after.changed(&before, 1.0, &off));
        let around = FaceBox { x: 20.0, y: -10.0, w: 100.0, h: 30.0 };
        assert!(!after.changed(&before, 1.0, &[around]));
        // Only the blocks under a region count for changed_in.
        assert!(after.changed_in(&before, 4.9, &over));
        assert!(!after.changed_in(&before, 5.0, &over));
        assert!(!after.changed_in(&before, 1.0, &beside));
        assert!(!after.changed_in(&before, 1.0, &off[0]));
        // A block of a colour frame whose red levels rise by 15 over the whole block: its mean
        // level by 5.
        let gray_rgb = |r: u8| Blocks::of(&DynamicImage::ImageRgb8(RgbImage::from_pixel(16, 16, Rgb([r, 100, 100]))));
        assert!(gray_rgb(115).changed(&gray_rgb(100), 4.9, &[]));
        assert!(!gray_rgb(115).changed(&gray_rgb(100), 5.0, &[]));
        // Another frame size, or a gray frame after a colour one, is a change.
        assert!(blocks(GrayImage::from_pixel(16, 16, Luma([100]))).changed(&gray_rgb(100), 255.0, &[]));
        let smaller = blocks(GrayImage::from_pixel(64, 32, Luma([100])));
        assert!(smaller.changed(&before, 255.0, &[]));
        assert!(smaller.changed_in(&before, 255.0, &off[0]));
    }
}
