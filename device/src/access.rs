//! Files and device nodes that a board config names (camera, display bus, GPIO chip, model,
//! cascade; for a Camera Module, rpicam-vid and libcamera's nodes): present on this machine? can
//! this process open them as it will? and, when not, which group would let it: what `fer-device
//! check-config` says on a board, and what the package's `install.sh` reads to give its service
//! the groups of the board's devices.

use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// How the pipeline opens a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read only (model, cascade).
    Read,
    /// Read and write (camera, I2C/SPI bus, GPIO chip, framebuffer).
    ReadWrite,
}

impl Need {
    fn words(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::ReadWrite => "read-write",
        }
    }
    /// Permission bits (of the three in one class: owner, group, other) that the need asks for.
    fn bits(self) -> u32 {
        match self {
            Need::Read => 0o4,
            Need::ReadWrite => 0o6,
        }
    }
}

/// One line on `path`: "not found on this machine", or its kind, mode, owner and group and
/// whether this process can open it as `need` says (and if not, what would let it).
pub fn describe(path: &Path, need: Need) -> String {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return "not found on this machine".into(),
        Err(e) => return format!("cannot be inspected: {e}"),
    };
    let (kind, _) = file_kind(&meta);
    let owner = user_name(meta.uid());
    let group = group_name(meta.gid());
    let mode = mode_string(&meta);
    let can = can_open(path, need);
    let verdict = if can {
        format!("this user can open it {}", need.words())
    } else {
        format!("this user cannot open it {} ({})", need.words(), remedy(meta.mode(), &owner, &group, need))
    };
    format!("present: {kind} {mode} (owner {owner}, group {group}); {verdict}")
}

/// What would let a user who cannot open a file with `mode` (owner, group) open it as `need`.
pub fn remedy(mode: u32, owner: &str, group: &str, need: Need) -> String {
    let b = need.bits();
    if (mode >> 3) & b == b && group != "root" {
        format!("add the user to group {group}")
    } else if mode & 0o7 & b == b {
        "its ACLs or a security module refuse it".into()
    } else if (mode >> 6) & b == b {
        format!("only {owner} can: run as {owner}, or give the device a group with a udev rule")
    } else {
        "nobody but root can: change its mode (chmod, or a udev rule for a device)".into()
    }
}

/// The kind of file, in words and as `ls -l`'s first letter.
fn file_kind(meta: &std::fs::Metadata) -> (&'static str, char) {
    let ft = meta.file_type();
    if ft.is_char_device() {
        ("character device", 'c')
    } else if ft.is_block_device() {
        ("block device", 'b')
    } else if ft.is_dir() {
        ("directory", 'd')
    } else {
        ("file", '-')
    }
}

/// `ls -l`'s mode column, e.g. `crw-rw----`.
fn mode_string(meta: &std::fs::Metadata) -> String {
    let (_, t) = file_kind(meta);
    let m = meta.mode();
    let mut s = String::from(t);
    for shift in [6, 3, 0] {
        let p = (m >> shift) & 7;
        s.push(if p & 4 != 0 { 'r' } else { '-' });
        s.push(if p & 2 != 0 { 'w' } else { '-' });
        s.push(if p & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn can_open(path: &Path, need: Need) -> bool {
    allowed(
        path,
        match need {
            Need::Read => libc::R_OK,
            Need::ReadWrite => libc::R_OK | libc::W_OK,
        },
    )
}

/// `access(2)`: may this process use `path` as `mode` (R_OK, W_OK, X_OK) says?
fn allowed(path: &Path, mode: libc::c_int) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    unsafe { libc::access(c.as_ptr(), mode) == 0 }
}

/// Name of user `uid` from /etc/passwd, or the number. Read directly, not through glibc's NSS
/// (`getpwuid_r`), which a static binary could only use with the shared libraries of the
/// glibc it was linked with, not the board's.
fn user_name(uid: u32) -> String {
    id_name("/etc/passwd", uid)
}

/// Name of group `gid` from /etc/group, or the number.
fn group_name(gid: u32) -> String {
    id_name("/etc/group", gid)
}

/// The name of the first `name:x:id:...` line of `db` with this id.
fn id_name(db: &str, id: u32) -> String {
    let text = std::fs::read_to_string(db).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == id).then(|| name.to_string())
        })
        .unwrap_or_else(|| id.to_string())
}

