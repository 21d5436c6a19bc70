//! Several sources' clocks on one time base: the environment's.
//!
//! In: every frame's source and timestamp, in the order frames reach the environment.
//! Out: the timestamp on the environment's time base, and, when a source's clock had to
//! be re-aligned (it went back or jumped ahead), what happened, for a `hardware_event`.
//!
//! Nodes stamp frames with their own clocks (an ESP32's microseconds since boot, a
//! replayed file's own timestamps), so two nodes of one room can read 1000 s apart while
//! hearing the same moment; the fusion of their maps (`placing.rs`) pairs maps at most
//! 0.5 s apart and would never pair theirs. The time base is the first source's clock
//! (with one source, its timestamps are used as they are, exactly as before). Every
//! later source gets an offset onto it:
//!
//! - **Joining**: a new source's first frame is taken to be sampled when the newest frame
//!   so far was (the room's clock as it reads now).
//! - **Tracking**: a source's frame that arrives after the reference's (the earliest
//!   joined source still fresh) was sampled after it, by half the reference's frame
//!   interval on average: `reference's latest time - t + interval / 2` is a candidate
//!   offset. The offset follows the median of the last [`WINDOW`] candidates (so network
//!   jitter, which delays some frames, does not move it), slewed by at most [`SLEW`] of
//!   each frame's own interval (a source's time never runs backwards or faster than
//!   1 + [`SLEW`] while it is corrected; clock drift of crystals, 10-100 ppm, is followed).
//!   Only frames with a frame of the reference just before them count (a source fed
//!   alone, after the others ended, keeps its offset).
//! - **Re-aligning**: a source whose clock goes back by more than [`JUMP_S`] (a node that
//!   rebooted, a 32-bit microsecond counter wrapping, a file replayed again) or jumps
//!   ahead of the room by more than [`JUMP_S`] between two of its frames (with frames of
//!   other sources in between to say how far the room went) continues from where it
//!   was, by as much as the room advanced; a source whose candidates all agree on an
//!   offset more than [`JUMP_S`] from its own (a full window of them) takes theirs. Each
//!   is reported once ([`Realigned`]).
//!
//! What it guarantees: sources whose frames reach the environment in the order they were
//! sampled, give or take the arrival jitter, are mapped onto one time base to within
//! that jitter plus a frame interval (median over the window: typically a few ms on a
//! LAN). What it does not: a node that buffers its frames and sends them in bursts is
//! placed at its bursts' arrival, late by its buffering; a replay run flat out
//! (speed 0) beside another source is not interleaved with it in time, so it is aligned
//! only at its first frame.
use std::collections::VecDeque;

/// A source's clock that disagrees with the room's by more than this many seconds
/// between two of its frames is re-aligned at once (the fusion pairs maps at most
/// `FUSE_MAX_AGE_S`, 0.5 s, apart).
pub const JUMP_S: f64 = 0.5;
/// Candidate offsets whose median a source's offset follows.
pub const WINDOW: usize = 32;
/// The most a source's offset moves per frame while it is tracked, as a fraction of the
/// frame's own interval.
pub const SLEW: f64 = 0.1;
/// A source whose newest frame is this many seconds behind the room's newest is no
/// longer the reference others follow.
pub const STALE_S: f64 = 2.0;
/// Sources an environment keeps clocks for; a further source replaces the one silent
/// the longest (it joins again if it comes back).
pub const MAX_CLOCKS: usize = 64;
/// A 32-bit microsecond counter (ESP32 `local_timestamp` on many firmwares) wraps
/// after this many seconds.
const WRAP_S: f64 = 4294.967296;

/// A source's clock re-aligned onto the environment's time base.
#[derive(Debug, Clone, PartialEq)]
pub struct Realigned {
    /// The source.
    pub source: String,
    /// The offset now added to its timestamps, seconds.
    pub offset_s: f64,
    /// How much the offset changed, seconds.
    pub step_s: f64,
    /// What happened, in words.
    pub reason: String,
    /// Whether it was a 32-bit microsecond counter wrapping (routine, every 71.6 min).
    pub wrapped: bool,
}

