//! The broker's value types: positions in Redis streams. A leaf: it depends on nothing
//! of the server, so sessions and the bus name positions without the broker's machinery.
use std::collections::HashMap;

/// An entry id of a Redis stream: milliseconds of the broker's clock, and a sequence.
/// Ordered as the stream is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds of the broker's clock.
    pub ms: u64,
    /// The entry's sequence within that millisecond.
    pub seq: u64,
}

impl StreamId {
    /// Before every entry: reading from it reads a stream from its start.
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };

    /// `"<ms>-<seq>"` (or `"<ms>"`, meaning sequence 0).
    pub fn parse(s: &str) -> Option<StreamId> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        Some(StreamId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Where a session started: its node's position in each environment stream, and the
/// broker's clock (ms) for streams the node had not seen yet.
#[derive(Clone, Debug, Default)]
pub struct Since {
    /// The last entry of each environment stream the node had read.
    pub positions: HashMap<String, StreamId>,
    /// The broker's clock then, ms: where a stream the node had not read starts.
    pub broker_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_parse_print_and_order() {
        let a = StreamId::parse("1718000000000-3").unwrap();
        assert_eq!(a.to_string(), "1718000000000-3");
        assert_eq!(StreamId::parse("17").unwrap(), StreamId { ms: 17, seq: 0 });
        assert!(StreamId::parse("x-1").is_none() && StreamId::parse("1-").is_none());
        assert!(StreamId { ms: 1, seq: 9 } < StreamId { ms: 2, seq: 0 });
    }
}