/// Where `program` is: itself if it names a path (has a `/`), else the first executable of that
/// name in `PATH`'s folders, as a shell would run it; `None` if there is none.
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    find_in(program, &std::env::var_os("PATH").unwrap_or_default())
}

fn find_in(program: &str, path: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    let runnable = |p: &Path| p.is_file() && allowed(p, libc::X_OK);
    if program.contains('/') {
        let p = Path::new(program);
        return runnable(p).then(|| p.to_path_buf());
    }
    std::env::split_paths(path).map(|dir| dir.join(program)).find(|p| runnable(p))
}

/// The device nodes under `dev` that libcamera opens for a Camera Module: the media controller
/// graphs (`mediaN`) and the DMA buffer heaps (`dma_heap/*`), sorted. (The video nodes it opens
/// through the graphs belong to the same group as the graphs on Raspberry Pi OS.)
pub fn libcamera_nodes(dev: &Path) -> Vec<std::path::PathBuf> {
    let list = |dir: &Path, keep: &dyn Fn(&str) -> bool| -> Vec<std::path::PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        entries.flatten().filter(|e| e.file_name().to_str().is_some_and(keep)).map(|e| e.path()).collect()
    };
    let media =
        |n: &str| n.strip_prefix("media").is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()));
    let mut nodes = list(dev, &media);
    nodes.extend(list(&dev.join("dma_heap"), &|_| true));
    nodes.sort();
    nodes
}

