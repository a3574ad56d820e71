//! Scenario `basics`: the core Xen PV page-type rules, one hypercall per transcript line.
//!
//! T01..T07 are the seven operations of the basic pin sequence (docs/testing.md), in order.
//! Then: a batched pin as Linux does it (make RO + pin in one multicall), a failing mmuext
//! batch (stops at the first failure, `done` counts the successes), an L1 that maps another
//! page RW is pinned (after which that page cannot be pinned, until an `mmu_update` clears the
//! entry), writes into a pinned L1, PIN_L2 over a frame typed L1, an L2 above a pinned L1, and
//! unpin of a frame that is not pinned. Pages are named A..D; no frame numbers appear in the
//! transcript.

use pagetable_validator::abi::{domid::DOMID_SELF, mmu, mmuext, uvmf};
use pagetable_validator::pte::{mk_pte, PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_TABLE};

use super::Transcript;
use crate::hypercall;
use crate::mm::fixmap::{fix_to_virt, FIX_SCRATCH_BEGIN};
use crate::mm::pgtable::{mmuext_frame, pin_table, set_entry, unpin_table};
use crate::mm::Mfn;
use crate::setup::Kernel;
use crate::t;

/// A setup step that is not part of the transcript must succeed.
fn must(rc: i64, what: &str) {
    if rc != 0 {
        panic!("basics: setup step '{what}' failed: rc={rc}");
    }
}

/// `update_va_mapping(va, val, UVMF_INVLPG)` on a fixmap scratch slot.
fn uvm(va: u64, val: u64) -> i64 {
    // SAFETY: `va` is a fixmap scratch slot, which no Rust reference points into.
    unsafe { hypercall::update_va_mapping(va, val, uvmf::INVLPG) }
}

/// `mmu_update` of entry `idx` in a scenario-owned table frame.
fn mmu(table: Mfn, idx: usize, val: u64, cmd: u64) -> i64 {
    // SAFETY: the tables are scenario pages that map only scenario pages, never kernel memory.
    unsafe { set_entry(table, idx, val, cmd) }
}

pub fn run(k: &mut Kernel, _variant: Option<&str>) {
    let mut t = Transcript::new("basics");
    let pages = [
        k.alloc_page(),
        k.alloc_page(),
        k.alloc_page(),
        k.alloc_page(),
    ];
    for &p in &pages {
        k.clear_page(p);
    }
    let [ma, mb, mc, md] = pages.map(|p| k.pfn_to_mfn(p));
    let fix = &k.fixmap;
    let slot = FIX_SCRATCH_BEGIN;
    let va = fix_to_virt(slot);
    let (a_rw, a_ro) = (mk_pte(ma.0, PAGE_KERNEL), mk_pte(ma.0, PAGE_KERNEL_RO));

    // The basic pin sequence (docs/testing.md).
    must(fix.set_fixmap(slot, ma, PAGE_KERNEL), "map A RW");
    t!(t, pin_table(1, ma), "pin_l1 A (zeroed, still mapped RW)");
    t!(t, uvm(va, a_ro), "update_va_mapping A -> RO");
    t!(t, pin_table(1, ma), "pin_l1 A (mapped RO only)");
    t!(t, pin_table(1, ma), "pin_l1 A again (already pinned)");
    t!(t, uvm(va, a_rw), "update_va_mapping A -> RW while pinned");
    t!(t, unpin_table(ma), "unpin A");
    t!(t, uvm(va, a_rw), "update_va_mapping A -> RW after unpin");

    // Linux's pin path: drop the RW alias and pin in one batch.
    let pin = [mmuext_frame(mmuext::PIN_L1_TABLE, ma)];
    let mut calls = [
        hypercall::mc_update_va_mapping(va, a_ro, uvmf::INVLPG),
        hypercall::mc_mmuext_op(&pin),
    ];
    // SAFETY: the entries only touch the scratch slot and page A; `pin` outlives the call.
    t!(
        t,
        unsafe { hypercall::multicall(&mut calls) },
        "multicall [update_va_mapping A -> RO, pin_l1 A]"
    );
    t!(
        t,
        calls[0].result,
        "multicall entry 0: update_va_mapping A -> RO"
    );
    t!(t, calls[1].result, "multicall entry 1: pin_l1 A");

    // A batch stops at its first failure and reports the successes in `done`.
    let unpins = [mmuext_frame(mmuext::UNPIN_TABLE, ma); 2];
    let mut done = 0u32;
    // SAFETY: unpinning changes no mapping.
    let rc = unsafe { hypercall::mmuext_op(&unpins, Some(&mut done), DOMID_SELF) };
    t!(t, rc, "mmuext_op [unpin A, unpin A] done={done}");
    t!(t, uvm(va, 0), "update_va_mapping A -> not present");

    // C is an L1 whose entry 0 maps B read-write.
    must(
        fix.with_page(slot, mc, |p| {
            // SAFETY: with_page maps C read-write at the slot for the duration of the closure.
            unsafe { p.write_volatile(mk_pte(mb.0, PAGE_KERNEL)) }
        })
        .err()
        .unwrap_or(0),
        "write C[0] = B RW",
    );
    t!(t, pin_table(1, mc), "pin_l1 C (entry 0 maps B RW)");
    t!(t, pin_table(1, mb), "pin_l1 B (mapped RW by pinned L1 C)");
    t!(
        t,
        mmu(mc, 0, 0, mmu::NORMAL_PT_UPDATE),
        "mmu_update C[0] = none"
    );
    t!(t, pin_table(1, mb), "pin_l1 B (no RW mapping left)");
    t!(
        t,
        mmu(mc, 0, mk_pte(mb.0, PAGE_KERNEL), mmu::NORMAL_PT_UPDATE),
        "mmu_update C[0] = B RW while B is pinned"
    );
    t!(
        t,
        mmu(
            mc,
            0,
            mk_pte(mb.0, PAGE_KERNEL_RO),
            mmu::PT_UPDATE_PRESERVE_AD
        ),
        "mmu_update(preserve_ad) C[0] = B RO while B is pinned"
    );
    t!(t, pin_table(2, mc), "pin_l2 C (frame typed L1)");

    // D is an L2 whose entry 0 points at the pinned L1 C.
    must(
        fix.with_page(slot, md, |p| {
            // SAFETY: with_page maps D read-write at the slot for the duration of the closure.
            unsafe { p.write_volatile(mk_pte(mc.0, PAGE_TABLE)) }
        })
        .err()
        .unwrap_or(0),
        "write D[0] = C",
    );
    t!(t, pin_table(2, md), "pin_l2 D (entry 0 -> pinned L1 C)");
    t!(t, unpin_table(md), "unpin D");
    t!(t, unpin_table(md), "unpin D again (not pinned)");
    t!(t, unpin_table(mc), "unpin C");
    t!(t, unpin_table(mb), "unpin B");
    t.finish();

    // Nothing maps or pins the pages any more: give them back.
    for p in pages {
        k.free_page(p);
    }
}
