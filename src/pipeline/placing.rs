//! Where an environment's moving person is: one link's localizer, or several links' maps
//! fused.
//!
//! In: the primary source's link ([`super::Input::Geometry`]), any source's own link
//! ([`super::Input::SourceGeometry`], several nodes of one room), and every frame with the
//! sensor's motion flag. Out: the latest [`Fix`] when a window ends.
//!
//! With per-source links, every source whose link can place people (two antennas on one
//! side) feeds a [`MultiLocalizer`]: its windows' maps are multiplied on the room's floor
//! grid, which keeps the person's lobe and thins each link's ghosts (held out, three 3x3
//! links: median 0.30 m, p90 0.80 m against 0.34 / 2.46 m for one; `docs/sensing.md`).
//! Its links share the environment's time base: the environment maps every source's
//! timestamps onto it first (`clocks.rs`), so nodes with their own clocks pair within
//! [`FUSE_MAX_AGE_S`]. Without per-source links the primary's single localizer places.

use crate::sensing::{Fix, LinkGeometry, Localizer, LocalizerConfig, MultiLocalizer};

/// A link's map counts in the fusion this long after its window ended, seconds.
pub const FUSE_MAX_AGE_S: f64 = 0.5;

/// Sources' links one room keeps at most (the fusion's own limit).
pub const MAX_SOURCE_LINKS: usize = 16;

/// The environment's localizers (see the module docs).
#[derive(Default)]
pub(crate) struct Placing {
    primary: Option<Localizer>,
    primary_room: Option<[f64; 2]>,
    /// Every source's link as given, in arrival order (a repeat replaces).
    links: Vec<(String, LinkGeometry)>,
    /// The fused localizer over the links that can place, and which source is which link.
    multi: Option<(MultiLocalizer, Vec<String>)>,
    /// Fixes the fused localizer made.
    fixes: u64,
}

impl Placing {
    /// The primary source's link (None forgets it). Err: why it cannot place people.
    pub(crate) fn set_primary(&mut self, geometry: Option<LinkGeometry>) -> Result<(), String> {
        self.primary = None;
        self.primary_room = None;
        let Some(g) = geometry else {
            return Ok(());
        };
        self.primary_room = Some([g.room[0], g.room[1]]);
        self.primary = Some(Localizer::new(g, LocalizerConfig::default())?);
        Ok(())
    }

    /// One source's own link. Err: why none of the links given so far can place people
    /// (said once per change, so a 1x1 node's link is reported, not silently unused).
    pub(crate) fn set_source(
        &mut self,
        source: String,
        geometry: LinkGeometry,
    ) -> Result<(), String> {
        self.links.retain(|(s, _)| *s != source);
        if self.links.len() >= MAX_SOURCE_LINKS {
            return Err(format!(
                "at most {MAX_SOURCE_LINKS} links per room; {source}'s is not used"
            ));
        }
        self.links.push((source, geometry));
        let mut usable = Vec::new();
        let mut reasons = Vec::new();
        for (s, g) in &self.links {
            match g.check().and_then(|()| g.can_localize()) {
                Ok(()) => usable.push((s.clone(), g.clone())),
                Err(e) => reasons.push(format!("{s}: {e}")),
            }
        }
        self.multi = None;
        if usable.is_empty() {
            return Err(reasons.join("; "));
        }
        let (names, geometries): (Vec<String>, Vec<LinkGeometry>) = usable.into_iter().unzip();
        let multi = MultiLocalizer::new(geometries, LocalizerConfig::default(), FUSE_MAX_AGE_S)?;
        self.multi = Some((multi, names));
        Ok(())
    }

    /// One frame of `source` (`primary`: the source the model follows); the new fix when
    /// it ended a window in which something moved.
    pub(crate) fn push(
        &mut self,
        source: &str,
        primary: bool,
        t: f64,
        csi: &ndarray::Array3<num_complex::Complex32>,
        moving: bool,
    ) -> Option<Fix> {
        if let Some((multi, names)) = self.multi.as_mut() {
            // Per-source links take over from the primary's single one.
            let link = names.iter().position(|n| n == source)?;
            let fix = multi.push(link, t, csi, moving);
            self.fixes += u64::from(fix.is_some());
            return fix;
        }
        if primary {
            return self.primary.as_mut()?.push(t, csi, moving);
        }
        None
    }

    /// What the fused localizer did, once sources' links are set (None before).
    pub(crate) fn stats(&self) -> Option<super::environment::PlacingStats> {
        let (multi, names) = self.multi.as_ref()?;
        Some(super::environment::PlacingStats {
            links: names.clone(),
            fixes: self.fixes,
            last_fix_links: multi.last_fused(),
        })
    }

    /// The floor the fixes are in, metres (width, depth), when a link is known.
    pub(crate) fn room(&self) -> Option<[f64; 2]> {
        if let Some((multi, _)) = &self.multi {
            let r = multi.room();
            return Some([r[0], r[1]]);
        }
        self.primary_room
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(rx_y: f64, antennas: usize) -> LinkGeometry {
        let spacing = 0.028;
        LinkGeometry {
            room: [6.0, 5.0, 3.0],
            tx: vec![[0.2, 2.5, 1.2]],
            rx: (0..antennas)
                .map(|k| [5.8, rx_y + k as f64 * spacing, 1.2])
                .collect(),
            freqs_hz: (0..30).map(|k| 5.32e9 + k as f64 * 1.25e6).collect(),
        }
    }

    #[test]
    fn per_source_links_take_over_and_unusable_ones_are_said() {
        let mut p = Placing::default();
        assert!(p.set_primary(Some(link(2.0, 3))).is_ok());
        assert_eq!(p.room(), Some([6.0, 5.0]));
        // A 1x1 node alone cannot place anyone: said, and the primary's localizer stays.
        let err = p.set_source("node1".into(), link(1.0, 1)).unwrap_err();
        assert!(err.contains("node1"), "{err}");
        assert!(p.multi.is_none());
        // A multi-antenna node makes the fusion, which the 1x1 node is left out of.
        p.set_source("node2".into(), link(3.0, 3)).unwrap();
        let (multi, names) = p.multi.as_ref().unwrap();
        assert_eq!(
            (multi.len(), names.as_slice()),
            (1, ["node2".to_string()].as_slice())
        );
        // A frame of a source with no usable link places nobody, even the primary's.
        let csi = ndarray::Array3::<num_complex::Complex32>::zeros((1, 1, 30));
        assert!(p.push("node1", true, 0.0, &csi, true).is_none());
        // The links a room keeps are bounded; a source already known may still change.
        for k in 0..MAX_SOURCE_LINKS {
            let _ = p.set_source(format!("more{k}"), link(3.0, 3));
        }
        assert_eq!(p.links.len(), MAX_SOURCE_LINKS);
        assert!(p.set_source("one_too_many".into(), link(3.0, 3)).is_err());
        assert!(p.set_source("more0".into(), link(2.5, 3)).is_ok());
        assert_eq!(p.links.len(), MAX_SOURCE_LINKS);
    }
}
