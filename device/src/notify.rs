//! systemd's service notification protocol (`sd_notify(3)`), without libsystemd: datagrams of
//! `KEY=value` lines to the socket named by `$NOTIFY_SOCKET` (a path, or `@name` for Linux's
//! abstract namespace). With `Type=notify` the service counts as started once `READY=1` comes
//! (the model loaded, the camera open); with `WatchdogSec=` systemd restarts it when no
//! `WATCHDOG=1` comes in time (a pipeline stuck in a driver call or a deadlock); `STATUS=`
//! shows in `systemctl status`. Outside systemd (no `$NOTIFY_SOCKET`) nothing is sent.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where notifications go, and when the next watchdog ping is due.
pub struct Notifier {
    socket: UnixDatagram,
    target: Target,
    /// Half of `$WATCHDOG_USEC` (systemd's advice), when the watchdog is on.
    ping_every: Option<Duration>,
    last_ping: Instant,
}

enum Target {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (and `$WATCHDOG_PID`: the watchdog is this
    /// process's only when it names it or is unset); `None` when not started by systemd with a
    /// notify socket, or when the socket cannot be made (reported on stderr: the service runs
    /// on without notifications).
    pub fn from_env() -> Option<Notifier> {
        let socket = std::env::var_os("NOTIFY_SOCKET")?;
        let ours = std::env::var("WATCHDOG_PID").map_or(true, |p| p.trim() == std::process::id().to_string());
        let usec = std::env::var("WATCHDOG_USEC").ok().and_then(|u| u.trim().parse::<u64>().ok()).filter(|_| ours);
        match Notifier::new(&socket.to_string_lossy(), usec.map(Duration::from_micros)) {
            Ok(n) => Some(n),
            Err(e) => {
                eprintln!("fer-device: NOTIFY_SOCKET {}: {e}; no notifications to systemd", socket.to_string_lossy());
                None
            }
        }
    }

    /// Notifications to `socket` (a path, or `@name` abstract), with the watchdog's timeout.
    pub fn new(socket: &str, watchdog: Option<Duration>) -> std::io::Result<Notifier> {
        let target = match socket.strip_prefix('@') {
            Some(name) => Target::Abstract(name.as_bytes().to_vec()),
            None if socket.starts_with('/') => Target::Path(socket.into()),
            None => {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "neither a path nor @abstract"));
            }
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            target,
            ping_every: watchdog.map(|w| w / 2).filter(|w| !w.is_zero()),
            last_ping: Instant::now(),
        })
    }

    /// Sends `message` (`KEY=value` lines); a failure is returned, for the caller to report.
    pub fn send(&self, message: &str) -> std::io::Result<()> {
        match &self.target {
            Target::Path(p) => self.socket.send_to(message.as_bytes(), p).map(drop),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                self.socket.send_to_addr(message.as_bytes(), &addr).map(drop)
            }
        }
    }

    /// `WATCHDOG=1` when half the watchdog's timeout has passed since the last one (`now`: the
    /// caller's clock); returns whether one was sent.
    pub fn ping_if_due(&mut self, now: Instant) -> std::io::Result<bool> {
        match self.ping_every {
            Some(every) if now.duration_since(self.last_ping) >= every => {
                self.last_ping = now;
                self.send("WATCHDOG=1").map(|_| true)
            }
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(s: &UnixDatagram) -> Vec<String> {
        s.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = s.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    }

    #[test]
    fn messages_reach_a_path_socket_and_pings_come_at_half_the_timeout() {
        let dir = std::env::temp_dir().join(format!("fer-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        let mut n = Notifier::new(path.to_str().unwrap(), Some(Duration::from_secs(10))).unwrap();
        n.send("READY=1\nSTATUS=30.0 fps").unwrap();
        let t0 = n.last_ping;
        assert!(!n.ping_if_due(t0 + Duration::from_millis(4_999)).unwrap());
        assert!(n.ping_if_due(t0 + Duration::from_secs(5)).unwrap());
        assert!(!n.ping_if_due(t0 + Duration::from_secs(9)).unwrap());
        assert!(n.ping_if_due(t0 + Duration::from_secs(10)).unwrap());
        let got = receive(&systemd);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, ["READY=1\nSTATUS=30.0 fps", "WATCHDOG=1", "WATCHDOG=1"]);
    }

    #[test]
    fn abstract_sockets_and_no_watchdog() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("fer-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let systemd = UnixDatagram::bind_addr(&addr).unwrap();
        let mut n = Notifier::new(&format!("@{name}"), None).unwrap();
        n.send("STOPPING=1").unwrap();
        assert!(!n.ping_if_due(Instant::now() + Duration::from_secs(3600)).unwrap());
        assert_eq!(receive(&systemd), ["STOPPING=1"]);
        assert!(Notifier::new("relative/path", None).is_err());
    }
}
