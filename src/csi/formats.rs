//! Every recording format in one table: its name and aliases, how its first bytes are
//! recognised, and how a reader for it is opened.
//!
//! The table drives [`CsiFormat`] (one variant per entry, plus the live kinds), name
//! parsing (`"iwl5300".parse()`), detection ([`super::detect_format`] tries the entries in
//! table order) and the streaming reader [`CsiReader`] (one variant per entry). Adding a
//! format is one new reader file (a type implementing [`FormatReader`], and a sniffing
//! function) and one entry below (`docs/csi-formats.md`, "Adding a format").
use std::io::Read;

use super::atheros::AtherosReader;
use super::detect;
use super::error::CsiError;
use super::esp32::Esp32Reader;
use super::intel5300::Intel5300Reader;
use super::nexmon::NexmonReader;
use super::picoscenes::PicoScenesReader;
use super::recording::ReadOptions;
use super::table::CsiTable;
use super::CsiFrame;

/// What every format's streaming reader offers beside iterating its frames.
pub trait FormatReader: Iterator<Item = Result<CsiFrame, CsiError>> {
    /// Bytes consumed so far.
    fn offset(&self) -> u64;

    /// Reads the next frame into `table`; `Some(Ok(()))` when a frame was appended, `None`
    /// at the end. Readers with a columnar fast path override it.
    fn next_into(&mut self, table: &mut CsiTable) -> Option<Result<(), CsiError>> {
        self.next().map(|r| r.map(|f| table.push(f)))
    }
}

/// One recording format as the table describes it.
#[derive(Debug, Clone, Copy)]
pub struct FormatSpec {
    /// The format.
    pub format: CsiFormat,
    /// Its canonical name (`CsiFormat::name`).
    pub name: &'static str,
    /// How messages call it ("Intel 5300").
    pub label: &'static str,
    /// Other names a user may type, lower case without `-`, `_` or spaces.
    pub aliases: &'static [&'static str],
    /// Whether a file starting with these bytes is in this format.
    pub sniff: fn(&[u8]) -> bool,
}

impl FormatSpec {
    /// Whether `typed` (already lower-cased, without `-`, `_` and spaces) names it.
    pub fn is_named(&self, typed: &str) -> bool {
        self.name == typed || self.aliases.contains(&typed)
    }
}

