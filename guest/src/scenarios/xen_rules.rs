//! Scenario `xen-rules`: Xen 4.17's edge rules for 64-bit PV page tables, one hypercall (or
//! one read-back) per transcript line.
//!
//! * entry rewriting: Xen runs a 64-bit PV kernel in ring 3 and rewrites every entry it
//!   accepts (`adjust_guest_lNe`): L1 kernel entries gain `_PAGE_USER | _PAGE_GUEST_KERNEL`
//!   (bit 52), L1 user entries `_PAGE_GLOBAL`, L2/L3 entries `_PAGE_USER`, L4 entries
//!   `_PAGE_USER | _PAGE_ACCESSED`; on pin and on `mmu_update` / `update_va_mapping`. Read-back
//!   lines print the flags the entry gained (`adds 0x…`), never a frame number;
//! * `MMU_PT_UPDATE_PRESERVE_AD` keeps the entry's accessed/dirty bits;
//! * L1 flags dom0 may use (cache attributes, AVAIL_HIGH, a guest-set `_PAGE_GUEST_KERNEL`);
//! * PSE superpages in L2 entries (refused for PV);
//! * linear page tables: read-only self-maps and same-level links are allowed, read-write
//!   ones refused;
//! * the hypervisor's L4 slots 256..=271: junk there does not stop a pin (Xen ignores it and
//!   installs its own entries), an `mmu_update` into them is refused.
//!
//! Pages come from highmem (never mapped), so no stray alias interferes.

use pagetable_validator::abi::mmu;
use pagetable_validator::pte::{
    mk_pte, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_GLOBAL, _PAGE_NX, _PAGE_PAT, _PAGE_PCD,
    _PAGE_PRESENT, _PAGE_PSE, _PAGE_PWT, _PAGE_RW, _PAGE_USER, PAGE_KERNEL_RO, PAGE_TABLE,
};

use super::Transcript;
use crate::hypercall;
use crate::mm::fixmap::{fix_to_virt, FIX_SCRATCH_BEGIN};
use crate::mm::pgtable::{pin_table, read_entry, set_entry, unpin_table};
use crate::mm::{Mfn, Pfn};
use crate::setup::Kernel;
use crate::t;

/// Xen's `_PAGE_GUEST_KERNEL`: PTE bit 52.
const GUEST_KERNEL: u64 = 1 << 52;
/// One of the AVAIL_HIGH bits Xen leaves to the guest.
const AVAIL_61: u64 = 1 << 61;
const P: u64 = _PAGE_PRESENT;
const RW: u64 = _PAGE_RW;
/// An L1 kernel read-only entry without accessed bit (the CPU never walks these tables).
const KERNEL_RO: u64 = P | _PAGE_NX;
/// An intermediate entry without `_PAGE_USER` and accessed bit, so Xen's additions show.
const TABLE_BARE: u64 = P | RW;
/// The scratch fixmap slots this scenario uses: one to read tables, one to map data.
const SLOT_READ: usize = FIX_SCRATCH_BEGIN + 2;
const SLOT_DATA: usize = FIX_SCRATCH_BEGIN + 3;

/// A setup step that is not part of the transcript must succeed.
fn must(rc: i64, what: &str) {
    if rc != 0 {
        panic!("xen-rules: setup step '{what}' failed: rc={rc}");
    }
}

/// `mmu_update` of entry `idx` in a scenario-owned table frame.
fn mmu(table: Mfn, idx: usize, val: u64, cmd: u64) -> i64 {
    // SAFETY: the tables are scenario pages that map only scenario pages (or are linear
    // links between scenario tables), never kernel memory in use.
    unsafe { set_entry(table, idx, val, cmd) }
}

/// Reads entry `idx` of frame `mfn` through a read-only fixmap mapping (unmapped again).
fn peek(k: &Kernel, mfn: Mfn, idx: usize) -> u64 {
    must(
        k.fixmap.set_fixmap(SLOT_READ, mfn, PAGE_KERNEL_RO),
        "map a table read-only",
    );
    // SAFETY: SLOT_READ maps the whole frame read-only right now.
    let e = unsafe { read_entry(fix_to_virt(SLOT_READ), idx) };
    must(k.fixmap.clear_fixmap(SLOT_READ), "unmap the table");
    e
}

/// Writes `entries` (slot, value) into an unpinned frame through a read-write fixmap slot.
fn poke(k: &Kernel, mfn: Mfn, entries: &[(usize, u64)]) {
    let r = k.fixmap.with_page(SLOT_READ, mfn, |p| {
        for &(i, v) in entries {
            assert!(i < 512);
            // SAFETY: with_page maps the whole frame read-write for the closure's duration.
            unsafe { p.add(i).write_volatile(v) }
        }
    });
    must(r.err().unwrap_or(0), "write entries of an unpinned frame");
}

