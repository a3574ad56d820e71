//! A fuzzer below the guest: random register values and random guest memory go through the
//! real hypercall decoding ([`Hypervisor::hypercall`] on a [`GuestRam`], no KVM) into the
//! validator. After every exit it checks that
//! * nothing panicked;
//! * the validator's invariants hold ([`Validator::check_invariants`], the brute-force oracle);
//! * the vCPU loop's invariant holds: the base the guest would run on is the validator's
//!   current base, typed L4;
//! * the counts agree: pinned frames = 1 (the builder's L4) + pins - unpins;
//!
//! and at the end of every epoch (a fresh domain every [`EPOCH`] calls) that the epoch's JSON
//! log replays identically (`vmm replay`'s code) and that its refusal records match the
//! VMM's refusal count.
//!
//! Inputs are a mix of noise and structure: the fake domain is laid out like the builder's
//! (4 MiB mapped at a kernel VA through L4/L3/L2/two L1s, the table frames read-only), and the
//! fuzzer acts as a guest: it writes candidate pagetables into pool frames through its own
//! mappings, makes them read-only, and sends valid-looking `mmu_update` / `mmuext_op` /
//! `multicall` arrays (short ones and ones long enough to be preempted and continued),
//! `update_va_mapping`, `xen_version`, `console_io` and `sched_op` calls, the PV CPU, event,
//! time and grant calls with guest-made structures behind their pointers, with a share of
//! wild pointers, counts, commands and domids.
//!
//! `vmm fuzz --calls N --seed S` runs it (hidden subcommand); `fuzz_short` (tests.rs) runs a few
//! thousand calls in the normal test suite, `VMM_FUZZ_CALLS=N` makes that test longer
//! (`VMM_FUZZ_SEED=S` picks the seed). A failure names the seed and the call; with
//! `VMM_FUZZ_DUMP=FILE` the failing epoch's JSON log is written to FILE.
//!
//! The parts: this file holds the fake domain ([`World`]: its hypercall exits with the checks
//! after each, its guest stores, the end-of-epoch replay) and the driver; [`inputs`] makes the
//! inputs (the guest's moves and their random arguments); `tests.rs` runs it.

mod inputs;
#[cfg(test)]
mod tests;

use inputs::Rng;
use pagetable_validator::Mfn;

use crate::hypercall::{Ctx, Hypervisor};
use crate::log_record::DomainRecord;
use crate::logging::{EventLog, Shared};
use crate::tlb::Flush;
use pagetable_validator::abi::hypercall as hc;
use pagetable_validator::pte::PAGE_SIZE;
use pagetable_validator::{PageType, Policy, Region};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use thiserror::Error;

use crate::hypercall::fake_domain::{self, KBASE, L1S, L2, L3, L4, NR};

/// Request arrays of top-level batches (frames 8..24), of multicall entries (24) and of their
/// sub-batches (25..32); outputs (`done`, xen_version buffers) in 32..40; console text 40.
const SCRATCH: u64 = 8;
const MC: u64 = 24;
const MC_SUB: u64 = 25;
const OUT: u64 = 32;
const TEXT: u64 = 40;
/// Frames the fuzzer turns into pagetables (and maps, unmaps, pins, ...).
const POOL: u64 = 512;
/// Calls per fresh domain (each epoch's log is replayed at its end).
pub const EPOCH: u64 = 2000;
/// Continuations one call may take before the fuzzer calls it a hang.
const MAX_ROUNDS: u32 = 100_000;

const fn va(f: u64) -> u64 {
    KBASE + f * PAGE_SIZE
}

#[derive(Debug, Error)]
pub enum FuzzError {
    #[error("seed {seed}, call {call} ({what}): the VMM panicked: {msg}")]
    Panic {
        seed: u64,
        call: u64,
        what: String,
        msg: String,
    },
    #[error("seed {seed}, call {call} ({what}): validator invariant broken:\n{msg}")]
    Invariant {
        seed: u64,
        call: u64,
        what: String,
        msg: String,
    },
    #[error("seed {seed}, call {call} ({what}): {msg}")]
    Check {
        seed: u64,
        call: u64,
        what: String,
        msg: String,
    },
    #[error("seed {seed}, epoch ending at call {call}: the log does not replay: {msg}")]
    Replay { seed: u64, call: u64, msg: String },
}

