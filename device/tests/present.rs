//! Presenters: whole-screen PNG goldens, the SSD1306's I²C transactions (embedded-hal-mock) and
//! the ST7789's SPI command stream for init and one frame, checked against the controllers'
//! datasheet command sets and an independent packing of the rendered screen; later frames sent
//! as the windows that changed, replayed into a model of each controller's RAM; framebuffer
//! pixel encoding; missing devices fail with their names.
//!
//! Regenerate the goldens after an intended layout change with FER_UPDATE_GOLDEN=1.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use embedded_graphics::pixelcolor::{BinaryColor, Rgb565, Rgb888};
use embedded_graphics::prelude::*;
use fer_core::board::{Rotation, SpiPanelConfig};
use fer_core::preprocess::FaceBox;
use fer_core::Emotion;
use fer_device::present::panels::{
    changed_windows, fb_writes, render, render_mono, render_rgb, Buffer, FbGeometry, FramebufferPresenter,
    SpiPanelPresenter, Ssd1306Presenter,
};
use fer_device::present::screen::Screen;
use fer_device::present::{open_display, Presenter};
use fer_device::track::TrackedFace;

fn faces() -> Vec<TrackedFace> {
    let smoothed = [0.02, 0.01, 0.04, 0.81, 0.03, 0.06, 0.03];
    vec![
        TrackedFace {
            id: 3,
            bbox: FaceBox { x: 10.0, y: 10.0, w: 40.0, h: 40.0 },
            probs: smoothed,
            smoothed,
            label: Emotion::Happy,
            confidence: 0.81,
            uncertain: false,
        },
        TrackedFace {
            id: 4,
            bbox: FaceBox { x: 60.0, y: 10.0, w: 30.0, h: 30.0 },
            probs: [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            smoothed: [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            label: Emotion::Sad,
            confidence: 1.0,
            uncertain: false,
        },
    ]
}

/// A synthetic "face": a radial gradient.
fn crop() -> image::GrayImage {
    image::GrayImage::from_fn(48, 48, |x, y| {
        let d = ((x as f32 - 24.0).powi(2) + (y as f32 - 24.0).powi(2)).sqrt();
        image::Luma([(255.0 - d * 7.0).max(0.0) as u8])
    })
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn check_golden(name: &str, got: &image::RgbImage) {
    let path = golden(name);
    if std::env::var_os("FER_UPDATE_GOLDEN").is_some() {
        got.save(&path).unwrap();
    }
    let want = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    assert_eq!(want.dimensions(), got.dimensions(), "{name}");
    let differing = want.pixels().zip(got.pixels()).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{name}: {differing} pixels differ from the golden");
}

#[test]
fn whole_screens_match_their_goldens() {
    let c = crop();
    let mono = render_mono(Size::new(128, 64), &Screen::frame(&faces(), Some(&c), 12.4));
    check_golden("screen-ssd1306-128x64.png", &image::DynamicImage::ImageLuma8(mono).to_rgb8());
    let short = render_mono(Size::new(128, 32), &Screen::frame(&faces()[..1], None, 30.0));
    check_golden("screen-ssd1306-128x32.png", &image::DynamicImage::ImageLuma8(short).to_rgb8());
    check_golden(
        "screen-st7789-240x240.png",
        &render_rgb(Size::new(240, 240), &Screen::frame(&faces(), Some(&c), 24.5)),
    );
    check_golden("screen-ili9341-320x240.png", &render_rgb(Size::new(320, 240), &Screen::frame(&[], None, 9.0)));
}

#[test]
fn status_screens_show_the_message_alone() {
    // What a panel shows when the results would be stale: no face, bars, crop or frame rate.
    let mono = |s: &Screen| image::DynamicImage::ImageLuma8(render_mono(Size::new(128, 64), s)).to_rgb8();
    check_golden("screen-ssd1306-stopped.png", &mono(&Screen::status("stopped")));
    check_golden("screen-ssd1306-no-frames.png", &mono(&Screen::status("no frames")));
    check_golden("screen-st7789-no-frames.png", &render_rgb(Size::new(240, 240), &Screen::status("no frames")));
    // Start-up failures (run shows them before it exits: a board has no terminal to read).
    check_golden("screen-ssd1306-no-camera.png", &mono(&Screen::status("no camera")));
    check_golden("screen-st7789-no-camera.png", &render_rgb(Size::new(240, 240), &Screen::status("no camera")));
    check_golden("screen-st7789-no-input.png", &render_rgb(Size::new(240, 240), &Screen::status("no input")));
    // A status replaces the results even when faces are given (they are stale).
    let (c, f) = (crop(), faces());
    let stale = Screen { status: Some("stopped"), ..Screen::frame(&f, Some(&c), 12.0) };
    assert_eq!(mono(&stale), mono(&Screen::status("stopped")));
}

/// SSD1306 page layout (datasheet §8.7): byte (page p, column x) holds rows 8p..8p+7, LSB on top.
fn pack_pages(img: &image::GrayImage) -> Vec<u8> {
    let mut out = Vec::new();
    for page in 0..img.height() / 8 {
        for x in 0..img.width() {
            out.push((0..8).fold(0u8, |b, bit| b | (((img.get_pixel(x, page * 8 + bit)[0] > 127) as u8) << bit)));
        }
    }
    out
}

#[test]
fn ssd1306_init_and_frame_on_the_i2c_bus() {
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};
    let a = 0x3C;
    // Control byte 0x00 = commands follow (datasheet §8.1.5); the init sequence by name.
    let cmd = |bytes: &[u8]| Transaction::write(a, [&[0x00], bytes].concat());
    let mut expected = vec![
        cmd(&[0xAE]),       // display off
        cmd(&[0xD5, 0x80]), // clock divide ratio / oscillator frequency
        cmd(&[0xA8, 0x3F]), // multiplex ratio 64
        cmd(&[0xD3, 0x00]), // display offset 0
        cmd(&[0x40]),       // start line 0
        cmd(&[0x8D, 0x14]), // charge pump on
        cmd(&[0x20, 0x00]), // horizontal addressing mode
        cmd(&[0xDA, 0x12]), // COM pins: alternative, no remap (128x64)
        cmd(&[0xA1]),       // segment remap (column 127 -> SEG0)
        cmd(&[0xC8]),       // COM scan direction remapped
        cmd(&[0xD9, 0x21]), // pre-charge period
        cmd(&[0x81, 0x5F]), // contrast
        cmd(&[0xDB, 0x40]), // VCOMH deselect level
        cmd(&[0xA4]),       // display follows RAM
        cmd(&[0xA6]),       // normal (not inverted)
        cmd(&[0x2E]),       // scrolling off
        cmd(&[0xAF]),       // display on
    ];
    // One frame: column window 0..127, page window 0..7, then the 1024 bytes of RAM in
    // 16-byte writes after control byte 0x40 (data).
    let c = crop();
    let screen = render_mono(Size::new(128, 64), &Screen::frame(&faces(), Some(&c), 12.0));
    expected.push(cmd(&[0x21, 0, 127]));
    expected.push(cmd(&[0x22, 0, 7]));
    for chunk in pack_pages(&screen).chunks(16) {
        expected.push(Transaction::write(a, [&[0x40], chunk].concat()));
    }
    let bus = Mock::new(&expected);
    let mut p = Ssd1306Presenter::new(bus, a, 64, Rotation::Deg0, "mock-i2c").unwrap();
    p.show(&Screen::frame(&faces(), Some(&c), 12.0)).unwrap();
    p.release().done();
}

/// `(is_data, bytes)` of one SPI write.
type Write = (bool, Vec<u8>);

/// SPI bus + D/C pin that record every write with the D/C level: `(dc level, writes)`.
#[derive(Clone, Default)]
struct Wire(Rc<RefCell<(bool, Vec<Write>)>>);

impl embedded_hal::spi::ErrorType for Wire {
    type Error = std::convert::Infallible;
}
impl embedded_hal::spi::SpiDevice for Wire {
    fn transaction(&mut self, ops: &mut [embedded_hal::spi::Operation<'_, u8>]) -> Result<(), Self::Error> {
        let mut w = self.0.borrow_mut();
        let dc = w.0;
        for op in ops.iter() {
            if let embedded_hal::spi::Operation::Write(b) = op {
                w.1.push((dc, b.to_vec()));
            }
        }
        Ok(())
    }
}
struct DcPin(Wire);
impl embedded_hal::digital::ErrorType for DcPin {
    type Error = std::convert::Infallible;
}
impl embedded_hal::digital::OutputPin for DcPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.0 .0.borrow_mut().0 = false;
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.0 .0.borrow_mut().0 = true;
        Ok(())
    }
}
struct NoDelay;
impl embedded_hal::delay::DelayNs for NoDelay {
    fn delay_ns(&mut self, _: u32) {}
}

/// Groups a recorded stream into `(command, parameter bytes)`.
fn commands(stream: &[Write]) -> Vec<(u8, Vec<u8>)> {
    let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
    for (is_data, bytes) in stream {
        if *is_data {
            out.last_mut().expect("data before any command").1.extend_from_slice(bytes);
        } else {
            out.extend(bytes.iter().map(|c| (*c, Vec::new())));
        }
    }
    out
}

/// A 240×240 ST7789 on mock devices, unrotated.
fn st7789_240(invert_colors: bool) -> SpiPanelConfig {
    SpiPanelConfig {
        spi: "mock".into(),
        spi_hz: 32_000_000,
        gpio_chip: "mock".into(),
        dc_pin: 25,
        reset_pin: None,
        backlight_pin: None,
        width: 240,
        height: 240,
        rotation: Rotation::Deg0,
        invert_colors,
    }
}

/// An ST7789 240x240 presenter on the recorded `wire` (`buffer`: mipidsi's SPI batch buffer).
fn st7789_on<'b>(wire: &Wire, buffer: &'b mut [u8; 512], invert_colors: bool) -> impl Presenter + 'b {
    let di = mipidsi::interface::SpiInterface::new(wire.clone(), DcPin(wire.clone()), buffer);
    let builder = mipidsi::Builder::new(mipidsi::models::ST7789, di);
    SpiPanelPresenter::new(builder, &st7789_240(invert_colors), &mut NoDelay, "mock-spi").unwrap()
}

