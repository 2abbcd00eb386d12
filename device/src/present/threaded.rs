//! A presenter on a thread of its own. Pushing a screen to a panel is a bus transfer that the
//! pipeline need not wait for: a full ST7789 240x240 screen is 115,200 bytes, ~15 ms at the
//! Pi's 62.5 MHz SPI clock (ILI9341 320x240: 153,600 bytes, ~20 ms); an SSD1306's 1,024 bytes
//! over 400 kHz I²C ~23 ms — as long as detection and classification of a frame on a Pi 4.
//! [`ThreadedPresenter`] hands each screen to its thread and returns at once; one screen waits
//! at most, and a newer one replaces it, so the panel shows the latest state and never falls
//! behind the camera (replaced screens are counted: [`ThreadedPresenter::skipped`]).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::panels::{PresentError, Presenter};
use super::screen::Screen;
use crate::track::TrackedFace;
use image::GrayImage;

/// A [`Screen`]'s content, owned, to hand to the display thread.
struct OwnedScreen {
    faces: Vec<TrackedFace>,
    crop: Option<GrayImage>,
    fps: f32,
    status: Option<String>,
}

impl OwnedScreen {
    fn new(s: &Screen) -> OwnedScreen {
        OwnedScreen { faces: s.faces.to_vec(), crop: s.crop.cloned(), fps: s.fps, status: s.status.map(str::to_string) }
    }

    fn screen(&self) -> Screen<'_> {
        Screen { faces: &self.faces, crop: self.crop.as_ref(), fps: self.fps, status: self.status.as_deref() }
    }
}

#[derive(Default)]
struct Mailbox {
    waiting: Option<OwnedScreen>,
    /// The first error since the last `show` returned one.
    error: Option<PresentError>,
    skipped: u64,
    stop: bool,
}

type Shared = Arc<(Mutex<Mailbox>, Condvar)>;

/// Shows screens on its own thread (see the module notes). Errors of the display come back
/// from the next [`Presenter::show`]. Dropping it shows the screen still waiting, if any, and
/// joins the thread.
pub struct ThreadedPresenter {
    shared: Shared,
    worker: Option<JoinHandle<()>>,
    description: String,
    /// The fingerprint of the last screen handed to the thread: one alike is not sent again.
    last: Option<u64>,
    /// Screens not sent as they looked like the last one.
    alike: u64,
}

fn lock(m: &Mutex<Mailbox>) -> MutexGuard<'_, Mailbox> {
    // The mailbox holds plain data: a panic elsewhere while it was locked leaves it usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ThreadedPresenter {
    /// Opens a presenter with `open` on a new thread (so it need not be `Send`: bus handles);
    /// `open`'s error is returned here.
    pub fn spawn<E: Send + 'static>(
        open: impl FnOnce() -> Result<Box<dyn Presenter>, E> + Send + 'static,
    ) -> Result<ThreadedPresenter, E> {
        let shared: Shared = Arc::default();
        let theirs = shared.clone();
        let serve = move |mut presenter: Box<dyn Presenter>| {
            let (mailbox, wake) = &*theirs;
            loop {
                let screen = {
                    let mut m = lock(mailbox);
                    while m.waiting.is_none() && !m.stop {
                        m = wake.wait(m).unwrap_or_else(|e| e.into_inner());
                    }
                    match m.waiting.take() {
                        Some(s) => s,
                        None => break,
                    }
                };
                if let Err(e) = presenter.show(&screen.screen()) {
                    lock(mailbox).error.get_or_insert(e);
                }
            }
        };
        let (description, worker) = crate::worker::spawn_opened("display", open, |p| p.describe(), serve)?;
        Ok(ThreadedPresenter { shared, worker: Some(worker), description, last: None, alike: 0 })
    }

    /// Screens replaced by a newer one before the display thread took them.
    pub fn skipped(&self) -> u64 {
        lock(&self.shared.0).skipped
    }
}

impl Presenter for ThreadedPresenter {
    fn show(&mut self, s: &Screen) -> Result<(), PresentError> {
        let (mailbox, wake) = &*self.shared;
        let mut m = lock(mailbox);
        let error = m.error.take();
        // After an error the panel may not show the last screen: this one is sent whatever it shows.
        if error.is_some() {
            self.last = None;
        }
        let fingerprint = s.fingerprint();
        if self.last == Some(fingerprint) {
            self.alike += 1;
        } else {
            self.last = Some(fingerprint);
            if m.waiting.replace(OwnedScreen::new(s)).is_some() {
                m.skipped += 1;
            }
            wake.notify_one();
        }
        error.map_or(Ok(()), Err)
    }

