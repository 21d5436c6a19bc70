//! Device profiles: the radio a real CSI tool runs on, as the simulator needs it.
//!
//! A profile fixes the carrier, the bandwidth, the subcarriers the tool reports (as
//! OFDM bin indices `k`, spacing 312.5 kHz, in the order the tool reports them), which
//! of those it reports as zero (nulls and guards), the antenna counts and the I/Q word
//! size. Subcarrier `k` sits at `carrier_hz + k * 312_500` Hz.
//!
//! | name            | carrier           | BW  | subcarriers                                  | order     | I/Q bits |
//! |-----------------|-------------------|-----|----------------------------------------------|-----------|----------|
//! | `intel5300`     | 5.18 GHz (ch 36)  | 20  | 30 groups: -28,-26..-2,-1,1,3..27,28          | ascending | 8        |
//! | `intel5300_40`  | 5.19 GHz (ch 38)  | 40  | 30 groups: -58,-54..-2,2,6..58                | ascending | 8        |
//! | `intel5300_2x2` | 5.18 GHz (ch 36)  | 20  | as `intel5300`, 2 transmit and 2 receive chains | ascending | 8      |
//! | `intel5300_2g4` | 2.437 GHz (ch 6)  | 20  | as `intel5300`, at 2.4 GHz                    | ascending | 8        |
//! | `atheros`       | 5.18 GHz (ch 36)  | 20  | 56: -28..-1, 1..28                            | ascending | 10       |
//! | `atheros_40`    | 5.19 GHz (ch 38)  | 40  | 114: -58..-2, 2..58                           | ascending | 10       |
//! | `esp32`         | 2.437 GHz (ch 6)  | 20  | 64 LLTF bins, nulls (DC, \|k\|>26) zero       | FFT order | 8        |
//! | `esp32_192`     | 2.447 GHz (ch 6+) | 40  | 64 LLTF bins of the primary 20 MHz + 128 HT-LTF bins | FFT order | 8  |
//! | `nexmon`        | 5.21 GHz (ch 42)  | 80  | 256 bins, nulls (\|k\|<=1, \|k\|>122) zero    | FFT order | 12       |
//! | `nexmon_20`     | 5.18 GHz (ch 36)  | 20  | 64 bins, nulls (DC, \|k\|>28) zero           | FFT order | 12       |
//!
//! FFT order is the order the chips send (bin 0 first, negative bins last), which is
//! the order our readers return for ESP32 and Nexmon (without `fftshift`).

use super::error::SimError;

/// OFDM subcarrier spacing of 802.11n/ac, Hz.
pub const SUBCARRIER_SPACING_HZ: f64 = 312_500.0;
/// Speed of light, m/s.
pub const C: f64 = 299_792_458.0;

/// The profile names [`DeviceProfile::named`] accepts.
pub const DEVICE_NAMES: &[&str] = &[
    "intel5300",
    "intel5300_40",
    "intel5300_2x2",
    "intel5300_2g4",
    "atheros",
    "atheros_40",
    "esp32",
    "esp32_192",
    "nexmon",
    "nexmon_20",
];

/// One CSI tool's radio: carrier, subcarriers, antennas, I/Q words (the table above).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceProfile {
    /// The profile's name (one of [`DEVICE_NAMES`]).
    pub name: String,
    /// Carrier (centre) frequency, Hz.
    pub carrier_hz: f64,
    /// Channel number written into the frames.
    pub channel: u16,
    /// Channel bandwidth, MHz.
    pub bandwidth_mhz: u16,
    /// OFDM bin index of every reported subcarrier, in reported order.
    pub subcarriers: Vec<i32>,
    /// Reported as exactly zero by the tool (nulls, guards), same order.
    pub zeroed: Vec<bool>,
    /// Transmit antennas (1 to 8).
    pub n_tx: usize,
    /// Receive antennas (1 to 8).
    pub n_rx: usize,
    /// Spacing of the uniform linear antenna arrays, metres (default half a wavelength).
    pub antenna_spacing_m: f64,
    /// Bits per I or Q word (signed); 0 means no quantization.
    pub iq_bits: u32,
    /// Default spread of the per-packet timing offset (phase slope), ns: the
    /// phase-slope spread of our recordings of this card (`docs/simulator.md`).
    pub timing_offset_std_ns: f64,
    /// Whether the card's receive chains step by quarter turns against each other, anew
    /// every packet (the Intel 5300 recordings here: `src/sensing/chains.rs`).
    pub rx_chain_steps: bool,
}

fn fft_order(lo: i32, hi: i32) -> Vec<i32> {
    // bins 0..hi then lo..-1, as the FFT output runs.
    (0..=hi).chain(lo..0).collect()
}