#[test]
fn st7789_init_and_frame_on_the_spi_bus() {
    let wire = Wire::default();
    let mut buffer = [0u8; 512];
    let mut p = st7789_on(&wire, &mut buffer, true);
    let init = commands(&wire.0.borrow().1);
    let names: Vec<u8> = init.iter().map(|c| c.0).collect();
    // ST7789 datasheet §9.1: SWRESET 0x01, SLPOUT 0x11, MADCTL 0x36, COLMOD 0x3A (0x55 = 16 bit
    // RGB565), INVON 0x21 (invert_colors), DISPON 0x29 — in this order.
    let pos = |c: u8| names.iter().position(|n| *n == c).unwrap_or_else(|| panic!("init lacks {c:#04x}: {names:x?}"));
    assert!(pos(0x01) < pos(0x11) && pos(0x11) < pos(0x29), "{names:x?}");
    assert!(pos(0x21) < pos(0x29) && pos(0x36) < pos(0x29), "{names:x?}");
    assert_eq!(init[pos(0x3A)].1, vec![0x55], "COLMOD");

    wire.0.borrow_mut().1.clear();
    let c = crop();
    p.show(&Screen::frame(&faces(), Some(&c), 24.0)).unwrap();
    let frame = commands(&wire.0.borrow().1);
    let names: Vec<u8> = frame.iter().map(|c| c.0).collect();
    assert_eq!(names, vec![0x2A, 0x2B, 0x2C], "CASET, RASET, RAMWR");
    assert_eq!(frame[0].1, vec![0, 0, 0, 239], "columns 0..=239");
    assert_eq!(frame[1].1, vec![0, 0, 0, 239], "rows 0..=239");
    // RAMWR data: the rendered screen, row by row, RGB565 big-endian.
    let screen: fer_device::present::panels::Buffer<Rgb565> =
        render(Size::new(240, 240), &Screen::frame(&faces(), Some(&c), 24.0));
    let want: Vec<u8> = screen.pixels.iter().flat_map(|p| p.into_storage().to_be_bytes()).collect();
    assert_eq!(frame[2].1.len(), want.len());
    assert!(frame[2].1 == want, "RAMWR pixels differ from the rendered screen");
    // And the screen is not blank: the happy bar is drawn in its colour.
    let happy = Rgb565::from(Rgb888::new(250, 200, 30));
    assert!(screen.pixels.iter().filter(|p| **p == happy).count() > 500);
}

