//! Property test: random operation sequences over a small guest memory. After
//! every operation the brute-force oracle recomputes all counts from scratch
//! (`check_invariants`); a failed operation must have changed nothing (frame
//! table and base compared with a snapshot; memory too, except that entries a
//! failed validation had already accepted keep the flags Xen adds to them, as
//! Xen leaves them); every operation yields one event whose rc is the result.
//!
//! `PROPTEST_CASES=100000 cargo test --release -p pagetable-validator --test
//! prop_oracle` runs far more sequences than the CI default.

mod common;

use common::pte_ptr;
use pagetable_validator::abi::MmuUpdate;
use pagetable_validator::pte::*;
use pagetable_validator::{
    GuestFrames, Mfn, PageType, Policy, Rules, Validator, VecFrames, _PAGE_GUEST_KERNEL,
    L1_DISALLOW_IO_PRIV,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// Frames: 0..4 meant as L4s, 4..10 L3s, 10..16 L2s, 16..24 L1s, 24..32 data.
const NR: u64 = 32;
const GROUPS: [(u64, u64); 5] = [(24, 32), (16, 24), (10, 16), (4, 10), (0, 4)];
/// Slots used everywhere, so entries collide; 256 is a hypervisor L4 slot.
const SLOTS: [usize; 6] = [0, 1, 2, 3, 256, 511];

const P: u64 = _PAGE_PRESENT;
const RW: u64 = _PAGE_RW;
const GOOD_FLAGS: [u64; 6] = [
    PAGE_TABLE,
    P | _PAGE_ACCESSED,
    P | RW,
    PAGE_KERNEL,
    PAGE_KERNEL_RO,
    P | _PAGE_USER | _PAGE_GLOBAL,
];
const ODD_FLAGS: [u64; 9] = [
    0,
    RW,
    P | _PAGE_PSE,
    P | RW | _PAGE_PCD,
    P | RW | _PAGE_GLOBAL,
    P | _PAGE_AVAIL | _PAGE_NX,
    P | RW | _PAGE_DIRTY | (1 << 62),
    P | _PAGE_PWT,
    // Xen's own GUEST_KERNEL bit set by the guest, with GLOBAL (Xen warns, keeps it).
    P | _PAGE_GUEST_KERNEL | _PAGE_GLOBAL,
];

fn flags() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => proptest::sample::select(&GOOD_FLAGS[..]),
        2 => proptest::sample::select(&ODD_FLAGS[..]),
    ]
}

fn any_mfn() -> impl Strategy<Value = Mfn> {
    (0..NR + 2).prop_map(Mfn)
}

/// An entry, usually pointing one group down from `level` (0 = anywhere).
fn entry(level: usize) -> impl Strategy<Value = u64> {
    let (lo, hi) = if (1..=4).contains(&level) {
        GROUPS[level - 1]
    } else {
        (0, NR + 2)
    };
    (prop_oneof![3 => lo..hi, 1 => 0..NR + 2], flags(), 0..40u32).prop_map(|(m, f, r)| {
        if r == 0 {
            // Occasionally garbage in the address bits above 52 too.
            mk_pte(m, f) | 0x0ff0_0000_0000_0000
        } else {
            mk_pte(m, f)
        }
    })
}

fn slot() -> impl Strategy<Value = usize> {
    proptest::sample::select(&SLOTS[..])
}

/// Initial raw contents: edges mostly from each group to the one below.
fn setup() -> impl Strategy<Value = Vec<(Mfn, usize, u64)>> {
    proptest::collection::vec(
        (1usize..=4).prop_flat_map(|g| {
            let (lo, hi) = GROUPS[g];
            ((lo..hi).prop_map(Mfn), slot(), entry(g))
        }),
        0..40,
    )
}