impl DeviceProfile {
    /// A profile by name (see the module table).
    pub fn named(name: &str) -> Result<Self, SimError> {
        let (carrier_hz, channel, bw, subs, zeroed, n_tx, n_rx, bits): (
            f64,
            u16,
            u16,
            Vec<i32>,
            Vec<bool>,
            usize,
            usize,
            u32,
        ) = match name {
            "intel5300" | "intel5300_2x2" | "intel5300_2g4" => {
                let mut s: Vec<i32> = (-28..=-2).step_by(2).collect();
                s.push(-1);
                s.extend((1..=27).step_by(2));
                s.push(28);
                let z = vec![false; s.len()];
                match name {
                    "intel5300_2x2" => (5.18e9, 36, 20, s, z, 2, 2, 8),
                    "intel5300_2g4" => (2.437e9, 6, 20, s, z, 3, 3, 8),
                    _ => (5.18e9, 36, 20, s, z, 3, 3, 8),
                }
            }
            "intel5300_40" => {
                let mut s: Vec<i32> = (-58..=-2).step_by(4).collect();
                s.extend((2..=58).step_by(4));
                let z = vec![false; s.len()];
                (5.19e9, 38, 40, s, z, 3, 3, 8)
            }
            "atheros" => {
                let s: Vec<i32> = (-28..=-1).chain(1..=28).collect();
                let z = vec![false; s.len()];
                (5.18e9, 36, 20, s, z, 3, 3, 10)
            }
            "atheros_40" => {
                let s: Vec<i32> = (-58..=-2).chain(2..=58).collect();
                let z = vec![false; s.len()];
                (5.19e9, 38, 40, s, z, 3, 3, 10)
            }
            "esp32" => {
                let s = fft_order(-32, 31);
                let z = s.iter().map(|&k| k == 0 || k.abs() > 26).collect();
                (2.437e9, 6, 20, s, z, 1, 1, 8)
            }
            "esp32_192" => {
                // LLTF in the primary (lower) 20 MHz, centred 32 bins below the 40 MHz
                // centre, then the HT40 HT-LTF.
                let lltf = fft_order(-32, 31);
                let mut s: Vec<i32> = lltf.iter().map(|k| k - 32).collect();
                let mut z: Vec<bool> = lltf.iter().map(|&k| k == 0 || k.abs() > 26).collect();
                let ht = fft_order(-64, 63);
                z.extend(ht.iter().map(|&k| k.abs() <= 1 || k.abs() > 58));
                s.extend(ht);
                (2.447e9, 6, 40, s, z, 1, 1, 8)
            }
            "nexmon_20" => {
                let s = fft_order(-32, 31);
                let z = s.iter().map(|&k| k == 0 || k.abs() > 28).collect();
                (5.18e9, 36, 20, s, z, 1, 1, 12)
            }
            "nexmon" => {
                let s = fft_order(-128, 127);
                let z = s.iter().map(|&k| k.abs() <= 1 || k.abs() > 122).collect();
                (5.21e9, 42, 80, s, z, 1, 1, 12)
            }
            other => {
                return Err(SimError::UnknownDevice {
                    name: other.to_string(),
                    expected: DEVICE_NAMES.join(", "),
                })
            }
        };
        Ok(DeviceProfile {
            name: name.to_string(),
            carrier_hz,
            channel,
            bandwidth_mhz: bw,
            subcarriers: subs,
            zeroed,
            n_tx,
            n_rx,
            antenna_spacing_m: 0.5 * C / carrier_hz,
            iq_bits: bits,
            timing_offset_std_ns: match name {
                "intel5300" | "intel5300_40" | "intel5300_2x2" | "intel5300_2g4" => 17.0,
                "atheros" | "atheros_40" => 16.0,
                "esp32" | "esp32_192" => 20.0,
                _ => 110.0,
            },
            rx_chain_steps: matches!(
                name,
                "intel5300" | "intel5300_40" | "intel5300_2x2" | "intel5300_2g4"
            ),
        })
    }

    /// Subcarriers reported, nulls and guards included.
    pub fn n_sub(&self) -> usize {
        self.subcarriers.len()
    }

    /// Frequency of every reported subcarrier, Hz.
    pub fn frequencies(&self) -> Vec<f64> {
        self.subcarriers
            .iter()
            .map(|&k| self.carrier_hz + k as f64 * SUBCARRIER_SPACING_HZ)
            .collect()
    }

    /// Wavelength at the carrier, metres.
    pub fn wavelength(&self) -> f64 {
        C / self.carrier_hz
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        super::error::check_range("device.carrier_hz", self.carrier_hz, 1e8, 1e11)?;
        if self.n_tx == 0 || self.n_tx > 8 {
            return Err(SimError::invalid("device.n_tx", "must be 1..=8"));
        }
        if self.n_rx == 0 || self.n_rx > 8 {
            return Err(SimError::invalid("device.n_rx", "must be 1..=8"));
        }
        super::error::check_range("device.antenna_spacing_m", self.antenna_spacing_m, 0.0, 1.0)?;
        if self.iq_bits == 1 || self.iq_bits > 24 {
            return Err(SimError::invalid("device.iq_bits", "must be 0 or 2..=24"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcarrier_counts() {
        let n = |s: &str| DeviceProfile::named(s).unwrap().n_sub();
        assert_eq!(n("intel5300"), 30);
        assert_eq!(n("intel5300_40"), 30);
        assert_eq!(n("intel5300_2x2"), 30);
        assert_eq!(n("intel5300_2g4"), 30);
        assert_eq!(n("atheros"), 56);
        assert_eq!(n("atheros_40"), 114);
        assert_eq!(n("esp32"), 64);
        assert_eq!(n("esp32_192"), 192);
        assert_eq!(n("nexmon"), 256);
        assert_eq!(n("nexmon_20"), 64);
        let p = DeviceProfile::named("intel5300").unwrap();
        assert_eq!(p.subcarriers[0], -28);
        assert_eq!(p.subcarriers[14], -1);
        assert_eq!(p.subcarriers[29], 28);
        let e = DeviceProfile::named("esp32").unwrap();
        assert_eq!(e.subcarriers[0], 0);
        assert_eq!(e.subcarriers[32], -32);
        assert_eq!(e.zeroed.iter().filter(|&&z| z).count(), 64 - 52);
    }

    #[test]
    fn unknown_device_is_an_error() {
        let e = DeviceProfile::named("wrt54g").unwrap_err();
        assert!(e.to_string().contains("wrt54g"));
    }
}