    fn describe(&self) -> String {
        format!("{} (on its own thread)", self.description)
    }

    fn summary(&self) -> Option<String> {
        let skipped = self.skipped();
        let notes = [
            (skipped > 0).then(|| format!("{skipped} screen(s) replaced by a newer one while the display was busy")),
            (self.alike > 0).then(|| format!("{} screen(s) not redrawn, alike the one before", self.alike)),
        ];
        let notes: Vec<String> = notes.into_iter().flatten().collect();
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

impl Drop for ThreadedPresenter {
    fn drop(&mut self) {
        lock(&self.shared.0).stop = true;
        self.shared.1.notify_one();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Records the fps of every screen it shows; blocks in `show` until the test lets it go,
    /// and fails the screens whose fps is negative.
    struct Gated {
        shown: mpsc::Sender<f32>,
        gate: Arc<Mutex<mpsc::Receiver<()>>>,
    }

    impl Presenter for Gated {
        fn show(&mut self, s: &Screen) -> Result<(), PresentError> {
            let fps = s.fps;
            lock_gate(&self.gate).recv().expect("the test holds the gate");
            self.shown.send(fps).unwrap();
            if fps < 0.0 {
                return Err(PresentError::Write { device: "/dev/spidev9.0".into(), message: "bus error".into() });
            }
            Ok(())
        }
        fn describe(&self) -> String {
            "gated".into()
        }
    }

    fn lock_gate(g: &Mutex<mpsc::Receiver<()>>) -> MutexGuard<'_, mpsc::Receiver<()>> {
        g.lock().unwrap()
    }

    fn gated() -> (ThreadedPresenter, mpsc::Receiver<f32>, mpsc::Sender<()>) {
        let (shown_tx, shown) = mpsc::channel();
        let (gate_tx, gate_rx) = mpsc::channel();
        let gate = Arc::new(Mutex::new(gate_rx));
        let p = ThreadedPresenter::spawn(move || {
            Ok::<_, String>(Box::new(Gated { shown: shown_tx, gate }) as Box<dyn Presenter>)
        })
        .unwrap();
        (p, shown, gate_tx)
    }

    #[test]
    fn show_returns_while_the_display_is_busy_and_the_latest_screen_wins() {
        let (mut p, shown, gate) = gated();
        assert_eq!(p.describe(), "gated (on its own thread)");
        // Screen 1 goes to the display thread, which blocks in `show` at the gate.
        p.show(&Screen::frame(&[], None, 1.0)).unwrap();
        while lock(&p.shared.0).waiting.is_some() {
            std::thread::sleep(Duration::from_millis(1));
        }
        // With the display busy, three more screens come: each returns at once, the last wins.
        for fps in [2.0, 3.0, 4.0] {
            p.show(&Screen::frame(&[], None, fps)).unwrap();
        }
        assert_eq!(p.skipped(), 2);
        assert_eq!(p.summary().unwrap(), "2 screen(s) replaced by a newer one while the display was busy");
        gate.send(()).unwrap();
        assert_eq!(shown.recv_timeout(Duration::from_secs(5)).unwrap(), 1.0);
        gate.send(()).unwrap();
        assert_eq!(shown.recv_timeout(Duration::from_secs(5)).unwrap(), 4.0);
        // A screen still waiting when the presenter is dropped is shown before the thread ends.
        p.show(&Screen::frame(&[], None, 5.0)).unwrap();
        gate.send(()).unwrap();
        drop(p);
        assert_eq!(shown.try_recv().unwrap(), 5.0);
        assert!(shown.try_recv().is_err(), "nothing else was shown");
    }

    #[test]
    fn screens_alike_the_last_one_sent_are_not_sent_again() {
        let (mut p, shown, gate) = gated();
        let face = TrackedFace {
            id: 1,
            bbox: fer_core::preprocess::FaceBox { x: 2.0, y: 20.0, w: 10.0, h: 8.0 },
            probs: [0.0; 7],
            smoothed: [0.0; 7],
            label: fer_core::Emotion::Sad,
            confidence: 0.7,
            uncertain: false,
        };
        let crop = GrayImage::from_pixel(4, 4, image::Luma([90]));
        // Each screen, then the display lets it through; `None`: not sent (nothing to let through).
        let mut send = |s: &Screen, want: Option<f32>| {
            p.show(s).unwrap();
            if let Some(fps) = want {
                gate.send(()).unwrap();
                assert_eq!(shown.recv_timeout(Duration::from_secs(5)).unwrap(), fps);
            }
        };
        send(&Screen::frame(&[], None, 30.2), Some(30.2));
        // The rate shown in whole frames a second: 29.8 and 30.4 show as 30, 30.6 as 31.
        send(&Screen::frame(&[], None, 29.8), None);
        send(&Screen::frame(&[], None, 30.4), None);
        send(&Screen::frame(&[], None, 30.6), Some(30.6));
        // A face, its crop, another crop, a message: each is a new screen.
        let faces = std::slice::from_ref(&face);
        send(&Screen::frame(faces, None, 30.6), Some(30.6));
        send(&Screen::frame(faces, Some(&crop), 30.6), Some(30.6));
        send(&Screen::frame(faces, Some(&crop), 30.6), None);
        let other = GrayImage::from_pixel(4, 4, image::Luma([91]));
        send(&Screen::frame(faces, Some(&other), 30.6), Some(30.6));
        let moved = TrackedFace { confidence: 0.71, ..face.clone() };
        send(&Screen::frame(&[moved], Some(&other), 30.6), Some(30.6));
        send(&Screen::status("no frames"), Some(0.0));
        send(&Screen::status("no frames"), None);
        send(&Screen::status("stopped"), Some(0.0));
        assert_eq!(p.summary().unwrap(), "4 screen(s) not redrawn, alike the one before");
        drop(p);
        assert!(shown.try_recv().is_err(), "nothing else was shown");
    }

    /// Fails the screens whose fps is negative; reports every screen it was given.
    struct Failing(mpsc::Sender<f32>);

    impl Presenter for Failing {
        fn show(&mut self, s: &Screen) -> Result<(), PresentError> {
            let fps = s.fps;
            self.0.send(fps).unwrap();
            if fps < 0.0 {
                return Err(PresentError::Write { device: "/dev/spidev9.0".into(), message: "bus error".into() });
            }
            Ok(())
        }
        fn describe(&self) -> String {
            "failing".into()
        }
    }

    /// Until the display thread has recorded an error.
    fn wait_for_error(p: &ThreadedPresenter) {
        while lock(&p.shared.0).error.is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn display_errors_come_back_from_the_next_show_and_opening_errors_at_once() {
        let (tx, shown) = mpsc::channel();
        let mut p =
            ThreadedPresenter::spawn(move || Ok::<_, String>(Box::new(Failing(tx)) as Box<dyn Presenter>)).unwrap();
        p.show(&Screen::frame(&[], None, -1.0)).unwrap();
        assert_eq!(shown.recv_timeout(Duration::from_secs(5)).unwrap(), -1.0);
        wait_for_error(&p);
        let err = p.show(&Screen::frame(&[], None, 1.0)).unwrap_err().to_string();
        assert!(err.contains("/dev/spidev9.0") && err.contains("bus error"), "{err}");
        assert_eq!(shown.recv_timeout(Duration::from_secs(5)).unwrap(), 1.0, "the screen after the error is shown");
        p.show(&Screen::frame(&[], None, 2.0)).unwrap();
        assert_eq!(shown.recv_timeout(Duration::from_secs(5)).unwrap(), 2.0);
        // A screen alike the one that failed is sent again: the one whose show reports the error.
        p.show(&Screen::frame(&[], None, -1.0)).unwrap();
        assert_eq!(shown.recv_timeout(Duration::from_secs(5)).unwrap(), -1.0);
        wait_for_error(&p);
        assert!(p.show(&Screen::frame(&[], None, -1.0)).is_err());
        assert_eq!(shown.recv_timeout(Duration::from_secs(5)).unwrap(), -1.0);
        wait_for_error(&p);
        assert!(p.show(&Screen::frame(&[], None, 2.0)).is_err(), "it failed again");
        drop(p);
        assert_eq!(shown.try_recv().unwrap(), 2.0);
        let e = ThreadedPresenter::spawn(|| Err::<Box<dyn Presenter>, _>("no /dev/spidev0.0".to_string()));
        assert_eq!(e.err().unwrap(), "no /dev/spidev0.0");
    }
}