struct Clock {
    source: String,
    /// Added to the source's timestamps to put them on the time base.
    offset: f64,
    /// The last frame's own timestamp, and on the time base.
    last_t: f64,
    last_mapped: f64,
    /// The source's usual frame interval (its own clock), once two frames came.
    interval: Option<f64>,
    /// The newest time of the other sources when this source's last frame came.
    others_at_last: Option<f64>,
    /// This source's frames since the reference's latest frame.
    since_reference: u32,
    candidates: VecDeque<f64>,
}

/// The environment's clocks (see the module docs).
#[derive(Default)]
pub(crate) struct Clocks {
    /// In the order the sources joined.
    clocks: Vec<Clock>,
}

impl Clocks {
    /// `t` of `source`'s frame on the environment's time base, and the re-alignment this
    /// frame caused, if any. Non-finite timestamps pass unchanged.
    pub(crate) fn map(&mut self, source: &str, t: f64) -> (f64, Option<Realigned>) {
        if !t.is_finite() {
            return (t, None);
        }
        let Some(i) = self.clocks.iter().position(|c| c.source == source) else {
            return (self.join(source, t), None);
        };
        let newest_other = self.newest_except(i);
        let reference = self.reference();
        if reference == Some(i) {
            for (j, c) in self.clocks.iter_mut().enumerate() {
                if j != i {
                    c.since_reference = 0;
                }
            }
        }
        let candidate = match reference {
            Some(r) if r != i => {
                let (rc, c) = (&self.clocks[r], &self.clocks[i]);
                let own = c.interval.unwrap_or(0.0).max(1e-6);
                let limit = rc.interval.map_or(1.0, |ri| (ri / own).ceil()) as u32 + 1;
                (c.since_reference < limit)
                    .then(|| rc.last_mapped - t + 0.5 * rc.interval.unwrap_or(0.0))
            }
            _ => None,
        };
        let several = self.clocks.len() > 1;
        let c = &mut self.clocks[i];
        let dt = t - c.last_t;
        // The room's advance since this source's last frame, when other sources sent
        // frames meanwhile (a witness of how much time passed).
        let advance = match (newest_other, c.others_at_last) {
            (Some(now), Some(then)) if now > then => Some(now - then),
            _ => None,
        };
        let mut realigned = None;
        if several && dt < -JUMP_S {
            // Went back: continue from where it was, by as much as the room advanced.
            let step = advance.or(c.interval).unwrap_or(0.0);
            let wrapped = (dt + WRAP_S).abs() < JUMP_S;
            let reason = if wrapped {
                "its 32-bit microsecond clock wrapped".to_string()
            } else {
                format!("its clock went back {:.3} s (a restart?)", -dt)
            };
            let mut r = c.realign(c.last_mapped + step - t, reason);
            r.wrapped = wrapped;
            realigned = Some(r);
        } else if let Some(advance) = advance.filter(|a| dt - a > JUMP_S) {
            let reason = format!(
                "its clock jumped {:.3} s ahead of the room's {:.3} s",
                dt, advance
            );
            realigned = Some(c.realign(c.last_mapped + advance - t, reason));
        } else if let Some(cand) = candidate {
            c.candidates.push_back(cand);
            if c.candidates.len() > WINDOW {
                c.candidates.pop_front();
            }
            let median = median(&c.candidates);
            if c.candidates.len() == WINDOW && (median - c.offset).abs() > JUMP_S {
                let reason = format!(
                    "its frames arrive {:.3} s from where its clock puts them",
                    median - c.offset
                );
                realigned = Some(c.realign(median, reason));
            } else if c.candidates.len() >= 4 && dt > 0.0 {
                let max = SLEW * dt;
                c.offset += (median - c.offset).clamp(-max, max);
            }
        }
        if dt > 0.0 && dt < 1.0 {
            c.interval = Some(c.interval.map_or(dt, |iv| 0.9 * iv + 0.1 * dt));
        }
        c.since_reference = c.since_reference.saturating_add(1);
        c.last_t = t;
        c.last_mapped = t + c.offset;
        c.others_at_last = newest_other;
        (
            c.last_mapped,
            realigned.map(|r| Realigned {
                source: source.to_string(),
                ..r
            }),
        )
    }

