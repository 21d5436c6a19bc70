//! Subscriptions: what a client asked for, validated field by field, and the matching of
//! events against it.
//!
//! A subscription is `{event_type, filters, throttle, quality}` as the spec shows. Every
//! invalid value is refused with the field's dotted path and the reason, so a client sees
//! `SUBSCRIPTION_ERROR` naming `filters.min_confidence`, never a subscription that silently
//! matches nothing.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::auth::EnvironmentGrant;
use super::events::{Delivery, EventType, Quality, MAX_POSE_FPS};

/// Why a subscription was refused: the field and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Per-message compression a subscription or connection asks for (the spec's `compression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppCompression {
    None,
    Gzip,
    Deflate,
}

impl AppCompression {
    pub fn parse(s: &str) -> Option<AppCompression> {
        match s {
            "none" => Some(AppCompression::None),
            "gzip" => Some(AppCompression::Gzip),
            "deflate" => Some(AppCompression::Deflate),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AppCompression::None => "none",
            AppCompression::Gzip => "gzip",
            AppCompression::Deflate => "deflate",
        }
    }
}

/// Which parts of a pose frame a subscription receives. Events are serialized once per
/// distinct view, and the bytes are shared by every subscription with that view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoseView {
    /// `min_confidence` as f64 bits (0 = no filter).
    pub min_confidence_bits: u64,
    pub keypoints: bool,
    pub dense_pose: bool,
    pub velocity: bool,
}

impl PoseView {
    /// The view that changes nothing: every person, every field.
    pub const FULL: PoseView = PoseView {
        min_confidence_bits: 0,
        keypoints: true,
        dense_pose: true,
        velocity: true,
    };

    pub fn min_confidence(&self) -> f64 {
        f64::from_bits(self.min_confidence_bits)
    }
}

/// The filters of one subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Filters {
    pub environment_id: Option<String>,
    pub min_confidence: Option<f64>,
    pub include_keypoints: bool,
    pub include_dense_pose: bool,
    pub include_velocity: bool,
    pub severity: Option<Vec<String>>,
    pub event_types: Option<Vec<String>>,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            environment_id: None,
            min_confidence: None,
            include_keypoints: true,
            include_dense_pose: false,
            include_velocity: false,
            severity: None,
            event_types: None,
        }
    }
}

/// Delivery limits of one subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Throttle {
    /// Events per second per environment; `None` for alerts (never throttled).
    pub max_fps: Option<f64>,
    /// Events that may wait for this client before the oldest is dropped (frames and
    /// limited streams); alerts have no buffer limit here (see `alert_queue_capacity`).
    pub buffer_size: usize,
    pub compression: Option<AppCompression>,
}

/// The lowest `max_fps` a subscription may ask for: one event per 100 s. Below it the
/// interval between events (`1 / max_fps`) stops being a meaningful schedule, and at
/// 1e-300 it does not fit a `Duration` at all.
pub const MIN_MAX_FPS: f64 = 0.01;

/// Severities a `severity` filter may name, lowest first.
pub const SEVERITIES: [&str; 8] = [
    "debug", "info", "low", "medium", "warning", "high", "error", "critical",
];

/// A validated subscription with its throttle state.
#[derive(Debug)]
pub struct Subscription {
    pub id: String,
    /// `,"subscription_id":"<id>"`, written into each message's metadata; built once.
    pub wire_tag: std::sync::Arc<[u8]>,
    pub event_type: EventType,
    pub filters: Filters,
    pub throttle: Throttle,
    pub quality: Option<Quality>,
    /// When the next event is due, per environment ("" for none): `max_fps` holds per
    /// environment, so a room does not starve another.
    next_due: HashMap<String, Instant>,
    /// Token bucket of limited streams (system, analytics): bursts up to the buffer size
    /// pass, and the long-run rate is the table's per-minute limit.
    bucket: Option<(f64, Instant)>,
}

