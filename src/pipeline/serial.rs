//! A serial port as a live source: the `CSI_DATA` lines ESP32-CSI-Tool and esp-csi's
//! examples print, read as they come and decoded by the same [`LineParser`] that reads
//! their log files (`docs/esp32-live.md`).
//!
//! The port is opened with plain termios (raw mode, the given baud rate, no flow
//! control) through `libc`, and read on a thread of its own: a tty read blocks, and
//! one thread per port is cheap beside a tokio worker blocked on it. Lines longer than
//! [`MAX_LINE`] (a cable glitch that loses line ends) are dropped whole and counted;
//! lines that are not `CSI_DATA` (boot messages, logs) are counted as skipped; a
//! `CSI_DATA` line that does not decode is counted as bad and reported (at most every
//! 10 s), and reading goes on. When the port goes away (the board unplugged or reset),
//! the reader reports it once and opens the port again every second until it is back;
//! the environment meanwhile reports the source stalled, then reconnected.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::mpsc;

use super::environment::Input;
use super::udp::{normalize_mac, Report};
use crate::csi::esp32::{LineKind, LineParser, MAX_LINE};
use crate::csi::FrameMeta;
use crate::events::{Event, EventType, Publisher};

/// Counters of one serial source.
#[derive(Debug, Default)]
pub struct SerialStats {
    /// Bytes read from the port.
    pub bytes: AtomicU64,
    /// Lines read, of every kind.
    pub lines: AtomicU64,
    /// Frames decoded and handed to the environment.
    pub frames: AtomicU64,
    /// Lines that are not CSI (boot messages, logs, empty lines).
    pub skipped: AtomicU64,
    /// `CSI_DATA` lines that did not decode, and lines over the length limit.
    pub bad: AtomicU64,
    /// `CSI_DATA` lines from a transmitter other than the `mac` asked for.
    pub other_mac: AtomicU64,
    /// Frames dropped because the environment's queue was full (counted, never silent).
    pub dropped: AtomicU64,
    /// Times the port was opened (1 + reopenings after it went away).
    pub opens: AtomicU64,
    /// Whether the port is open now (false while it is away and being retried).
    pub connected: AtomicBool,
    /// Set once the reader has ended (stopped, or the environment went away).
    pub stopped: AtomicBool,
    /// The last problem with the port (a read error, a failed reopening), in words.
    pub last_error: Mutex<Option<String>>,
}

/// A running serial source: its counters and its stop switch.
pub struct SerialHandle {
    /// The port's device path, as given.
    pub path: String,
    /// The source name its frames carry (`serial:<path>`).
    pub source: String,
    /// The reader's counters, updated as it reads.
    pub stats: Arc<SerialStats>,
    stop: Arc<AtomicBool>,
}

