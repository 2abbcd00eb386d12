//! Presenters: where the screen goes. Every one renders [`draw_screen`] and pushes it out:
//! a PNG file per frame (what the panel would show), an SSD1306 OLED over I²C, an ST7789 /
//! ILI9341 TFT over SPI (mipidsi), or a Linux framebuffer. The panel drivers are generic over
//! embedded-hal buses, so tests drive them through `embedded-hal-mock`; the `open` constructors
//! bind them to Linux devices (`/dev/i2c-*`, `/dev/spidev*`, `/dev/gpiochip*`, `/dev/fb*`) and
//! fail with the device's name when it is missing.

use std::path::{Path, PathBuf};

use embedded_graphics::pixelcolor::{BinaryColor, Rgb565, Rgb888};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use fer_core::board::{DisplayConfig, Rotation, SpiPanelConfig};
use image::GrayImage;

use super::screen::{draw_screen, Screen, ScreenColor};

/// Why a display could not be opened or updated.
#[derive(Debug, thiserror::Error)]
pub enum PresentError {
    #[error("{device}: {message}")]
    Open { device: String, message: String },
    #[error("{device}: {message}")]
    Write { device: String, message: String },
}

/// Something that shows the screen of each processed frame.
pub trait Presenter {
    /// Shows one screen: a frame's faces (the main face's gray crop, the frame rate), or a
    /// status ([`Screen::status`]).
    fn show(&mut self, s: &Screen) -> Result<(), PresentError>;
    /// For logs: what and where.
    fn describe(&self) -> String;
    /// For the end of a run: anything worth reporting about the screens shown (none by default).
    fn summary(&self) -> Option<String> {
        None
    }
}

/// An in-memory frame buffer of any colour type (rendered once, then sent in one transfer).
pub struct Buffer<C> {
    pub size: Size,
    pub pixels: Vec<C>,
}

impl<C: PixelColor> Buffer<C> {
    pub fn new(size: Size, fill: C) -> Self {
        Buffer { size, pixels: vec![fill; (size.width * size.height) as usize] }
    }
}