#[derive(Debug, Default)]
pub struct FuzzReport {
    pub calls: u64,
    pub exits: u64,
    pub epochs: u64,
    /// Successful pins, refusals, -EFAULTs, continuations over all epochs: proof the inputs
    /// reach the deep paths.
    pub pins: u64,
    pub refusals: u64,
    pub efaults: u64,
    pub continuations: u64,
    pub records_replayed: u64,
    pub elapsed: Duration,
}

/// One fake domain and the fuzzer acting as its guest.
struct World {
    hv: Hypervisor,
    cr3: u64,
    json: Shared,
    rng: Rng,
    seed: u64,
    call: u64,
    what: String,
    policy: Policy,
}

impl World {
    fn new(seed: u64, rng: Rng, policy: Policy) -> Self {
        let (ram, xen, m2p, mut v) = fake_domain::build(policy);
        let rules = fake_domain::rules();
        let regions = vec![Region::new(
            "fuzz domain",
            KBASE,
            KBASE + NR * PAGE_SIZE - 1,
        )];
        v.set_regions(regions.clone());
        let json = Shared::default();
        let mut log = EventLog::with_sinks(
            Some(Box::new(json.clone())),
            "fuzz log".into(),
            Box::new(std::io::sink()),
        );
        log.domain(
            DomainRecord {
                log_format: None,
                kernel: "fuzz".into(),
                nr_frames: NR,
                policy,
                p2m: None,
                cmdline: String::new(),
                l4: L4,
                rules: rules.into(),
                regions,
                xen: Some(xen.replay_record()),
            },
            &m2p,
        );
        let mut hv = fake_domain::hypervisor(ram, xen, v, log);
        hv.snapshot(L4, 4);
        let r = hv.validator.register_initial(&mut hv.ram, Mfn(L4));
        let events = hv.validator.drain_events();
        hv.log.validator_events(events, "domain_build", 0);
        r.expect("the fuzzer's initial tables validate");
        World {
            hv,
            cr3: L4 << 12,
            json,
            rng,
            seed,
            call: 0,
            what: String::new(),
            policy,
        }
    }

    fn err_check(&self, msg: String) -> FuzzError {
        FuzzError::Check {
            seed: self.seed,
            call: self.call,
            what: self.what.clone(),
            msg,
        }
    }

    /// One hypercall as the guest's stub makes it, continuations included (the stub re-enters
    /// with the continuation's arguments, as vcpu/ arranges). Checks after every exit.
    fn hypercall(&mut self, nr: u64, args: [u64; 6]) -> Result<i64, FuzzError> {
        self.what = format!("{}({nr}) {args:x?}", hc::Hypercall::from_nr(nr));
        let (mut nr, mut args) = (nr, args);
        for _ in 0..MAX_ROUNDS {
            let mut ctx = Ctx::new(self.cr3, KBASE + 0x20_0000);
            let hv = &mut self.hv;
            let r = catch_unwind(AssertUnwindSafe(|| hv.hypercall(&mut ctx, nr, args)));
            let rc = r.map_err(|p| FuzzError::Panic {
                seed: self.seed,
                call: self.call,
                what: self.what.clone(),
                msg: p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
            })?;
            self.hv.stats.exits += 1;
            // The stub's flush tail, then the next exit's CR3.
            if ctx.flush == Flush::Full {
                self.hv.tlb.flushed_all();
            }
            self.cr3 = ctx.cr3;
            if let Err(e) = self.check() {
                // VMM_FUZZ_DUMP=FILE keeps the failing epoch's JSON log for a look.
                if let Some(path) = std::env::var_os("VMM_FUZZ_DUMP") {
                    self.hv.log.flush();
                    let _ = std::fs::write(path, &*self.json.0.borrow());
                }
                return Err(e);
            }
            match ctx.continuation {
                Some(c) => (nr, args) = (c.nr, c.args),
                None => return Ok(rc),
            }
        }
        Err(self.err_check(format!("still continuing after {MAX_ROUNDS} exits")))
    }

    /// The invariants, after every exit.
    fn check(&self) -> Result<(), FuzzError> {
        let v = &self.hv.validator;
        if v.current_base() != Some(Mfn(self.cr3 >> 12))
            || v.page_type(Mfn(self.cr3 >> 12)) != PageType::L4
        {
            return Err(self.err_check(format!(
                "the guest would run on CR3 {:#x}, the validator's base is {:?}",
                self.cr3,
                v.current_base()
            )));
        }
        v.check_invariants(&self.hv.ram)
            .map_err(|msg| FuzzError::Invariant {
                seed: self.seed,
                call: self.call,
                what: self.what.clone(),
                msg,
            })?;
        let pinned = (0..NR).filter(|&m| v.is_pinned(Mfn(m))).count() as u64;
        let s = &self.hv.stats;
        if pinned + s.unpins != 1 + s.pins {
            return Err(self.err_check(format!(
                "{pinned} frames pinned, but 1 + {} pins - {} unpins",
                s.pins, s.unpins
            )));
        }
        Ok(())
    }

