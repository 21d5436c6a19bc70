//! CSI frames and where they come from.
//!
//! This is the first stage of the data flow: every reader and live source yields the
//! same [`CsiFrame`], one received packet's channel state shaped
//! `(n_tx, n_rx, n_subcarriers)`, with its timestamp and radio metadata. Downstream
//! stages (DSP, inference) only ever see this type.
//!
//! Recorded files are read by one streaming reader per format ([`intel5300`],
//! [`atheros`], [`nexmon`], [`esp32`], [`picoscenes`]), each an iterator over
//! `Result<CsiFrame, CsiError>` over any `Read`, so files larger than memory stream.
//! [`open`] detects the format ([`detect`]) and [`read_all`] collects a whole file
//! into a [`Recording`] that keeps the frames read before a corruption next to the
//! error. Decoding follows each vendor's official reader; where those are odd, the
//! choice made here is documented on the reader module and in `docs/csi-formats.md`.
//! [`udp`] is the compact frame ESP32 nodes stream live.

pub mod atheros;
pub mod detect;
pub mod error;
pub mod esp32;
pub mod file;
pub mod formats;
mod frame;
pub mod intel5300;
pub mod meta;
pub mod nexmon;
pub(crate) mod pcap;
pub mod picoscenes;
mod recording;
pub mod ruview;
mod source;
pub(crate) mod summary;
mod table;
pub mod udp;

pub use detect::detect_format;
pub use error::CsiError;
pub use formats::{CsiFormat, FormatReader, FormatSpec, FORMATS};
pub use frame::CsiFrame;
pub use meta::{FrameMeta, MetaValue};
pub use recording::{open, read_all, read_all_with, CsiReader, FileReader, ReadOptions, Recording};
pub use table::{read_table_from, read_table_with, CsiTable, FrameInfo};
