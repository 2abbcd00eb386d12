//! Threads that own a device: the device is opened on the thread that serves it, so its handle
//! need not be `Send` (a camera, a display bus), and opening errors still reach the caller.

use std::thread::JoinHandle;

/// Starts a thread that opens something with `open` and then runs `serve` with it. Waits for
/// the opening: returns the opened thing's `describe` and the thread, or `open`'s error (the
/// thread has then ended). `what` names the thread in the panic that a panicking `open` (a bug,
/// not input) turns into here.
pub(crate) fn spawn_opened<T, E: Send + 'static>(
    what: &str,
    open: impl FnOnce() -> Result<T, E> + Send + 'static,
    describe: impl FnOnce(&T) -> String + Send + 'static,
    serve: impl FnOnce(T) + Send + 'static,
) -> Result<(String, JoinHandle<()>), E> {
    let (opened_tx, opened_rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || match open() {
        Ok(t) => {
            let _ = opened_tx.send(Ok(describe(&t)));
            serve(t);
        }
        Err(e) => {
            let _ = opened_tx.send(Err(e));
        }
    });
    match opened_rx.recv() {
        Ok(Ok(description)) => Ok((description, worker)),
        Ok(Err(e)) => {
            let _ = worker.join();
            Err(e)
        }
        Err(_) => panic!("the {what} thread ended while opening"),
    }
}