#[derive(Clone, Debug)]
enum Op {
    Pin(u32, Mfn),
    Unpin(Mfn),
    NewBase(Mfn),
    Mmu {
        table: Mfn,
        slot: usize,
        val: u64,
        cmd: u64,
    },
    /// `walk`: pick each index among the present slots of the current tables
    /// (`idx[i] % count`), so the VA usually resolves.
    Uva {
        idx: [usize; 4],
        walk: bool,
        val: u64,
    },
    /// A guest store into a frame that is not a pagetable.
    Raw {
        mfn: Mfn,
        slot: usize,
        val: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let pin_level = prop_oneof![10 => 1u32..=4, 1 => Just(0u32), 1 => Just(5u32)];
    let cmd = prop_oneof![6 => Just(0u64), 2 => Just(2u64), 1 => Just(1u64), 1 => Just(3u64), 1 => Just(5u64)];
    prop_oneof![
        4 => (pin_level, any_mfn()).prop_map(|(l, m)| Op::Pin(l, m)),
        2 => any_mfn().prop_map(Op::Unpin),
        2 => any_mfn().prop_map(Op::NewBase),
        6 => (any_mfn(), slot(), 0usize..=4, cmd)
            .prop_flat_map(|(t, s, lv, c)| (Just(t), Just(s), entry(lv), Just(c)))
            .prop_map(|(table, slot, val, cmd)| Op::Mmu { table, slot, val, cmd }),
        4 => ([slot(), slot(), slot(), slot()], any::<bool>(), entry(0)).prop_map(|(idx, walk, val)| Op::Uva { idx, walk, val }),
        1 => (any_mfn(), slot(), entry(0)).prop_map(|(mfn, slot, val)| Op::Raw { mfn, slot, val }),
    ]
}

/// Chooses, level by level, one of the present `SLOTS` of the current tables.
fn walk_indices(v: &Validator, mem: &VecFrames, pick: [usize; 4]) -> [usize; 4] {
    let mut out = pick;
    let Some(mut t) = v.current_base() else {
        return out;
    };
    for (i, p) in pick.iter().enumerate() {
        let present: Vec<usize> = SLOTS
            .iter()
            .copied()
            .filter(|&s| pte_present(mem.read_entry(t, s)))
            .collect();
        if present.is_empty() {
            return out;
        }
        out[i] = present[p % present.len()];
        let next = Mfn::of_pte(mem.read_entry(t, out[i]));
        if next.0 >= NR || i == 3 {
            return out;
        }
        t = next;
    }
    out
}

fn apply(v: &mut Validator, mem: &mut VecFrames, op: &Op) -> Option<Result<(), i64>> {
    let r = match *op {
        Op::Pin(l, m) => v.pin(mem, l, m),
        Op::Unpin(m) => v.unpin(mem, m),
        Op::NewBase(m) => v.new_baseptr(mem, m),
        Op::Mmu {
            table,
            slot,
            val,
            cmd,
        } => {
            let req = MmuUpdate {
                ptr: pte_ptr(table, slot) | cmd,
                val,
            };
            v.mmu_update(mem, req)
        }
        Op::Uva { idx, walk, val } => {
            let idx = if walk { walk_indices(v, mem, idx) } else { idx };
            let va = va_of(idx[0], idx[1], idx[2], idx[3]);
            v.update_va_mapping(mem, va, val, 0)
        }
        Op::Raw { mfn, slot, val } => {
            // Only frames that are not pagetables are writable by the guest.
            if mfn.0 >= NR || v.page_type(mfn).is_table() {
                return None;
            }
            mem.write_entry(mfn, slot, val);
            return None;
        }
    };
    Some(r.map_err(|e| e.errno()))
}

fn run(
    policy: Policy,
    rules: Rules,
    setup: &[(Mfn, usize, u64)],
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut mem = VecFrames::new(NR);
    for &(m, s, e) in setup {
        mem.write_entry(m, s, e);
    }
    let mut v = Validator::with_rules(NR, policy, rules);
    let mut any_ok_pin = false;
    for (i, op) in ops.iter().enumerate() {
        let before = (v.frames_snapshot(), mem.clone(), v.current_base());
        let Some(res) = apply(&mut v, &mut mem, op) else {
            continue;
        };
        let events = v.drain_events();
        prop_assert_eq!(events.len(), 1, "op {} {:?}: one event", i, op);
        prop_assert_eq!(
            events[0].rc,
            res.err().unwrap_or(0),
            "op {} {:?}: event rc",
            i,
            op
        );
        if let Err(rc) = res {
            prop_assert!(
                [-22, -16, -1, -38].contains(&rc),
                "op {} {:?}: unexpected rc {}",
                i,
                op,
                rc
            );
            let after = (v.frames_snapshot(), v.current_base());
            prop_assert!(
                (&before.0, &before.2) == (&after.0, &after.1),
                "op {} {:?} failed ({}) but changed state",
                i,
                op,
                rc
            );
            if let Some((m, s, was, now)) = memory_change_beyond_adjust(&before.1, &mem) {
                return Err(TestCaseError::fail(format!(
                    "op {i} {op:?} failed ({rc}) but changed mfn {m:x} slot {s}: {was:016x} -> {now:016x}"
                )));
            }
        } else if matches!(op, Op::Pin(..)) {
            any_ok_pin = true;
        }
        if let Err(e) = v.check_invariants(&mem) {
            return Err(TestCaseError::fail(format!(
                "after op {i} {op:?} -> {res:?}:\n{e}"
            )));
        }
        if policy == Policy::Enforce {
            // Spelled out although the oracle covers it: no pagetable is mapped RW.
            for m in 0..NR {
                let f = v.frame_info(Mfn(m)).unwrap();
                prop_assert_eq!(f.tolerated_writable, 0);
                prop_assert!(!(f.ty.is_table() && f.ty == PageType::Writable));
            }
        }
    }
    let _ = any_ok_pin;
    Ok(())
}

/// Flags Xen's `adjust_guest_lNe` may add to an accepted entry.
const ADJUST_BITS: u64 = _PAGE_USER | _PAGE_ACCESSED | _PAGE_GLOBAL | _PAGE_GUEST_KERNEL;

/// The first entry that changed other than by gaining adjustment flags (a
/// present entry only).
fn memory_change_beyond_adjust(
    before: &VecFrames,
    after: &VecFrames,
) -> Option<(Mfn, usize, u64, u64)> {
    for m in 0..NR {
        for s in 0..ENTRIES {
            let (b, a) = (before.read_entry(Mfn(m), s), after.read_entry(Mfn(m), s));
            let ok = b == a || (pte_present(b) && a & !b & !ADJUST_BITS == 0 && b & !a == 0);
            if !ok {
                return Some((Mfn(m), s, b, a));
            }
        }
    }
    None
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2500)
}

