//! Timestamps as the spec writes them: RFC 3339 in UTC with milliseconds.
use time::OffsetDateTime;

/// Now, as the spec writes timestamps: RFC 3339 in UTC with milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// A Unix time in seconds as an RFC 3339 timestamp (the epoch for nonsense input).
pub fn rfc3339_from_unix(t: f64) -> String {
    let ns = if t.is_finite() { (t * 1e9) as i128 } else { 0 };
    rfc3339(OffsetDateTime::from_unix_timestamp_nanos(ns).unwrap_or(OffsetDateTime::UNIX_EPOCH))
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