/// The flags Xen added to (`+`) or removed from (`-`) an entry written as `written`.
struct Delta(u64, u64);

impl Delta {
    fn of(written: u64, back: u64) -> Delta {
        Delta(back & !written, written & !back)
    }
}

impl core::fmt::Display for Delta {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "adds {:#x}", self.0)?;
        if self.1 != 0 {
            write!(f, " removes {:#x}", self.1)?;
        }
        Ok(())
    }
}

pub fn run(k: &mut Kernel, _variant: Option<&str>) {
    let mut t = Transcript::new("xen-rules");
    // l4, l3, l2, l2b (second L2), l1, data pages e and f.
    let pfns: [Pfn; 7] = core::array::from_fn(|_| k.alloc_page());
    for &p in &pfns {
        k.clear_page(p);
    }
    let [l4, l3, l2, l2b, l1, e, f] = pfns.map(|p| k.pfn_to_mfn(p));

    // --- L1 entries: what Xen does to accepted entries.
    let d0 = mk_pte(e.0, KERNEL_RO);
    let d1 = mk_pte(f.0, P | _PAGE_USER);
    poke(k, l1, &[(0, d0), (1, d1)]);
    t!(
        t,
        pin_table(1, l1),
        "pin_l1 (kernel RO entry 0, user RO entry 1)"
    );
    t!(
        t,
        0,
        "L1[0] kernel entry read back: {}",
        Delta::of(d0, peek(k, l1, 0))
    );
    t!(
        t,
        0,
        "L1[1] user entry read back: {}",
        Delta::of(d1, peek(k, l1, 1))
    );
    let v = mk_pte(f.0, KERNEL_RO);
    let rc = t!(
        t,
        mmu(l1, 2, v, mmu::NORMAL_PT_UPDATE),
        "mmu_update L1[2] = kernel RO"
    );
    if rc == 0 {
        t!(t, 0, "L1[2] read back: {}", Delta::of(v, peek(k, l1, 2)));
    }
    // PRESERVE_AD: the accessed/dirty bits already in the entry survive the write.
    let ad = mk_pte(e.0, KERNEL_RO | _PAGE_ACCESSED | _PAGE_DIRTY);
    t!(
        t,
        mmu(l1, 3, ad, mmu::NORMAL_PT_UPDATE),
        "mmu_update L1[3] = kernel RO + A/D"
    );
    let v = mk_pte(e.0, KERNEL_RO);
    t!(
        t,
        mmu(l1, 3, v, mmu::PT_UPDATE_PRESERVE_AD),
        "mmu_update(preserve_ad) L1[3] = kernel RO without A/D"
    );
    t!(t, 0, "L1[3] read back: {}", Delta::of(v, peek(k, l1, 3)));
    t!(
        t,
        mmu(l1, 3, v, mmu::NORMAL_PT_UPDATE),
        "mmu_update L1[3] = kernel RO without A/D (normal)"
    );
    t!(t, 0, "L1[3] read back: {}", Delta::of(v, peek(k, l1, 3)));
    // Flags a guest may set: a guest-chosen GUEST_KERNEL with GLOBAL (Xen warns, keeps it),
    // AVAIL_HIGH, and (dom0 has I/O capabilities) the cache attributes.
    for (i, flags, what) in [
        (
            4,
            KERNEL_RO | GUEST_KERNEL | _PAGE_GLOBAL,
            "GUEST_KERNEL|GLOBAL",
        ),
        (5, KERNEL_RO | AVAIL_61, "AVAIL_HIGH bit 61"),
        (6, KERNEL_RO | _PAGE_PCD | _PAGE_PWT, "PCD|PWT"),
        (7, KERNEL_RO | _PAGE_PAT, "PAT"),
    ] {
        let v = mk_pte(e.0, flags);
        let rc = t!(
            t,
            mmu(l1, i, v, mmu::NORMAL_PT_UPDATE),
            "mmu_update L1[{i}] = kernel RO + {what}"
        );
        if rc == 0 {
            t!(t, 0, "L1[{i}] read back: {}", Delta::of(v, peek(k, l1, i)));
        }
    }
    // update_va_mapping goes through the same rewrite (the fixmap's own L1, slot SLOT_DATA;
    // the page is never touched, so the CPU sets no accessed bit).
    let v = mk_pte(f.0, KERNEL_RO);
    // SAFETY: SLOT_DATA is a scratch fixmap slot no Rust reference points into.
    let rc = unsafe {
        hypercall::update_va_mapping(
            fix_to_virt(SLOT_DATA),
            v,
            pagetable_validator::abi::uvmf::INVLPG,
        )
    };
    t!(t, rc, "update_va_mapping fixmap slot = kernel RO");
    let fix_l1 = k.pfn_to_mfn(k.fixmap.tables().2);
    let back = peek(k, fix_l1, SLOT_DATA);
    t!(t, 0, "fixmap entry read back: {}", Delta::of(v, back));
    must(k.fixmap.clear_fixmap(SLOT_DATA), "unmap the data slot");

    // --- L2: superpages and linear links.
    poke(k, l2, &[(0, mk_pte(e.0, P | RW | _PAGE_PSE))]);
    t!(t, pin_table(2, l2), "pin_l2 with a PSE superpage entry");
    let c0 = mk_pte(l1.0, TABLE_BARE);
    poke(k, l2, &[(0, c0)]);
    t!(t, pin_table(2, l2), "pin_l2 (entry 0 -> the pinned L1)");
    t!(t, 0, "L2[0] read back: {}", Delta::of(c0, peek(k, l2, 0)));
    t!(
        t,
        mmu(
            l2,
            1,
            mk_pte(f.0, P | RW | _PAGE_PSE),
            mmu::NORMAL_PT_UPDATE
        ),
        "mmu_update L2[1] = PSE superpage"
    );
    t!(
        t,
        mmu(l2, 2, mk_pte(l2.0, P), mmu::NORMAL_PT_UPDATE),
        "mmu_update L2[2] = itself RO (linear)"
    );
    t!(
        t,
        mmu(l2, 3, mk_pte(l2.0, P | RW), mmu::NORMAL_PT_UPDATE),
        "mmu_update L2[3] = itself RW (linear)"
    );
    poke(k, l2b, &[(0, mk_pte(l2.0, P))]);
    t!(
        t,
        pin_table(2, l2b),
        "pin_l2 second L2 (entry 0 -> pinned L2 RO)"
    );
    t!(t, unpin_table(l2b), "unpin second L2");
    poke(k, l2b, &[(0, mk_pte(l2.0, P | RW))]);
    t!(
        t,
        pin_table(2, l2b),
        "pin_l2 second L2 (entry 0 -> pinned L2 RW)"
    );

    // --- L3 and L4: rewriting, self-maps and the hypervisor's slots.
    let b0 = mk_pte(l2.0, TABLE_BARE);
    poke(k, l3, &[(0, b0)]);
    let a0 = mk_pte(l3.0, TABLE_BARE);
    let junk = mk_pte(f.0, PAGE_TABLE);
    poke(
        k,
        l4,
        &[
            (0, a0),
            (1, mk_pte(l4.0, P)),
            (256, junk),
            (270, junk | _PAGE_PSE),
        ],
    );
    t!(
        t,
        pin_table(4, l4),
        "pin_l4 (RO self-map, junk in hypervisor slots 256 and 270)"
    );
    t!(t, 0, "L3[0] read back: {}", Delta::of(b0, peek(k, l3, 0)));
    t!(t, 0, "L4[0] read back: {}", Delta::of(a0, peek(k, l4, 0)));
    t!(
        t,
        0,
        "L4[1] self-map read back: {}",
        Delta::of(mk_pte(l4.0, P), peek(k, l4, 1))
    );
    let s256 = peek(k, l4, 256);
    t!(
        t,
        0,
        "L4[256] after pin: junk kept {}, empty {}",
        yes(s256 == junk),
        yes(s256 == 0)
    );
    t!(
        t,
        0,
        "L4[270] after pin: junk kept {}",
        yes(peek(k, l4, 270) == junk | _PAGE_PSE)
    );
    t!(
        t,
        mmu(l4, 256, 0, mmu::NORMAL_PT_UPDATE),
        "mmu_update L4[256] = none (hypervisor slot)"
    );
    t!(
        t,
        mmu(l4, 2, mk_pte(l4.0, P | RW), mmu::NORMAL_PT_UPDATE),
        "mmu_update L4[2] = itself RW (linear)"
    );
    t!(
        t,
        mmu(l4, 2, mk_pte(l4.0, P), mmu::NORMAL_PT_UPDATE),
        "mmu_update L4[2] = itself RO (linear)"
    );
    t!(t, unpin_table(l4), "unpin L4");
    // Pin failures with Xen's log lines: an RW self-map, then a PSE flag in slot 0.
    poke(k, l4, &[(1, mk_pte(l4.0, P | RW)), (2, 0)]);
    t!(t, pin_table(4, l4), "pin_l4 (RW self-map in slot 1)");
    poke(k, l4, &[(0, mk_pte(l3.0, TABLE_BARE | _PAGE_PSE)), (1, 0)]);
    t!(t, pin_table(4, l4), "pin_l4 (PSE flag in slot 0)");

    // --- Clean up: nothing pinned or referenced afterwards.
    t!(t, unpin_table(l2), "unpin L2");
    t!(t, unpin_table(l1), "unpin L1");
    t.finish();
    for p in pfns {
        k.free_page(p);
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