#[test]
fn framebuffer_pixels_are_encoded_per_depth() {
    let mut img = Buffer::new(Size::new(2, 1), Rgb888::BLACK);
    img.pixels = vec![Rgb888::RED, Rgb888::BLUE];
    // RGB565: red = 0xF800, blue = 0x001F, little-endian.
    let g = FbGeometry { width: 2, height: 1, bits_per_pixel: 16, line_length: 8 };
    assert_eq!(fb_writes(&img, None, &g).unwrap(), [(0, vec![0x00, 0xF8, 0x1F, 0x00])]);
    // XRGB8888: bytes B, G, R, X.
    let g = FbGeometry { width: 2, height: 1, bits_per_pixel: 32, line_length: 8 };
    assert_eq!(fb_writes(&img, None, &g).unwrap(), [(0, vec![0, 0, 255, 255, 255, 0, 0, 255])]);
    let g = FbGeometry { width: 2, height: 1, bits_per_pixel: 24, line_length: 6 };
    assert!(fb_writes(&img, None, &g).unwrap_err().contains("24 bits"));
}

#[test]
fn framebuffer_writes_leave_the_console_beside_the_screen_alone() {
    // A 640x400 XRGB8888 framebuffer (rows of 2600 bytes, padded) holding a console (0x77); the
    // 480x320 screen is written at its top-left corner, then only what changed.
    let g = FbGeometry { width: 640, height: 400, bits_per_pixel: 32, line_length: 2600 };
    let mut fb = vec![0x77u8; 2600 * 400];
    let apply = |fb: &mut Vec<u8>, writes: Vec<(u64, Vec<u8>)>| {
        let n = writes.iter().map(|w| w.1.len()).sum::<usize>();
        for (at, bytes) in writes {
            fb[at as usize..at as usize + bytes.len()].copy_from_slice(&bytes);
        }
        n
    };
    let (c, f) = (crop(), faces());
    let size = Size::new(480, 320);
    let mut shown: Option<Buffer<Rgb888>> = None;
    let mut sent = Vec::new();
    for s in [Screen::frame(&f, Some(&c), 24.0), Screen::frame(&f, Some(&c), 25.0), Screen::frame(&f, Some(&c), 25.0)] {
        let new: Buffer<Rgb888> = render(size, &s);
        sent.push(apply(&mut fb, fb_writes(&new, shown.as_ref(), &g).unwrap()));
        let img = render_rgb(size, &s);
        for y in 0..400 {
            for x in 0..650 {
                let at = (y * 2600 + x * 4) as usize;
                let want = match img.get_pixel_checked(x, y) {
                    Some(p) => [p[2], p[1], p[0], 0xff],
                    None => [0x77; 4],
                };
                assert_eq!(fb[at..at + 4], want, "({x}, {y}) after {} screens", sent.len());
            }
        }
        shown = Some(new);
    }
    eprintln!("framebuffer bytes a screen: {sent:?}");
    assert_eq!(sent[0], 480 * 320 * 4);
    assert!(sent[1] > 0 && sent[1] * 100 < sent[0], "a new frame rate: {} bytes", sent[1]);
    assert_eq!(sent[2], 0);
}

