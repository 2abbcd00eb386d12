//! A SIGSEGV in this binary reports the test it killed and where, before the process dies as it
//! would have: the tests share a process with libtorch, tract and onnxruntime's callers, and one
//! CI run ended in a bare "signal: 11, SIGSEGV" after 22 of 26 tests (BENCHMARKS.md, CI, session
//! 19). Installed before `main` through `.init_array`.
//!
//! The handler runs on the faulting thread's own stack (no `SA_ONSTACK`): room for the backtrace
//! and its symbols. A stack overflow therefore gets no report (and loses the standard library's
//! "has overflowed its stack" message): the kernel cannot push the handler's frame, and kills the
//! process with SIGSEGV, as before.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// The actions SIGSEGV and SIGBUS had before ours (the default: std installs its own only where
/// none is set, and ours comes first).
static mut PREVIOUS: [std::mem::MaybeUninit<libc::sigaction>; 2] = [std::mem::MaybeUninit::zeroed(); 2];
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];
static REPORTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    if !REPORTED.swap(true, Ordering::SeqCst) {
        // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
        let address = unsafe { (*info).si_addr() };
        let thread = std::thread::current();
        // (Errors ignored: a panic here would turn the SIGSEGV into an abort.)
        let _ = writeln!(
            std::io::stderr(),
            "\nsignal {sig} (invalid memory access at {address:?}) in thread {:?} (a test's thread is named after the test):\n{}",
            thread.name().unwrap_or("<unnamed>"),
            std::backtrace::Backtrace::force_capture()
        );
    }
    // Back to the action there was: returning repeats the faulting access under it, and the
    // process ends as it would have without us.
    let i = SIGNALS.iter().position(|&s| s == sig).unwrap_or(0);
    // SAFETY: PREVIOUS[i] was filled by sigaction in `install` before this handler could run.
    unsafe { libc::sigaction(sig, std::ptr::addr_of!(PREVIOUS[i]).cast(), std::ptr::null_mut()) };
}

extern "C" fn install() {
    // SAFETY: runs once, before main and any other thread; a zeroed sigaction with a handler,
    // SA_SIGINFO and an empty mask is a valid argument.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_fault as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        for (i, sig) in SIGNALS.into_iter().enumerate() {
            libc::sigaction(sig, &action, std::ptr::addr_of_mut!(PREVIOUS[i]).cast());
        }
    }
}

#[used]
#[link_section = ".init_array"]
static INSTALL: extern "C" fn() = install;

/// A fault in a test's thread is reported with the test's name, and the process still dies of
/// it: a child copy of this binary runs only this test with FER_FAULT_NOW set and faults on
/// purpose.
#[test]
fn a_fault_names_its_test_and_still_kills_the_process() {
    if std::env::var_os("FER_FAULT_NOW").is_some() {
        // SAFETY: not safe: the point is an invalid read, in a child process of its own.
        let v = unsafe { std::ptr::read_volatile(std::ptr::null::<u64>().wrapping_add(2)) };
        panic!("read {v} from an unmapped address");
    }
    let me = std::env::current_exe().unwrap();
    let name = "crash_report::a_fault_names_its_test_and_still_kills_the_process";
    let out = std::process::Command::new(me)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("FER_FAULT_NOW", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "the child must still die of SIGSEGV:\n{stderr}");
    assert!(stderr.contains(&format!("in thread \"{name}\"")), "no report naming the test:\n{stderr}");
    // The backtrace: numbered frames, the test's function among them (its name's second mention).
    assert!(
        stderr.contains("\n   0: ")
            && stderr.matches("a_fault_names_its_test_and_still_kills_the_process").count() >= 2,
        "no backtrace through the test:\n{stderr}"
    );
}
