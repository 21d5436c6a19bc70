//! Client-message rate limits (the spec's "Message Rate Limits" table), as sliding windows.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::config::WindowLimit;

/// The category a client message counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Subscription,
    Heartbeat,
    General,
}

impl Category {
    pub fn for_message(message_type: &str) -> Category {
        match message_type {
            "subscribe" | "unsubscribe" => Category::Subscription,
            "heartbeat" => Category::Heartbeat,
            _ => Category::General,
        }
    }
}

/// Refusal details, as the RATE_LIMIT_EXCEEDED error reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Messages of this category received in the current window, refused ones included.
    pub current_rate: u32,
    pub limit: u32,
    pub window: Duration,
    /// Seconds until a message of this category will be accepted again (rounded up).
    pub retry_after: u64,
}

/// A sliding window over accepted messages, with a count of refused ones.
#[derive(Debug)]
pub struct SlidingWindow {
    limit: WindowLimit,
    /// Messages within `grace` of the window's end still pass (timer jitter).
    grace: Duration,
    accepted: VecDeque<Instant>,
    refused: VecDeque<Instant>,
}

impl SlidingWindow {
    pub fn new(limit: WindowLimit, grace: Duration) -> Self {
        SlidingWindow {
            limit,
            grace,
            accepted: VecDeque::new(),
            refused: VecDeque::new(),
        }
    }

    pub fn check(&mut self, now: Instant) -> Result<(), Refusal> {
        let horizon = self.limit.window.saturating_sub(self.grace);
        while self
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= horizon)
        {
            self.accepted.pop_front();
        }
        while self
            .refused
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.limit.window)
        {
            self.refused.pop_front();
        }
        if (self.accepted.len() as u32) < self.limit.max {
            self.accepted.push_back(now);
            return Ok(());
        }
        self.refused.push_back(now);
        let oldest = *self
            .accepted
            .front()
            .expect("a full window has an oldest entry");
        let wait = horizon.saturating_sub(now.duration_since(oldest));
        Err(Refusal {
            current_rate: (self.accepted.len() + self.refused.len()) as u32,
            limit: self.limit.max,
            window: self.limit.window,
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }
}

/// Describes a window the way the spec writes it: `1_minute`, `30_seconds`.
pub fn window_name(window: Duration) -> String {
    let s = window.as_secs();
    match s {
        60 => "1_minute".into(),
        s if s % 60 == 0 => format!("{}_minutes", s / 60),
        1 => "1_second".into(),
        s => format!("{s}_seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_refuses_past_limit_then_recovers() {
        let mut w = SlidingWindow::new(
            WindowLimit {
                max: 10,
                window: Duration::from_secs(60),
            },
            Duration::ZERO,
        );
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(w.check(t0 + Duration::from_secs(i)).is_ok());
        }
        let r = w.check(t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(r.limit, 10);
        assert_eq!(r.current_rate, 11);
        assert_eq!(r.retry_after, 50);
        assert!(w.check(t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn heartbeat_grace_allows_jitter() {
        let mut w = SlidingWindow::new(
            WindowLimit {
                max: 1,
                window: Duration::from_secs(30),
            },
            Duration::from_secs(1),
        );
        let t0 = Instant::now();
        assert!(w.check(t0).is_ok());
        assert!(w.check(t0 + Duration::from_millis(29_500)).is_ok());
        assert!(w.check(t0 + Duration::from_millis(35_000)).is_err());
    }
}