impl<C> Buffer<C> {
    /// The pixels of the window `(x0, y0, x1, y1)` (inclusive), a row at a time.
    pub fn window_rows(&self, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> impl Iterator<Item = &[C]> {
        let w = self.size.width as usize;
        (y0 as usize..=y1 as usize).map(move |y| &self.pixels[y * w + x0 as usize..=y * w + x1 as usize])
    }
}

impl<C: PixelColor> OriginDimensions for Buffer<C> {
    fn size(&self) -> Size {
        self.size
    }
}

impl<C: PixelColor> DrawTarget for Buffer<C> {
    type Color = C;
    type Error = std::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<C>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        let (w, h) = (self.size.width as i32, self.size.height as i32);
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && p.x < w && p.y < h {
                self.pixels[(p.y * w + p.x) as usize] = c;
            }
        }
        Ok(())
    }

    // Rectangles a row slice at a time (the defaults go through `draw_iter` a pixel at a time).

    fn fill_contiguous<I: IntoIterator<Item = C>>(&mut self, area: &Rectangle, colors: I) -> Result<(), Self::Error> {
        let Some(rows) = area_rows(self.size, area, false) else {
            // Partly off the buffer: the default, which skips the colours of pixels off it.
            return self.draw_iter(area.points().zip(colors).map(|(p, c)| Pixel(p, c)));
        };
        let mut colors = colors.into_iter();
        for row in rows {
            for (p, c) in self.pixels[row].iter_mut().zip(colors.by_ref()) {
                *p = c;
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: C) -> Result<(), Self::Error> {
        for row in area_rows(self.size, area, true).into_iter().flatten() {
            self.pixels[row].fill(color);
        }
        Ok(())
    }

    fn clear(&mut self, color: C) -> Result<(), Self::Error> {
        self.pixels.fill(color);
        Ok(())
    }
}

/// The pixel index ranges of `area`'s rows in a row-major `size` image, clipped to it (`clip`),
/// or `None` if (without `clip`) some of `area` lies off it.
pub(crate) fn area_rows(
    size: Size,
    area: &Rectangle,
    clip: bool,
) -> Option<impl Iterator<Item = std::ops::Range<usize>>> {
    let on = area.intersection(&Rectangle::new(Point::zero(), size));
    if !clip && on.size != area.size {
        return None;
    }
    let w = size.width as usize;
    let (x0, y0) = (on.top_left.x as usize, on.top_left.y as usize);
    let (cols, rows) = (on.size.width as usize, on.size.height as usize);
    Some((y0..y0 + rows).map(move |y| y * w + x0..y * w + x0 + cols))
}

/// Renders a screen of `size` into a buffer.
pub fn render<C: ScreenColor>(size: Size, s: &Screen) -> Buffer<C> {
    let mut b = Buffer::new(size, C::background());
    draw_screen(&mut b, s).expect("drawing into memory cannot fail");
    b
}

/// What a panel shows (the last screen sent) and a spare buffer to render the next into, so that
/// a frame's screen allocates nothing (a 240x240 RGB565 screen is 115 KB; allocating it each
/// frame measured only ~0.01 M of the screen's 1.03 M Cortex-A72 instructions, but each presenter
/// kept the same last-shown / next-goes-whole logic of its own).
pub struct ScreenBuffers<C> {
    shown: Option<Buffer<C>>,
    spare: Option<Buffer<C>>,
}

impl<C> Default for ScreenBuffers<C> {
    fn default() -> Self {
        ScreenBuffers { shown: None, spare: None }
    }
}

impl<C: ScreenColor> ScreenBuffers<C> {
    /// `s` rendered at `size` (into the spare buffer), and the last screen sent, which is
    /// forgotten until [`ScreenBuffers::sent`]: after a failed transfer what the panel shows is
    /// unknown, and the next screen goes whole.
    pub fn next(&mut self, size: Size, s: &Screen) -> (Buffer<C>, Option<Buffer<C>>) {
        let mut b = match self.spare.take() {
            Some(b) if b.size == size => b,
            _ => Buffer::new(size, C::background()),
        };
        draw_screen(&mut b, s).expect("drawing into memory cannot fail");
        (b, self.shown.take())
    }

    /// `new` went to the panel: it is what the panel shows, and `old` the spare.
    pub fn sent(&mut self, new: Buffer<C>, old: Option<Buffer<C>>) {
        self.shown = Some(new);
        self.spare = old;
    }
}

/// A colour screen as an RGB image (PNG snapshots, framebuffer).
pub fn render_rgb(size: Size, s: &Screen) -> image::RgbImage {
    let b: Buffer<Rgb888> = render(size, s);
    let bytes = b.pixels.iter().flat_map(|c| [c.r(), c.g(), c.b()]).collect();
    image::RgbImage::from_raw(size.width, size.height, bytes).expect("3 bytes a pixel")
}

/// A monochrome screen as a black/white image.
pub fn render_mono(size: Size, s: &Screen) -> GrayImage {
    let b: Buffer<BinaryColor> = render(size, s);
    GrayImage::from_fn(size.width, size.height, |x, y| {
        image::Luma([if b.pixels[(y * size.width + x) as usize].is_on() { 255 } else { 0 }])
    })
}

/// Rows of unchanged pixels between two changed ones that [`changed_windows`] sends rather than
/// starting another window (a window costs three commands; a row of 240 RGB565 pixels 480 bytes).
const WINDOW_GAP: usize = 2;

/// The windows of `new` that differ from `old` (what the panel shows), as `(x0, y0, x1, y1)`
/// inclusive: each band of rows with changed pixels (bands fewer than [`WINDOW_GAP`] unchanged
/// rows apart joined), from the first to the last changed column of its rows. The whole of
/// `new` without an `old` of its size; none when nothing changed.
pub fn changed_windows<C: PartialEq>(new: &Buffer<C>, old: Option<&Buffer<C>>) -> Vec<(u32, u32, u32, u32)> {
    let (w, h) = (new.size.width as usize, new.size.height as usize);
    let Some(old) = old.filter(|o| o.size == new.size) else {
        return if w > 0 && h > 0 { vec![(0, 0, w as u32 - 1, h as u32 - 1)] } else { Vec::new() };
    };
    let mut out = Vec::new();
    let mut band: Option<(usize, usize, usize, usize)> = None;
    for (y, (a, b)) in new.pixels.chunks_exact(w).zip(old.pixels.chunks_exact(w)).enumerate() {
        let Some(first) = a.iter().zip(b).position(|(p, q)| p != q) else { continue };
        let last = w - 1 - a.iter().rev().zip(b.iter().rev()).position(|(p, q)| p != q).unwrap_or(0);
        band = match band {
            Some((x0, y0, x1, y1)) if y - y1 <= WINDOW_GAP + 1 => Some((x0.min(first), y0, x1.max(last), y)),
            done => {
                out.extend(done);
                Some((first, y, last, y))
            }
        };
    }
    out.extend(band);
    out.into_iter().map(|(x0, y0, x1, y1)| (x0 as u32, y0 as u32, x1 as u32, y1 as u32)).collect()
}

/// The screens a board's display renders, in memory (for `bench`): each in the panel's pixel
/// type and size, then the windows that differ from the last one ([`changed_windows`]), as the
/// SSD1306, SPI panel and framebuffer presenters do before their bus or file writes.
pub struct PanelScreens {
    size: Size,
    last: Rendered,
    /// The fingerprint of the last screen rendered: one alike is not rendered again, as
    /// [`super::ThreadedPresenter`] does not send it.
    shown: Option<u64>,
}

/// The last screen, in the panel's pixel type.
enum Rendered {
    Mono(ScreenBuffers<BinaryColor>),
    Rgb565(ScreenBuffers<Rgb565>),
    Rgb888(ScreenBuffers<Rgb888>),
}

impl PanelScreens {
    /// For the display of `cfg`: a framebuffer (or none) as a 320x240 RGB888 one.
    pub fn new(cfg: &DisplayConfig) -> PanelScreens {
        let last = match cfg {
            DisplayConfig::Ssd1306 { .. } => Rendered::Mono(ScreenBuffers::default()),
            DisplayConfig::St7789(_) | DisplayConfig::Ili9341(_) => Rendered::Rgb565(ScreenBuffers::default()),
            DisplayConfig::None | DisplayConfig::Framebuffer { .. } => Rendered::Rgb888(ScreenBuffers::default()),
        };
        PanelScreens { size: panel_size(cfg).0, last, shown: None }
    }

    /// Renders `s` and finds the windows that changed: the pixels in them (none for a screen
    /// that looks like the last one: not rendered).
    pub fn render(&mut self, s: &Screen) -> u64 {
        let fingerprint = s.fingerprint();
        if self.shown.replace(fingerprint) == Some(fingerprint) {
            return 0;
        }
        fn next<C: ScreenColor + PartialEq>(size: Size, s: &Screen, screens: &mut ScreenBuffers<C>) -> u64 {
            let (b, old) = screens.next(size, s);
            let windows = changed_windows(&b, old.as_ref());
            screens.sent(b, old);
            windows.iter().map(|w| ((w.2 - w.0 + 1) * (w.3 - w.1 + 1)) as u64).sum()
        }
        match &mut self.last {
            Rendered::Mono(last) => next(self.size, s, last),
            Rendered::Rgb565(last) => next(self.size, s, last),
            Rendered::Rgb888(last) => next(self.size, s, last),
        }
    }

    /// Pixels of a whole screen.
    pub fn pixels(&self) -> u64 {
        self.size.width as u64 * self.size.height as u64
    }
}

/// A `size` panel's screen as an image: black/white for a mono panel, RGB for a colour one.
pub fn render_panel(size: Size, mono: bool, s: &Screen) -> image::DynamicImage {
    if mono {
        image::DynamicImage::ImageLuma8(render_mono(size, s))
    } else {
        image::DynamicImage::ImageRgb8(render_rgb(size, s))
    }
}

/// Writes each screen as `<dir>/screen-NNNNNN.png`, as a `size` panel (mono or colour) shows it.
pub struct PngPresenter {
    dir: PathBuf,
    size: Size,
    mono: bool,
    index: u64,
}

impl PngPresenter {
    pub fn new(dir: &Path, size: Size, mono: bool) -> Result<Self, PresentError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| PresentError::Open { device: dir.display().to_string(), message: e.to_string() })?;
        Ok(PngPresenter { dir: dir.to_path_buf(), size, mono, index: 0 })
    }
}