fn allowed_filters(t: EventType) -> &'static [&'static str] {
    match t {
        EventType::PoseData => &[
            "environment_id",
            "min_confidence",
            "include_keypoints",
            "include_dense_pose",
            "include_velocity",
        ],
        EventType::PoseDataTrajectory => &["environment_id", "min_confidence"],
        EventType::TrackingUpdate => &["environment_id", "min_confidence", "event_types"],
        EventType::ActivityEvent => &[
            "environment_id",
            "min_confidence",
            "severity",
            "event_types",
        ],
        EventType::OccupancyUpdate => &["environment_id", "min_confidence"],
        EventType::SystemEvent | EventType::HardwareEvent => {
            &["environment_id", "severity", "event_types"]
        }
        EventType::PerformanceUpdate => &["severity"],
        EventType::ConfigUpdate => &[],
        EventType::AnalyticsStream => &["environment_id"],
    }
}

/// Throttle keys also accepted inside `filters` (the spec's update_subscription example
/// puts `max_fps` there).
const THROTTLE_KEYS: [&str; 3] = ["max_fps", "buffer_size", "compression"];

fn parse_bool(v: &Value, field: &str) -> Result<bool, FieldError> {
    v.as_bool()
        .ok_or_else(|| FieldError::new(field, "must be true or false"))
}

/// Most entries of a list filter (`event_types`, `severity`): every event is compared
/// with every entry, so a long list made each publish slower for everyone.
pub const MAX_LIST_ITEMS: usize = 32;

/// Longest string a filter may hold (an environment id, an event kind), in characters.
pub const MAX_STRING_CHARS: usize = 128;

fn check_string(field: &str, s: &str) -> Result<(), FieldError> {
    if s.chars().count() > MAX_STRING_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_STRING_CHARS} characters"),
        ));
    }
    Ok(())
}

fn parse_string_list(
    v: &Value,
    field: &str,
    allowed: Option<&[&str]>,
) -> Result<Vec<String>, FieldError> {
    let items = v
        .as_array()
        .ok_or_else(|| FieldError::new(field, "must be a list of strings"))?;
    if items.len() > MAX_LIST_ITEMS {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_LIST_ITEMS} entries"),
        ));
    }
    if items.is_empty() {
        return Err(FieldError::new(
            field,
            "must not be empty (omit the filter to match all)",
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let s = item
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| FieldError::new(field, "must be a list of non-empty strings"))?;
        check_string(field, s)?;
        if let Some(allowed) = allowed {
            if !allowed.contains(&s) {
                return Err(FieldError::new(
                    field,
                    format!("unknown value '{s}' (one of: {})", allowed.join(", ")),
                ));
            }
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

impl Filters {
    /// Applies the keys of `obj` on top of `self`, checking each against the event type.
    fn apply(&mut self, t: EventType, obj: &Map<String, Value>) -> Result<(), FieldError> {
        let allowed = allowed_filters(t);
        for (key, v) in obj {
            let field = format!("filters.{key}");
            if THROTTLE_KEYS.contains(&key.as_str()) {
                continue; // handled by Throttle::apply
            }
            if !allowed.contains(&key.as_str()) {
                let reason = if allowed.is_empty() {
                    format!("{} takes no filters", t.as_str())
                } else {
                    format!(
                        "unknown filter for {} (allowed: {})",
                        t.as_str(),
                        allowed.join(", ")
                    )
                };
                return Err(FieldError::new(field, reason));
            }
            match key.as_str() {
                "environment_id" => match v {
                    Value::Null => self.environment_id = None,
                    Value::String(s) if !s.is_empty() => {
                        check_string(&field, s)?;
                        self.environment_id = Some(s.clone())
                    }
                    _ => return Err(FieldError::new(field, "must be a non-empty string")),
                },
                "min_confidence" => {
                    let x = v
                        .as_f64()
                        .filter(|x| (0.0..=1.0).contains(x))
                        .ok_or_else(|| FieldError::new(&field, "Value must be between 0 and 1"))?;
                    self.min_confidence = Some(x);
                }
                "include_keypoints" => self.include_keypoints = parse_bool(v, &field)?,
                "include_dense_pose" => self.include_dense_pose = parse_bool(v, &field)?,
                "include_velocity" => self.include_velocity = parse_bool(v, &field)?,
                "severity" => {
                    self.severity = Some(parse_string_list(v, &field, Some(&SEVERITIES))?)
                }
                "event_types" => self.event_types = Some(parse_string_list(v, &field, None)?),
                _ => unreachable!("allowed_filters lists only handled keys"),
            }
        }
        Ok(())
    }
}

impl Throttle {
    fn default_for(t: EventType, quality: Option<Quality>) -> Throttle {
        match t.delivery() {
            Delivery::Frames => {
                let (fps, buffer) = quality.unwrap_or(Quality::Low).preset();
                Throttle {
                    max_fps: Some(fps),
                    buffer_size: buffer,
                    compression: None,
                }
            }
            Delivery::Limited { per_minute, buffer } => Throttle {
                max_fps: Some(per_minute as f64 / 60.0),
                buffer_size: buffer,
                compression: None,
            },
            Delivery::Alert => Throttle {
                max_fps: None,
                buffer_size: 0,
                compression: None,
            },
        }
    }

    /// The highest rate a subscription of this type may ask for.
    fn max_rate(t: EventType) -> Option<f64> {
        match t.delivery() {
            Delivery::Frames => Some(MAX_POSE_FPS),
            Delivery::Limited { per_minute, .. } => Some(per_minute as f64 / 60.0),
            Delivery::Alert => None,
        }
    }

    fn apply(
        &mut self,
        t: EventType,
        obj: &Map<String, Value>,
        section: &str,
        only_throttle_keys: bool,
    ) -> Result<(), FieldError> {
        for (key, v) in obj {
            let field = format!("{section}.{key}");
            match key.as_str() {
                "max_fps" => {
                    let limit = Throttle::max_rate(t).ok_or_else(|| {
                        FieldError::new(
                            &field,
                            format!("{} is an alert stream and is never throttled", t.as_str()),
                        )
                    })?;
                    let x = v
                        .as_f64()
                        .ok_or_else(|| FieldError::new(&field, "must be a number"))?;
                    if !(x.is_finite() && (MIN_MAX_FPS..=limit).contains(&x)) {
                        return Err(FieldError::new(
                            &field,
                            format!("must be from {MIN_MAX_FPS} to {limit} for {}", t.as_str()),
                        ));
                    }
                    self.max_fps = Some(x);
                }
                "buffer_size" => {
                    if matches!(t.delivery(), Delivery::Alert) {
                        return Err(FieldError::new(
                            &field,
                            format!(
                                "{} is an alert stream and is never buffered-and-dropped",
                                t.as_str()
                            ),
                        ));
                    }
                    let n = v
                        .as_u64()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| {
                            FieldError::new(&field, "must be an integer from 1 to 100")
                        })?;
                    self.buffer_size = n as usize;
                }
                "compression" => {
                    let c = v.as_str().and_then(AppCompression::parse).ok_or_else(|| {
                        FieldError::new(&field, "must be one of: gzip, deflate, none")
                    })?;
                    self.compression = Some(c);
                }
                _ if only_throttle_keys => {}
                _ => {
                    return Err(FieldError::new(
                        field,
                        "unknown throttle setting (allowed: max_fps, buffer_size, compression)",
                    ))
                }
            }
        }
        Ok(())
    }
}

fn as_object<'a>(
    v: Option<&'a Value>,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, FieldError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(FieldError::new(field, "must be an object")),
    }
}