    /// A guest store through the guest's own mappings. Like the CPU, nothing is written where
    /// the current tables give no writable mapping; under audit, not into a validated table
    /// or descriptor page through a tolerated RW mapping either (replay cannot see guest stores
    /// into them).
    fn store(&mut self, va: u64, bytes: &[u8]) -> bool {
        let mut off = 0u64;
        while off < bytes.len() as u64 {
            let Ok(gpa) = self.hv.ram.translate(self.cr3, va + off, true) else {
                return false;
            };
            if self
                .hv
                .validator
                .frame_info(Mfn(gpa >> 12))
                .is_some_and(|i| i.ty.is_validated_type())
            {
                return false;
            }
            off += PAGE_SIZE - ((va + off) & (PAGE_SIZE - 1));
        }
        self.hv.ram.write_virt(self.cr3, va, bytes).is_ok()
    }

    /// End of an epoch: the log gets its end record and must replay identically, with one
    /// refusal record per refusal counted.
    fn finish(&mut self, report: &mut FuzzReport) -> Result<(), FuzzError> {
        self.hv.log.end("fuzz epoch", Some(0), 0.0);
        self.hv.log.flush();
        let bytes = std::mem::take(&mut *self.json.0.borrow_mut());
        let fail = |msg: String| FuzzError::Replay {
            seed: self.seed,
            call: self.call,
            msg,
        };
        let mut refusal_records = 0u64;
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let r: serde_json::Value =
                serde_json::from_slice(line).map_err(|e| fail(format!("bad JSON: {e}")))?;
            let is_op = r.get("seq").is_some();
            if r["event"] == "vmm_refusal" || (is_op && r["rc"].as_i64() != Some(0)) {
                refusal_records += 1;
            }
        }
        if refusal_records != self.hv.log.refusals {
            return Err(fail(format!(
                "{refusal_records} refusal records, {} refusals counted",
                self.hv.log.refusals
            )));
        }
        let r =
            crate::replay::replay_from(&bytes[..], "fuzz log").map_err(|e| fail(e.to_string()))?;
        if !r.clean() {
            if let Some(path) = std::env::var_os("VMM_FUZZ_DUMP") {
                let _ = std::fs::write(path, &bytes);
            }
            let mut all = r.mismatches.shown.clone();
            all.extend(r.integrity.shown.iter().cloned());
            return Err(fail(all.join("\n")));
        }
        let s = &self.hv.stats;
        report.records_replayed += r.records;
        report.pins += s.pins;
        report.efaults += s.efaults;
        report.continuations += s.continuations;
        report.exits += s.exits;
        report.refusals += self.hv.log.refusals;
        report.epochs += 1;
        Ok(())
    }
}

/// Runs `calls` fuzzer steps from `seed`; `progress` is called after every epoch.
pub fn run(
    calls: u64,
    seed: u64,
    mut progress: impl FnMut(&FuzzReport),
) -> Result<FuzzReport, FuzzError> {
    let start = Instant::now();
    let mut report = FuzzReport::default();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut done = 0;
    while done < calls {
        let policy = if rng.chance(4) {
            Policy::Audit
        } else {
            Policy::Enforce
        };
        let mut w = World::new(seed, Rng(rng.next() | 1), policy);
        w.call = done;
        let n = EPOCH.min(calls - done);
        for _ in 0..n {
            w.step()?;
        }
        w.finish(&mut report)?;
        done += n;
        report.calls = done;
        report.elapsed = start.elapsed();
        progress(&report);
    }
    Ok(report)
}

/// An honest, complete log of `calls` fuzzer steps (enforce), for replay's tests.
#[cfg(test)]
pub(crate) fn sample_log(calls: u64, seed: u64) -> Vec<u8> {
    let mut w = World::new(seed, Rng(seed | 1), Policy::Enforce);
    for _ in 0..calls {
        w.step().unwrap_or_else(|e| panic!("{e}"));
    }
    w.hv.log.end("sample", Some(0), 0.0);
    w.hv.log.flush();
    let bytes = std::mem::take(&mut *w.json.0.borrow_mut());
    bytes
}
