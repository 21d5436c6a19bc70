//! The exceptions of `wifi_densepose`: one hierarchy under [`WiFiDensePoseError`].
//!
//! Every exception the package raises is a `WiFiDensePoseError`, so `except
//! wdp.WiFiDensePoseError` catches whatever the package itself refused. Each class is also
//! the built-in exception the same failure raised before the hierarchy existed
//! (`ValueError`, `TypeError`, `IndexError`, `FileNotFoundError`, `OSError`,
//! `RuntimeError`), so existing `except ValueError:` code keeps working: a class has two
//! bases, `WiFiDensePoseError` and that built-in.
//!
//! `create_exception!` gives a class one base, so the base class is made with it and the
//! two-base classes with [`exception!`], which builds the class the way Python's
//! `class CsiFormatError(WiFiDensePoseError, ValueError)` would, once per interpreter.
//! The Python-only classes (the client's `ProtocolError` family, the command line's
//! `UsageError`, the test helpers' `WaitTimeoutError`) derive from the same base in
//! `python/wifi_densepose/errors.py`, which lists the whole hierarchy.

use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyIndexError, PyOSError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

/// The module every class below says it belongs to (where pickling finds it).
const MODULE: &str = "wifi_densepose._native";

create_exception!(
    wifi_densepose._native,
    WiFiDensePoseError,
    PyException,
    "The base of every exception wifi_densepose raises. Each subclass is also the built-in \
     exception (ValueError, OSError, RuntimeError...) that describes the failure."
);

/// Creates the class `name(*bases)` in [`MODULE`] with the docstring `doc`.
fn new_class(
    py: Python<'_>,
    name: &str,
    doc: &str,
    bases: Vec<Bound<'_, PyType>>,
) -> PyResult<Py<PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("__module__", MODULE)?;
    ns.set_item("__doc__", doc)?;
    let class = py
        .get_type::<PyType>()
        .call1((name, PyTuple::new(py, bases)?, ns))?;
    Ok(class.cast_into::<PyType>()?.unbind())
}

/// Defines a Rust type for the Python class `$name(WiFiDensePoseError, $base)`, usable
/// like a `create_exception!` type: `$name::new_err(message)` and `py.get_type::<$name>()`.
macro_rules! exception {
    ($name:ident, $base:ty, $doc:literal) => {
        #[doc = $doc]
        #[repr(transparent)]
        pub struct $name(PyAny);

        impl $name {
            /// Creates the exception (lazily: the class is made when Python first needs it).
            pub fn new_err<A>(args: A) -> PyErr
            where
                A: pyo3::PyErrArguments + Send + Sync + 'static,
            {
                PyErr::new::<$name, A>(args)
            }
        }

        impl pyo3::types::DerefToPyAny for $name {}
        impl pyo3::ToPyErr for $name {}

        // SAFETY: `type_object_raw` returns a new exception class that the `PyOnceLock`
        // keeps alive for the life of the interpreter, exactly as `create_exception!`
        // does; the struct is a transparent `PyAny`, like every pyo3 exception type.
        unsafe impl pyo3::type_object::PyTypeInfo for $name {
            fn type_object_raw(py: Python<'_>) -> *mut pyo3::ffi::PyTypeObject {
                static TYPE: pyo3::sync::PyOnceLock<Py<PyType>> = pyo3::sync::PyOnceLock::new();
                TYPE.get_or_init(py, || {
                    let bases = vec![py.get_type::<WiFiDensePoseError>(), py.get_type::<$base>()];
                    // Only fails when Python cannot allocate a class (as in create_exception!).
                    new_class(py, stringify!($name), $doc, bases)
                        .expect("cannot create an exception class")
                })
                .as_ptr()
                .cast()
            }
        }
    };
}

exception!(
    InvalidArgumentError,
    PyValueError,
    "A value passed to a call is not acceptable; the message names the argument and why."
);
exception!(
    ArgumentTypeError,
    PyTypeError,
    "A value passed to a call has the wrong type (or numpy dtype); the message names both."
);
exception!(
    OutOfBoundsError,
    PyIndexError,
    "An index past the end (a frame of a Recording)."
);
exception!(
    PathNotFoundError,
    PyFileNotFoundError,
    "A file named in a call does not exist; the message names it."
);
exception!(
    CsiReadError,
    PyOSError,
    "The operating system could not read a CSI file; the message names the file."
);
exception!(
    CsiFormatError,
    PyValueError,
    "A CSI file that cannot be read: the message names the file, the byte offset and the problem."
);
exception!(
    DspError,
    PyValueError,
    "Signal conditioning refused its input: a shape, a parameter, NaN or infinity."
);
exception!(
    SimulationError,
    PyValueError,
    "A scenario the simulator cannot run: the message names the field and the problem."
);
exception!(
    ModelLoadError,
    PyRuntimeError,
    "The ONNX Runtime library or a model could not be loaded, or a model does not fit the contract."
);
exception!(
    InferenceError,
    PyRuntimeError,
    "A loaded model failed while running."
);
exception!(
    ServerError,
    PyRuntimeError,
    "The server cannot do what was asked in its current state (already running, cannot bind, \
     a broker it cannot reach)."
);
exception!(
    ConfigError,
    PyValueError,
    "A configuration (TOML file, dict, command-line option) that is not valid; the message \
     names the file and the key."
);

/// Adds every class to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("WiFiDensePoseError", py.get_type::<WiFiDensePoseError>())?;
    m.add(
        "InvalidArgumentError",
        py.get_type::<InvalidArgumentError>(),
    )?;
    m.add("ArgumentTypeError", py.get_type::<ArgumentTypeError>())?;
    m.add("OutOfBoundsError", py.get_type::<OutOfBoundsError>())?;
    m.add("PathNotFoundError", py.get_type::<PathNotFoundError>())?;
    m.add("CsiReadError", py.get_type::<CsiReadError>())?;
    m.add("CsiFormatError", py.get_type::<CsiFormatError>())?;
    m.add("DspError", py.get_type::<DspError>())?;
    m.add("SimulationError", py.get_type::<SimulationError>())?;
    m.add("ModelLoadError", py.get_type::<ModelLoadError>())?;
    m.add("InferenceError", py.get_type::<InferenceError>())?;
    m.add("ServerError", py.get_type::<ServerError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    Ok(())
}