impl Presenter for PngPresenter {
    fn show(&mut self, s: &Screen) -> Result<(), PresentError> {
        let path = self.dir.join(format!("screen-{:06}.png", self.index));
        self.index += 1;
        render_panel(self.size, self.mono, s)
            .save(&path)
            .map_err(|e| PresentError::Write { device: path.display().to_string(), message: e.to_string() })
    }

    fn describe(&self) -> String {
        format!("PNG screens {}x{} in {}", self.size.width, self.size.height, self.dir.display())
    }
}

// ---------------------------------------------------------------------------------------------
// SSD1306 over I²C

use ssd1306::mode::{BufferedGraphicsMode, DisplayConfig as _};
use ssd1306::prelude::*;
use ssd1306::size::{DisplaySize128x32, DisplaySize128x64};
use ssd1306::{I2CDisplayInterface, Ssd1306};

#[allow(clippy::large_enum_variant)] // one per process; boxing buys nothing
enum Oled<I2C> {
    Tall(Ssd1306<I2CInterface<I2C>, DisplaySize128x64, BufferedGraphicsMode<DisplaySize128x64>>),
    Short(Ssd1306<I2CInterface<I2C>, DisplaySize128x32, BufferedGraphicsMode<DisplaySize128x32>>),
}

/// A 128×64 or 128×32 SSD1306 OLED on an I²C bus. Only what changed since the last screen is
/// sent: the panel's window around the changed pixels (a frame whose faces stayed changes
/// little but its frame rate: tens of bytes instead of 1024 at 400 kHz, ~23 ms).
pub struct Ssd1306Presenter<I2C> {
    oled: Oled<I2C>,
    device: String,
    /// The screen the panel shows, once one was sent whole, and a spare.
    screens: ScreenBuffers<BinaryColor>,
}

