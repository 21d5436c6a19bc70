//! The names Python shares with the engine, each defined once in Rust and exported as a
//! tuple: `ACTIVITIES` (activity classes, in the order of the model's output and the
//! simulator's labels) and `EVENT_TYPES` (every event type a client can subscribe to, in
//! their wire spelling).
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::server::EventType;
use crate::track::ACTIVITIES;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ACTIVITIES", PyTuple::new(py, ACTIVITIES)?)?;
    m.add(
        "EVENT_TYPES",
        PyTuple::new(py, EventType::ALL.map(EventType::as_str))?,
    )?;
    Ok(())
}