impl Subscription {
    /// Parses one entry of a subscribe message's `subscriptions` list.
    pub fn parse(id: String, spec: &Value, grant: &EnvironmentGrant) -> Result<Self, FieldError> {
        let obj = spec.as_object().ok_or_else(|| {
            FieldError::new("subscriptions[]", "each subscription must be an object")
        })?;
        for key in obj.keys() {
            if !["event_type", "filters", "throttle", "quality"].contains(&key.as_str()) {
                return Err(FieldError::new(
                    key.clone(),
                    "unknown subscription field (allowed: event_type, filters, throttle, quality)",
                ));
            }
        }
        let name = obj
            .get("event_type")
            .and_then(Value::as_str)
            .ok_or_else(|| FieldError::new("event_type", "is required and must be a string"))?;
        let event_type = EventType::parse(name).ok_or_else(|| {
            let names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            FieldError::new(
                "event_type",
                format!("unknown event type '{name}' (one of: {})", names.join(", ")),
            )
        })?;
        let quality = match obj.get("quality") {
            None | Some(Value::Null) => None,
            Some(v) => {
                if !event_type.is_pose() && event_type != EventType::PoseDataTrajectory {
                    return Err(FieldError::new(
                        "quality",
                        "applies to pose_data subscriptions only",
                    ));
                }
                Some(
                    v.as_str()
                        .and_then(Quality::parse)
                        .ok_or_else(|| FieldError::new("quality", "must be 'low' or 'high'"))?,
                )
            }
        };
        let wire_tag = format!(",\"subscription_id\":{}", Value::from(id.as_str()));
        let mut sub = Subscription {
            wire_tag: wire_tag.into_bytes().into(),
            id,
            event_type,
            filters: Filters::default(),
            throttle: Throttle::default_for(event_type, quality),
            quality,
            next_due: HashMap::new(),
            bucket: None,
        };
        sub.update(obj.get("filters"), obj.get("throttle"), grant)?;
        Ok(sub)
    }

