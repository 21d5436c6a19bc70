//! Frames per second the simulator generates for an Intel 5300 (3 x 3 x 30) with two
//! people walking, on one core: the path sum alone, a whole packet with impairments
//! and keypoint truth (`frame_into`), and the `CsiFrame` source.
//!
//! `cargo bench --bench sim`; the baseline (a numpy path sum) is `benches/sim_numpy.py`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use num_complex::Complex32;
use wifi_densepose::sim::channel::Workspace;
use wifi_densepose::sim::{build_spec, Simulator};

fn bench(c: &mut Criterion) {
    let spec = build_spec(
        "two_people",
        Some(0),
        Some(20.0),
        Some("intel5300"),
        Some(100.0),
    )
    .expect("scenario");
    let sim = Simulator::new(spec).expect("simulator");
    let n = sim.n_frames();
    let (nt, nr, ns) = sim.shape();
    let mut g = c.benchmark_group("sim_intel5300_3x3x30_two_people");
    const BATCH: usize = 200;
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut ws = Workspace::default();
    let mut buf = vec![Complex32::new(0.0, 0.0); nt * nr * ns];
    let mut start = 0usize;
    g.bench_function("frame_into", |b| {
        b.iter(|| {
            for k in 0..BATCH {
                let f = sim.frame_into((start + k) % n, &mut ws, &mut buf);
                std::hint::black_box(&f);
            }
            start = (start + BATCH) % n;
        })
    });
    // The path sum alone, bodies posed once per frame.
    let times: Vec<f64> = (0..BATCH).map(|k| k as f64 * 0.01).collect();
    let bodies: Vec<_> = times.iter().map(|t| sim.people_at(*t).1).collect();
    g.bench_function("path_sum", |b| {
        b.iter(|| {
            for bs in &bodies {
                sim.channel().compute(bs, &mut ws, &mut buf);
                std::hint::black_box(&buf);
            }
        })
    });
    g.bench_function("frames_iterator", |b| {
        b.iter(|| {
            let mut it = sim.frames();
            for _ in 0..BATCH {
                std::hint::black_box(it.next());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
