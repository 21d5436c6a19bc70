//! `analytics_stream`: metrics over fixed windows (default one minute), emitted when a
//! window closes.
//!
//! Per window: occupancy current (at the close), time-weighted average and peak;
//! movement events (a person's activity becoming walking); stationary time
//! (person-seconds standing, sitting or lying); activity level (the share of
//! person-time spent walking); total detections and their mean presence score;
//! tracking quality (mean quality of the active tracks, sampled every frame). Trends
//! compare with the previous window: occupancy and activity "increasing",
//! "decreasing" or "stable"; confidence "improving", "declining" or "stable".

use crate::track::detection::class;

/// The metrics of one closed window (see the module's description).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowMetrics {
    /// When the window closed, seconds.
    pub t: f64,
    /// Its length, seconds.
    pub window_s: f64,
    /// People at the close.
    pub occupancy_current: usize,
    /// Time-weighted mean number of people.
    pub occupancy_average: f64,
    /// Most people at once.
    pub occupancy_peak: usize,
    /// Activity changes into walking.
    pub movement_events: u64,
    /// Person-seconds standing, sitting or lying.
    pub stationary_time_s: f64,
    /// Share of person-time spent walking, in `[0, 1]`.
    pub activity_level: f64,
    /// Detections seen.
    pub total_detections: u64,
    /// Their mean presence score.
    pub average_confidence: f64,
    /// Mean quality of the active tracks, sampled every frame.
    pub tracking_quality: f64,
    /// Against the previous window: `"increasing"`, `"decreasing"` or `"stable"`.
    pub occupancy_trend: &'static str,
    /// Against the previous window: `"increasing"`, `"decreasing"` or `"stable"`.
    pub activity_trend: &'static str,
    /// Against the previous window: `"improving"`, `"declining"` or `"stable"`.
    pub confidence_trend: &'static str,
}

impl WindowMetrics {
    /// The spec's window name: "1_minute", "5_minutes", or "30_seconds".
    pub(crate) fn window_name(&self) -> String {
        let s = self.window_s.round().max(1.0) as u64;
        if s.is_multiple_of(60) {
            let m = s / 60;
            format!("{m}_minute{}", if m == 1 { "" } else { "s" })
        } else {
            format!("{s}_second{}", if s == 1 { "" } else { "s" })
        }
    }
}

/// What one frame contributes.
#[derive(Debug, Clone, Default)]
pub struct FrameSample {
    /// People in the room this frame.
    pub occupancy: usize,
    /// The reported activity of each active person (indices into `ACTIVITIES`).
    pub activities: Vec<usize>,
    /// Activity changes into walking this frame.
    pub movement_events: u64,
    /// Presence scores of this frame's detections.
    pub detection_scores: Vec<f64>,
    /// Quality of each active track.
    pub qualities: Vec<f64>,
}

/// Windowed metrics of one environment: one window open at a time.
#[derive(Debug, Clone)]
pub struct Window {
    /// The window's length, seconds.
    pub window_s: f64,
    start: Option<f64>,
    last_t: Option<f64>,
    last_occupancy: usize,
    occ_time: f64,
    peak: usize,
    moves: u64,
    stationary: f64,
    walking: f64,
    person_time: f64,
    detections: u64,
    score_sum: f64,
    quality_sum: f64,
    quality_n: u64,
    previous: Option<WindowMetrics>,
}

fn trend(now: f64, before: f64, rel: f64, up: &'static str, down: &'static str) -> &'static str {
    let tol = rel * before.abs().max(0.1);
    if now > before + tol {
        up
    } else if now < before - tol {
        down
    } else {
        "stable"
    }
}

impl Window {
    /// `window_s` is clamped to at least one second.
    pub fn new(window_s: f64) -> Self {
        Window {
            window_s: if window_s.is_finite() {
                window_s.max(1.0)
            } else {
                60.0
            },
            start: None,
            last_t: None,
            last_occupancy: 0,
            occ_time: 0.0,
            peak: 0,
            moves: 0,
            stationary: 0.0,
            walking: 0.0,
            person_time: 0.0,
            detections: 0,
            score_sum: 0.0,
            quality_sum: 0.0,
            quality_n: 0,
            previous: None,
        }
    }

    fn reset(&mut self, t: f64) {
        let prev = self.previous.take();
        let ws = self.window_s;
        let occ = self.last_occupancy;
        *self = Window::new(ws);
        self.previous = prev;
        self.start = Some(t);
        self.last_t = Some(t);
        self.last_occupancy = occ;
        self.peak = occ;
    }