    /// Applies new filters and throttle settings (subscribe and update_subscription share
    /// this, so both validate the same way). On error nothing changes.
    pub fn update(
        &mut self,
        filters: Option<&Value>,
        throttle: Option<&Value>,
        grant: &EnvironmentGrant,
    ) -> Result<(), FieldError> {
        let mut new_filters = self.filters.clone();
        let mut new_throttle = self.throttle.clone();
        if let Some(f) = as_object(filters, "filters")? {
            new_filters.apply(self.event_type, f)?;
            new_throttle.apply(self.event_type, f, "filters", true)?;
        }
        if let Some(t) = as_object(throttle, "throttle")? {
            new_throttle.apply(self.event_type, t, "throttle", false)?;
        }
        if let Some(env) = &new_filters.environment_id {
            if !grant.allows(env) {
                return Err(FieldError::new(
                    "filters.environment_id",
                    format!("token does not grant environment '{env}'"),
                ));
            }
        }
        self.filters = new_filters;
        self.throttle = new_throttle;
        Ok(())
    }

    /// The pose view this subscription receives.
    pub fn pose_view(&self) -> PoseView {
        if !self.event_type.is_pose() {
            return PoseView::FULL;
        }
        PoseView {
            min_confidence_bits: self.filters.min_confidence.unwrap_or(0.0).to_bits(),
            keypoints: self.filters.include_keypoints,
            dense_pose: self.filters.include_dense_pose,
            velocity: self.filters.include_velocity,
        }
    }

    /// Whether the event passes this subscription's filters (not its throttle).
    pub fn matches(&self, ev: &super::bus::Event) -> bool {
        if ev.event_type != self.event_type {
            return false;
        }
        if let (Some(want), Some(have)) = (&self.filters.environment_id, &ev.environment_id) {
            if want.as_str() != &**have {
                return false;
            }
        }
        // Pose frames filter persons instead of whole frames (see PoseView).
        if !self.event_type.is_pose() {
            if let (Some(min), Some(c)) = (self.filters.min_confidence, ev.confidence) {
                if c < min {
                    return false;
                }
            }
        }
        if let Some(sev) = &self.filters.severity {
            // An event without a severity counts as "info".
            let have = ev.severity.as_deref().unwrap_or("info");
            if !sev.iter().any(|s| s == have) {
                return false;
            }
        }
        if let Some(kinds) = &self.filters.event_types {
            match &ev.kind {
                Some(k) if kinds.iter().any(|x| x == k) => {}
                _ => return false,
            }
        }
        true
    }

    /// The throttle: whether an event for `environment` may go now. Alerts always may.
    pub fn admit(&mut self, environment: Option<&str>, now: Instant) -> bool {
        let Some(fps) = self.throttle.max_fps else {
            return true;
        };
        if let Delivery::Limited { per_minute, .. } = self.event_type.delivery() {
            if fps >= per_minute as f64 / 60.0 {
                return self.take_token(per_minute as f64 / 60.0, now);
            }
        }
        // Validation keeps max_fps in [MIN_MAX_FPS, 30]; a value outside (built in code,
        // not parsed) admits nothing rather than panicking on the publishing thread.
        let Ok(interval) = Duration::try_from_secs_f64(1.0 / fps) else {
            return false;
        };
        let Some(first_due) = now.checked_add(interval) else {
            return false;
        };
        // A schedule with a tolerance, not a minimum gap (GCRA): a frame may come up to a
        // period early or late without moving the schedule. Pose frames made at 30 FPS
        // from a 100 Hz source are 30 and 40 ms apart, plus processing jitter that grows
        // with the rooms sharing a core; a minimum gap cut them to about 21 FPS at
        // max_fps 30, and a quarter period's tolerance to 28-29 FPS once frames came 5 ms
        // late on average (`a_late_frame_does_not_cost_the_next`). The long-run rate never
        // exceeds max_fps; at most two frames come back to back after a late one.
        let tolerance = interval;
        let key = environment.unwrap_or("");
        match self.next_due.get_mut(key) {
            Some(due) if now + tolerance < *due => false,
            Some(due) => {
                let from = (*due).max(now.checked_sub(tolerance).unwrap_or(now));
                *due = from.checked_add(interval).unwrap_or(first_due);
                true
            }
            None => {
                self.next_due.insert(key.to_string(), first_due);
                true
            }
        }
    }

