use super::*;
use pagetable_validator::pte::{mk_pte, _PAGE_PRESENT, _PAGE_RW};

/// A short run in the normal suite; `VMM_FUZZ_CALLS=1000000` runs a long one.
#[test]
fn fuzz_short() {
    let calls = std::env::var("VMM_FUZZ_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6000);
    let seed = std::env::var("VMM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let r = run(calls, seed, |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.calls, calls);
    // The inputs reach the deep paths: pins that succeed, refusals, faults, continuations.
    assert!(r.pins > 0, "{r:?}");
    assert!(r.refusals > calls / 10, "{r:?}");
    assert!(r.efaults > 0, "{r:?}");
    assert!(r.continuations > 0, "{r:?}");
}

/// The checks can fail: a validator whose counts are off is caught by the oracle.
#[test]
fn a_broken_invariant_is_reported() {
    let mut w = World::new(7, Rng(7), Policy::Enforce);
    // A guest store into the builder's L1 behind the validator's back (the CPU would
    // refuse it: the L1 is mapped read-only) breaks the counts.
    w.hv.ram.write_u64_phys(
        L1S[1] * PAGE_SIZE + 5 * 8,
        mk_pte(L1S[0], _PAGE_PRESENT | _PAGE_RW),
    );
    let e = w.hypercall(hc::XEN_VERSION, [0; 6]).unwrap_err();
    assert!(matches!(e, FuzzError::Invariant { .. }), "{e}");
}

#[test]
fn a_refusal_count_that_does_not_match_the_log_is_reported() {
    let mut w = World::new(9, Rng(9), Policy::Enforce);
    for _ in 0..20 {
        w.step().unwrap();
    }
    w.hv.log.refusals += 1;
    let e = w.finish(&mut FuzzReport::default()).unwrap_err();
    assert!(e.to_string().contains("refusal records"), "{e}");
}
