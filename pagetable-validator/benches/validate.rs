//! Validation throughput (criterion; `harness = false`).
//!
//! * Pinning a dense address space (one L4 -> L3 -> 4 L2 -> 2048 L1 x 512 present
//!   entries) with RW and RO data mappings, to consecutive ("contig") or
//!   randomly permuted ("random") data frames; unpin (the recursive release) of
//!   the same.
//! * Two competitors over the same table memory, measured in the same run: a raw
//!   read (sum every entry of every table) and a naive type-count loop (for each
//!   present L1 entry, bump the frame's count and, if RW, its writable count in a
//!   plain `Vec`, no checks) — a fair lower bound for any checked validation.
//! * Batched `mmu_update`: remapping entries (references change) and the fast
//!   path (only A/D bits change), events included.
//!
//! `cargo bench -p pagetable-validator --bench validate` runs a short
//! configuration (criterion's own options override it, e.g. `-- --measurement-time 5`);
//! then a summary prints medians, ratios and the frame-table bytes per frame.
//! Nothing here asserts anything about time. `scripts/bench.sh` runs it.
//!
//! The figures also go to `$CARGO_TARGET_DIR/bench/validator.json` (default
//! `target/bench/`): per space `pin_ns`, `unpin_ns`, `raw_read_ns`, `naive_loop_ns`
//! as `{low, median, high}` over criterion's samples (ns per whole-space operation),
//! `mmu_update_ns_per_entry` (remap) and `frame_table_bytes_per_frame`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::Criterion;
use pagetable_validator::abi::MmuUpdate;
use pagetable_validator::pte::*;
use pagetable_validator::{
    GuestFrames, Mfn, Policy, Validator, VecFrames, FRAME_TABLE_BYTES_PER_FRAME,
};

const L1S: u64 = 2048;
const L2S: u64 = L1S / 512;
const L4: u64 = 0;
const L3: u64 = 1;
const FIRST_L2: u64 = 2;
const FIRST_L1: u64 = FIRST_L2 + L2S;
const FIRST_DATA: u64 = 4096;
const DATA: u64 = L1S * 512;
const NR: u64 = FIRST_DATA + DATA;

/// Per-iteration times (ns) of every benchmark, as measured in `iter_custom`.
static SAMPLES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(name: &str, total: Duration, iters: u64) {
    let per = total.as_secs_f64() * 1e9 / iters.max(1) as f64;
    SAMPLES
        .lock()
        .unwrap()
        .entry(name.to_string())
        .or_default()
        .push(per);
}

/// A small deterministic permutation (xorshift + Fisher-Yates).
fn permutation(n: u64) -> Vec<u64> {
    let mut p: Vec<u64> = (0..n).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..p.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p.swap(i, (x % (i as u64 + 1)) as usize);
    }
    p
}

fn build(data_flags: u64, random: bool) -> VecFrames {
    let mut mem = VecFrames::new(NR);
    mem.write_entry(Mfn(L4), 272, mk_pte(L3, PAGE_TABLE));
    for i in 0..L2S {
        mem.write_entry(Mfn(L3), i as usize, mk_pte(FIRST_L2 + i, PAGE_TABLE));
    }
    let perm = random.then(|| permutation(DATA));
    for i in 0..L1S {
        mem.write_entry(
            Mfn(FIRST_L2 + i / 512),
            (i % 512) as usize,
            mk_pte(FIRST_L1 + i, PAGE_TABLE),
        );
        let f = mem.frame_mut(Mfn(FIRST_L1 + i));
        for (s, e) in f.iter_mut().enumerate() {
            let d = i * 512 + s as u64;
            let d = perm.as_ref().map_or(d, |p| p[d as usize]);
            *e = mk_pte(FIRST_DATA + d, data_flags);
        }
    }
    mem
}

fn table_frames() -> std::ops::Range<u64> {
    0..FIRST_L1 + L1S
}

fn entries() -> u64 {
    table_frames().count() as u64 * 512
}

/// Reads every table frame through the access the validator uses (`frame_ref`,
/// no copy) and sums the entries.
fn raw_read(mem: &VecFrames) -> u64 {
    let mut acc = 0u64;
    for m in table_frames() {
        for &e in mem
            .frame_ref(Mfn(m))
            .expect("VecFrames gives direct access")
        {
            acc = acc.wrapping_add(e);
        }
    }
    acc
}

/// The naive competitor: per present L1 entry, one more reference on the frame
/// and, for RW, one more writable reference. No checks at all.
#[derive(Clone, Copy, Default)]
struct Counts {
    refs: u32,
    writable: u32,
}

