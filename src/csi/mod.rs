//! CSI frames and where they come from.
//!
//! Every reader and live source yields the same [`CsiFrame`]: one received packet's
//! channel state, shaped `(n_tx, n_rx, n_subcarriers)`, with its timestamp and radio
//! metadata. Downstream stages (DSP, inference) only ever see this type.

mod frame;

pub use frame::{CsiFormat, CsiFrame};