macro_rules! formats {
    ($($(#[$doc:meta])* $variant:ident {
        name: $name:literal,
        label: $label:literal,
        aliases: [$($alias:literal),* $(,)?],
        sniff: $sniff:path,
        reader: $reader:ident,
        open: $open:expr $(,)?
    }),* $(,)?) => {
        /// The recording or stream format a frame came from.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CsiFormat {
            $($(#[$doc])* $variant,)*
            /// The compact UDP frame that ESP32 nodes stream (see `docs/udp-frame.md`).
            Udp,
            /// The simulator.
            Simulated,
            /// Injected by a caller (Python `inject_csi`).
            Injected,
        }

        impl CsiFormat {
            /// The format's canonical name.
            pub fn name(self) -> &'static str {
                match self {
                    $(CsiFormat::$variant => $name,)*
                    CsiFormat::Udp => "udp",
                    CsiFormat::Simulated => "simulated",
                    CsiFormat::Injected => "injected",
                }
            }
        }

        /// The recording formats, in detection order.
        pub const FORMATS: &[FormatSpec] = &[$(FormatSpec {
            format: CsiFormat::$variant,
            name: $name,
            label: $label,
            aliases: &[$($alias),*],
            sniff: $sniff,
        },)*];

        /// A streaming reader for any recording format.
        // One reader exists per open file, so the size difference between variants costs
        // nothing.
        #[allow(clippy::large_enum_variant)]
        pub enum CsiReader<R: Read> {
            $($(#[$doc])* $variant($reader<R>),)*
        }

        impl<R: Read> CsiReader<R> {
            /// A reader of `format` over `reader`; `name` appears in error messages.
            pub fn new(
                reader: R,
                name: impl Into<String>,
                format: CsiFormat,
                options: &ReadOptions,
            ) -> Result<Self, CsiError> {
                let name: String = name.into();
                Ok(match format {
                    $(CsiFormat::$variant => CsiReader::$variant(($open)(reader, name, options)),)*
                    other => {
                        return Err(CsiError::unsupported(
                            &name,
                            0,
                            format!("{} is a live source, not a file format", other.name()),
                        ))
                    }
                })
            }

            /// Reads the next frame into `table` (errors are returned, not stored);
            /// `Some(Ok(()))` when a frame was appended, `None` at the end.
            pub fn next_into(&mut self, table: &mut CsiTable) -> Option<Result<(), CsiError>> {
                match self {
                    $(CsiReader::$variant(r) => FormatReader::next_into(r, table),)*
                }
            }

            /// Bytes consumed so far.
            pub fn offset(&self) -> u64 {
                match self {
                    $(CsiReader::$variant(r) => FormatReader::offset(r),)*
                }
            }

            /// The format being read.
            pub fn format(&self) -> CsiFormat {
                match self {
                    $(CsiReader::$variant(_) => CsiFormat::$variant,)*
                }
            }
        }

        impl<R: Read> Iterator for CsiReader<R> {
            type Item = Result<CsiFrame, CsiError>;

            fn next(&mut self) -> Option<Self::Item> {
                match self {
                    $(CsiReader::$variant(r) => r.next(),)*
                }
            }
        }
    };
}

// Detection order matters: the unambiguous magic numbers first, the two binary logs
// (recognised by decoding a first record) last.
formats! {
    /// Nexmon CSI in a pcap capture (any chip the reader knows).
    Nexmon {
        name: "nexmon",
        label: "nexmon pcap",
        aliases: ["nexmoncsi", "pcap"],
        sniff: detect::looks_like_nexmon,
        reader: NexmonReader,
        open: |r, name, o: &ReadOptions| NexmonReader::with_options(r, name, o.nexmon),
    },
    /// PicoScenes `.csi` files (QCA9300, IWL5300, Intel MVM, USRP front ends).
    PicoScenes {
        name: "picoscenes",
        label: "PicoScenes",
        aliases: ["pico", "rxs"],
        sniff: detect::looks_like_picoscenes,
        reader: PicoScenesReader,
        open: |r, name, _: &ReadOptions| PicoScenesReader::new(r, name),
    },
    /// ESP32-CSI-Tool / esp-csi `CSI_DATA` rows.
    Esp32 {
        name: "esp32",
        label: "ESP32 CSV",
        aliases: ["esp", "esp32csitool", "esp32csv"],
        sniff: detect::looks_like_esp32,
        reader: Esp32Reader,
        open: |r, name, _: &ReadOptions| Esp32Reader::new(r, name),
    },
    /// Atheros CSI Tool logs.
    Atheros {
        name: "atheros",
        label: "Atheros",
        aliases: ["ath", "ath9k", "atheroscsitool"],
        sniff: detect::looks_like_atheros,
        reader: AtherosReader,
        open: |r, name, o: &ReadOptions| AtherosReader::with_options(r, name, o.atheros),
    },
    /// Linux 802.11n CSI Tool logs (Intel 5300).
    Intel5300 {
        name: "intel5300",
        label: "Intel 5300",
        aliases: ["intel", "iwl5300", "5300", "csitool", "linux80211n"],
        sniff: detect::looks_like_intel5300,
        reader: Intel5300Reader,
        open: |r, name, o: &ReadOptions| Intel5300Reader::with_options(r, name, o.intel5300),
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_and_labels_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for f in FORMATS {
            assert_eq!(f.format.name(), f.name);
            for n in std::iter::once(&f.name).chain(f.aliases) {
                assert!(seen.insert(*n), "{n} names two formats");
                assert_eq!(n.parse::<CsiFormat>().unwrap(), f.format);
            }
        }
        assert!("teleport".parse::<CsiFormat>().is_err());
    }
}
