//! Inference latency of the bundled pose model through ONNX Runtime: batch 1 and batch 8,
//! one intra-op thread (windows per second per core = batch / latency).
//!
//! The ONNX Runtime library comes from the `onnxruntime` wheel of the Python found as
//! `python3` (or `WDP_PYTHON`); `ORT_LIB` overrides the path.
//!
//!     CARGO_TARGET_DIR=... WDP_PYTHON=/path/to/venv/bin/python cargo bench --bench model

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wifi_densepose::model::{contract, init_runtime, Model};

fn ort_library() -> PathBuf {
    if let Ok(p) = std::env::var("ORT_LIB") {
        return PathBuf::from(p);
    }
    let python = std::env::var("WDP_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let code = "import glob, os, onnxruntime as o; \
                print(sorted(glob.glob(os.path.join(os.path.dirname(o.__file__), 'capi', 'libonnxruntime.so*')))[0])";
    let out = Command::new(python)
        .args(["-c", code])
        .output()
        .expect("python to locate onnxruntime");
    assert!(
        out.status.success(),
        "onnxruntime not found: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn bench(c: &mut Criterion) {
    init_runtime(&ort_library()).expect("ONNX Runtime");
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("python/wifi_densepose/models/default.onnx");
    let model = Model::load(&path, 1).expect("bundled model");
    let per = contract::CHANNELS * contract::WINDOW * contract::FEATURES;
    let mut g = c.benchmark_group("model");
    for batch in [1usize, 8] {
        let x: Vec<f32> = (0..batch * per)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::new("predict", batch), &x, |b, x| {
            b.iter(|| model.predict(x, batch).expect("predict"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