    fn take_token(&mut self, per_second: f64, now: Instant) -> bool {
        let capacity = self.throttle.buffer_size.max(1) as f64;
        let (tokens, last) = self.bucket.get_or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * per_second).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The subscription as the ack and connection_status describe it.
    pub fn describe(&self) -> Value {
        let f = &self.filters;
        let mut filters = Map::new();
        if let Some(e) = &f.environment_id {
            filters.insert("environment_id".into(), Value::from(e.clone()));
        }
        if let Some(c) = f.min_confidence {
            filters.insert("min_confidence".into(), Value::from(c));
        }
        if self.event_type.is_pose() {
            filters.insert("include_keypoints".into(), f.include_keypoints.into());
            filters.insert("include_dense_pose".into(), f.include_dense_pose.into());
            filters.insert("include_velocity".into(), f.include_velocity.into());
        }
        if let Some(s) = &f.severity {
            filters.insert("severity".into(), Value::from(s.clone()));
        }
        if let Some(s) = &f.event_types {
            filters.insert("event_types".into(), Value::from(s.clone()));
        }
        let mut throttle = Map::new();
        if let Some(fps) = self.throttle.max_fps {
            throttle.insert("max_fps".into(), Value::from(fps));
            throttle.insert("buffer_size".into(), Value::from(self.throttle.buffer_size));
        }
        if let Some(c) = self.throttle.compression {
            throttle.insert("compression".into(), Value::from(c.as_str()));
        }
        let mut out = serde_json::json!({
            "subscription_id": self.id,
            "event_type": self.event_type.as_str(),
            "status": "active",
            "filters": filters,
            "throttle": throttle,
        });
        if let Some(q) = self.quality {
            out["quality"] = Value::from(q.as_str());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Subscription, FieldError> {
        Subscription::parse("sub_1".into(), &v, &EnvironmentGrant::All)
    }

    #[test]
    fn quality_presets_set_rate_and_buffer() {
        let s = parse(json!({"event_type": "pose_data", "quality": "high"})).unwrap();
        assert_eq!(s.throttle.max_fps, Some(30.0));
        assert_eq!(s.throttle.buffer_size, 1);
        let s = parse(json!({"event_type": "pose_data"})).unwrap();
        assert_eq!(
            (s.throttle.max_fps, s.throttle.buffer_size),
            (Some(10.0), 5)
        );
    }

    #[test]
    fn invalid_values_name_the_field() {
        let e = parse(json!({"event_type": "pose_data", "filters": {"min_confidence": 1.5}}))
            .unwrap_err();
        assert_eq!(e.field, "filters.min_confidence");
        let e = parse(json!({"event_type": "pose_data", "throttle": {"max_fps": 31}})).unwrap_err();
        assert_eq!(e.field, "throttle.max_fps");
        let e =
            parse(json!({"event_type": "system_event", "filters": {"include_keypoints": true}}))
                .unwrap_err();
        assert_eq!(e.field, "filters.include_keypoints");
        let e =
            parse(json!({"event_type": "activity_event", "throttle": {"max_fps": 1}})).unwrap_err();
        assert_eq!(e.field, "throttle.max_fps");
        // Tiny rates made the throttle's interval overflow (a panic on the publisher).
        for fps in [1e-300, 5e-324, 0.001] {
            let e = parse(json!({"event_type": "pose_data", "throttle": {"max_fps": fps}}))
                .unwrap_err();
            assert_eq!(e.field, "throttle.max_fps", "{fps}");
            let e = parse(json!({"event_type": "system_event", "filters": {"max_fps": fps}}))
                .unwrap_err();
            assert_eq!(e.field, "filters.max_fps", "{fps}");
        }
        assert!(parse(json!({"event_type": "pose_data", "throttle": {"max_fps": 0.01}})).is_ok());
    }

    #[test]
    fn lists_and_strings_are_capped() {
        // 9,000 event_types per subscription made every non-matching publish 240x slower.
        let many: Vec<String> = (0..33).map(|i| format!("k{i}")).collect();
        let e = parse(json!({"event_type": "activity_event", "filters": {"event_types": many}}))
            .unwrap_err();
        assert_eq!(e.field, "filters.event_types");
        let long = "x".repeat(129);
        let e = parse(json!({"event_type": "activity_event", "filters": {"event_types": [long]}}))
            .unwrap_err();
        assert_eq!(e.field, "filters.event_types");
        let e = parse(json!({"event_type": "pose_data", "filters": {"environment_id": long}}))
            .unwrap_err();
        assert_eq!(e.field, "filters.environment_id");
        let ok: Vec<String> = (0..32).map(|i| format!("k{i}")).collect();
        assert!(
            parse(json!({"event_type": "activity_event", "filters": {"event_types": ok}})).is_ok()
        );
    }

    #[test]
    fn grant_limits_environment_filter() {
        let grant = EnvironmentGrant::Only(vec!["room_001".into()]);
        let bad = json!({"event_type": "pose_data", "filters": {"environment_id": "room_002"}});
        let e = Subscription::parse("s".into(), &bad, &grant).unwrap_err();
        assert_eq!(e.field, "filters.environment_id");
    }

    #[test]
    fn throttle_admits_at_most_max_fps_per_environment() {
        let mut s = parse(json!({"event_type": "pose_data", "throttle": {"max_fps": 10}})).unwrap();
        let t0 = Instant::now();
        // 30 FPS offered for 10 s: 10 a second pass, and one more at the start (the one
        // period's tolerance: a late frame may be followed by an on-time one).
        let admitted = (0..300)
            .filter(|i| s.admit(Some("a"), t0 + Duration::from_millis(i * 1000 / 30)))
            .count();
        assert!((100..=101).contains(&admitted), "{admitted}");
        assert!(
            s.admit(Some("b"), t0),
            "another environment has its own budget"
        );
    }

    #[test]
    fn a_jittery_30_fps_stream_passes_whole_at_max_fps_30() {
        let mut s = parse(json!({"event_type": "pose_data", "throttle": {"max_fps": 30}})).unwrap();
        let t0 = Instant::now();
        // 30 pose frames a second from a 100 Hz source: 40, 30, 30 ms apart, +-3 ms.
        let mut t = 0i64;
        let mut admitted = 0;
        for i in 0..300i64 {
            t += [40, 30, 30][(i % 3) as usize];
            let jitter = [3, -3, 0, 2, -2][(i % 5) as usize];
            admitted +=
                s.admit(Some("a"), t0 + Duration::from_millis((t + jitter) as u64)) as usize;
        }
        // At most the second frame is lost while the schedule settles (the first was late).
        assert!(admitted >= 299, "{admitted}");
        // Twice as fast as allowed: half pass (and one more, the burst a late frame may
        // leave).
        let mut s = parse(json!({"event_type": "pose_data", "throttle": {"max_fps": 30}})).unwrap();
        let admitted = (0..600u64)
            .filter(|i| s.admit(Some("a"), t0 + Duration::from_micros(i * 16_667)))
            .count();
        assert!((299..=301).contains(&admitted), "{admitted}");
    }

    #[test]
    fn a_late_frame_does_not_cost_the_next() {
        // Frames on the 30 FPS grid of a 100 Hz source, each made late by 0-25 ms (a loaded
        // core: every fourth frame waits behind other rooms). Each late frame used to move
        // the schedule, and the on-time frame after it came "early" and was dropped.
        let mut s = parse(json!({"event_type": "pose_data", "throttle": {"max_fps": 30}})).unwrap();
        let t0 = Instant::now();
        let mut times: Vec<u64> = (1..=900u64)
            .map(|i| (i * 1000 / 30) / 10 * 10 + [0, 2, 5, 25][(i % 4) as usize])
            .collect();
        times.sort_unstable();
        let admitted = times
            .iter()
            .filter(|&&ms| s.admit(Some("a"), t0 + Duration::from_millis(ms)))
            .count();
        assert!(admitted >= 895, "{admitted} of 900"); // a quarter period's tolerance: 675
    }
}
