use wifi_densepose::sim::truth::FrameTruth;
use wifi_densepose::sim::{build_spec, Simulator};
use wifi_densepose::track::synth::{NoiseModel, Synth};
fn slope(p: &[(f64, f64)]) -> f64 {
    let n = p.len() as f64;
    let mt = p.iter().map(|x| x.0).sum::<f64>() / n;
    let me = p.iter().map(|x| x.1).sum::<f64>() / n;
    let sxx: f64 = p.iter().map(|x| (x.0 - mt).powi(2)).sum();
    let sxy: f64 = p.iter().map(|x| (x.0 - mt) * (x.1 - me)).sum();
    sxy / sxx
}
fn main() {
    for sc in ["fall", "lie_down"] {
        let mut peaks = Vec::new();
        let mut peaks_m = Vec::new();
        for seed in 0..30u64 {
            let spec = build_spec(sc, Some(seed), Some(12.0), None, Some(20.0)).unwrap();
            let sim = Simulator::new(spec).unwrap();
            let mut s = Synth::new(NoiseModel::default(), seed);
            let mut raw: Vec<(f64, f64)> = Vec::new();
            let mut med: Vec<(f64, f64)> = Vec::new();
            let (mut pk, mut pkm) = (0.0f64, 0.0f64);
            for n in 0..240 {
                let t = n as f64 / 20.0;
                let ft = FrameTruth {
                    time: t,
                    sequence: n,
                    people: sim.people_at(t).0,
                };
                if let Some(e) = s
                    .detections(&sim.room, &ft)
                    .first()
                    .and_then(|d| d.extension_m([6.0, 5.0]))
                {
                    raw.push((t, e));
                    let k = raw.len();
                    let m = if k >= 3 {
                        let mut v = [raw[k - 1].1, raw[k - 2].1, raw[k - 3].1];
                        v.sort_by(|a, b| a.total_cmp(b));
                        v[1]
                    } else {
                        e
                    };
                    med.push((t, m));
                    let w: Vec<_> = raw
                        .iter()
                        .filter(|x| t - x.0 <= 0.3 + 1e-9)
                        .cloned()
                        .collect();
                    if w.len() >= 3 {
                        pk = pk.max(slope(&w));
                    }
                    let w: Vec<_> = med
                        .iter()
                        .filter(|x| t - x.0 <= 0.3 + 1e-9)
                        .cloned()
                        .collect();
                    if w.len() >= 3 {
                        pkm = pkm.max(slope(&w));
                    }
                }
            }
            peaks.push((pk * 100.0).round() / 100.0);
            peaks_m.push((pkm * 100.0).round() / 100.0);
        }
        peaks.sort_by(|a, b| a.total_cmp(b));
        peaks_m.sort_by(|a, b| a.total_cmp(b));
        println!("{sc} raw {:?}\n{sc} med {:?}", peaks, peaks_m);
    }
}