    /// Adds the frame at time `t`; returns the metrics of every window that closed.
    pub fn update(&mut self, t: f64, s: &FrameSample) -> Vec<WindowMetrics> {
        if !t.is_finite() || self.last_t.is_some_and(|l| t < l) {
            return Vec::new();
        }
        let Some(start) = self.start else {
            self.reset(t);
            self.last_occupancy = s.occupancy;
            self.peak = s.occupancy;
            return self.update(t, s);
        };
        let dt = t - self.last_t.unwrap_or(t);
        // The interval since the last frame is credited with the state then.
        self.occ_time += dt * self.last_occupancy as f64;
        self.last_t = Some(t);
        self.last_occupancy = s.occupancy;
        self.peak = self.peak.max(s.occupancy);
        self.moves += s.movement_events;
        for &a in &s.activities {
            self.person_time += dt;
            if a == class::WALKING || a == class::FALLING {
                self.walking += dt;
            } else {
                self.stationary += dt;
            }
        }
        self.detections += s.detection_scores.len() as u64;
        self.score_sum += s.detection_scores.iter().sum::<f64>();
        self.quality_sum += s.qualities.iter().sum::<f64>();
        self.quality_n += s.qualities.len() as u64;
        if t - start < self.window_s {
            return Vec::new();
        }
        let span = (t - start).max(1e-9);
        let prev = self.previous.clone();
        let avg_conf = if self.detections > 0 {
            self.score_sum / self.detections as f64
        } else {
            0.0
        };
        let level = if self.person_time > 0.0 {
            self.walking / self.person_time
        } else {
            0.0
        };
        let occ_avg = self.occ_time / span;
        let m = WindowMetrics {
            t,
            window_s: self.window_s,
            occupancy_current: s.occupancy,
            occupancy_average: occ_avg,
            occupancy_peak: self.peak,
            movement_events: self.moves,
            stationary_time_s: self.stationary,
            activity_level: level,
            total_detections: self.detections,
            average_confidence: avg_conf,
            tracking_quality: if self.quality_n > 0 {
                self.quality_sum / self.quality_n as f64
            } else {
                0.0
            },
            occupancy_trend: prev.as_ref().map_or("stable", |p| {
                trend(
                    occ_avg,
                    p.occupancy_average,
                    0.1,
                    "increasing",
                    "decreasing",
                )
            }),
            activity_trend: prev.as_ref().map_or("stable", |p| {
                trend(level, p.activity_level, 0.1, "increasing", "decreasing")
            }),
            confidence_trend: prev.as_ref().map_or("stable", |p| {
                trend(
                    avg_conf,
                    p.average_confidence,
                    0.02,
                    "improving",
                    "declining",
                )
            }),
        };
        self.previous = Some(m.clone());
        self.reset(t);
        vec![m]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_peaks_and_trends() {
        let mut w = Window::new(10.0);
        let mut out = Vec::new();
        for n in 0..=400 {
            let t = n as f64 * 0.1;
            // 1 person for the first window, 2 in the second, 2 walking in the third.
            let occ = if t < 10.0 { 1 } else { 2 };
            let act = if t >= 20.0 {
                class::WALKING
            } else {
                class::SITTING
            };
            let s = FrameSample {
                occupancy: occ,
                activities: vec![act; occ],
                movement_events: u64::from(n == 205),
                detection_scores: vec![0.8; occ],
                qualities: vec![0.9; occ],
            };
            out.extend(w.update(t, &s));
        }
        assert_eq!(out.len(), 4);
        assert!(
            (out[0].occupancy_average - 1.0).abs() < 0.02,
            "{:?}",
            out[0]
        );
        assert_eq!(out[0].window_name(), "10_seconds");
        assert!((out[1].occupancy_average - 2.0).abs() < 0.02);
        assert_eq!(out[1].occupancy_trend, "increasing");
        assert_eq!(out[1].occupancy_peak, 2);
        assert!((out[1].stationary_time_s - 20.0).abs() < 0.3);
        assert_eq!(out[2].movement_events, 1);
        assert!(out[2].activity_level > 0.95);
        assert_eq!(out[2].activity_trend, "increasing");
        assert_eq!(out[3].activity_trend, "stable");
        assert_eq!(out[3].confidence_trend, "stable");
        assert_eq!(out[3].total_detections, 200);
        assert!((out[3].average_confidence - 0.8).abs() < 1e-9);
        assert_eq!(Window::new(60.0).window_s, 60.0);
    }
}
