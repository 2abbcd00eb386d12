//! The built `fer-device` binary, run as a user would (under qemu-user when cross-compiled).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A command for the built binary. Cross-compiled tests run under qemu-user, where a child ARM
/// binary cannot be exec'd directly (no binfmt_misc): detect that (an ARM build reading an x86
/// /proc/cpuinfo) and start the child through the same qemu runner.
fn fer_device() -> Command {
    let bin = env!("CARGO_BIN_EXE_fer-device");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let under_qemu = cfg!(any(target_arch = "aarch64", target_arch = "arm"))
        && (cpuinfo.contains("GenuineIntel") || cpuinfo.contains("AuthenticAMD"));
    if under_qemu {
        let (qemu, sysroot, cpu) = if cfg!(target_arch = "aarch64") {
            ("qemu-aarch64", "/usr/aarch64-linux-gnu", "cortex-a72")
        } else {
            ("qemu-arm", "/usr/arm-linux-gnueabihf", "cortex-a7")
        };
        let mut c = Command::new(qemu);
        c.args(["-L", sysroot, "-cpu", cpu, bin]);
        c
    } else {
        Command::new(bin)
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn check_config_accepts_every_shipped_board() {
    let mut boards: Vec<PathBuf> = std::fs::read_dir(repo().join("board-configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    boards.sort();
    let out = fer_device().arg("check-config").args(&boards).current_dir(repo()).output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for b in ["rpi4", "rpi5", "rpi-zero2w", "jetson-nano", "jetson-orin-nano"] {
        assert!(t.contains(&format!("{b}.toml: {b}")), "{b} not reported:\n{t}");
    }
    // This machine has no camera or display nodes: said plainly, not pretended.
    assert!(t.contains("camera   /dev/video0 (640x480 YUYV at 30 fps): not found on this machine"), "{t}");
    // What the binary can do: a board build without the camera would only read files.
    let build = t.lines().next().unwrap();
    assert!(
        build.starts_with(&format!(
            "build   fer-device {} for {}-linux: ",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        )),
        "{t}"
    );
    let camera = build.ends_with(": V4L2 camera (nokhwa) built in");
    assert_eq!(camera, cfg!(feature = "camera"), "{build}");
    assert_eq!(!camera, build.contains("no V4L2 camera support"), "{build}");
    // Every shipped board's min_face is a size its cascade can find.
    assert!(!t.contains("note"), "{t}");
}

#[test]
fn a_report_into_a_closed_pipe_ends_quietly() {
    // `fer-device check-config ... | head -1`: the reader is gone before the first line.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = fer_device()
        .args(["check-config", "board-configs/rpi4.toml", "board-configs/rpi5.toml"])
        .current_dir(repo())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    use std::os::unix::process::ExitStatusExt;
    // Killed by SIGPIPE (qemu-user passes the guest's death on as the same signal).
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?} {err}", out.status);
}

#[test]
fn check_config_says_who_can_open_each_device() {
    // A board whose camera is /dev/null (crw-rw-rw- root root everywhere) and whose panel's GPIO
    // chip is missing.
    let dir = std::env::temp_dir().join(format!("fer-device-cli-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rpi4 = std::fs::read_to_string(repo().join("board-configs/rpi4.toml")).unwrap();
    assert!(rpi4.contains("device = \"/dev/video0\"") && rpi4.contains("gpio_chip = \"/dev/gpiochip0\""));
    let board = dir.join("null-camera.toml");
    std::fs::write(
        &board,
        rpi4.replacen("\"/dev/video0\"", "\"/dev/null\"", 1).replacen("/dev/gpiochip0", "/dev/gpiochip-fer-missing", 1),
    )
    .unwrap();
    let out = fer_device().arg("check-config").arg(&board).current_dir(repo()).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("camera   /dev/null (640x480 YUYV at 30 fps): present: character device crw-rw-rw- (owner root, group root); this user can open it read-write"),
        "{t}"
    );
    assert!(t.contains("gpio     /dev/gpiochip-fer-missing (panel control pins): not found on this machine"), "{t}");
    assert!(t.contains("cascade  /usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml: present: file -rw-r--r-- (owner root, group root); this user can open it read"), "{t}");
}

#[test]
fn check_config_reports_a_camera_module_s_program_and_nodes() {
    let dir = std::env::temp_dir().join(format!("fer-device-cli-rpicam-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rpi4 = std::fs::read_to_string(repo().join("board-configs/rpi4.toml")).unwrap();
    let kind = rpi4.lines().find(|l| l.starts_with("kind = \"v4l2\"")).expect("rpi4.toml's camera kind line");
    let (found, missing) = (dir.join("found.toml"), dir.join("missing.toml"));
    std::fs::write(&found, rpi4.replacen(kind, "kind = \"rpicam\"\nrpicam_command = \"sh\"", 1)).unwrap();
    std::fs::write(&missing, rpi4.replacen(kind, "kind = \"rpicam\"\nrpicam_command = \"/nonexistent/rpicam-vid\"", 1))
        .unwrap();
    let out = fer_device().arg("check-config").args([&found, &missing]).current_dir(repo()).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    // `sh` is found on PATH as a shell would find it.
    assert!(t.contains("camera   sh (Camera Module, 640x480 YUV 4:2:0 at 30 fps): runs /"), "{t}");
    assert!(
        t.contains("camera   /nonexistent/rpicam-vid (Camera Module, 640x480 YUV 4:2:0 at 30 fps): not found on this machine (sudo apt install rpicam-apps)"),
        "{t}"
    );
    // No libcamera nodes on this machine (CI, qemu-user): said so, once per board.
    let none = "camera   /dev/media*: not found on this machine (no libcamera camera";
    if Path::new("/dev/media0").exists() {
        assert!(t.contains("/dev/media0 (libcamera): present"), "{t}");
    } else {
        assert_eq!(t.matches(none).count(), 2, "{t}");
    }
}

#[test]
fn check_config_names_face_sizes_the_cascade_cannot_find() {
    let dir = std::env::temp_dir().join(format!("fer-device-cli-min-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zero = std::fs::read_to_string(repo().join("board-configs/rpi-zero2w.toml")).unwrap();
    // LBP's window is 45 px (OpenCV's lbpcascade_frontalface_improved.xml), Haar's 24: rpi-zero2w
    // (Haar, min_face 40) on LBP.
    assert!(zero.contains("detector = \"haar\"") && zero.contains("min_face = 40"));
    let lbp = dir.join("lbp.toml");
    std::fs::write(&lbp, zero.replacen("detector = \"haar\"", "detector = \"lbp\"", 1)).unwrap();
    // rpi4 scans at 320 of 640 px: Haar's 24-px window is a 48-px face; min_face 40 is below it.
    let small = dir.join("small.toml");
    let rpi4 = std::fs::read_to_string(repo().join("board-configs/rpi4.toml")).unwrap();
    std::fs::write(&small, rpi4.replacen("min_face = 64", "min_face = 40", 1)).unwrap();
    let out = fer_device().arg("check-config").args([&lbp, &small]).current_dir(repo()).output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "a note is not an invalid config:\n{t}");
    assert!(t.contains("320-px-wide frames (45 px: its 45-px window); faces of 40-44 px are missed"), "{t}");
    assert!(t.contains("640-px-wide frames (48 px: its 24-px window at detect_width 320); faces of 40-47"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_config_rejects_a_broken_config_naming_file_and_field() {
    let dir = std::env::temp_dir().join(format!("fer-device-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("broken.toml");
    let text_in = std::fs::read_to_string(repo().join("board-configs/rpi4.toml")).unwrap().replacen(
        "threads = 1",
        "threads = \"three\"",
        1,
    ); // [model]'s: it comes before [detection]
    std::fs::write(&bad, text_in).unwrap();
    let out = fer_device().arg("check-config").arg(&bad).output().unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("broken.toml") && t.contains("model.threads"), "{t}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn benchmarks_refuse_a_missing_onnxruntime_library_before_running() {
    let lib = "/nonexistent/libonnxruntime.so.1";
    let board = repo().join("board-configs/rpi4.toml");
    let bench = ["bench", "--source", "image:/nonexistent.png", "--onnxruntime", lib, "--board"];
    let out = fer_device().args(bench).arg(&board).output().unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains(&format!("{lib}: cannot load onnxruntime")), "{t}");
    assert!(!t.contains("fer-device bench:") && !t.contains("nonexistent.png"), "ran before checking:\n{t}");
    let out = fer_device().args(["bench-models", "--onnxruntime", lib, "/nonexistent.onnx"]).output().unwrap();
    let t = text(&out);
    assert!(!out.status.success() && t.contains(&format!("{lib}: cannot load onnxruntime")), "{t}");
}

#[test]
fn a_missing_display_stops_the_run_before_any_frame_naming_the_device() {
    // The display is opened on its own thread, before the model is loaded (here, one that does
    // not exist): its error must still end the run at once.
    let dir = std::env::temp_dir().join(format!("fer-device-cli-display-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let board = dir.join("rpi4-missing-spi.toml");
    let config = std::fs::read_to_string(repo().join("board-configs/rpi4.toml")).unwrap();
    assert!(config.contains("spi = \"/dev/spidev0.0\"") && config.contains("models/mini-xception-fer2013/"));
    let config = config.replace("/dev/spidev0.0", "/dev/spidev-fer-missing");
    std::fs::write(&board, config.replace("models/mini-xception-fer2013/", "models/fer-missing/")).unwrap();
    let json = dir.join("out.jsonl");
    let out = fer_device()
        .args(["run", "--board"])
        .arg(&board)
        .args(["--source", "image:.cache/fixtures/astronaut.png", "--json"])
        .arg(&json)
        .current_dir(repo())
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("/dev/spidev-fer-missing") && t.contains("--headless"), "{t}");
    assert!(!json.exists(), "no frame was processed");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_that_cannot_start_says_why_on_the_display() {
    // The model fails to load after the display is open: the panel (here its PNG snapshots) says
    // so before the run exits with the error. (The camera and input cases need a model that
    // loads: scripts/e2e.sh.)
    use embedded_graphics::prelude::Size;
    use fer_device::present::panels::render_panel;
    use fer_device::present::screen::Screen;
    let dir = std::env::temp_dir().join(format!("fer-device-cli-start-{}", std::process::id()));
    let screens = dir.join("screens");
    let out = fer_device()
        .args(["run", "--board", "board-configs/rpi4.toml", "--model", "/nonexistent/fer/manifest.json"])
        .args(["--source", "image:.cache/fixtures/astronaut.png", "--display"])
        .arg(format!("png:{}", screens.display()))
        .current_dir(repo())
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("loading the model of board-configs/rpi4.toml") && t.contains("/nonexistent/fer/manifest.json"),
        "{t}"
    );
    let shown: Vec<PathBuf> = std::fs::read_dir(&screens).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    let got = image::open(&shown[0]).unwrap().to_rgb8();
    std::fs::remove_dir_all(&dir).unwrap();
    let want = render_panel(Size::new(240, 240), false, &Screen::status("model error")).to_rgb8();
    assert!(got == want, "the screen is not 'model error'");
}

#[test]
fn a_relative_model_path_that_is_not_there_says_where_it_was_looked_for() {
    // A board config run from another directory than its relative paths were written for: the
    // error says so, and gives the OS error once (it was repeated as the error's source).
    let dir = std::env::temp_dir().join(format!("fer-device-cli-relative-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = fer_device()
        .args(["run", "--headless", "--board"])
        .arg(repo().join("board-configs/rpi4.toml"))
        .args(["--source", "image:astronaut.png", "--json", "out.jsonl"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let t = text(&out);
    let cwd = dir.canonicalize().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!out.status.success(), "{t}");
    let note = format!(
        "(model.manifest models/mini-xception-fer2013/manifest.json is relative to the working directory, {})",
        cwd.display()
    );
    assert!(t.contains(&note), "{t}");
    assert_eq!(t.matches("No such file or directory").count(), 1, "{t}");
}
