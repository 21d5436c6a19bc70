//! The standard message envelope: `{type, timestamp, data, metadata}`.
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;
use time::OffsetDateTime;

/// Now, as the spec writes timestamps: RFC 3339 in UTC with milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// Always three digits of milliseconds, so timestamps sort as text.
pub fn rfc3339(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

/// The envelope of a session's own message (ack, error, heartbeat...), up to `"metadata":{`,
/// in the same shape as a bus event's prefix so one writer appends the metadata to both.
pub fn control_prefix(message_type: &str, data: &Value) -> Bytes {
    let mut out = BytesMut::with_capacity(128).writer();
    let head = serde_json::json!(message_type).to_string();
    out.get_mut().extend_from_slice(b"{\"type\":");
    out.get_mut().extend_from_slice(head.as_bytes());
    out.get_mut().extend_from_slice(b",\"timestamp\":\"");
    out.get_mut().extend_from_slice(now_rfc3339().as_bytes());
    out.get_mut().extend_from_slice(b"\",\"data\":");
    serde_json::to_writer(&mut out, data).expect("a serde_json::Value always serializes");
    out.get_mut().extend_from_slice(b",\"metadata\":{");
    out.into_inner().freeze()
}

/// Completes a prefix with this connection's metadata.
pub fn finish(
    prefix: &[u8],
    client_id_json: &str,
    sequence: u64,
    compression: Option<&str>,
) -> Bytes {
    let mut out = BytesMut::with_capacity(prefix.len() + client_id_json.len() + 64);
    out.extend_from_slice(prefix);
    out.extend_from_slice(b"\"client_id\":");
    out.extend_from_slice(client_id_json.as_bytes());
    out.extend_from_slice(b",\"sequence\":");
    out.extend_from_slice(itoa(sequence).as_bytes());
    if let Some(c) = compression {
        out.extend_from_slice(b",\"compression\":\"");
        out.extend_from_slice(c.as_bytes());
        out.extend_from_slice(b"\"");
    }
    out.extend_from_slice(b"}}");
    out.freeze()
}

fn itoa(n: u64) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_envelope_is_valid_json() {
        let p = control_prefix("ack", &serde_json::json!({"a": 1}));
        let full = finish(&p, "\"c\\\"1\"", 7, Some("gzip"));
        let v: Value = serde_json::from_slice(&full).unwrap();
        assert_eq!(v["type"], "ack");
        assert_eq!(v["metadata"]["client_id"], "c\"1");
        assert_eq!(v["metadata"]["sequence"], 7);
        assert_eq!(v["metadata"]["compression"], "gzip");
        let ts = v["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
    }
}
