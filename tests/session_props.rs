//! The session's message handling under seeded random scripts, standing in for
//! `cargo fuzz` (nightly; `fuzz/fuzz_targets/session_messages.rs` is the same driver):
//! client messages of every type with random fields, invalid UTF-8, binary frames, pings
//! and published events, run against one session (`server::fuzzing`). None may panic or
//! break the session's invariants. Bounded to a few seconds; a failure prints its seed.
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn random_message_scripts_never_panic_or_break_the_session() {
    let started = std::time::Instant::now();
    let mut cases = 0u64;
    for seed in 0..20_000u64 {
        if started.elapsed() > std::time::Duration::from_secs(4) {
            break;
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let len = rng.gen_range(0..2048);
        let script: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let outcome =
            std::panic::catch_unwind(|| wifi_densepose::server::fuzzing::session_messages(&script));
        assert!(
            outcome.is_ok(),
            "seed {seed} failed (replay it with this seed)"
        );
        cases += 1;
    }
    assert!(cases >= 100, "only {cases} cases ran");
    eprintln!("{cases} scripts in {:?}", started.elapsed());
}