fn oled_rotation(r: Rotation) -> DisplayRotation {
    match r {
        Rotation::Deg0 => DisplayRotation::Rotate0,
        Rotation::Deg90 => DisplayRotation::Rotate90,
        Rotation::Deg180 => DisplayRotation::Rotate180,
        Rotation::Deg270 => DisplayRotation::Rotate270,
    }
}

impl<I2C: embedded_hal::i2c::I2c> Ssd1306Presenter<I2C> {
    /// Initialises the panel on `i2c` (`device` names the bus in errors).
    pub fn new(i2c: I2C, address: u8, height: u16, rotation: Rotation, device: &str) -> Result<Self, PresentError> {
        let iface = I2CDisplayInterface::new_custom_address(i2c, address);
        let open = |e: display_interface::DisplayError| PresentError::Open {
            device: format!("{device} (SSD1306 at {address:#04x})"),
            message: format!("initialisation failed: {e:?}"),
        };
        let oled = match height {
            32 => {
                let mut d =
                    Ssd1306::new(iface, DisplaySize128x32, oled_rotation(rotation)).into_buffered_graphics_mode();
                d.init().map_err(open)?;
                Oled::Short(d)
            }
            _ => {
                let mut d =
                    Ssd1306::new(iface, DisplaySize128x64, oled_rotation(rotation)).into_buffered_graphics_mode();
                d.init().map_err(open)?;
                Oled::Tall(d)
            }
        };
        Ok(Ssd1306Presenter {
            oled,
            device: format!("{device} (SSD1306 at {address:#04x})"),
            screens: ScreenBuffers::default(),
        })
    }
}

impl<I2C: embedded_hal::i2c::I2c> Ssd1306Presenter<I2C> {
    /// Gives the bus back (tests check their mock bus with it).
    pub fn release(self) -> I2C {
        match self.oled {
            Oled::Tall(d) => d.release().release(),
            Oled::Short(d) => d.release().release(),
        }
    }
}

impl Ssd1306Presenter<linux_embedded_hal::I2cdev> {
    /// Opens `bus` (e.g. `/dev/i2c-1`) and initialises the panel.
    pub fn open(bus: &str, address: u8, height: u16, rotation: Rotation) -> Result<Self, PresentError> {
        let i2c = linux_embedded_hal::I2cdev::new(bus).map_err(|e| PresentError::Open {
            device: bus.to_string(),
            message: format!("cannot open the I2C bus ({e}); is I2C enabled (raspi-config) and the user in group i2c?"),
        })?;
        Self::new(i2c, address, height, rotation, bus)
    }
}

/// Sets the pixels of `new` that differ from `old` (all of them without an `old` of its size) in
/// `d`'s buffer, whose flush then sends the window around them.
fn draw_changes<D>(d: &mut D, new: &Buffer<BinaryColor>, old: Option<&Buffer<BinaryColor>>) -> Result<(), D::Error>
where
    D: DrawTarget<Color = BinaryColor>,
{
    let w = new.size.width as usize;
    let old = old.filter(|o| o.size == new.size);
    let changed = new.pixels.iter().enumerate().filter(|&(i, p)| old.is_none_or(|o| o.pixels[i] != *p));
    d.draw_iter(changed.map(|(i, &p)| Pixel(Point::new((i % w) as i32, (i / w) as i32), p)))
}

