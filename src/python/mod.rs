//! The Python module `wifi_densepose._native`: conversion and delegation only. Every
//! stage's logic lives in the engine; these files turn Python values into engine calls,
//! release the GIL while the engine works, and turn engine errors into exceptions.
use pyo3::prelude::*;

mod analyze;
mod csi;
mod dsp;
mod errors;
mod json;
mod localize;
mod model;
mod sensing;
mod server;
mod sim;
mod track;
mod vocabulary;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    vocabulary::register(m)?;
    analyze::register(m)?;
    csi::register(m)?;
    dsp::register(m)?;
    localize::register(m)?;
    model::register(m)?;
    sensing::register(m)?;
    server::register(m)?;
    sim::register(m)?;
    track::register(m)?;
    Ok(())
}
