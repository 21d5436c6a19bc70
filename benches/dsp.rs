//! Criterion benchmarks of the conditioning stage: `cargo bench --bench dsp`.
//! Per frame at the shapes of common devices, and per batch of 1000 frames.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::{Array, Array3, IxDyn};
use num_complex::Complex32;
use wifi_densepose::dsp::{filter, hampel, phase, spectrogram, stream};
use wifi_densepose::sensing::{frame_block::FrameBlock, localizer::power_map};

const SHAPES: [&[usize]; 4] = [&[3, 3, 30], &[1, 3, 56], &[1, 1, 64], &[4, 256]];

/// Deterministic pseudo-random CSI (no rand dependency needed).
fn csi(shape: &[usize], seed: u64) -> Array<Complex32, IxDyn> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    Array::from_shape_simple_fn(IxDyn(shape), || Complex32::new(next(), next()))
}

fn label(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

fn per_frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    for shape in SHAPES {
        let x = csi(shape, 1);
        g.bench_with_input(BenchmarkId::new("sanitize", label(shape)), &x, |b, x| {
            b.iter(|| phase::sanitize(black_box(x.view()), None).unwrap())
        });
        g.bench_with_input(
            BenchmarkId::new("condition_frame", label(shape)),
            &x,
            |b, x| b.iter(|| stream::condition_frame(black_box(x.view()), None, None).unwrap()),
        );
        let s3: Vec<usize> = if shape.len() == 3 {
            shape.to_vec()
        } else {
            vec![1, shape[0], shape[1]]
        };
        let frames: Vec<Array3<Complex32>> = (0..64)
            .map(|i| csi(&s3, i).into_dimensionality().unwrap())
            .collect();
        let mut cond = stream::Conditioner::new(stream::ConditionerConfig::default()).unwrap();
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("conditioner_push", label(&s3)), |b| {
            b.iter(|| {
                i += 1;
                cond.push(black_box(frames[i % 64].view()), None).unwrap()
            })
        });
    }
    g.finish();
}

fn per_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch1000");
    g.sample_size(20);
    for shape in SHAPES {
        let mut full = vec![1000];
        full.extend_from_slice(shape);
        let x = csi(&full, 7);
        let (amp, _) = phase::sanitize(x.view(), None).unwrap();
        g.bench_with_input(
            BenchmarkId::new("condition_frame", label(shape)),
            &x,
            |b, x| b.iter(|| stream::condition_frame(black_box(x.view()), None, None).unwrap()),
        );
        g.bench_with_input(BenchmarkId::new("hampel_k3", label(shape)), &amp, |b, a| {
            b.iter(|| hampel::hampel(black_box(a.view()), 3, 3.0, false).unwrap())
        });
        g.bench_with_input(
            BenchmarkId::new("butter_bp4_zero_phase", label(shape)),
            &amp,
            |b, a| {
                b.iter(|| {
                    filter::butter_filter(
                        black_box(a.view()),
                        100.0,
                        Some(1.0),
                        Some(20.0),
                        4,
                        true,
                    )
                    .unwrap()
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("spectrogram_128_32", label(shape)),
            &x,
            |b, x| {
                b.iter(|| {
                    spectrogram::doppler_spectrogram_complex(
                        black_box(x.view()),
                        100.0,
                        128,
                        32,
                        None,
                    )
                    .unwrap()
                })
            },
        );
    }
    g.finish();
}

/// The localizer's floor map for one window (25 frames of 3 x 3 x 10 values) over 625 grid
/// points, as a 5 x 5 m room at 0.2 m gives: frame by frame (the reference) and eight
/// frames side by side in SSE lanes (what the localizer runs; the same map to the bit).
fn localizer_map(c: &mut Criterion) {
    let (frames_n, lk, points) = (25, 90, 625);
    let frames = csi(&[frames_n * lk], 2).into_raw_vec_and_offset().0;
    let steer = csi(&[points * lk], 3).into_raw_vec_and_offset().0;
    let mut g = c.benchmark_group("localizer_map");
    g.bench_function("frame_by_frame", |b| {
        b.iter(|| power_map(black_box(&frames), black_box(&steer), lk))
    });
    g.bench_function("frame_block", |b| {
        b.iter(|| {
            let block = FrameBlock::new(black_box(&frames), lk);
            steer
                .chunks_exact(lk)
                .map(|s| block.power(s))
                .collect::<Vec<f64>>()
        })
    });
    g.finish();
}

criterion_group!(benches, per_frame, per_batch, localizer_map);
criterion_main!(benches);
