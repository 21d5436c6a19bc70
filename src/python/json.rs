//! JSON values to Python objects and back, built directly: no text in between. Both
//! directions give what `json.loads(json.dumps(x))` would (the engine's events, reports and
//! calibrations out; event data, settings, configurations and calibrations in), without a
//! serialization and a parse per call, and floats exactly (text round trips may not be).
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Nesting past this many containers is refused: the limit of serde_json's parser, which
/// the JSON text these calls took went through; and a container that holds itself stops
/// here instead of recursing until the stack overflows.
const MAX_DEPTH: usize = 128;

/// A JSON value as the Python object `json.loads` makes of its text (dict, list, str,
/// int, float, bool, None).
pub(crate) fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            // Every number serde_json holds is finite (it has no NaN or infinity).
            _ => n.as_f64().unwrap_or_default().into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Why a Python object is not a JSON value. The caller picks the exception (and says
/// what the object was for).
#[derive(Debug)]
pub(crate) enum FromPyError {
    /// Not a type JSON has (where `json.dumps` raised `TypeError`): the message names it.
    Type(String),
    /// A type JSON has holding a value it cannot: NaN or infinity, a string with lone
    /// surrogates, nesting past [`MAX_DEPTH`] (where the JSON text was refused).
    Value(String),
}

/// The JSON value `json.loads(json.dumps(obj))` would give: `None`, `bool`, `int`,
/// `float`, `str`, `list` and `tuple` (arrays), `dict` (objects; keys `str`, or `int`,
/// `float`, `bool`, `None` written as `json.dumps` writes them), subclasses included.
pub(crate) fn from_py(obj: &Bound<'_, PyAny>) -> Result<Value, FromPyError> {
    value(obj, 0)
}

fn value(obj: &Bound<'_, PyAny>, depth: usize) -> Result<Value, FromPyError> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: a bool is an int in Python.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return int(obj);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return float(f.value());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return text(s).map(Value::String);
    }
    let deeper = depth + 1;
    if deeper > MAX_DEPTH {
        return Err(FromPyError::Value(format!(
            "nested deeper than {MAX_DEPTH} lists and dicts"
        )));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            map.insert(key(&k)?, value(&v, deeper)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items = obj
            .try_iter()
            .map_err(|e| FromPyError::Type(e.to_string()))?;
        let mut out = Vec::new();
        for item in items {
            let item = item.map_err(|e| FromPyError::Type(e.to_string()))?;
            out.push(value(&item, deeper)?);
        }
        return Ok(Value::Array(out));
    }
    Err(FromPyError::Type(format!(
        "Object of type {} is not JSON serializable",
        type_name(obj)
    )))
}

/// An int as serde_json reads its digits: i64, else u64, else the nearest f64.
fn int(obj: &Bound<'_, PyAny>) -> Result<Value, FromPyError> {
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(i.into());
    }
    if let Ok(u) = obj.extract::<u64>() {
        return Ok(u.into());
    }
    let f = obj
        .extract::<f64>()
        .map_err(|_| FromPyError::Value("an int too large for a JSON number".into()))?;
    float(f)
}

fn float(f: f64) -> Result<Value, FromPyError> {
    Number::from_f64(f).map(Value::Number).ok_or_else(|| {
        // Spelt as Python spells the value the caller gave.
        let name = if f.is_nan() {
            "nan"
        } else if f > 0.0 {
            "inf"
        } else {
            "-inf"
        };
        FromPyError::Value(format!(
            "{name} is not a JSON number (JSON has no NaN or infinity)"
        ))
    })
}

fn text(s: &Bound<'_, PyString>) -> Result<String, FromPyError> {
    s.to_str().map(str::to_owned).map_err(|_| {
        FromPyError::Value("a str that is not valid Unicode (a lone surrogate)".into())
    })
}

/// A dict key as `json.dumps` writes it.
fn key(k: &Bound<'_, PyAny>) -> Result<String, FromPyError> {
    if let Ok(s) = k.cast::<PyString>() {
        return text(s);
    }
    if k.is_none() {
        return Ok("null".into());
    }
    if let Ok(b) = k.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.into());
    }
    if let Ok(f) = k.cast::<PyFloat>() {
        let f = f.value();
        if f.is_nan() {
            return Ok("NaN".into());
        }
        if f.is_infinite() {
            return Ok(if f > 0.0 { "Infinity" } else { "-Infinity" }.into());
        }
    }
    if k.is_instance_of::<PyInt>() || k.is_instance_of::<PyFloat>() {
        // int.__repr__ and float.__repr__, as json.dumps uses, whatever a subclass says.
        let repr = if k.is_instance_of::<PyInt>() {
            k.py().get_type::<PyInt>().call_method1("__repr__", (k,))
        } else {
            k.py().get_type::<PyFloat>().call_method1("__repr__", (k,))
        };
        return repr
            .and_then(|r| r.extract::<String>())
            .map_err(|e| FromPyError::Type(e.to_string()));
    }
    Err(FromPyError::Type(format!(
        "keys must be str, int, float, bool or None, not {}",
        type_name(k)
    )))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// `obj` as a JSON value for the argument `what`: a type JSON lacks raises
/// `ArgumentTypeError` (a `TypeError`, as `json.dumps` raised), a value it cannot hold
/// raises `on_value`'s exception, each message led by `what`.
pub(crate) fn argument(
    obj: &Bound<'_, PyAny>,
    what: &str,
    on_value: fn(String) -> PyErr,
) -> PyResult<Value> {
    from_py(obj).map_err(|e| match e {
        FromPyError::Type(m) => super::errors::ArgumentTypeError::new_err(format!("{what}: {m}")),
        FromPyError::Value(m) => on_value(format!("{what}: {m}")),
    })
}

/// A calibration `calibrate` returned (a dict), for the sensor; what is not one raises
/// `InvalidArgumentError` (a wrong type of value, `ArgumentTypeError`).
pub(crate) fn calibration(obj: &Bound<'_, PyAny>) -> PyResult<crate::sensing::Calibration> {
    let v = argument(
        obj,
        "calibration",
        super::errors::InvalidArgumentError::new_err,
    )?;
    serde_json::from_value(v).map_err(|e| {
        super::errors::InvalidArgumentError::new_err(format!("not a calibration: {e}"))
    })
}
