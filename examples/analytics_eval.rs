//! Prints the figures of `docs/analytics.md`: ours against the naive threshold
//! baseline on simulator scenarios with ground truth.
//!
//! `cargo run --release --example analytics_eval [hours_of_daily_activity] [hard]`
//! (`hard`: a worse detector — more position noise, 25 % misses, 0.2 ghosts per
//! frame, weaker activity scores).

use wifi_densepose::analytics::eval::{self, daily_activity, Score};
use wifi_densepose::analytics::EngineConfig;
use wifi_densepose::sim::build_spec;
use wifi_densepose::track::synth::NoiseModel;

fn main() {
    let hours: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    let hard = std::env::args().nth(2).is_some_and(|a| a == "hard");
    let fps = 20.0;
    let noise = if hard {
        NoiseModel::hard()
    } else {
        NoiseModel::default()
    };
    let cfg = EngineConfig::default();
    let grace = 1.0;
    let mut groups: Vec<(&str, Score, Score, String)> = Vec::new();
    let mut run_group = |name: &'static str, specs: Vec<(wifi_densepose::sim::Spec, u64)>| {
        let (mut a, mut b) = (Score::default(), Score::default());
        let mut extra = String::new();
        let (mut msgs, mut changes) = (0, 0);
        for (spec, seed) in specs {
            let r = eval::run(spec, fps, &noise, seed, &cfg, grace).expect("run");
            a.add(&r.ours);
            b.add(&r.naive);
            msgs += r.occupancy_messages;
            changes += r.occupancy_changes;
        }
        extra += &format!("occupancy messages {msgs} for {changes} true changes");
        groups.push((name, a, b, extra));
    };
    let named =
        |n: &str, d: f64, k: u64| build_spec(n, Some(k), Some(d), None, Some(fps)).expect("spec");
    run_group(
        "fall (20 runs)",
        (0..20).map(|k| (named("fall", 12.0, k), k)).collect(),
    );
    run_group(
        "fall_recover (20 runs)",
        (0..20)
            .map(|k| (named("fall_recover", 20.0, k), 100 + k))
            .collect(),
    );
    run_group(
        "daily with falls, 1 person (10 x 10 min)",
        (0..10)
            .map(|k| (daily_activity(k, 1, 600.0, true), 200 + k))
            .collect(),
    );
    let n_daily = (hours * 2.0).ceil().max(1.0) as u64;
    run_group(
        "daily, no falls, 2 people (30 min runs)",
        (0..n_daily)
            .map(|k| (daily_activity(1000 + k, 2, 1800.0, false), 300 + k))
            .collect(),
    );
    run_group(
        "enter_leave (5 x 120 s)",
        (0..5)
            .map(|k| (named("enter_leave", 120.0, k), 400 + k))
            .collect(),
    );
    run_group(
        "two_people (5 x 120 s)",
        (0..5)
            .map(|k| (named("two_people", 120.0, k), 500 + k))
            .collect(),
    );
    run_group(
        "daily, 3 people (4 x 10 min)",
        (0..4)
            .map(|k| (daily_activity(2000 + k, 3, 600.0, false), 600 + k))
            .collect(),
    );
    println!(
        "noise: body {} m, keypoint {} m, miss {}, ghosts {}/frame, activity logit {} +- {}; {fps} fps\n",
        noise.body_sigma_m, noise.keypoint_sigma_m, noise.miss_rate, noise.ghost_rate,
        noise.activity_logit, noise.activity_noise
    );
    println!("| scenario | detector | falls | detected once ≤2 s | recall | precision | false alarms | FA/hour | max latency s | occupancy acc | occ acc (1 s grace) | ID switches | switches/person/min |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut tot = (Score::default(), Score::default());
    for (name, a, b, _) in &groups {
        for (who, s) in [("ours", a), ("naive", b)] {
            println!(
                "| {name} | {who} | {} | {} | {:.3} | {:.3} | {} | {:.2} | {:.2} | {:.4} | {:.4} | {} | {:.4} |",
                s.falls,
                s.falls_detected_once,
                s.recall(),
                s.precision(),
                s.false_alarms,
                s.false_alarms_per_hour(),
                s.max_latency(),
                s.occupancy_accuracy(),
                s.occupancy_accuracy_grace(),
                s.id_switches,
                s.switches_per_person_minute()
            );
        }
        tot.0.add(a);
        tot.1.add(b);
    }
    for (who, s) in [("ours", &tot.0), ("naive", &tot.1)] {
        println!(
            "| **all** | {who} | {} | {} | {:.3} | {:.3} | {} | {:.2} | {:.2} | {:.4} | {:.4} | {} | {:.4} |",
            s.falls, s.falls_detected_once, s.recall(), s.precision(), s.false_alarms,
            s.false_alarms_per_hour(), s.max_latency(), s.occupancy_accuracy(),
            s.occupancy_accuracy_grace(), s.id_switches, s.switches_per_person_minute()
        );
    }
    println!("\nsimulated hours: {:.2}", tot.0.hours);
    for (name, _, _, extra) in &groups {
        println!("- {name}: {extra}");
    }
}