fn naive_count(mem: &VecFrames, counts: &mut [Counts]) {
    for m in FIRST_L1..FIRST_L1 + L1S {
        for &e in mem.frame_ref(Mfn(m)).expect("direct access") {
            if e & _PAGE_PRESENT != 0 {
                let c = &mut counts[pte_mfn(e) as usize];
                c.refs += 1;
                c.writable += u32::from(e & _PAGE_RW != 0);
            }
        }
    }
}

fn pin_benches(c: &mut Criterion, name: &str, data_flags: u64, random: bool) {
    let mut mem = build(data_flags, random);
    let mut v = Validator::new(NR, Policy::Enforce);
    // The first pin rewrites the entries in Xen's adjusted form; measure the
    // steady state a re-pin sees.
    v.pin(&mut mem, 4, Mfn(L4)).expect("dense space pins");
    v.unpin(&mut mem, Mfn(L4)).expect("unpin");
    let mut g = c.benchmark_group(name);
    g.bench_function("raw_read", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(raw_read(black_box(&mem)));
            }
            let d = t.elapsed();
            record(&format!("{name}/raw_read"), d, iters);
            d
        })
    });
    let mut counts = vec![Counts::default(); NR as usize];
    g.bench_function("naive_loop", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                naive_count(black_box(&mem), &mut counts);
            }
            let d = t.elapsed();
            black_box(&counts);
            record(&format!("{name}/naive_loop"), d, iters);
            d
        })
    });
    g.bench_function("pin", |b| {
        b.iter_custom(|iters| {
            let mut d = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                v.pin(&mut mem, 4, Mfn(L4)).expect("dense space pins");
                d += t.elapsed();
                v.unpin(&mut mem, Mfn(L4)).expect("unpin");
                v.drain_events();
            }
            record(&format!("{name}/pin"), d, iters);
            d
        })
    });
    g.bench_function("unpin", |b| {
        b.iter_custom(|iters| {
            let mut d = Duration::ZERO;
            for _ in 0..iters {
                v.pin(&mut mem, 4, Mfn(L4)).expect("dense space pins");
                let t = Instant::now();
                v.unpin(&mut mem, Mfn(L4)).expect("unpin");
                d += t.elapsed();
                v.drain_events();
            }
            record(&format!("{name}/unpin"), d, iters);
            d
        })
    });
    g.finish();
    v.pin(&mut mem, 4, Mfn(L4)).unwrap();
    v.check_invariants(&mem)
        .expect("oracle agrees after the bench");
}

fn mmu_update_benches(c: &mut Criterion) {
    let mut mem = build(PAGE_KERNEL, false);
    let mut v = Validator::new(NR, Policy::Enforce);
    v.register_initial(&mut mem, Mfn(L4)).unwrap();
    let batch = 4096usize;
    let l1 = |i: usize| FIRST_L1 + (i / 512) as u64;
    let req = |i: usize, m: u64, flags: u64| MmuUpdate {
        ptr: (l1(i) << 12) | ((i % 512) as u64 * 8),
        val: mk_pte(m, flags),
    };
    // Remap: every entry to another data frame (new ref, old ref dropped).
    let remap: Vec<MmuUpdate> = (0..batch)
        .map(|i| req(i, FIRST_DATA + ((i as u64 * 7919) % DATA), PAGE_KERNEL))
        .collect();
    // Fast path: only whitelisted bits (A/D/NX) change.
    let flip: Vec<MmuUpdate> = (0..batch)
        .map(|i| req(i, FIRST_DATA + i as u64, PAGE_KERNEL & !_PAGE_DIRTY))
        .collect();
    let restore: Vec<MmuUpdate> = (0..batch)
        .map(|i| req(i, FIRST_DATA + i as u64, PAGE_KERNEL))
        .collect();
    let mut g = c.benchmark_group("mmu_update");
    // The events go to a buffer the caller reuses (`drain_events_into`), and are
    // dropped (as a logger would after writing them) inside the measurement.
    let mut events = Vec::new();
    for (what, reqs) in [("remap", &remap), ("fast_path", &flip)] {
        g.bench_function(what, |b| {
            b.iter_custom(|iters| {
                let mut d = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let (done, r) = v.mmu_update_batch(&mut mem, reqs);
                    v.drain_events_into(&mut events);
                    black_box(&events);
                    events.clear();
                    d += t.elapsed();
                    assert_eq!((done, r), (reqs.len(), Ok(())));
                    v.mmu_update_batch(&mut mem, &restore).1.unwrap();
                    v.drain_events();
                }
                // Per entry.
                record(&format!("mmu_update/{what}"), d, iters * batch as u64);
                d
            })
        });
    }
    g.finish();
    v.check_invariants(&mem)
        .expect("oracle agrees after the bench");
}