#[test]
fn missing_devices_are_named_in_the_error() {
    let err = FramebufferPresenter::open("/dev/fb-missing-9").err().unwrap().to_string();
    assert!(err.contains("/dev/fb-missing-9"), "{err}");
    let cfg = fer_core::board::DisplayConfig::Ssd1306 {
        i2c_bus: "/dev/i2c-missing-9".into(),
        address: 0x3C,
        height: 64,
        rotation: Rotation::Deg0,
    };
    let err = open_display(&cfg).err().unwrap().to_string();
    assert!(err.contains("/dev/i2c-missing-9"), "{err}");
    // A regular file is not a framebuffer: the ioctl fails and says so.
    let f = std::env::temp_dir().join(format!("fer-not-fb-{}", std::process::id()));
    std::fs::write(&f, b"x").unwrap();
    let err = FramebufferPresenter::open(f.to_str().unwrap()).err().unwrap().to_string();
    assert!(err.contains("not a framebuffer"), "{err}");
    std::fs::remove_file(&f).unwrap();
}

#[test]
fn changed_windows_by_hand() {
    let at = |changes: &[(usize, usize)]| {
        let mut b = Buffer::new(Size::new(10, 14), BinaryColor::Off);
        for &(x, y) in changes {
            b.pixels[y * 10 + x] = BinaryColor::On;
        }
        b
    };
    let old = at(&[]);
    assert_eq!(changed_windows(&old, None), [(0, 0, 9, 13)], "the first screen whole");
    assert_eq!(changed_windows(&old, Some(&old)), [], "nothing changed");
    // Rows 1 and 2: one window over both rows' changed columns. Row 6: three unchanged rows
    // before it, a window of its own, joined by row 9 (two unchanged rows between: WINDOW_GAP).
    // Row 13: three unchanged rows before it again.
    let new = at(&[(2, 1), (5, 2), (4, 6), (6, 9), (9, 13)]);
    assert_eq!(changed_windows(&new, Some(&old)), [(2, 1, 5, 2), (4, 6, 6, 9), (9, 13, 9, 13)]);
    // A screen of another size is sent whole.
    assert_eq!(changed_windows(&new, Some(&Buffer::new(Size::new(10, 6), BinaryColor::Off))), [(0, 0, 9, 13)]);
}

