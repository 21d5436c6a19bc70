//! The Python module `wifi_densepose._native`: conversion and delegation only.
use pyo3::prelude::*;

mod dsp;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    dsp::register(m)?;
    Ok(())
}
