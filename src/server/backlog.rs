//! When a client is behind: what it owes (bytes the kernel holds unacknowledged for its
//! socket, plus what waits in our queue) stays above a bound for longer than a grace time.
//!
//! Before this, a client was cut as `slow_consumer` as soon as one alert had waited in the
//! server's queue longer than `alert_max_wait_s`. Past saturation that wait is mostly the
//! server's own (its writers wait for a core, the client's socket is empty), so every
//! client was cut and resumed several times a run: 8,000-10,000 reconnections in 5 s at
//! 1,000 clients, each a handshake, a take-over and a replay that made the server later
//! still (`docs/performance.md`, third pass). What the kernel still holds says whether the
//! client takes what it is sent: a client that reads has little there, whatever our queue.
use std::time::{Duration, Instant};

/// How a connection's socket says what it still holds (Linux: `SIOCOUTQ`).
///
/// Holds the socket's descriptor, not the socket: the connection's writer, which owns the
/// socket (through the WebSocket sink) for as long as it asks, is the only caller, so the
/// descriptor cannot be closed and reused under it.
#[derive(Clone, Copy, Debug)]
pub struct SendQueue {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fd: std::os::fd::RawFd,
}

impl SendQueue {
    /// The probe for an accepted socket.
    pub fn of(stream: &tokio::net::TcpStream) -> SendQueue {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::fd::AsRawFd as _;
            SendQueue {
                fd: stream.as_raw_fd(),
            }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = stream;
            SendQueue {}
        }
    }

    /// Bytes written to the socket that the client has not acknowledged yet (sent and
    /// unsent); None where the platform has no such figure or the call failed.
    pub fn unacknowledged(&self) -> Option<usize> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let mut n: libc::c_int = 0;
            // SAFETY: `fd` is the connection's open socket (see the type's comment), and
            // SIOCOUTQ (= TIOCOUTQ on Linux) writes one c_int.
            let rc = unsafe { libc::ioctl(self.fd, libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
            (rc == 0).then(|| usize::try_from(n).unwrap_or(0))
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            None
        }
    }
}

/// What a client owes at one look: bytes waiting in our queue and, where known, in the
/// kernel.
#[derive(Clone, Copy, Debug)]
pub struct Owed {
    pub ours: usize,
    /// Unacknowledged bytes in the kernel (`SendQueue::unacknowledged`).
    pub kernel: Option<usize>,
    /// Whether the last write found the socket full: without the kernel's figure, a full
    /// socket counts as holding the whole bound.
    pub stalled: bool,
}

impl Owed {
    fn total(&self, bound: usize) -> usize {
        let kernel = match self.kernel {
            Some(k) => k,
            None if self.stalled => bound,
            None => 0,
        };
        self.ours.saturating_add(kernel)
    }
}

/// What one look says of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Under the bound, or nothing at stake.
    Fine,
    /// Over the bound since this look (`wdp_clients_behind_total` counts these).
    Began,
    /// Still over, for less than the grace.
    Behind,
    /// Over for the grace without a break: cut it (`slow_consumer`).
    Cut,
}

/// A writer's judge of whether its client is behind.
///
/// Looked at by the writer (`connection.rs`): when it takes a batch with live alerts still
/// waiting behind it, every `tick` while a write waits for a full socket, and after each
/// write while a stretch goes on. A look with no live alert in the batch or behind it
/// (nothing is at stake: frames are dropped by `buffer_size`, not cut for) or with a
/// resume's replay ahead (old by nature; live alerts wait behind it by design) ends any
/// stretch, as does a look under the bound. The client is cut (`slow_consumer`) when one
/// stretch over the bound has lasted `grace`: a burst that fills the socket for less is
/// not a client falling behind. A client that keeps up costs no look but at a take (no
/// syscall, no clock read).
#[derive(Debug)]
pub struct Backlog {
    bound: usize,
    grace: Duration,
    over_since: Option<Instant>,
}

impl Backlog {
    pub fn new(bound: usize, grace: Duration) -> Backlog {
        Backlog {
            bound,
            grace,
            over_since: None,
        }
    }

    /// The bound for a server whose sockets' send buffer is `socket_send_buffer_bytes`
    /// (0: the kernel's autotuning): twice it, what Linux allots for it (it doubles
    /// SO_SNDBUF for its own bookkeeping). A client owing more has a full socket and more
    /// waiting behind it, or the server holds more for it than a socket's worth.
    pub fn bound_for(socket_send_buffer_bytes: usize) -> usize {
        match socket_send_buffer_bytes {
            // Linux's default tcp_wmem maximum, what autotuning grows a buffer to.
            0 => 4 << 20,
            n => n.saturating_mul(2),
        }
    }

    /// Nothing to judge (see the type): any stretch ends.
    pub fn reset(&mut self) {
        self.over_since = None;
    }

    /// Whether a stretch over the bound is going on.
    pub fn behind(&self) -> bool {
        self.over_since.is_some()
    }

    /// Whether a look needs the kernel's figure: our queue alone does not decide it.
    pub fn needs_kernel(&self, ours: usize) -> bool {
        ours <= self.bound
    }

    /// One look at what the client owes (`None`: nothing to judge, see the type).
    pub fn look(&mut self, now: Instant, owed: Option<Owed>) -> Verdict {
        match owed {
            Some(o) if o.total(self.bound) > self.bound => match self.over_since {
                None => {
                    self.over_since = Some(now);
                    if self.grace.is_zero() {
                        Verdict::Cut
                    } else {
                        Verdict::Began
                    }
                }
                Some(since) if now.saturating_duration_since(since) >= self.grace => Verdict::Cut,
                Some(_) => Verdict::Behind,
            },
            _ => {
                self.reset();
                Verdict::Fine
            }
        }
    }