proptest! {
    #![proptest_config(Config { cases: cases(), max_shrink_iters: 2000, ..Config::default() })]

    #[test]
    fn enforce_sequences_keep_invariants(setup in setup(), ops in proptest::collection::vec(op(), 1..40)) {
        run(Policy::Enforce, Rules::default(), &setup, &ops)?;
    }

    #[test]
    fn audit_sequences_keep_invariants(setup in setup(), ops in proptest::collection::vec(op(), 1..40)) {
        run(Policy::Audit, Rules::default(), &setup, &ops)?;
    }

    /// Guest memory changed behind the validator's back (what a tolerated stray
    /// RW mapping allows under audit): counts may go wrong, but nothing panics and
    /// every result is still one of Xen's errnos.
    #[test]
    fn corrupted_tables_never_panic(setup in setup(), ops in proptest::collection::vec((op(), any_mfn(), slot(), entry(0)), 1..40)) {
        for policy in [Policy::Audit, Policy::Enforce] {
            let mut mem = VecFrames::new(NR);
            for &(m, s, e) in &setup {
                mem.write_entry(m, s, e);
            }
            let mut v = Validator::new(NR, policy);
            for (op, m, s, e) in &ops {
                if let Some(Err(rc)) = apply(&mut v, &mut mem, op) {
                    prop_assert!([-22, -16, -1, -38].contains(&rc));
                }
                if m.0 < NR {
                    mem.write_entry(*m, *s, *e);
                }
                let _ = v.check_invariants(&mem);
                for ev in v.drain_events() {
                    let _ = ev.to_string();
                }
            }
        }
    }

    #[test]
    fn io_privileged_rules_without_linear_pt(setup in setup(), ops in proptest::collection::vec(op(), 1..30)) {
        let rules = Rules { l1_disallow: L1_DISALLOW_IO_PRIV, linear_pt: false };
        run(Policy::Enforce, rules, &setup, &ops)?;
    }
}

