use wifi_densepose::analytics::eval::{self, daily_activity};
use wifi_densepose::analytics::EngineConfig;
use wifi_densepose::sim::Simulator;
use wifi_densepose::track::synth::NoiseModel;
fn main() {
    let mut runs: Vec<(wifi_densepose::sim::Spec, u64)> = (0..10u64)
        .map(|k| (daily_activity(k, 1, 600.0, true), 200 + k))
        .collect();
    runs.extend((0..1u64).map(|k| (daily_activity(1000 + k, 2, 1800.0, false), 300 + k)));
    runs.extend((0..4u64).map(|k| (daily_activity(2000 + k, 3, 600.0, false), 600 + k)));
    for (k, (spec, seed)) in runs.into_iter().enumerate() {
        let sim = Simulator::new(spec.clone()).unwrap();
        let falls: Vec<(f64, f64)> = sim
            .falls()
            .iter()
            .map(|f| (f.1.start, f.1.impact))
            .collect();
        let r = eval::run(
            spec,
            20.0,
            &NoiseModel::default(),
            seed,
            &EngineConfig::default(),
            1.0,
        )
        .unwrap();
        for (s, i) in &falls {
            let hit = r.alerts.iter().find(|a| a.0 >= *s && a.0 <= i + 2.0);
            if hit.is_none() && i + 2.0 < 600.0 {
                let st = sim.people_at(s - 0.5).0[0].clone();
                println!("run {k} missed fall at {s:.2}-{i:.2} pos {:?} act_before {:?} alerts near {:?}", [st.pose.keypoints[11][0], st.pose.keypoints[11][1]], st.activity, r.alerts.iter().filter(|a| (a.0 - i).abs() < 20.0).collect::<Vec<_>>());
            }
        }
        for a in &r.alerts {
            if !falls.iter().any(|(s, i)| a.0 >= *s && a.0 <= i + 2.0) {
                let acts: Vec<String> = (0..8)
                    .map(|j| {
                        let t = a.0 - 3.5 + j as f64 * 0.5;
                        let p = sim.people_at(t).0;
                        format!(
                            "{t:.1}:{:?}",
                            p.iter()
                                .map(|x| (
                                    x.activity as i32,
                                    x.present,
                                    (x.pose.keypoints[11][0] * 10.0).round() / 10.0,
                                    (x.pose.keypoints[11][1] * 10.0).round() / 10.0
                                ))
                                .collect::<Vec<_>>()
                        )
                    })
                    .collect();
                println!("run {k} FA at {:.2} pid {} {}", a.0, a.1, acts.join(" "));
            }
        }
    }
}
