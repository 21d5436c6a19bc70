//! The classifier contract (contract 3, `docs/model.md`): a model trained by
//! `wifi-densepose train` on labelled recordings. It reads the engine's window features
//! ([`crate::sensing::window_features`]) and gives one probability per class; its class
//! names and window travel in its metadata.
//!
//! - input `features` float32 `(B, N)`, `N` = [`window_features::LEN`], in
//!   [`window_features::NAMES`] order;
//! - output `class_probs` float32 `(B, C)`: probabilities over the classes;
//! - metadata `wifi_densepose.kind` = `classifier`, `wifi_densepose.classes` = a JSON list
//!   of the `C` class names, `wifi_densepose.feature_set` = [`window_features::FEATURE_SET`],
//!   `wifi_densepose.window_s` and `wifi_densepose.hop_s` (seconds).
use ort::session::Session;

use super::contract::{self, Dim};
use crate::sensing::window_features;

/// The classifier's one input.
pub const INPUT: &str = "features";
/// The classifier's one output.
pub const OUTPUT: &str = "class_probs";
/// Metadata keys.
pub const KIND_KEY: &str = "wifi_densepose.kind";
/// The JSON list of class names.
pub const CLASSES_KEY: &str = "wifi_densepose.classes";
/// The feature set the model was trained on.
pub const FEATURE_SET_KEY: &str = "wifi_densepose.feature_set";
/// The window the features describe, seconds.
pub const WINDOW_KEY: &str = "wifi_densepose.window_s";
/// How often a window is described, seconds.
pub const HOP_KEY: &str = "wifi_densepose.hop_s";

/// What a classifier model says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierSpec {
    /// Class names, in the order of `class_probs`.
    pub classes: Vec<String>,
    /// Seconds of CSI each prediction describes.
    pub window_s: f64,
    /// Seconds of source clock between predictions.
    pub hop_s: f64,
}

/// Whether the session looks like a classifier (its input is named `features`).
pub(crate) fn is_classifier(session: &Session) -> bool {
    session.inputs().iter().any(|i| i.name() == INPUT)
}

/// Checks a classifier's input, output and metadata; its spec, or why it does not fit.
pub(crate) fn check(session: &Session) -> Result<ClassifierSpec, String> {
    let inputs = session.inputs();
    if inputs.len() != 1 {
        return Err(format!(
            "a classifier has exactly one input `{INPUT}`, this model has {}",
            inputs.len()
        ));
    }
    let mut slots = None;
    contract::check(
        "input",
        INPUT,
        Some(inputs[0].dtype()),
        &[Dim::Batch, Dim::Fixed(window_features::LEN)],
        &mut slots,
    )
    .map_err(|e| {
        format!(
            "{e} (the {} features, {})",
            window_features::LEN,
            window_features::FEATURE_SET
        )
    })?;
    let output = session.outputs().iter().find(|o| o.name() == OUTPUT);
    let Some(output) = output else {
        let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        return Err(format!(
            "a classifier needs the output `{OUTPUT}` (batch, classes); found {names:?}"
        ));
    };
    let meta = session
        .metadata()
        .map_err(|e| format!("cannot read the model's metadata: {e}"))?;
    let get = |key: &str| {
        meta.custom(key)
            .ok_or_else(|| format!("a classifier needs the metadata `{key}`"))
    };
    let kind = get(KIND_KEY)?;
    if kind != "classifier" {
        return Err(format!(
            "metadata `{KIND_KEY}` is {kind:?}, expected \"classifier\""
        ));
    }
    let feature_set = get(FEATURE_SET_KEY)?;
    if feature_set != window_features::FEATURE_SET {
        return Err(format!(
            "the model was trained on features {feature_set:?}; this engine computes {:?}",
            window_features::FEATURE_SET
        ));
    }
    let classes: Vec<String> = serde_json::from_str(&get(CLASSES_KEY)?)
        .map_err(|e| format!("metadata `{CLASSES_KEY}` is not a JSON list of names: {e}"))?;
    if classes.len() < 2 {
        return Err(format!(
            "a classifier needs at least two classes, found {classes:?}"
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for c in &classes {
        if c.trim().is_empty() || !seen.insert(c.as_str()) {
            return Err(format!(
                "class names must be non-empty and distinct: {classes:?}"
            ));
        }
    }
    contract::check(
        "output",
        OUTPUT,
        Some(output.dtype()),
        &[Dim::Batch, Dim::Fixed(classes.len())],
        &mut slots,
    )
    .map_err(|e| format!("{e} (one column per class of {CLASSES_KEY})"))?;
    let number = |key: &str| -> Result<f64, String> {
        get(key)?
            .parse::<f64>()
            .map_err(|e| format!("metadata `{key}` is not a number: {e}"))
    };
    let (window_s, hop_s) = (number(WINDOW_KEY)?, number(HOP_KEY)?);
    window_features::check_settings(window_s, hop_s)?;
    Ok(ClassifierSpec {
        classes,
        window_s,
        hop_s,
    })
}
