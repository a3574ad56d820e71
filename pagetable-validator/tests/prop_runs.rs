//! Property test for dense L1 tables: the validator takes (and releases) runs of
//! 16 entries mapping consecutive frames with equal flags as one range, and
//! every other entry one by one. Here the L1s are full of such runs, broken
//! runs (one entry off), runs with refused flags, runs reaching past the domain
//! or over pagetable frames, and scattered entries; after every operation the
//! brute-force oracle recomputes all counts, and a failed operation must have
//! changed no count (as in `prop_oracle.rs`, which covers the other rules on a
//! small memory where no run occurs).

mod common;

use common::pte_ptr;
use pagetable_validator::abi::MmuUpdate;
use pagetable_validator::pte::*;
use pagetable_validator::{GuestFrames, Mfn, Policy, Validator, VecFrames};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// 0 = L4, 1 = L3, 2 = L2, 3..7 = L1s, 7..NR = data.
const NR: u64 = 160;
const L1S: [Mfn; 4] = [Mfn(3), Mfn(4), Mfn(5), Mfn(6)];
const P: u64 = _PAGE_PRESENT;
const RW: u64 = _PAGE_RW;
const GOOD_FLAGS: [u64; 6] = [
    PAGE_KERNEL,
    PAGE_KERNEL_RO,
    P | RW | _PAGE_USER,
    P | _PAGE_USER | _PAGE_GLOBAL,
    P | RW | _PAGE_ACCESSED,
    RW, // not present
];

/// How one chunk of 16 entries is filled.
#[derive(Clone, Debug)]
enum Chunk {
    Empty,
    /// Consecutive frames from `start`, all with `flags`; if `poke` is set,
    /// entry `.0` is replaced by `.1`.
    Run {
        start: u64,
        flags: u64,
        poke: Option<(usize, u64)>,
    },
    Scattered(Vec<u64>),
}

fn good_flags() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => Just(PAGE_KERNEL),
        4 => Just(PAGE_KERNEL_RO),
        3 => proptest::sample::select(&GOOD_FLAGS[..]),
    ]
}

/// An entry Xen accepts on its own: a data frame, allowed flags.
fn good_entry() -> impl Strategy<Value = u64> {
    (7..NR, good_flags()).prop_map(|(m, f)| mk_pte(m, f))
}

/// Anything: table frames, frames past the domain, refused flags (PCD).
fn any_entry() -> impl Strategy<Value = u64> {
    (0..NR + 4, good_flags(), any::<bool>())
        .prop_map(|(m, f, pcd)| mk_pte(m, if pcd { f | _PAGE_PCD } else { f }))
}

fn chunk() -> impl Strategy<Value = Chunk> {
    let run = |start: BoxedStrategy<u64>, flags: BoxedStrategy<u64>, poke: BoxedStrategy<u64>| {
        (
            start,
            flags,
            proptest::option::weighted(0.2, (0..16usize, poke)),
        )
            .prop_map(|(start, flags, poke)| Chunk::Run { start, flags, poke })
    };
    // Hazards are rare enough that a whole L1 often validates.
    prop_oneof![
        2 => Just(Chunk::Empty),
        20 => run((7..NR - 16).boxed(), good_flags().boxed(), good_entry().boxed()),
        3 => proptest::collection::vec(good_entry(), 16).prop_map(Chunk::Scattered),
        // Over the pagetable frames 0..7, or past the end of the domain.
        1 => run(prop_oneof![0..8u64, NR - 20..NR + 4].boxed(), good_flags().boxed(), good_entry().boxed()),
        // Refused flags for the whole run, or one odd entry in it.
        1 => run((7..NR - 16).boxed(), good_flags().prop_map(|f| f | _PAGE_PCD).boxed(), good_entry().boxed()),
        1 => run((7..NR - 16).boxed(), good_flags().boxed(), any_entry().boxed()),
    ]
}