/// Replays an ST7789 command stream into a model of its frame memory (`w` pixels a row): CASET
/// and RASET set the window, RAMWR fills it row by row (datasheet §8.4, §9.1.20-22); returns the
/// RAMWR bytes.
fn st7789_replay(stream: &[(u8, Vec<u8>)], ram: &mut [u16], w: usize) -> usize {
    let (mut cols, mut rows, mut bytes) = ((0, 0), (0, 0), 0);
    let pair = |d: &[u8]| (u16::from_be_bytes([d[0], d[1]]) as usize, u16::from_be_bytes([d[2], d[3]]) as usize);
    for (c, data) in stream {
        match c {
            0x2A => cols = pair(data),
            0x2B => rows = pair(data),
            0x2C => {
                let window = (rows.0..=rows.1).flat_map(|y| (cols.0..=cols.1).map(move |x| y * w + x));
                for (i, px) in window.zip(data.chunks_exact(2)) {
                    ram[i] = u16::from_be_bytes([px[0], px[1]]);
                }
                assert_eq!(data.len(), 2 * (rows.1 - rows.0 + 1) * (cols.1 - cols.0 + 1), "RAMWR fills its window");
                bytes += data.len();
            }
            other => panic!("unexpected command {other:#04x} in a frame"),
        }
    }
    bytes
}

