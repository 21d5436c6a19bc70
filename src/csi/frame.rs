use ndarray::Array3;
use num_complex::Complex32;

use super::meta::FrameMeta;

pub use super::formats::CsiFormat;

/// One packet's channel state information.
#[derive(Debug, Clone)]
pub struct CsiFrame {
    /// Seconds. For recordings, the format's own clock (documented per reader);
    /// for live sources, seconds since the Unix epoch at reception.
    pub timestamp: f64,
    /// Complex CSI shaped `(n_tx, n_rx, n_subcarriers)`.
    pub csi: Array3<Complex32>,
    /// Received signal strength in dBm, where the format reports it.
    pub rssi: Option<f32>,
    /// Noise floor in dBm, where the format reports it.
    pub noise: Option<f32>,
    /// Where the frame came from.
    pub format: CsiFormat,
    /// Channel number, where known.
    pub channel: Option<u16>,
    /// Bandwidth in MHz, where known.
    pub bandwidth_mhz: Option<u16>,
    /// The source's packet sequence number, where it has one.
    pub sequence: Option<u64>,
    /// What the format reported beyond the fields above (per-antenna RSSI, AGC,
    /// antenna permutation, MAC...). [`FrameMeta::None`] for simulated or injected frames.
    pub meta: FrameMeta,
}

impl CsiFrame {
    /// A frame from a bare CSI array, as a caller injects it.
    pub fn from_csi(timestamp: f64, csi: Array3<Complex32>, format: CsiFormat) -> Self {
        CsiFrame {
            timestamp,
            csi,
            rssi: None,
            noise: None,
            format,
            channel: None,
            bandwidth_mhz: None,
            sequence: None,
            meta: FrameMeta::None,
        }
    }

    /// Transmit streams: axis 0 of `csi`.
    pub fn n_tx(&self) -> usize {
        self.csi.shape()[0]
    }
    /// Receive antennas: axis 1 of `csi`.
    pub fn n_rx(&self) -> usize {
        self.csi.shape()[1]
    }
    /// Subcarriers: axis 2 of `csi`.
    pub fn n_subcarriers(&self) -> usize {
        self.csi.shape()[2]
    }
}