    /// How often a writer waiting on a full socket looks again: a stretch is seen to
    /// end within a quarter of the grace, and a cut comes at most that late.
    pub fn tick(&self) -> Duration {
        (self.grace / 4).clamp(Duration::from_millis(1), Duration::from_millis(250))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owed(ours: usize, kernel: usize) -> Option<Owed> {
        Some(Owed {
            ours,
            kernel: Some(kernel),
            stalled: false,
        })
    }

    const MS: Duration = Duration::from_millis(1);

    use Verdict::*;

    #[test]
    fn a_client_over_the_bound_for_the_grace_is_cut_not_before() {
        let t0 = Instant::now();
        let mut b = Backlog::new(1000, 100 * MS);
        assert_eq!(b.look(t0, owed(0, 900)), Fine, "under the bound");
        assert_eq!(b.look(t0, owed(100, 900)), Fine, "at it");
        assert_eq!(b.look(t0 + 10 * MS, owed(200, 900)), Began);
        assert_eq!(b.look(t0 + 60 * MS, owed(800, 900)), Behind, "50 ms over");
        assert_eq!(b.look(t0 + 109 * MS, owed(1500, 0)), Behind, "99 ms over");
        assert_eq!(b.look(t0 + 110 * MS, owed(1500, 0)), Cut, "100 ms over");
    }

    #[test]
    fn a_client_that_catches_up_between_bursts_is_never_cut() {
        // Over the bound for 80 ms of every 100 (a reader that pauses, then takes it all):
        // each look under the bound ends the stretch.
        let t0 = Instant::now();
        let mut b = Backlog::new(1000, 100 * MS);
        for burst in 0..50u32 {
            let start = t0 + burst * 100 * MS;
            assert_eq!(b.look(start, owed(600, 900)), Began, "burst {burst}");
            for step in 1..=8u32 {
                assert_eq!(b.look(start + step * 10 * MS, owed(600, 900)), Behind);
            }
            assert_eq!(b.look(start + 90 * MS, owed(0, 100)), Fine, "caught up");
        }
    }

    #[test]
    fn nothing_at_stake_ends_a_stretch() {
        let t0 = Instant::now();
        let mut b = Backlog::new(1000, 100 * MS);
        assert_eq!(b.look(t0, owed(5000, 0)), Began);
        // No live alert waiting, or a replay ahead: not judged, and the stretch ends.
        assert_eq!(b.look(t0 + 90 * MS, None), Fine);
        assert_eq!(b.look(t0 + 150 * MS, owed(5000, 0)), Began, "a new stretch");
        assert_eq!(b.look(t0 + 249 * MS, owed(5000, 0)), Behind);
        assert_eq!(b.look(t0 + 250 * MS, owed(5000, 0)), Cut);
    }

    #[test]
    fn without_the_kernels_figure_a_full_socket_counts_as_the_bound() {
        let t0 = Instant::now();
        let mut b = Backlog::new(1000, 100 * MS);
        let unknown = |ours, stalled| {
            Some(Owed {
                ours,
                kernel: None,
                stalled,
            })
        };
        assert_eq!(
            b.look(t0, unknown(10, false)),
            Fine,
            "writing freely: ours only"
        );
        assert_eq!(
            b.look(t0 + 10 * MS, unknown(10, true)),
            Began,
            "stalled, an alert waits"
        );
        assert_eq!(b.look(t0 + 110 * MS, unknown(10, true)), Cut);
        let mut free = Backlog::new(1000, 100 * MS);
        assert_eq!(free.look(t0, unknown(900, false)), Fine);
        assert_eq!(free.look(t0 + 500 * MS, unknown(900, false)), Fine);
    }

    #[test]
    fn a_grace_of_zero_cuts_at_the_first_look_over() {
        let mut b = Backlog::new(1000, Duration::ZERO);
        assert_eq!(b.look(Instant::now(), owed(0, 1000)), Fine);
        assert_eq!(b.look(Instant::now(), owed(1, 1000)), Cut);
    }

    #[test]
    fn the_bound_is_what_linux_allots_for_the_send_buffer() {
        assert_eq!(Backlog::bound_for(128 << 10), 256 << 10);
        assert_eq!(Backlog::bound_for(0), 4 << 20);
        let b = Backlog::new(1000, Duration::from_secs(1));
        assert!(b.needs_kernel(1000) && !b.needs_kernel(1001));
        assert_eq!(b.tick(), 250 * MS);
        assert_eq!(Backlog::new(1, 100 * MS).tick(), 25 * MS);
    }

    #[test]
    fn the_kernels_figure_is_read_from_a_real_socket() {
        // A loopback pair whose reader never reads: what is written and not taken into the
        // peer's receive buffer stays in the send queue, and SIOCOUTQ says so.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use tokio::io::AsyncWriteExt as _;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, accepted) =
                tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
            let (_client, (mut server, _)) = (client.unwrap(), accepted.unwrap());
            let probe = SendQueue::of(&server);
            if cfg!(any(target_os = "linux", target_os = "android")) {
                assert_eq!(probe.unacknowledged(), Some(0), "nothing written yet");
            }
            let chunk = vec![7u8; 64 << 10];
            let mut written = 0usize;
            // Write until the socket is full (the peer's receive window closed).
            loop {
                match tokio::time::timeout(Duration::from_millis(200), server.write(&chunk)).await {
                    Ok(Ok(n)) => written += n,
                    _ => break,
                }
                assert!(written < 256 << 20, "the socket never filled");
            }
            if let Some(held) = probe.unacknowledged() {
                assert!(held > 0 && held <= written, "{held} of {written}");
            }
        });
    }
}
