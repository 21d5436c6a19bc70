//! Sequence numbers of a live source: gaps, reordering and duplicates are counted, never
//! hidden.

/// Tracks a 32-bit wrapping sequence (the UDP frame's, or any source's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SequenceTracker {
    /// The highest sequence seen (in wrapping order).
    pub highest: Option<u32>,
    /// Frames never seen: the sum of forward jumps minus one.
    pub gaps: u64,
    /// Frames that arrived after a later one (each was first counted as a gap).
    pub reordered: u64,
    /// The same sequence number again.
    pub duplicates: u64,
    /// Sequence numbers observed, duplicates included.
    pub received: u64,
    /// Sequence numbers still missing (bounded): a late frame fills one of these, any
    /// other frame behind the highest is a duplicate.
    missing: std::collections::BTreeSet<u32>,
}

/// Most missing sequence numbers remembered; older ones are forgotten (still counted).
const MAX_MISSING: usize = 4096;

/// Jumps larger than this are a restart of the sender, not loss.
const RESTART: u32 = 1 << 20;

impl SequenceTracker {
    /// Counts one frame's sequence number against those seen before.
    pub fn observe(&mut self, seq: u32) {
        self.received += 1;
        let Some(high) = self.highest else {
            self.highest = Some(seq);
            return;
        };
        let ahead = seq.wrapping_sub(high);
        if ahead == 0 {
            self.duplicates += 1;
        } else if ahead < RESTART {
            self.gaps += (ahead - 1) as u64;
            for k in 1..ahead.min(MAX_MISSING as u32 + 1) {
                self.missing.insert(high.wrapping_add(k));
            }
            while self.missing.len() > MAX_MISSING {
                self.missing.pop_first();
            }
            self.highest = Some(seq);
        } else if high.wrapping_sub(seq) < RESTART {
            // Behind the highest: a late frame fills a gap counted before; anything
            // else behind it was seen already.
            if self.missing.remove(&seq) {
                self.reordered += 1;
                self.gaps = self.gaps.saturating_sub(1);
            } else {
                self.duplicates += 1;
            }
        } else {
            self.highest = Some(seq); // the sender restarted
        }
    }

    /// Frames expected so far: received plus still missing.
    pub fn expected(&self) -> u64 {
        self.received - self.duplicates + self.gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_reordering_duplicates_and_wrap() {
        let mut t = SequenceTracker::default();
        for s in [u32::MAX - 1, u32::MAX, 0, 2, 1, 1, 5] {
            t.observe(s);
        }
        // missing: 3, 4 (1 arrived late and filled its gap)
        assert_eq!(
            (t.gaps, t.reordered, t.duplicates, t.received),
            (2, 1, 1, 7)
        );
        assert_eq!(t.expected(), 8);
    }
}