/// The generator must actually reach the interesting states; otherwise the
/// properties above would pass vacuously.
#[test]
fn generator_covers_interesting_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;

    let mut runner = TestRunner::deterministic();
    let strat = (setup(), proptest::collection::vec(op(), 1..40));
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..400 {
        let (setup, ops) = strat.new_tree(&mut runner).unwrap().current();
        for policy in [Policy::Enforce, Policy::Audit] {
            let mut mem = VecFrames::new(NR);
            for &(m, s, e) in &setup {
                mem.write_entry(m, s, e);
            }
            let mut v = Validator::new(NR, policy);
            for op in &ops {
                let Some(res) = apply(&mut v, &mut mem, op) else {
                    continue;
                };
                let kind = match op {
                    Op::Pin(l, _) => format!("pin{l}"),
                    Op::Unpin(_) => "unpin".into(),
                    Op::NewBase(_) => "base".into(),
                    Op::Mmu { table, .. } => format!("mmu-l{}", v.page_type(*table).level()),
                    Op::Uva { .. } => "uva".into(),
                    Op::Raw { .. } => "raw".into(),
                };
                *seen
                    .entry(format!("{kind}:{}", res.err().unwrap_or(0)))
                    .or_default() += 1;
                for ev in v.drain_events() {
                    for vi in &ev.violations {
                        *seen
                            .entry(format!(
                                "{policy:?}:{:?}:tolerated={}",
                                vi.kind, vi.tolerated
                            ))
                            .or_default() += 1;
                    }
                }
                for m in 0..NR {
                    let f = v.frame_info(Mfn(m)).unwrap();
                    if f.linear > 0 {
                        *seen.entry("linear-entries".into()).or_default() += 1;
                    }
                    if f.tolerated_writable > 0 {
                        *seen.entry("tolerated".into()).or_default() += 1;
                    }
                }
            }
        }
    }
    eprintln!("{seen:#?}");
    for key in [
        "pin1:0",
        "pin2:0",
        "pin3:0",
        "pin4:0",
        "pin1:-22",
        "pin2:-22",
        "pin4:-22",
        "pin1:-16",
        "unpin:0",
        "unpin:-22",
        "base:0",
        "base:-22",
        "mmu-l1:0",
        "mmu-l2:0",
        "mmu-l3:0",
        "mmu-l4:0",
        "mmu-l1:-16",
        "mmu-l1:-22",
        "mmu-l4:-22",
        "mmu-l0:0",
        "mmu-l0:-38",
        "uva:0",
        "uva:-22",
        "Enforce:StrayWritable:tolerated=false",
        "Audit:StrayWritable:tolerated=true",
        "Enforce:WritableMappingOfPagetable:tolerated=false",
        "Audit:WritableMappingOfPagetable:tolerated=true",
        "linear-entries",
        "tolerated",
    ] {
        assert!(
            seen.get(key).copied().unwrap_or(0) > 0,
            "generator never produced {key}"
        );
    }
}
