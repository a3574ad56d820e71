//! Validation throughput: pinning a dense address space (one L4 -> L3 -> 4 L2 ->
//! 2048 L1 x 512 present entries) against a raw read of the same table memory,
//! measured in the same run; and ns per entry of batched mmu_update.
//!
//! `cargo bench -p pagetable-validator --bench validate` (goal: ratio <= 3,
//! >= 100 M entries/s). Prints figures; asserts nothing about time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pagetable_validator::abi::MmuUpdate;
use pagetable_validator::pte::*;
use pagetable_validator::{GuestFrames, Mfn, Policy, Validator, VecFrames};

const L1S: u64 = 2048;
const L2S: u64 = L1S / 512;
const L4: Mfn = 0;
const L3: Mfn = 1;
const FIRST_L2: Mfn = 2;
const FIRST_L1: Mfn = FIRST_L2 + L2S;
const FIRST_DATA: Mfn = 4096;
const DATA: u64 = L1S * 512;
const NR: u64 = FIRST_DATA + DATA;

fn build(data_flags: u64) -> VecFrames {
    let mut mem = VecFrames::new(NR);
    mem.write_entry(L4, 272, mk_pte(L3, PAGE_TABLE));
    for i in 0..L2S {
        mem.write_entry(L3, i as usize, mk_pte(FIRST_L2 + i, PAGE_TABLE));
    }
    for i in 0..L1S {
        mem.write_entry(
            FIRST_L2 + i / 512,
            (i % 512) as usize,
            mk_pte(FIRST_L1 + i, PAGE_TABLE),
        );
        let f = mem.frame_mut(FIRST_L1 + i);
        for (s, e) in f.iter_mut().enumerate() {
            *e = mk_pte(FIRST_DATA + i * 512 + s as u64, data_flags);
        }
    }
    mem
}

fn table_frames() -> impl Iterator<Item = Mfn> {
    0..FIRST_L1 + L1S
}

fn entries() -> u64 {
    table_frames().count() as u64 * 512
}

/// Reads every table frame through the same trait access the validator uses
/// (`frame_ref`, no copy) and sums the entries.
fn raw_read(mem: &VecFrames) -> u64 {
    let mut acc = 0u64;
    for m in table_frames() {
        for &e in mem.frame_ref(m).expect("VecFrames gives direct access") {
            acc = acc.wrapping_add(e);
        }
    }
    acc
}

/// The same through `read_frame` (a copy per frame), the access a `GuestFrames`
/// without `frame_ref` offers.
fn raw_read_copy(mem: &VecFrames) -> u64 {
    let mut buf = [0u64; 512];
    let mut acc = 0u64;
    for m in table_frames() {
        mem.read_frame(m, &mut buf);
        for &e in &buf {
            acc = acc.wrapping_add(e);
        }
    }
    acc
}

fn best<F: FnMut() -> Duration>(runs: usize, mut f: F) -> Duration {
    (0..runs).map(|_| f()).min().unwrap()
}

fn pin_figures(name: &str, data_flags: u64) {
    let mut mem = build(data_flags);
    let mut v = Validator::new(NR, Policy::Enforce);
    let raw = best(15, || {
        let t = Instant::now();
        black_box(raw_read(black_box(&mem)));
        t.elapsed()
    });
    let raw_copy = best(15, || {
        let t = Instant::now();
        black_box(raw_read_copy(black_box(&mem)));
        t.elapsed()
    });
    let mut unpin = Duration::MAX;
    let pin = best(15, || {
        let t = Instant::now();
        v.pin(&mut mem, 4, L4).expect("dense space pins");
        let d = t.elapsed();
        let t = Instant::now();
        v.unpin(&mut mem, L4).expect("unpin");
        unpin = unpin.min(t.elapsed());
        v.drain_events();
        d
    });
    v.pin(&mut mem, 4, L4).unwrap();
    v.check_invariants(&mem)
        .expect("oracle agrees after the bench");
    let n = entries() as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let meps = |d: Duration| n / d.as_secs_f64() / 1e6;
    println!(
        "{name}: pin {:.2} ms = {:.0} M entries/s ({:.2} ns/entry); unpin {:.2} ms = {:.0} M entries/s",
        ms(pin),
        meps(pin),
        pin.as_secs_f64() * 1e9 / n,
        ms(unpin),
        meps(unpin)
    );
    println!(
        "    raw read (frame_ref, summed) {:.3} ms = {:.0} M entries/s -> ratio pin/raw {:.1}",
        ms(raw),
        meps(raw),
        pin.as_secs_f64() / raw.as_secs_f64()
    );
    println!(
        "    raw read (read_frame copy, summed) {:.3} ms = {:.0} M entries/s -> ratio pin/raw {:.1}",
        ms(raw_copy),
        meps(raw_copy),
        pin.as_secs_f64() / raw_copy.as_secs_f64()
    );
}

fn mmu_update_figures() {
    let mut mem = build(PAGE_KERNEL);
    let mut v = Validator::new(NR, Policy::Enforce);
    v.register_initial(&mut mem, L4).unwrap();
    let batch = 4096usize;
    let l1 = |i: usize| FIRST_L1 + (i / 512) as u64;
    // Remap: every entry to another data frame (new ref, old ref dropped).
    let remap: Vec<MmuUpdate> = (0..batch)
        .map(|i| MmuUpdate {
            ptr: (l1(i) << 12) | ((i % 512) as u64 * 8),
            val: mk_pte(FIRST_DATA + ((i as u64 * 7919) % DATA), PAGE_KERNEL),
        })
        .collect();
    // Fast path: only whitelisted bits (A/D/NX) change.
    let flip: Vec<MmuUpdate> = (0..batch)
        .map(|i| MmuUpdate {
            ptr: (l1(i) << 12) | ((i % 512) as u64 * 8),
            val: mk_pte(FIRST_DATA + i as u64, PAGE_KERNEL & !_PAGE_DIRTY),
        })
        .collect();
    let restore: Vec<MmuUpdate> = (0..batch)
        .map(|i| MmuUpdate {
            ptr: (l1(i) << 12) | ((i % 512) as u64 * 8),
            val: mk_pte(FIRST_DATA + i as u64, PAGE_KERNEL),
        })
        .collect();
    let mut run = |reqs: &[MmuUpdate]| {
        let t = Instant::now();
        let (done, r) = v.mmu_update_batch(&mut mem, reqs);
        let d = t.elapsed();
        assert_eq!((done, r), (reqs.len(), Ok(())));
        black_box(v.drain_events());
        d
    };
    let mut slow = Duration::MAX;
    let mut fast = Duration::MAX;
    for _ in 0..20 {
        slow = slow.min(run(&remap));
        run(&restore);
        fast = fast.min(run(&flip));
        run(&restore);
    }
    println!(
        "mmu_update batch of {batch}: remap (refs change) {:.1} ns/entry, fast path (A/D only) {:.1} ns/entry (events included)",
        slow.as_secs_f64() * 1e9 / batch as f64,
        fast.as_secs_f64() * 1e9 / batch as f64
    );
    v.check_invariants(&mem)
        .expect("oracle agrees after the bench");
}

fn main() {
    // `cargo test --benches` passes --bench-less args; a quick run is enough there.
    println!(
        "pin validation of a dense address space (1 L4, 1 L3, {L2S} L2, {L1S} L1 x 512 present entries = {} entries):",
        entries()
    );
    pin_figures("RW data", PAGE_KERNEL);
    pin_figures("RO data", PAGE_KERNEL_RO);
    mmu_update_figures();
}