/// What a V4L2 node is when it is no webcam: the Raspberry Pi's own video nodes, named by their
/// drivers in sysfs (`SYS/class/video4linux/videoN/name`, `sys` being `/sys`). A Camera Module's
/// sensor node (unicam on a Pi 4 and earlier, rp1-cfe on a Pi 5) gives raw Bayer data that only
/// libcamera turns into pictures; the ISP and codec nodes are no cameras at all. `None` for any
/// other node, or one that is not there.
pub fn not_a_webcam(device: &Path, sys: &Path) -> Option<String> {
    let node = std::fs::canonicalize(device).ok()?;
    let name = std::fs::read_to_string(sys.join("class/video4linux").join(node.file_name()?).join("name")).ok()?;
    let name = name.trim();
    let what = if name.starts_with("unicam") || name.starts_with("rp1-cfe") {
        "a Raspberry Pi Camera Module's raw sensor node, read through libcamera: set camera.kind = \"rpicam\""
    } else if ["bcm2835-isp", "pispbe", "bcm2835-codec", "rpivid", "rpi-hevc-dec"].iter().any(|p| name.starts_with(p)) {
        "the Raspberry Pi's image processor or video codec, not a camera (a Camera Module: camera.kind = \"rpicam\")"
    } else {
        return None;
    };
    Some(format!("{} is \"{name}\": {what}", device.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pi_s_own_video_nodes_are_told_from_webcams() {
        let dir = std::env::temp_dir().join(format!("fer-not-a-webcam-{}", std::process::id()));
        let (dev, sys) = (dir.join("dev"), dir.join("sys"));
        std::fs::create_dir_all(&dev).unwrap();
        for (n, name) in
            [(0, "unicam-image"), (1, "C920 HD Pro Webcam"), (2, "rp1-cfe-csi2_ch0"), (10, "bcm2835-codec-decode")]
        {
            std::fs::write(dev.join(format!("video{n}")), "").unwrap();
            let node = sys.join(format!("class/video4linux/video{n}"));
            std::fs::create_dir_all(&node).unwrap();
            std::fs::write(node.join("name"), format!("{name}\n")).unwrap();
        }
        // udev's stable name for the sensor node: followed to video0.
        std::os::unix::fs::symlink("video0", dev.join("camera")).unwrap();
        let said = |n: &str| not_a_webcam(&dev.join(n), &sys);
        let sensor = said("video0").unwrap();
        assert!(sensor.ends_with("video0 is \"unicam-image\": a Raspberry Pi Camera Module's raw sensor node, read through libcamera: set camera.kind = \"rpicam\""), "{sensor}");
        assert!(said("camera").unwrap().contains("camera is \"unicam-image\""));
        assert_eq!(said("video1"), None, "a webcam");
        assert!(said("video2").unwrap().contains("\"rp1-cfe-csi2_ch0\": a Raspberry Pi Camera Module's"));
        assert!(said("video10").unwrap().contains("video codec, not a camera"));
        assert_eq!(said("video7"), None, "not there");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn programs_are_found_as_a_shell_finds_them() {
        let dir = std::env::temp_dir().join(format!("fer-find-program-{}", std::process::id()));
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let make = |p: &Path, mode: u32| {
            std::fs::write(p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        make(&a.join("rpicam-vid"), 0o644); // not executable: skipped
        make(&b.join("rpicam-vid"), 0o755);
        std::fs::create_dir_all(a.join("libcamera-vid")).unwrap(); // a folder: skipped
        let path = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(find_in("rpicam-vid", &path), Some(b.join("rpicam-vid")));
        assert_eq!(find_in("libcamera-vid", &path), None);
        let direct = b.join("rpicam-vid").display().to_string();
        assert_eq!(find_in(&direct, std::ffi::OsStr::new("")), Some(b.join("rpicam-vid")));
        assert_eq!(find_in(&a.join("rpicam-vid").display().to_string(), &path), None);
        assert_eq!(find_in("sh", std::ffi::OsStr::new("/bin")), Some("/bin/sh".into()));
        // Nodes of libcamera in a staged /dev.
        let dev = dir.join("dev");
        std::fs::create_dir_all(dev.join("dma_heap")).unwrap();
        for n in ["media1", "media0", "mediax", "media", "video0", "dma_heap/linux,cma", "dma_heap/system"] {
            std::fs::write(dev.join(n), "").unwrap();
        }
        let nodes = libcamera_nodes(&dev);
        let names: Vec<String> = nodes.iter().map(|p| p.strip_prefix(&dev).unwrap().display().to_string()).collect();
        assert_eq!(names, ["dma_heap/linux,cma", "dma_heap/system", "media0", "media1"]);
        assert!(libcamera_nodes(&dir.join("none")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn remedy_names_the_group_that_grants_access() {
        // /dev/video0 on Raspberry Pi OS: crw-rw----+ root video.
        assert_eq!(remedy(0o20660, "root", "video", Need::ReadWrite), "add the user to group video");
        // /dev/spidev0.0 with group spi but read-only for the group: the group does not help.
        assert!(remedy(0o20640, "root", "spi", Need::ReadWrite).starts_with("only root can"));
        // ... yet it does for reading.
        assert_eq!(remedy(0o20640, "root", "spi", Need::Read), "add the user to group spi");
        // Group root is not a group to hand out.
        assert!(remedy(0o20660, "root", "root", Need::ReadWrite).starts_with("only root can"));
        // Open to everyone and still refused: not the mode bits.
        assert_eq!(remedy(0o20666, "root", "root", Need::ReadWrite), "its ACLs or a security module refuse it");
        assert!(remedy(0o20000, "root", "video", Need::Read).starts_with("nobody but root"));
        assert!(remedy(0o20600, "pi", "pi", Need::ReadWrite).starts_with("only pi can: run as pi"));
    }

    #[test]
    fn describe_reports_kind_mode_owner_group_and_access() {
        // /dev/null: crw-rw-rw- root root on every Linux.
        let d = describe(Path::new("/dev/null"), Need::ReadWrite);
        assert_eq!(
            d,
            "present: character device crw-rw-rw- (owner root, group root); this user can open it read-write"
        );
        let dir = std::env::temp_dir().join(format!("fer-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("model.onnx");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
        let d = describe(&f, Need::Read);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(d.starts_with("present: file -rw-r----- (owner "), "{d}");
        assert!(d.ends_with("; this user can open it read"), "{d}");
        assert_eq!(describe(&dir, Need::Read), "not found on this machine");
    }
}