    /// The offset added to `source`'s timestamps, once it sent a frame.
    pub(crate) fn offset(&self, source: &str) -> Option<f64> {
        self.clocks
            .iter()
            .find(|c| c.source == source)
            .map(|c| c.offset)
    }

    fn join(&mut self, source: &str, t: f64) -> f64 {
        let newest = self.clocks.iter().map(|c| c.last_mapped).reduce(f64::max);
        if self.clocks.len() >= MAX_CLOCKS {
            let stalest = (0..self.clocks.len())
                .min_by(|&a, &b| {
                    self.clocks[a]
                        .last_mapped
                        .total_cmp(&self.clocks[b].last_mapped)
                })
                .unwrap_or(0);
            self.clocks.remove(stalest);
        }
        // The first source defines the time base; a later one starts at the room's now.
        let offset = newest.map_or(0.0, |now| now - t);
        self.clocks.push(Clock {
            source: source.to_string(),
            offset,
            last_t: t,
            last_mapped: t + offset,
            interval: None,
            others_at_last: newest,
            since_reference: 0,
            candidates: VecDeque::with_capacity(WINDOW),
        });
        t + offset
    }

    /// The newest time on the time base of every source but `i`.
    fn newest_except(&self, i: usize) -> Option<f64> {
        (self.clocks.iter().enumerate())
            .filter(|(j, _)| *j != i)
            .map(|(_, c)| c.last_mapped)
            .reduce(f64::max)
    }

    /// The source the others follow: the earliest joined that is still fresh.
    fn reference(&self) -> Option<usize> {
        let newest = self.clocks.iter().map(|c| c.last_mapped).reduce(f64::max)?;
        self.clocks
            .iter()
            .position(|c| newest - c.last_mapped <= STALE_S)
    }
}

impl Clock {
    /// Takes `offset` (its candidates start over); what changed, for the report.
    fn realign(&mut self, offset: f64, reason: String) -> Realigned {
        let step = offset - self.offset;
        self.offset = offset;
        self.candidates.clear();
        Realigned {
            source: String::new(),
            offset_s: offset,
            step_s: step,
            reason,
            wrapped: false,
        }
    }
}