impl<I2C: embedded_hal::i2c::I2c> Presenter for Ssd1306Presenter<I2C> {
    fn show(&mut self, s: &Screen) -> Result<(), PresentError> {
        let size = match &self.oled {
            Oled::Tall(d) => d.size(),
            Oled::Short(d) => d.size(),
        };
        let (new, old) = self.screens.next(size, s);
        let sent = match &mut self.oled {
            Oled::Tall(d) => draw_changes(d, &new, old.as_ref()).and_then(|_| d.flush()),
            Oled::Short(d) => draw_changes(d, &new, old.as_ref()).and_then(|_| d.flush()),
        };
        sent.map_err(|e| PresentError::Write { device: self.device.clone(), message: format!("{e:?}") })?;
        self.screens.sent(new, old);
        Ok(())
    }

    fn describe(&self) -> String {
        self.device.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// ST7789 / ILI9341 over SPI (mipidsi)

use mipidsi::interface::{InterfacePixelFormat, SpiInterface};
use mipidsi::models::{ILI9341Rgb565, Model, ST7789};
use mipidsi::options::{ColorInversion, Orientation, Rotation as PanelRotation};

/// A mipidsi colour panel. The screen is rendered into memory; the first is sent whole, then only
/// the windows that changed ([`changed_windows`]: a frame whose faces stayed changes its frame
/// rate, not 115 200 bytes, ~15 ms at 62.5 MHz).
pub struct SpiPanelPresenter<DI, M, RST>
where
    DI: mipidsi::interface::Interface,
    M: Model,
    M::ColorFormat: InterfacePixelFormat<DI::Word>,
    RST: embedded_hal::digital::OutputPin,
{
    display: mipidsi::Display<DI, M, RST>,
    size: Size,
    device: String,
    /// The screen the panel shows, once one was sent whole, and a spare.
    screens: ScreenBuffers<M::ColorFormat>,
}

fn panel_rotation(r: Rotation) -> PanelRotation {
    match r {
        Rotation::Deg0 => PanelRotation::Deg0,
        Rotation::Deg90 => PanelRotation::Deg90,
        Rotation::Deg180 => PanelRotation::Deg180,
        Rotation::Deg270 => PanelRotation::Deg270,
    }
}

/// Which mipidsi model drives a panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanelKind {
    St7789,
    Ili9341,
}

impl<DI, M, RST> SpiPanelPresenter<DI, M, RST>
where
    DI: mipidsi::interface::Interface<Word = u8>,
    M: Model<ColorFormat = Rgb565>,
    RST: embedded_hal::digital::OutputPin,
{
    /// Initialises the panel `builder` describes (model, interface, reset pin) as `cfg` says
    /// (`device` names it in errors).
    pub fn new(
        builder: mipidsi::Builder<DI, M, RST>,
        cfg: &SpiPanelConfig,
        delay: &mut impl embedded_hal::delay::DelayNs,
        device: &str,
    ) -> Result<Self, PresentError> {
        let inversion = if cfg.invert_colors { ColorInversion::Inverted } else { ColorInversion::Normal };
        let display = builder
            .display_size(cfg.width, cfg.height)
            .orientation(Orientation::new().rotate(panel_rotation(cfg.rotation)))
            .invert_colors(inversion)
            .init(delay)
            .map_err(|e| PresentError::Open {
                device: device.to_string(),
                message: format!("initialisation failed: {e:?}"),
            })?;
        let (w, h) = match cfg.rotation {
            Rotation::Deg90 | Rotation::Deg270 => (cfg.height, cfg.width),
            _ => (cfg.width, cfg.height),
        };
        Ok(SpiPanelPresenter {
            display,
            size: Size::new(w as u32, h as u32),
            device: device.to_string(),
            screens: ScreenBuffers::default(),
        })
    }
}

impl<DI, M, RST> Presenter for SpiPanelPresenter<DI, M, RST>
where
    DI: mipidsi::interface::Interface<Word = u8>,
    M: Model<ColorFormat = Rgb565>,
    RST: embedded_hal::digital::OutputPin,
{
    fn show(&mut self, s: &Screen) -> Result<(), PresentError> {
        let (b, old) = self.screens.next(self.size, s);
        for window @ (x0, y0, x1, y1) in changed_windows(&b, old.as_ref()) {
            let pixels = b.window_rows(window).flatten().copied();
            self.display
                .set_pixels(x0 as u16, y0 as u16, x1 as u16, y1 as u16, pixels)
                .map_err(|e| PresentError::Write { device: self.device.clone(), message: format!("{e:?}") })?;
        }
        self.screens.sent(b, old);
        Ok(())
    }

    fn describe(&self) -> String {
        self.device.clone()
    }
}

/// Opens an SPI panel on Linux: spidev + GPIO character-device pins (DC, optional reset and
/// backlight, which is switched on).
pub fn open_spi_panel(kind: PanelKind, cfg: &SpiPanelConfig) -> Result<Box<dyn Presenter>, PresentError> {
    use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
    use linux_embedded_hal::{CdevPin, Delay, SpidevDevice};
    let open = |device: &str, message: String| PresentError::Open { device: device.to_string(), message };
    let mut spi = SpidevDevice::open(&cfg.spi)
        .map_err(|e| open(&cfg.spi, format!("cannot open the SPI device ({e}); is SPI enabled (raspi-config)?")))?;
    spi.configure(
        &SpidevOptions::new().bits_per_word(8).max_speed_hz(cfg.spi_hz).mode(SpiModeFlags::SPI_MODE_0).build(),
    )
    .map_err(|e| open(&cfg.spi, format!("cannot configure SPI: {e}")))?;
    let mut chip = linux_embedded_hal::gpio_cdev::Chip::new(&cfg.gpio_chip)
        .map_err(|e| open(&cfg.gpio_chip, format!("cannot open the GPIO chip: {e}")))?;
    let mut output = |line: u32, what: &str, high: bool| -> Result<CdevPin, PresentError> {
        let handle = chip
            .get_line(line)
            .and_then(|l| l.request(linux_embedded_hal::gpio_cdev::LineRequestFlags::OUTPUT, high as u8, "fer-device"))
            .map_err(|e| open(&cfg.gpio_chip, format!("GPIO line {line} ({what}): {e}")))?;
        CdevPin::new(handle).map_err(|e| open(&cfg.gpio_chip, format!("GPIO line {line} ({what}): {e}")))
    };
    let dc = output(cfg.dc_pin, "data/command", false)?;
    let reset = cfg.reset_pin.map(|p| output(p, "reset", true)).transpose()?;
    // Backlight on; the line is held (and the light stays on) for the life of the process.
    if let Some(p) = cfg.backlight_pin {
        std::mem::forget(output(p, "backlight", true)?);
    }
    // mipidsi copies pixels through this buffer; the interface needs it for the display's life.
    let buffer: &'static mut [u8] = Box::leak(vec![0u8; 4096].into_boxed_slice());
    let di = SpiInterface::new(spi, dc, buffer);
    let device = format!("{} ({kind:?}, {}x{})", cfg.spi, cfg.width, cfg.height);
    let mut delay = Delay;
    use mipidsi::Builder;
    let d = &mut delay;
    Ok(match (kind, reset) {
        (PanelKind::St7789, Some(r)) => {
            Box::new(SpiPanelPresenter::new(Builder::new(ST7789, di).reset_pin(r), cfg, d, &device)?)
        }
        (PanelKind::St7789, None) => Box::new(SpiPanelPresenter::new(Builder::new(ST7789, di), cfg, d, &device)?),
        (PanelKind::Ili9341, Some(r)) => {
            Box::new(SpiPanelPresenter::new(Builder::new(ILI9341Rgb565, di).reset_pin(r), cfg, d, &device)?)
        }
        (PanelKind::Ili9341, None) => {
            Box::new(SpiPanelPresenter::new(Builder::new(ILI9341Rgb565, di), cfg, d, &device)?)
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Linux framebuffer

/// The parts of `fb_var_screeninfo` / `fb_fix_screeninfo` the presenter needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbGeometry {
    pub width: u32,
    pub height: u32,
    pub bits_per_pixel: u32,
    /// Bytes per row.
    pub line_length: u32,
}

/// The writes that change a framebuffer of geometry `g` showing `old` (from its top-left
/// corner) to show `new`: for each row of each window that changed ([`changed_windows`]; all of
/// `new` without an `old`), the byte offset of its first pixel and the pixels, RGB565
/// little-endian or XRGB8888. The rest of each row (the console beside the screen) is left alone.
pub fn fb_writes(
    new: &Buffer<Rgb888>,
    old: Option<&Buffer<Rgb888>>,
    g: &FbGeometry,
) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let bpp = match g.bits_per_pixel {
        16 => 2,
        32 => 4,
        b => return Err(format!("{b} bits per pixel is not supported (16 or 32)")),
    };
    let mut out = Vec::new();
    for (x0, y0, x1, y1) in changed_windows(new, old) {
        // The part inside the framebuffer.
        let (x1, y1) = (x1.min(g.width.saturating_sub(1)), y1.min(g.height.saturating_sub(1)));
        if x0 > x1 || y0 > y1 {
            continue;
        }
        for (y, row) in (y0..).zip(new.window_rows((x0, y0, x1, y1))) {
            let mut bytes = Vec::with_capacity(row.len() * bpp as usize);
            for p in row {
                if bpp == 2 {
                    bytes.extend_from_slice(&Rgb565::from(*p).into_storage().to_le_bytes());
                } else {
                    bytes.extend_from_slice(&[p.b(), p.g(), p.r(), 0xff]);
                }
            }
            out.push((y as u64 * g.line_length as u64 + (x0 * bpp) as u64, bytes));
        }
    }
    Ok(out)
}

/// A Linux framebuffer device (`/dev/fb0`: HDMI, DSI or an fbtft panel).
pub struct FramebufferPresenter {
    file: std::fs::File,
    geometry: FbGeometry,
    device: String,
    /// The screen the framebuffer shows, once one was written whole, and a spare.
    screens: ScreenBuffers<Rgb888>,
}

impl FramebufferPresenter {
    pub fn open(device: &str) -> Result<Self, PresentError> {
        let open = |message: String| PresentError::Open { device: device.to_string(), message };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(device)
            .map_err(|e| open(format!("cannot open the framebuffer ({e}); is the user in group video?")))?;
        let geometry = fb_geometry(&file).map_err(|e| open(format!("not a framebuffer: {e}")))?;
        if !matches!(geometry.bits_per_pixel, 16 | 32) {
            return Err(open(format!("{} bits per pixel is not supported (16 or 32)", geometry.bits_per_pixel)));
        }
        Ok(FramebufferPresenter { file, geometry, device: device.to_string(), screens: ScreenBuffers::default() })
    }
}

/// Reads the geometry with the FBIOGET_VSCREENINFO / FBIOGET_FSCREENINFO ioctls.
fn fb_geometry(file: &std::fs::File) -> std::io::Result<FbGeometry> {
    use std::os::fd::AsRawFd;
    const FBIOGET_VSCREENINFO: libc::c_ulong = 0x4600;
    const FBIOGET_FSCREENINFO: libc::c_ulong = 0x4602;
    // fb_var_screeninfo is 160 bytes of u32s: xres, yres, xres_virtual, yres_virtual, xoffset,
    // yoffset, bits_per_pixel, ...; fb_fix_screeninfo holds line_length after id[16],
    // smem_start (unsigned long), smem_len, type, type_aux, visual, xpanstep, ypanstep, ywrapstep.
    let mut var = [0u32; 40];
    let mut fix = [0u8; 128];
    let fd = file.as_raw_fd();
    // SAFETY: both buffers are larger than the kernel structures the ioctls fill.
    unsafe {
        if libc::ioctl(fd, FBIOGET_VSCREENINFO as _, var.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::ioctl(fd, FBIOGET_FSCREENINFO as _, fix.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    let ulong = std::mem::size_of::<libc::c_ulong>();
    let at = 16 + ulong + 4 * 4 + 2 * 3;
    // line_length is 4-byte aligned after three u16 fields.
    let at = at.next_multiple_of(4);
    let line_length = u32::from_ne_bytes(fix[at..at + 4].try_into().expect("4 bytes"));
    Ok(FbGeometry { width: var[0], height: var[1], bits_per_pixel: var[6], line_length })
}

impl Presenter for FramebufferPresenter {
    fn show(&mut self, s: &Screen) -> Result<(), PresentError> {
        use std::os::unix::fs::FileExt;
        let g = self.geometry;
        // Draw at most 480×320 (a screen-sized overlay; the rest of the console is left alone),
        // then only what changed.
        let (new, old) = self.screens.next(Size::new(g.width.min(480), g.height.min(320)), s);
        let err = |message: String| PresentError::Write { device: self.device.clone(), message };
        for (at, bytes) in fb_writes(&new, old.as_ref(), &g).map_err(err)? {
            self.file.write_all_at(&bytes, at).map_err(|e| err(e.to_string()))?;
        }
        self.screens.sent(new, old);
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "{} ({}x{}, {} bpp)",
            self.device, self.geometry.width, self.geometry.height, self.geometry.bits_per_pixel
        )
    }
}

/// Opens the display a board config names (`None` for `kind = "none"`).
pub fn open_display(cfg: &DisplayConfig) -> Result<Option<Box<dyn Presenter>>, PresentError> {
    Ok(match cfg {
        DisplayConfig::None => None,
        DisplayConfig::Ssd1306 { i2c_bus, address, height, rotation } => {
            Some(Box::new(Ssd1306Presenter::open(i2c_bus, *address, *height, *rotation)?))
        }
        DisplayConfig::St7789(p) => Some(open_spi_panel(PanelKind::St7789, p)?),
        DisplayConfig::Ili9341(p) => Some(open_spi_panel(PanelKind::Ili9341, p)?),
        DisplayConfig::Framebuffer { device } => Some(Box::new(FramebufferPresenter::open(device)?)),
    })
}

/// The size and colour depth of a configured panel (for PNG previews of it).
pub fn panel_size(cfg: &DisplayConfig) -> (Size, bool) {
    match cfg {
        DisplayConfig::Ssd1306 { height, .. } => (Size::new(128, *height as u32), true),
        DisplayConfig::St7789(p) | DisplayConfig::Ili9341(p) => match p.rotation {
            Rotation::Deg90 | Rotation::Deg270 => (Size::new(p.height as u32, p.width as u32), false),
            _ => (Size::new(p.width as u32, p.height as u32), false),
        },
        DisplayConfig::None | DisplayConfig::Framebuffer { .. } => (Size::new(320, 240), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};

    /// A buffer drawn a pixel at a time: embedded-graphics' default `fill_solid`,
    /// `fill_contiguous` and `clear`, through `draw_iter`.
    struct PerPixel(Buffer<Rgb565>);
    impl OriginDimensions for PerPixel {
        fn size(&self) -> Size {
            self.0.size
        }
    }
    impl DrawTarget for PerPixel {
        type Color = Rgb565;
        type Error = std::convert::Infallible;
        fn draw_iter<I: IntoIterator<Item = Pixel<Rgb565>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
            self.0.draw_iter(pixels)
        }
    }

    #[test]
    fn buffer_fills_rows_as_the_defaults_fill_pixels() {
        let size = Size::new(40, 30);
        let draw = |d: &mut dyn FnMut(&Rectangle, Option<Rgb565>)| {
            // Inside, across each edge, beyond a corner, off the buffer, empty.
            for (i, (x, y, w, h)) in
                [(3, 4, 10, 5), (-5, 2, 12, 3), (35, 20, 10, 20), (-3, -3, 20, 12), (50, 5, 4, 4), (10, 10, 0, 5)]
                    .into_iter()
                    .enumerate()
            {
                let r = Rectangle::new(Point::new(x, y), Size::new(w, h));
                d(&r, None);
                d(&r, Some(Rgb565::new(i as u8 * 5, 63 - i as u8 * 9, 31 - i as u8 * 4)));
            }
        };
        let mut fast = Buffer::new(size, Rgb565::BLACK);
        let mut slow = PerPixel(Buffer::new(size, Rgb565::BLACK));
        // `None`: a gradient by `fill_contiguous`; `Some(c)`: a `fill_solid` of `c` (after a
        // `clear` the first time).
        let gradient =
            |r: &Rectangle| (0..r.size.width * r.size.height).map(|i| Rgb565::new(i as u8 % 32, i as u8 % 64, 7));
        let mut cleared = false;
        draw(&mut |r, c| {
            if !cleared {
                fast.clear(Rgb565::RED).unwrap();
                slow.clear(Rgb565::RED).unwrap();
                cleared = true;
            }
            match c {
                None => {
                    fast.fill_contiguous(r, gradient(r)).unwrap();
                    slow.fill_contiguous(r, gradient(r)).unwrap();
                }
                Some(c) => {
                    let inner = Rectangle::new(r.top_left + Point::new(1, 1), r.size.saturating_sub(Size::new(2, 2)));
                    fast.fill_solid(&inner, c).unwrap();
                    slow.fill_solid(&inner, c).unwrap();
                    r.into_styled(PrimitiveStyle::with_stroke(c, 1)).draw(&mut fast).unwrap();
                    r.into_styled(PrimitiveStyle::with_stroke(c, 1)).draw(&mut slow).unwrap();
                }
            }
        });
        assert!(fast.pixels.contains(&Rgb565::RED), "some of the clear left");
        assert_eq!(fast.pixels, slow.0.pixels);
        // A whole screen, crop included.
        let crop = GrayImage::from_fn(37, 41, |x, y| image::Luma([(x * 7 + y * 5) as u8]));
        let screen = Screen::frame(&[], Some(&crop), 12.5);
        let mut slow = PerPixel(Buffer::new(Size::new(240, 240), Rgb565::BLACK));
        draw_screen(&mut slow, &screen).unwrap();
        let fast: Buffer<Rgb565> = render(Size::new(240, 240), &screen);
        assert_eq!(fast.pixels, slow.0.pixels);
    }
}
