//! Format-specific metadata carried by each frame.
//!
//! [`CsiFrame`](super::CsiFrame) holds what every format shares (CSI, timestamp, RSSI,
//! noise). What only one format reports (Intel's AGC and antenna permutation, nexmon's
//! core and spatial stream, ESP32's MAC...) lives in [`FrameMeta`], one variant per
//! reader, so nothing the file said is thrown away.

use super::atheros::AtherosMeta;
use super::esp32::Esp32Meta;
use super::intel5300::Intel5300Meta;
use super::nexmon::NexmonMeta;
use super::picoscenes::PicoScenesMeta;

/// Everything a reader knew about a frame beyond the common fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum FrameMeta {
    /// Simulated, injected or live frames with no format metadata.
    #[default]
    None,
    /// An Intel 5300 bfee record's header.
    Intel5300(Intel5300Meta),
    /// An Atheros CSI Tool record's status header.
    Atheros(AtherosMeta),
    /// A nexmon_csi UDP payload's header.
    Nexmon(NexmonMeta),
    /// An ESP32 CSV row's fields beside the CSI (boxed: it is the largest).
    Esp32(Box<Esp32Meta>),
    /// A PicoScenes frame's segments beside the CSI (boxed: it is large).
    PicoScenes(Box<PicoScenesMeta>),
    /// Any other format's metadata: a format added through the table
    /// (`super::formats`) keeps its own metadata type in its own file.
    Other(std::sync::Arc<dyn MetaFields>),
}

/// Metadata of a format that is not one of the variants above.
pub trait MetaFields: std::fmt::Debug + Send + Sync {
    /// The metadata as `(name, value)` pairs, named as the format's own tools name them.
    fn fields(&self) -> Vec<(&'static str, MetaValue)>;
}

impl PartialEq for dyn MetaFields {
    fn eq(&self, other: &Self) -> bool {
        self.fields() == other.fields()
    }
}

/// One metadata value, in a form that converts cleanly to Python or JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// An integer field (counters, codes, raw bytes).
    Int(i64),
    /// A real-valued field; NaN where the format lacks it.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// A text field (a MAC address, a role).
    Text(String),
    /// A list of integers (an antenna permutation, a subcarrier index list).
    Ints(Vec<i64>),
}

impl FrameMeta {
    /// The metadata as `(name, value)` pairs, named as the official tools name them.
    pub fn fields(&self) -> Vec<(&'static str, MetaValue)> {
        match self {
            FrameMeta::None => Vec::new(),
            FrameMeta::Intel5300(m) => m.fields(),
            FrameMeta::Atheros(m) => m.fields(),
            FrameMeta::Nexmon(m) => m.fields(),
            FrameMeta::Esp32(m) => m.fields(),
            FrameMeta::PicoScenes(m) => m.fields(),
            FrameMeta::Other(m) => m.fields(),
        }
    }
}

/// Shorthand used by the readers' `fields()`.
pub(crate) fn int(v: impl Into<i64>) -> MetaValue {
    MetaValue::Int(v.into())
}

/// WiFi channel number for a centre frequency in MHz (2.4, 5 and 6 GHz bands).
pub(crate) fn channel_from_mhz(mhz: u32) -> Option<u16> {
    match mhz {
        2484 => Some(14),
        2412..=2472 if (mhz - 2407).is_multiple_of(5) => Some(((mhz - 2407) / 5) as u16),
        5000..=5895 if mhz.is_multiple_of(5) => Some(((mhz - 5000) / 5) as u16),
        5955..=7115 if (mhz - 5950).is_multiple_of(5) => Some(((mhz - 5950) / 5) as u16),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Mine(i64);

    impl MetaFields for Mine {
        fn fields(&self) -> Vec<(&'static str, MetaValue)> {
            vec![("my_counter", int(self.0))]
        }
    }

    #[test]
    fn another_formats_metadata_needs_no_variant_of_its_own() {
        let a = FrameMeta::Other(std::sync::Arc::new(Mine(7)));
        assert_eq!(a.fields(), vec![("my_counter", MetaValue::Int(7))]);
        assert_eq!(a, FrameMeta::Other(std::sync::Arc::new(Mine(7))));
        assert_ne!(a, FrameMeta::Other(std::sync::Arc::new(Mine(8))));
    }
}