fn median(v: &VecDeque<f64>) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sources at `rate_a` / `rate_b` Hz sampling the same `seconds` of true time,
    /// their clocks `offset_b` apart, fed in the order they sampled, each frame delayed
    /// by a jitter (0 to `jitter` s, deterministic): the mapped times minus the true ones,
    /// per source, after `settle` seconds.
    fn run(
        rate_a: f64,
        rate_b: f64,
        offset_b: f64,
        jitter: f64,
        seconds: f64,
        settle: f64,
    ) -> (Vec<f64>, Vec<f64>, Vec<Realigned>) {
        let mut frames: Vec<(f64, usize, f64)> = Vec::new(); // (arrival, source, true t)
        let mut k = 0u64;
        for (s, rate) in [(0usize, rate_a), (1, rate_b)] {
            let mut t = 0.013 * s as f64;
            while t < seconds {
                k = k
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let delay = jitter * ((k >> 11) as f64 / (1u64 << 53) as f64);
                frames.push((t + delay, s, t));
                t += 1.0 / rate;
            }
        }
        frames.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut clocks = Clocks::default();
        let (mut ea, mut eb, mut events) = (Vec::new(), Vec::new(), Vec::new());
        for (_, s, t) in frames {
            let own = if s == 0 { t } else { t + offset_b };
            let (mapped, r) = clocks.map(["a", "b"][s], own);
            events.extend(r);
            if t >= settle {
                [&mut ea, &mut eb][s].push(mapped - t);
            }
        }
        (ea, eb, events)
    }

    fn worst(v: &[f64]) -> f64 {
        v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
    }

    #[test]
    fn one_source_keeps_its_own_timestamps() {
        let mut c = Clocks::default();
        for (t, back) in [(5.0, None), (5.01, None), (1.0, None), (2.0, None)] {
            assert_eq!(c.map("a", t), (t, back));
        }
        assert_eq!(c.offset("a"), Some(0.0));
    }

    #[test]
    fn clocks_1000_s_apart_land_on_one_base_within_the_jitter() {
        // Same rate, no jitter: within a frame interval at once.
        let (a, b, events) = run(100.0, 100.0, 1000.0, 0.0, 20.0, 0.5);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(worst(&a), 0.0, "the first source is the time base");
        assert!(worst(&b) < 0.011, "{}", worst(&b));
        // 30 ms of arrival jitter and unequal rates (ESP32 at 100 Hz beside a 30 Hz
        // node): still within the jitter, and the 0.5 s fusion pairs them.
        let (_, b, events) = run(100.0, 30.0, -1000.0, 0.03, 30.0, 5.0);
        assert!(events.is_empty(), "{events:?}");
        let mean = b.iter().sum::<f64>() / b.len() as f64;
        assert!(
            worst(&b) < 0.05 && mean.abs() < 0.02,
            "{} {mean}",
            worst(&b)
        );
        let (_, b, _) = run(30.0, 100.0, 1000.0, 0.03, 30.0, 5.0);
        assert!(worst(&b) < 0.05, "{}", worst(&b));
    }

    #[test]
    fn a_clock_that_goes_back_or_jumps_is_realigned_and_says_so() {
        let mut c = Clocks::default();
        let mut events = Vec::new();
        let mut err_b = Vec::new();
        for n in 0..3000 {
            let t = n as f64 * 0.01;
            // b restarts at n = 1000 (its clock back to 0) and steps 30 s ahead at 2000.
            let own_b = match n {
                0..1000 => t + 1000.0,
                1000..2000 => t - 10.0,
                _ => t + 20.0,
            };
            events.extend(c.map("a", t).1);
            let (mapped, r) = c.map("b", own_b);
            events.extend(r);
            err_b.push(mapped - t);
        }
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events.iter().all(|e| e.source == "b"));
        assert!(
            events[0].reason.contains("went back"),
            "{}",
            events[0].reason
        );
        assert!((events[0].step_s - 1010.0).abs() < 0.05, "{:?}", events[0]);
        assert!(events[1].reason.contains("jumped"), "{}", events[1].reason);
        assert!((events[1].step_s + 30.0).abs() < 0.05, "{:?}", events[1]);
        // Never off by more than a couple of frames, through both.
        assert!(worst(&err_b) < 0.03, "{}", worst(&err_b));
    }

    #[test]
    fn a_wrapping_counter_and_a_delayed_burst() {
        let mut c = Clocks::default();
        let mut events = Vec::new();
        // b is an ESP32 whose 32-bit microsecond clock wraps at n = 500.
        for n in 0..1000 {
            let t = n as f64 * 0.01;
            let own_b = (4290.0 + t) % WRAP_S;
            events.extend(c.map("a", t).1);
            events.extend(c.map("b", own_b).1);
        }
        assert_eq!(events.len(), 1);
        assert!(events[0].reason.contains("wrapped"), "{}", events[0].reason);
        // b's frames held back 0.8 s and sent in a burst: jitter, not a jump.
        let mut held = Vec::new();
        for n in 1000..1200 {
            let t = n as f64 * 0.01;
            events.extend(c.map("a", t).1);
            if (1100..1180).contains(&n) {
                held.push(t);
                continue;
            }
            for h in held.drain(..) {
                events.extend(c.map("b", (4290.0 + h) % WRAP_S).1);
            }
            events.extend(c.map("b", (4290.0 + t) % WRAP_S).1);
        }
        assert_eq!(events.len(), 1, "{events:?}");
        let offset = c.offset("b").unwrap();
        assert!((offset - (WRAP_S - 4290.0)).abs() < 0.03, "{offset}");
    }

    #[test]
    fn the_number_of_clocks_is_bounded() {
        let mut c = Clocks::default();
        for k in 0..(MAX_CLOCKS + 10) {
            c.map(&format!("s{k}"), k as f64);
        }
        assert_eq!(c.clocks.len(), MAX_CLOCKS);
        assert!(c.offset("s0").is_none() && c.offset(&format!("s{}", MAX_CLOCKS + 9)).is_some());
    }
}