/// `{low, median, high}` of a benchmark's samples (ns), for the JSON file.
fn spread(samples: &BTreeMap<String, Vec<f64>>, k: &str) -> serde_json::Value {
    let mut s = samples.get(k).cloned().unwrap_or_default();
    s.sort_by(f64::total_cmp);
    match (s.first(), s.last()) {
        (Some(&low), Some(&high)) => {
            serde_json::json!({ "low": low, "median": s[s.len() / 2], "high": high })
        }
        _ => serde_json::Value::Null,
    }
}

/// Writes `bench/validator.json` under the target directory (the stable keys
/// `scripts/bench.sh` reads).
fn write_json(samples: &BTreeMap<String, Vec<f64>>) {
    let spaces: Vec<serde_json::Value> = ["ro_contig", "rw_contig", "ro_random", "rw_random"]
        .iter()
        .filter(|name| samples.contains_key(&format!("{name}/pin")))
        .map(|name| {
            let get = |what: &str| spread(samples, &format!("{name}/{what}"));
            serde_json::json!({
                "name": name,
                "entries": entries(),
                "pin_ns": get("pin"),
                "unpin_ns": get("unpin"),
                "raw_read_ns": get("raw_read"),
                "naive_loop_ns": get("naive_loop"),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "spaces": spaces,
        "mmu_update_ns_per_entry": spread(samples, "mmu_update/remap"),
        "mmu_update_fast_path_ns_per_entry": spread(samples, "mmu_update/fast_path"),
        "frame_table_bytes_per_frame": FRAME_TABLE_BYTES_PER_FRAME,
    });
    // Cargo runs benches in the package directory; the workspace root is one up.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root
        .join(std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into()))
        .join("bench");
    let path = dir.join("validator.json");
    let text = serde_json::to_string_pretty(&doc).expect("JSON");
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text + "\n")) {
        Ok(()) => println!("figures written to {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}

/// (best, median) of a benchmark's samples. Ratios use the best sample of
/// each side: the cores are shared, and other load only ever adds time.
fn stats(samples: &BTreeMap<String, Vec<f64>>, k: &str) -> (f64, f64) {
    let mut s = samples.get(k).cloned().unwrap_or_default();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        (s[0], s[s.len() / 2])
    }
}

fn summary() {
    let samples = SAMPLES.lock().unwrap();
    let n = entries() as f64;
    println!();
    println!(
        "summary: dense space of 1 L4, 1 L3, {L2S} L2, {L1S} L1 x 512 present entries = {} entries",
        entries()
    );
    println!("ms: best sample (median); ratios of best samples");
    println!(
        "{:<10} {:>15} {:>15} {:>15} {:>15} {:>8} {:>7} {:>9} {:>9}",
        "space",
        "raw read",
        "naive loop",
        "pin",
        "unpin",
        "ns/entry",
        "pin/raw",
        "pin/naive",
        "unpin/pin"
    );
    let ms = |(b, m): (f64, f64)| format!("{:.3} ({:.3})", b / 1e6, m / 1e6);
    for name in ["rw_contig", "ro_contig", "rw_random", "ro_random"] {
        let get = |what: &str| stats(&samples, &format!("{name}/{what}"));
        let (raw, naive, pin, unpin) =
            (get("raw_read"), get("naive_loop"), get("pin"), get("unpin"));
        if pin.0.is_nan() {
            continue;
        }
        println!(
            "{name:<10} {:>15} {:>15} {:>15} {:>15} {:>8.2} {:>7.2} {:>9.2} {:>9.2}",
            ms(raw),
            ms(naive),
            ms(pin),
            ms(unpin),
            pin.0 / n,
            pin.0 / raw.0,
            pin.0 / naive.0,
            unpin.0 / pin.0
        );
    }
    for what in ["remap", "fast_path"] {
        let (b, m) = stats(&samples, &format!("mmu_update/{what}"));
        if !b.is_nan() {
            println!(
                "mmu_update {what}: {b:.1} ns/entry (median {m:.1}; batch of 4096, events drained)"
            );
        }
    }
    println!(
        "frame table: {FRAME_TABLE_BYTES_PER_FRAME} bytes per guest frame (+8 with the m2p the VMM sets for logs)"
    );
    write_json(&samples);
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
        .configure_from_args();
    pin_benches(&mut c, "rw_contig", PAGE_KERNEL, false);
    pin_benches(&mut c, "ro_contig", PAGE_KERNEL_RO, false);
    pin_benches(&mut c, "rw_random", PAGE_KERNEL, true);
    pin_benches(&mut c, "ro_random", PAGE_KERNEL_RO, true);
    mmu_update_benches(&mut c);
    c.final_summary();
    summary();
}
