//! Activity recall per class on simulated daily activity with oracle detections (the
//! track stage's noise model over the truth): how the analytics' own smoothing and
//! decisions do, apart from any model. Tunes on these scripted days (seeds of their
//! own); the held-out figure is `wifi-densepose evaluate --pipeline --oracle`.
//!
//! `cargo run --release --example activity_eval [runs] [hard] [key=value ...]`, keys:
//! `switch`, `falling_exit`, `power`, `floor`, `dwell`, `margin`, `weight`,
//! `falling_rate` (the [`ActivityConfig`] fields).

use wifi_densepose::analytics::activity::ActivityConfig;
use wifi_densepose::analytics::eval::{self, daily_activity, Score};
use wifi_densepose::analytics::EngineConfig;
use wifi_densepose::track::synth::NoiseModel;
use wifi_densepose::track::ACTIVITIES;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(12);
    let hard = args.iter().any(|a| a == "hard");
    let mut activity = ActivityConfig::default();
    for a in &args {
        let Some((k, v)) = a.split_once('=') else {
            continue;
        };
        let v: f64 = v.parse().expect("a number");
        match k {
            "switch" => activity.switch_hz = v,
            "falling_exit" => activity.falling_exit_hz = v,
            "power" => activity.evidence_power = v,
            "floor" => activity.evidence_floor = v,
            "dwell" => activity.min_dwell_s = v,
            "margin" => activity.margin = v,
            "weight" => activity.model_weight = v,
            "falling_rate" => activity.falling_rate_mps = v,
            other => panic!("unknown key {other}"),
        }
    }
    let noise = if hard {
        NoiseModel::hard()
    } else {
        NoiseModel::default()
    };
    let cfg = EngineConfig {
        activity,
        ..EngineConfig::default()
    };
    let fps = 30.0;
    let mut total = Score::default();
    let (mut changes, mut truth_changes) = (0, 0);
    for k in 0..runs {
        let people = 1 + (k % 3) as usize;
        let spec = daily_activity(9000 + k, people, 120.0, true);
        let r = eval::run(spec, fps, &noise, 9100 + k, &cfg, 1.0).expect("run");
        total.add(&r.ours);
        changes += r.activity_changes;
        truth_changes += r.truth_activity_changes;
    }
    println!(
        "config: {:?}; noise {}",
        cfg.activity,
        if hard { "hard" } else { "default" }
    );
    let recall = total.activity_recall();
    for (name, r) in ACTIVITIES.iter().zip(recall) {
        print!("{name} {} ", r.map_or("-".into(), |r| format!("{r:.3}")));
    }
    println!(
        "| balanced {:.3} | changes per person-minute {:.2} (true {:.2})",
        total.activity_balanced_accuracy(),
        changes as f64 / total.person_minutes,
        truth_changes as f64 / total.person_minutes
    );
    for (name, row) in ACTIVITIES.iter().zip(total.activity_confusion) {
        println!("  {name:>9}: {row:?}");
    }
}