#[test]
fn st7789_sends_only_what_changed() {
    let wire = Wire::default();
    let mut buffer = [0u8; 512];
    let mut p = st7789_on(&wire, &mut buffer, false);
    let mut ram = vec![0xAAAA; 240 * 240];
    let (c, f) = (crop(), faces());
    let mut moved = faces();
    moved[0].smoothed[3] = 0.6;
    moved[0].confidence = 0.6;
    let screens = [
        Screen::frame(&f, Some(&c), 24.0),
        Screen::frame(&f, Some(&c), 24.0),
        Screen::frame(&f, Some(&c), 25.0),
        Screen::frame(&moved, Some(&c), 25.0),
        Screen::status("no input"),
    ];
    let mut sent = Vec::new();
    for s in &screens {
        wire.0.borrow_mut().1.clear();
        p.show(s).unwrap();
        sent.push(st7789_replay(&commands(&wire.0.borrow().1), &mut ram, 240));
        let want: Buffer<Rgb565> = render(Size::new(240, 240), s);
        let want: Vec<u16> = want.pixels.iter().map(|p| p.into_storage()).collect();
        assert!(ram == want, "the panel does not show the screen after {} frames", sent.len());
    }
    eprintln!("ST7789 RAMWR bytes a screen: {sent:?}");
    let whole = 240 * 240 * 2;
    assert_eq!(sent[..2], [whole, 0], "the first screen whole, the same one again nothing");
    assert!(sent[2] > 0 && sent[2] * 50 < whole, "a new frame rate: {} bytes", sent[2]);
    assert!(sent[3] > sent[2] && sent[3] < whole, "other bars: {} bytes", sent[3]);
}

/// I²C writes of a bus, recorded (shared, so the test reads them while the panel holds the bus).
#[derive(Clone, Default)]
struct I2cLog(Rc<RefCell<Vec<Vec<u8>>>>);
impl embedded_hal::i2c::ErrorType for I2cLog {
    type Error = std::convert::Infallible;
}
impl embedded_hal::i2c::I2c for I2cLog {
    fn transaction(&mut self, _: u8, ops: &mut [embedded_hal::i2c::Operation<'_>]) -> Result<(), Self::Error> {
        for op in ops.iter() {
            if let embedded_hal::i2c::Operation::Write(b) = op {
                self.0.borrow_mut().push(b.to_vec());
            }
        }
        Ok(())
    }
}

/// Replays SSD1306 writes into a model of its RAM (128 columns × 8 pages, horizontal
/// addressing: datasheet §10.1.3-4, 0x21 column and 0x22 page windows); returns the data bytes.
fn ssd1306_replay(writes: &[Vec<u8>], ram: &mut [u8]) -> usize {
    let (mut cols, mut pages, mut at, mut bytes) = ((0, 127), (0, 7), (0, 0), 0);
    for w in writes {
        match w.as_slice() {
            [0x00, 0x21, a, b] => (cols, at.0) = ((*a as usize, *b as usize), *a as usize),
            [0x00, 0x22, a, b] => (pages, at.1) = ((*a as usize, *b as usize), *a as usize),
            [0x40, data @ ..] => {
                for &d in data {
                    ram[at.1 * 128 + at.0] = d;
                    bytes += 1;
                    at.0 += 1;
                    if at.0 > cols.1 {
                        at = (cols.0, if at.1 >= pages.1 { pages.0 } else { at.1 + 1 });
                    }
                }
            }
            other => panic!("unexpected write {other:x?} in a frame"),
        }
    }
    bytes
}

#[test]
fn ssd1306_sends_only_what_changed() {
    let log = I2cLog::default();
    let mut p = Ssd1306Presenter::new(log.clone(), 0x3C, 64, Rotation::Deg0, "mock-i2c").unwrap();
    let mut ram = vec![0x55; 1024];
    let (c, f) = (crop(), faces());
    let screens = [
        Screen::frame(&f, Some(&c), 12.0),
        Screen::frame(&f, Some(&c), 12.0),
        Screen::frame(&f, Some(&c), 13.0),
        Screen::status("stopped"),
    ];
    let mut sent = Vec::new();
    for s in &screens {
        log.0.borrow_mut().clear();
        p.show(s).unwrap();
        sent.push(ssd1306_replay(&log.0.borrow(), &mut ram));
        let want = pack_pages(&render_mono(Size::new(128, 64), s));
        assert!(ram == want, "the panel does not show the screen after {} frames", sent.len());
    }
    eprintln!("SSD1306 data bytes a screen: {sent:?}");
    assert_eq!(sent[..2], [1024, 0], "the first screen whole, the same one again nothing");
    assert!(sent[2] > 0 && sent[2] * 10 < 1024, "a new frame rate: {} bytes", sent[2]);
    assert!(sent[3] > sent[2], "a status screen: {} bytes", sent[3]);
}
