//! What the analytics' false fall alarms on long simulated days are: for each alert on a
//! day without falls, what every person was doing around it and how close they were.
//!
//! `cargo run --release --example fall_false_alarms [hours] [key=value ...]` (two people,
//! 30 min days, the same runs as `analytics_eval`'s "daily, no falls" row), then the fall
//! recall on `analytics_eval`'s fall runs; `hard`: its worse detector; keys: `days_from`
//! (the first day's seed, 1000 by default), `rate`, `assisted`, `score` (the
//! [`FallConfig`](wifi_densepose::analytics::fall::FallConfig) descent rates and score).

use wifi_densepose::analytics::eval::{self, daily_activity};
use wifi_densepose::analytics::EngineConfig;
use wifi_densepose::sim::{build_spec, Simulator};
use wifi_densepose::track::synth::NoiseModel;
use wifi_densepose::track::ACTIVITIES;

fn main() {
    let hours: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(24.0);
    let runs = (hours * 2.0).ceil() as u64;
    let mut cfg = EngineConfig::default();
    let mut first_day = 1000;
    let mut noise = NoiseModel::default();
    for a in std::env::args().skip(2) {
        if a == "hard" {
            // analytics_eval's worse detector.
            noise = NoiseModel::hard();
            continue;
        }
        let (k, v) = a.split_once('=').expect("key=value");
        let v: f64 = v.parse().expect("a number");
        match k {
            "rate" => cfg.fall.min_descent_rate = v,
            "assisted" => cfg.fall.assisted_descent_rate = v,
            "score" => cfg.fall.min_falling_score = v,
            "days_from" => first_day = v as u64,
            other => panic!("unknown key {other}"),
        }
    }
    let mut total = 0;
    for k in 0..runs {
        let spec = daily_activity(first_day + k, 2, 1800.0, false);
        let r = eval::run(spec.clone(), 20.0, &noise, 300 + k, &cfg, 1.0).expect("run");
        let sim = Simulator::new(spec).expect("sim");
        for &(t, person) in &r.alerts {
            total += 1;
            let mut line = format!("run {k} t {t:.2} person_id {person}:");
            for dt in [-3.0, -2.0, -1.0, -0.5, 0.0] {
                let (people, _) = sim.people_at(t + dt);
                let hips = eval::mid_hips(&people);
                let acts: Vec<&str> = people
                    .iter()
                    .map(|p| {
                        if p.present {
                            ACTIVITIES[p.activity as usize]
                        } else {
                            "-"
                        }
                    })
                    .collect();
                let gap = match (
                    hips.first().copied().flatten(),
                    hips.get(1).copied().flatten(),
                ) {
                    (Some(a), Some(b)) => format!("{:.2}", (a[0] - b[0]).hypot(a[1] - b[1])),
                    _ => "-".into(),
                };
                line += &format!(" [{dt:+}: {acts:?} gap {gap}]");
            }
            println!("{line}");
        }
    }
    println!("{total} alerts in {runs} half-hour days without falls");
    let named =
        |n: &str, d: f64, k: u64| build_spec(n, Some(k), Some(d), None, Some(20.0)).expect("spec");
    let mut specs: Vec<_> = (0..20).map(|k| (named("fall", 12.0, k), k)).collect();
    specs.extend((0..20).map(|k| (named("fall_recover", 20.0, k), 100 + k)));
    specs.extend((0..10).map(|k| (daily_activity(k, 1, 600.0, true), 200 + k)));
    let (mut falls, mut found, mut false_alarms) = (0, 0, 0);
    for (spec, seed) in specs {
        let r = eval::run(spec, 20.0, &noise, seed, &cfg, 1.0).expect("run");
        falls += r.ours.falls;
        found += r.ours.falls_detected_once;
        false_alarms += r.ours.false_alarms;
    }
    println!(
        "fall runs: {found} of {falls} falls alerted once within 2 s, {false_alarms} false alarms"
    );
}
