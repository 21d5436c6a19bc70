//! Events as stream entries, and the parsing of Redis replies (RESP2 or RESP3).
//!
//! An entry's fields: `t` the event type, `ts` its timestamp (as the wire shows it), `d`
//! its `data` as JSON, `w` the Unix time it was published at (for latency), `n` the node
//! that published it.
use std::time::{Duration, Instant};

use redis::Value;

use super::super::bus::Event;
use super::super::events::EventType;
use super::StreamId;

/// The text of a bulk or simple string.
pub fn text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::VerbatimString { text, .. } => Some(text),
        _ => None,
    }
}

/// The items of an array, set or push.
pub fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        Value::Push { data, .. } => data,
        _ => &[],
    }
}

/// `[[key, entries], ...]` (RESP2) or `{key: entries}` (RESP3) as pairs.
pub fn keyed(v: &Value) -> Vec<(&Value, &Value)> {
    match v {
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        _ => items(v)
            .iter()
            .filter_map(|pair| match items(pair) {
                [k, v] => Some((k, v)),
                _ => None,
            })
            .collect(),
    }
}

/// A field list (`[f1, v1, f2, v2]` or a map) as pairs.
pub fn fields(v: &Value) -> Vec<(&str, &Value)> {
    match v {
        Value::Map(m) => m.iter().filter_map(|(k, v)| Some((text(k)?, v))).collect(),
        _ => items(v)
            .chunks(2)
            .filter_map(|c| match c {
                [k, v] => Some((text(k)?, v)),
                _ => None,
            })
            .collect(),
    }
}

/// The entries of a stream reply: `[[id, fields], ...]`.
pub fn entries(v: &Value) -> Vec<(StreamId, Vec<(&str, &Value)>)> {
    items(v)
        .iter()
        .filter_map(|e| match items(e) {
            [id, f] => Some((StreamId::parse(text(id)?)?, fields(f))),
            _ => None,
        })
        .collect()
}

/// The stream entry fields of an event.
pub fn entry_fields(ev: &Event, wall_s: f64, node: &str) -> [(&'static str, String); 5] {
    [
        ("t", ev.event_type.as_str().to_string()),
        ("ts", ev.timestamp.clone()),
        ("d", ev.data.to_string()),
        ("w", format!("{wall_s:.6}")),
        ("n", node.to_string()),
    ]
}

/// Rebuilds an event from its stream entry; None for an entry this node cannot read
/// (written by a newer version, or by something else).
pub fn event_from_entry(
    env: &str,
    id: StreamId,
    fields: &[(&str, &Value)],
    now_s: f64,
) -> Option<Event> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| text(v))
    };
    let event_type = EventType::parse(get("t")?)?;
    let data: serde_json::Value = serde_json::from_str(get("d")?).ok()?;
    let mut ev = Event::new(event_type, data, Some(env.to_string()));
    if let Some(ts) = get("ts") {
        ev.timestamp = ts.to_string();
    }
    // Latency counts from the publishing node's clock (clamped: clocks differ a little).
    if let Some(w) = get("w").and_then(|w| w.parse::<f64>().ok()) {
        let age = (now_s - w).clamp(0.0, 60.0);
        ev.published_at = Instant::now()
            .checked_sub(Duration::from_secs_f64(age))
            .unwrap_or_else(Instant::now);
    }
    ev.stream_id = Some(id);
    Some(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn an_event_survives_the_stream() {
        let ev = Event::new(
            EventType::ActivityEvent,
            json!({"event_type": "fall_detected", "severity": "high"}),
            Some("ward_3".into()),
        );
        let f = entry_fields(&ev, 100.0, "node-a");
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("1700000000000-4"),
            Value::Array(f.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect()),
        ])]);
        let parsed = entries(&reply);
        assert_eq!(parsed.len(), 1);
        let (id, fields) = &parsed[0];
        let back = event_from_entry("ward_3", *id, fields, 100.5).unwrap();
        assert_eq!(back.event_type, EventType::ActivityEvent);
        assert_eq!(back.timestamp, ev.timestamp);
        assert_eq!(back.data, ev.data);
        assert_eq!(back.severity.as_deref(), Some("high"));
        assert_eq!(
            back.stream_id,
            Some(StreamId {
                ms: 1700000000000,
                seq: 4
            })
        );
        let mut wire = back
            .prefix(crate::server::subscription::PoseView::FULL)
            .to_vec();
        wire.extend_from_slice(b"\"client_id\":\"c\",\"sequence\":1}}");
        let v: serde_json::Value = serde_json::from_slice(&wire).unwrap();
        assert_eq!(v["metadata"]["event_id"], "1700000000000-4");
    }

    #[test]
    fn resp3_maps_read_like_resp2_arrays() {
        let m = Value::Map(vec![(bulk("k"), Value::Array(vec![]))]);
        assert_eq!(keyed(&m).len(), 1);
        let a = Value::Array(vec![Value::Array(vec![bulk("k"), Value::Array(vec![])])]);
        assert_eq!(keyed(&a).len(), 1);
        assert_eq!(text(keyed(&a)[0].0), Some("k"));
    }
}