impl SerialHandle {
    /// Stops reading; the environment is told the source ended on purpose (no stall
    /// alarm follows). Returns at once; the reader lets the port go within 0.1 s.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How long a read waits before the reader looks at its stop switch again.
const POLL_MS: i32 = 100;
/// Time between attempts to open a port that went away.
const REOPEN: Duration = Duration::from_secs(1);

/// Opens `path` at `baud` and reads `CSI_DATA` lines from it into `tx` (the
/// environment `environment`), on a thread of its own. `mac`, when given, keeps only
/// the lines of that transmitter (a passive ESP32 prints every transmitter it hears).
/// Fails at once when the port cannot be opened or configured; later losses are
/// retried.
pub fn spawn_serial(
    path: PathBuf,
    baud: u32,
    mac: Option<String>,
    environment: String,
    tx: mpsc::Sender<Input>,
    publisher: Publisher,
) -> Result<SerialHandle, SerialError> {
    let mac = match mac {
        Some(m) => Some(normalize_mac(&m).ok_or_else(|| SerialError::BadMac(m.clone()))?),
        None => None,
    };
    let speed = tty::speed(baud).ok_or(SerialError::BadBaud(baud))?;
    let port = tty::Port::open(&path, speed).map_err(|source| SerialError::Open {
        port: path.display().to_string(),
        source,
    })?;
    let stats = Arc::new(SerialStats::default());
    stats.opens.store(1, Ordering::Relaxed);
    stats.connected.store(true, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let source = format!("serial:{}", path.display());
    let reader = Reader {
        path: path.clone(),
        speed,
        mac,
        source: source.clone(),
        environment,
        tx,
        publisher,
        stats: stats.clone(),
        stop: stop.clone(),
    };
    std::thread::Builder::new()
        .name(format!("serial {}", path.display()))
        .spawn(move || reader.run(port))
        .map_err(|source| SerialError::Open {
            port: path.display().to_string(),
            source,
        })?;
    Ok(SerialHandle {
        path: path.display().to_string(),
        source,
        stats,
        stop,
    })
}

/// Why a serial source could not start.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// The port could not be opened or configured, or its thread not started.
    #[error("cannot open serial port {port}: {source}")]
    Open {
        /// The port's device path.
        port: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A baud rate the system cannot set.
    #[error("baud rate {0} is not one this system can set (e.g. 115200, 921600, 1552000)")]
    BadBaud(u32),
    /// The `mac` filter given is not a MAC address.
    #[error("mac {0:?} is not a MAC address (six hex octets, e.g. A4:CF:12:13:93:D5)")]
    BadMac(String),
}

struct Reader {
    path: PathBuf,
    speed: tty::Speed,
    mac: Option<String>,
    source: String,
    environment: String,
    tx: mpsc::Sender<Input>,
    publisher: Publisher,
    stats: Arc<SerialStats>,
    stop: Arc<AtomicBool>,
}

/// How a read of the port ended.
enum Ended {
    /// The stop switch, or the environment is gone.
    Stopped,
    /// The port went away (unplugged, reset, hung up); why.
    Lost(String),
}

impl Reader {
    fn run(self, first: tty::Port) {
        let mut port = Some(first);
        let mut parser = LineParser::default();
        let mut line_no = 0u64;
        let mut bad = Report::default();
        loop {
            let ended = match port.take() {
                Some(p) => self.read(p, &mut parser, &mut line_no, &mut bad),
                None => match tty::Port::open(&self.path, self.speed) {
                    Ok(p) => {
                        self.stats.opens.fetch_add(1, Ordering::Relaxed);
                        self.stats.connected.store(true, Ordering::Relaxed);
                        self.hardware(
                            "serial_port_reopened",
                            "info",
                            format!("{} is open again", self.path.display()),
                        );
                        port = Some(p);
                        continue;
                    }
                    Err(_) if self.stopping() => Ended::Stopped,
                    Err(_) => {
                        // Still away: wait, watching the stop switch.
                        let mut waited = Duration::ZERO;
                        while waited < REOPEN && !self.stopping() {
                            std::thread::sleep(Duration::from_millis(POLL_MS as u64));
                            waited += Duration::from_millis(POLL_MS as u64);
                        }
                        continue;
                    }
                },
            };
            match ended {
                Ended::Stopped => break,
                Ended::Lost(why) => {
                    self.stats.connected.store(false, Ordering::Relaxed);
                    let msg = format!(
                        "{} went away ({why}); opening it again every {} s",
                        self.path.display(),
                        REOPEN.as_secs()
                    );
                    *self.stats.last_error.lock() = Some(msg.clone());
                    self.hardware("serial_port_lost", "warning", msg);
                    // A board that resets prints its header again; until then the
                    // layout last seen is kept.
                }
            }
        }
        self.stats.connected.store(false, Ordering::Relaxed);
        self.stats.stopped.store(true, Ordering::Relaxed);
        if self.tx.is_closed() {
            return; // the environment is gone: nobody to tell
        }
        let _ = self.tx.blocking_send(Input::SourceEnded {
            source: self.source.clone(),
            reason: format!("serial port {} closed", self.path.display()),
        });
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.tx.is_closed()
    }

    /// Reads lines until the port goes away or the reader is stopped.
    fn read(
        &self,
        port: tty::Port,
        parser: &mut LineParser,
        line_no: &mut u64,
        bad: &mut Report,
    ) -> Ended {
        let mut chunk = vec![0u8; 4096];
        let mut line: Vec<u8> = Vec::with_capacity(4096);
        // Set while the rest of an over-long line is being thrown away.
        let mut discarding = false;
        loop {
            if self.stopping() {
                return Ended::Stopped;
            }
            let n = match port.read(&mut chunk, POLL_MS) {
                Ok(tty::Read::Bytes(n)) => n,
                Ok(tty::Read::Timeout) => continue,
                Ok(tty::Read::HungUp) => return Ended::Lost("hung up".into()),
                Err(e) => return Ended::Lost(e.to_string()),
            };
            self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
            let mut rest = &chunk[..n];
            while !rest.is_empty() {
                let (part, complete) = match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => (&rest[..i], true),
                    None => (rest, false),
                };
                rest = if complete {
                    &rest[part.len() + 1..]
                } else {
                    &[]
                };
                if !discarding {
                    if line.len() + part.len() > MAX_LINE {
                        discarding = true;
                        line.clear();
                        self.bad_line(
                            bad,
                            format!("a line over the {MAX_LINE}-byte limit (line ends lost?)"),
                        );
                    } else {
                        line.extend_from_slice(part);
                    }
                }
                if complete {
                    if !discarding {
                        *line_no += 1;
                        self.on_line(&line, *line_no, parser, bad);
                    }
                    discarding = false;
                    line.clear();
                }
            }
        }
    }

    fn on_line(&self, line: &[u8], line_no: u64, parser: &mut LineParser, bad: &mut Report) {
        self.stats.lines.fetch_add(1, Ordering::Relaxed);
        let frame = match parser.parse(line, line_no) {
            LineKind::Frame(f) => f,
            LineKind::Header | LineKind::Other => {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            LineKind::Bad(problem) => {
                self.bad_line(bad, format!("line {line_no}: {problem}"));
                return;
            }
        };
        if let (Some(want), FrameMeta::Esp32(m)) = (&self.mac, &frame.meta) {
            if normalize_mac(&m.mac).as_deref() != Some(want.as_str()) {
                self.stats.other_mac.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        match self.tx.try_send(Input::Frame {
            source: self.source.clone(),
            frame,
            oracle: None,
        }) {
            Ok(()) => self.stats.frames.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.stats.dropped.fetch_add(1, Ordering::Relaxed),
        };
    }

    fn bad_line(&self, bad: &mut Report, problem: String) {
        let msg = format!("{}: {problem}", self.source);
        // The error first: whoever sees the count can read what it was.
        *self.stats.last_error.lock() = Some(msg.clone());
        self.stats.bad.fetch_add(1, Ordering::Relaxed);
        if let Some((lines, _)) = bad.note(&self.source) {
            self.publisher.publish(Event::new(
                EventType::HardwareEvent,
                json!({"event": "bad_lines", "router_id": self.source, "source_id": self.source,
                       "severity": "warning", "lines": lines,
                       "message": format!("undecodable CSI_DATA line: {msg}")}),
                Some(self.environment.clone()),
            ));
        }
    }

    fn hardware(&self, event: &str, severity: &str, message: String) {
        self.publisher.publish(Event::new(
            EventType::HardwareEvent,
            json!({"event": event, "router_id": self.source, "source_id": self.source,
                   "severity": severity, "message": message,
                   "metadata": {"opens": self.stats.opens.load(Ordering::Relaxed),
                                "frames": self.stats.frames.load(Ordering::Relaxed)}}),
            Some(self.environment.clone()),
        ));
    }
}

/// The tty itself: open, configure, poll and read, through libc.
#[cfg(unix)]
mod tty {
    use std::ffi::CString;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    /// A baud rate, as asked for.
    pub type Speed = u32;

    /// Whether Linux takes any rate (termios2 with BOTHER) on this architecture: the
    /// rate ESP32-CSI-Tool recommends, 1552000, has no termios constant.
    const ANY_RATE: bool = cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ));

    /// `baud` if this system can set it.
    pub fn speed(baud: u32) -> Option<Speed> {
        (constant(baud).is_some() || (ANY_RATE && baud > 0)).then_some(baud)
    }

    /// The termios constant for a baud rate, where the system has one.
    fn constant(baud: u32) -> Option<libc::speed_t> {
        Some(match baud {
            9600 => libc::B9600,
            19200 => libc::B19200,
            38400 => libc::B38400,
            57600 => libc::B57600,
            115200 => libc::B115200,
            230400 => libc::B230400,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            460800 => libc::B460800,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            500000 => libc::B500000,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            576000 => libc::B576000,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            921600 => libc::B921600,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            1000000 => libc::B1000000,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            1152000 => libc::B1152000,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            1500000 => libc::B1500000,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            2000000 => libc::B2000000,
            // BSD and macOS take the rate itself as the speed value.
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            other => other as libc::speed_t,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            _ => return None,
        })
    }

    /// Sets a rate without a constant through termios2 (Linux's BOTHER).
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    fn set_any_rate(fd: libc::c_int, baud: u32) -> io::Result<()> {
        // CBAUD on these architectures (the speed bits of c_cflag).
        const CBAUD: libc::tcflag_t = 0o010017;
        // SAFETY: `t` is filled by TCGETS2 before it is changed and written back.
        unsafe {
            let mut t: libc::termios2 = std::mem::zeroed();
            if libc::ioctl(fd, libc::TCGETS2, &mut t) != 0 {
                return Err(last());
            }
            t.c_cflag &= !CBAUD;
            t.c_cflag |= libc::BOTHER;
            t.c_ispeed = baud;
            t.c_ospeed = baud;
            if libc::ioctl(fd, libc::TCSETS2, &t) != 0 {
                return Err(last());
            }
        }
        Ok(())
    }

    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    fn set_any_rate(_: libc::c_int, baud: u32) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("baud rate {baud} is not one this system can set"),
        ))
    }

    /// An open, configured tty; closed on drop.
    pub struct Port {
        fd: libc::c_int,
    }

    pub enum Read {
        Bytes(usize),
        Timeout,
        HungUp,
    }

    fn last() -> io::Error {
        io::Error::last_os_error()
    }

    impl Port {
        /// Opens `path` as a terminal in raw mode at `speed`, 8N1, receiver on, modem
        /// lines ignored (USB serial adapters do not wire them), input not yet read
        /// discarded (it predates us).
        pub fn open(path: &Path, speed: Speed) -> io::Result<Port> {
            let c = CString::new(path.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the path"))?;
            // SAFETY: `c` is a valid NUL-terminated path; the flags are plain ints.
            let fd = unsafe {
                libc::open(
                    c.as_ptr(),
                    libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(last());
            }
            let port = Port { fd };
            // SAFETY: `fd` is open and owned by `port`; `t` is a plain struct that
            // tcgetattr fills before anything reads it.
            unsafe {
                if libc::isatty(fd) != 1 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "not a serial port (a terminal device)",
                    ));
                }
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(fd, &mut t) != 0 {
                    return Err(last());
                }
                libc::cfmakeraw(&mut t);
                t.c_cflag |= libc::CLOCAL | libc::CREAD;
                t.c_cflag &= !(libc::CSTOPB | libc::PARENB);
                t.c_cc[libc::VMIN] = 1;
                t.c_cc[libc::VTIME] = 0;
                // A rate without a constant is set after the rest, through termios2.
                let constant = constant(speed);
                let c = constant.unwrap_or(libc::B38400);
                if libc::cfsetispeed(&mut t, c) != 0 || libc::cfsetospeed(&mut t, c) != 0 {
                    return Err(last());
                }
                if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
                    return Err(last());
                }
                if constant.is_none() {
                    set_any_rate(fd, speed)?;
                }
                libc::tcflush(fd, libc::TCIFLUSH);
            }
            Ok(port)
        }

        /// Waits up to `timeout_ms` for bytes and reads what is there.
        pub fn read(&self, buf: &mut [u8], timeout_ms: i32) -> io::Result<Read> {
            let mut p = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
            if r < 0 {
                let e = last();
                return if e.kind() == io::ErrorKind::Interrupted {
                    Ok(Read::Timeout)
                } else {
                    Err(e)
                };
            }
            if r == 0 {
                return Ok(Read::Timeout);
            }
            if p.revents & libc::POLLIN == 0 {
                // POLLHUP, POLLERR or POLLNVAL without data: the device is gone.
                return Ok(Read::HungUp);
            }
            // SAFETY: `buf` is valid for `buf.len()` bytes; the fd is open.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = last();
                return match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(Read::Timeout),
                    _ => Err(e),
                };
            }
            if n == 0 {
                return Ok(Read::HungUp);
            }
            Ok(Read::Bytes(n as usize))
        }
    }

    impl Drop for Port {
        fn drop(&mut self) {
            // SAFETY: the fd is open and owned by this Port.
            unsafe {
                libc::close(self.fd);
            }
        }
    }
}