fn fill(mem: &mut VecFrames, l1: Mfn, chunks: &[Chunk]) {
    for (c, ch) in chunks.iter().enumerate() {
        for k in 0..16 {
            let e = match ch {
                Chunk::Empty => 0,
                Chunk::Run { start, flags, poke } => match poke {
                    Some((i, e)) if *i == k => *e,
                    _ => mk_pte(start + k as u64, *flags),
                },
                Chunk::Scattered(v) => v[k],
            };
            mem.write_entry(l1, c * 16 + k, e);
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Pin(u32, u64),
    Unpin(u64),
    /// An update of an L1 entry (the L1 by index).
    Mmu(usize, usize, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => prop_oneof![Just((4u32, 0u64)), Just((3, 1)), Just((2, 2)), (Just(1u32), 3..7u64)]
            .prop_map(|(l, m)| Op::Pin(l, m)),
        2 => (0..7u64).prop_map(Op::Unpin),
        2 => (0..4usize, 0..512usize, any_entry()).prop_map(|(t, s, e)| Op::Mmu(t, s, e)),
    ]
}

fn apply(v: &mut Validator, mem: &mut VecFrames, op: &Op) -> Result<(), i64> {
    match *op {
        Op::Pin(l, m) => v.pin(mem, l, Mfn(m)),
        Op::Unpin(m) => v.unpin(mem, Mfn(m)),
        Op::Mmu(t, s, val) => v.mmu_update(
            mem,
            MmuUpdate {
                ptr: pte_ptr(L1S[t], s),
                val,
            },
        ),
    }
    .map_err(|e| e.errno())
}

fn build(l1s: &[Vec<Chunk>]) -> VecFrames {
    let mut mem = VecFrames::new(NR);
    mem.write_entry(Mfn(0), 0, mk_pte(1, PAGE_TABLE));
    mem.write_entry(Mfn(1), 0, mk_pte(2, PAGE_TABLE));
    for (i, &l1) in L1S.iter().enumerate() {
        mem.write_entry(Mfn(2), i, l1.pte(PAGE_TABLE));
        fill(&mut mem, l1, &l1s[i]);
    }
    mem
}

fn run(policy: Policy, l1s: &[Vec<Chunk>], ops: &[Op]) -> Result<(), TestCaseError> {
    let mut mem = build(l1s);
    let mut v = Validator::new(NR, policy);
    for (i, op) in ops.iter().enumerate() {
        let before = v.frames_snapshot();
        let res = apply(&mut v, &mut mem, op);
        let events = v.drain_events();
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(events[0].rc, res.err().unwrap_or(0));
        if let Err(rc) = res {
            prop_assert!([-22, -16, -1].contains(&rc), "op {} {:?}: rc {}", i, op, rc);
            prop_assert!(
                before == v.frames_snapshot(),
                "op {} {:?} failed ({}) but changed counts",
                i,
                op,
                rc
            );
        }
        if let Err(e) = v.check_invariants(&mem) {
            return Err(TestCaseError::fail(format!(
                "after op {i} {op:?} -> {res:?}:\n{e}"
            )));
        }
    }
    // Unpinning everything leaves every frame untyped and unreferenced.
    for m in 0..7 {
        let _ = v.unpin(&mut mem, Mfn(m));
    }
    for m in 0..NR {
        let f = v.frame_info(Mfn(m)).unwrap();
        prop_assert_eq!(
            (f.refs, f.type_count, f.tolerated_writable),
            (0, 0, 0),
            "mfn {} after unpinning all: {:?}",
            m,
            f
        );
    }
    Ok(())
}

fn l1s() -> impl Strategy<Value = Vec<Vec<Chunk>>> {
    proptest::collection::vec(proptest::collection::vec(chunk(), 32), 4)
}

proptest! {
    #![proptest_config(Config { cases: 300, max_shrink_iters: 500, ..Config::default() })]

    #[test]
    fn dense_runs_keep_invariants_enforce(l1s in l1s(), ops in proptest::collection::vec(op(), 1..16)) {
        run(Policy::Enforce, &l1s, &ops)?;
    }

    #[test]
    fn dense_runs_keep_invariants_audit(l1s in l1s(), ops in proptest::collection::vec(op(), 1..16)) {
        run(Policy::Audit, &l1s, &ops)?;
    }
}

/// A failure inside a run is reported at the entry Xen would stop at, and the
/// runs before it are released again (Xen's `promote_l1_table` unwinding).
#[test]
fn failure_inside_a_run_reports_the_entry_and_unwinds() {
    let mut mem = VecFrames::new(NR);
    let mut v = Validator::new(NR, Policy::Enforce);
    // L1 3: slots 0..64 map frames 20..84 RW, except that slot 41 maps frame
    // 100, which becomes an L1 pagetable first.
    for s in 0..64 {
        mem.write_entry(Mfn(3), s, mk_pte(20 + s as u64, PAGE_KERNEL));
    }
    mem.write_entry(Mfn(3), 41, mk_pte(100, PAGE_KERNEL));
    v.pin(&mut mem, 1, Mfn(100)).unwrap();
    let before = v.frames_snapshot();
    assert_eq!(v.pin(&mut mem, 1, Mfn(3)).map_err(|e| e.errno()), Err(-16));
    let log = v
        .drain_events()
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        log.contains("Failure -16 in promote_l1_table: slot 0x29"),
        "{log}"
    );
    assert_eq!(before, v.frames_snapshot());
    // The same frame RO is fine; then 63 writable references and one more
    // general one on frame 100 (RO, no type reference).
    mem.write_entry(Mfn(3), 41, mk_pte(100, PAGE_KERNEL_RO));
    v.pin(&mut mem, 1, Mfn(3)).unwrap();
    for m in 20..84 {
        let f = v.frame_info(Mfn(m)).unwrap();
        let n = u32::from(m != 61);
        assert_eq!((f.refs, f.type_count), (n, n), "mfn {m}");
    }
    assert_eq!(v.frame_info(Mfn(100)).unwrap().refs, 2);
    v.check_invariants(&mem).unwrap();
}