/// Serial ports are read through termios, which only Unix has.
#[cfg(not(unix))]
mod tty {
    use std::io;
    use std::path::Path;

    pub type Speed = u32;

    pub fn speed(baud: u32) -> Option<Speed> {
        Some(baud)
    }

    pub struct Port;

    pub enum Read {
        Bytes(usize),
        Timeout,
        HungUp,
    }

    impl Port {
        pub fn open(_: &Path, _: Speed) -> io::Result<Port> {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "serial ports are read on Unix only",
            ))
        }
        pub fn read(&self, _: &mut [u8], _: i32) -> io::Result<Read> {
            Ok(Read::HungUp)
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::events::Collector;

    /// A pseudo-terminal: the master's fd and the slave's path.
    fn pty() -> (libc::c_int, PathBuf) {
        // SAFETY: plain libc calls on a fresh fd; ptsname_r writes into `name`.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(m >= 0 && libc::grantpt(m) == 0 && libc::unlockpt(m) == 0);
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
            let path = std::ffi::CStr::from_ptr(name.as_ptr());
            (m, PathBuf::from(path.to_str().unwrap()))
        }
    }

    fn write(fd: libc::c_int, mut b: &[u8]) {
        while !b.is_empty() {
            // SAFETY: `b` is valid for its length.
            let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
            assert!(n > 0);
            b = &b[n as usize..];
        }
    }

    fn wait(what: &str, mut done: impl FnMut() -> bool) {
        let t = std::time::Instant::now();
        while !done() {
            assert!(t.elapsed() < Duration::from_secs(10), "{what}: not in time");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn lines_frames_garbage_and_a_lost_port() {
        const ROW: &str = "CSI_DATA,AP,3C:71:BF:6D:2A:78,-73,11,1,0,1,1,1,0,0,0,0,-93,0,1,1,\
                           80272146,0,101,0,0,80.363225,4,[101 -48 5 0 ]";
        let (master, path) = pty();
        let (tx, mut rx) = mpsc::channel(64);
        let events = Collector::new();
        let h = spawn_serial(path.clone(), 921600, None, "e".into(), tx, events.clone()).unwrap();
        let mut input = b"boot\r\n".to_vec();
        input.extend(vec![b'x'; MAX_LINE + 10]); // a line over the limit, then its end
        input.extend(format!("\n{ROW}\r\nCSI_DATA,1,[1\n").as_bytes());
        // A row split across writes still reads as one line.
        write(master, &input[..input.len() - 40]);
        std::thread::sleep(Duration::from_millis(20));
        write(master, &input[input.len() - 40..]);
        wait("two lines", || h.stats.bad.load(Ordering::Relaxed) == 2);
        let s = &h.stats;
        assert_eq!(s.frames.load(Ordering::Relaxed), 1);
        assert_eq!(s.skipped.load(Ordering::Relaxed), 1);
        assert_eq!(s.lines.load(Ordering::Relaxed), 3);
        let Some(Input::Frame { source, frame, .. }) = rx.blocking_recv() else {
            panic!("no frame")
        };
        assert_eq!(source, format!("serial:{}", path.display()));
        assert_eq!(frame.csi.shape(), &[1, 1, 2]);
        // The other end closes: lost, reported once, then retried until stopped.
        // SAFETY: the master fd is ours.
        unsafe { libc::close(master) };
        wait("lost", || !h.stats.connected.load(Ordering::Relaxed));
        h.stop();
        wait("stopped", || h.stats.stopped.load(Ordering::Relaxed));
        let kinds: Vec<String> = events
            .take()
            .into_iter()
            .map(|(_, e)| e.data["event"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(kinds.contains(&"bad_lines".to_string()), "{kinds:?}");
        assert!(kinds.contains(&"serial_port_lost".to_string()), "{kinds:?}");
        assert!(matches!(
            rx.blocking_recv(),
            Some(Input::SourceEnded { .. })
        ));
        assert!(matches!(
            spawn_serial(path, 921600, None, "e".into(), mpsc::channel(1).0, events),
            Err(SerialError::Open { .. })
        ));
    }
}
