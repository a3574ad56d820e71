//! Xen's static PTE rules for 64-bit PV guests (flag masks, reserved slots).
//!
//! Facts from Xen's `arch/x86/mm.c` (`arch_init_memory`, `l1_disallow_mask`,
//! `FASTPATH_FLAG_WHITELIST`) and `x86_64/page.h` (`is_guest_l4_slot`,
//! `__addr_ok`):
//! * `base_disallow_mask = ~(PRESENT|RW|USER|ACCESSED|DIRTY|AVAIL|AVAIL_HIGH|NX)`
//!   over Xen's 24-bit flag space, i.e. PTE bits PWT, PCD, PSE/PAT and GLOBAL.
//!   L2/L3/L4 entries use it as is, so `_PAGE_PSE` (superpages) is a "Bad Lx flags"
//!   refusal for PV.
//! * `L1_DISALLOW_MASK = (base | _PAGE_GNTTAB) & ~_PAGE_GLOBAL`; for a domain
//!   without I/O capabilities (a plain PV domU) that is PWT|PCD|PAT. A domain with
//!   I/O capabilities (dom0) may use the cache attributes: mask 0 (`_PAGE_GNTTAB`
//!   is 0 in release builds).
//! * L4 slots 256..=271 belong to the hypervisor.
//! * `adjust_guest_l{1,2,3,4}e` (`arch/x86/pv/mm.h`): a 64-bit PV kernel runs in
//!   ring 3, so Xen rewrites every present entry it accepts (when a table is
//!   validated and on `mmu_update` / `update_va_mapping`) before writing it:
//!   L1 entries without `_PAGE_USER` become `_PAGE_USER | _PAGE_GUEST_KERNEL`
//!   (bit 52), and an L1 entry that then still lacks `_PAGE_GUEST_KERNEL` (a user
//!   mapping) gets `_PAGE_GLOBAL | _PAGE_USER`; L2/L3 entries get `_PAGE_USER`,
//!   L4 entries `_PAGE_USER | _PAGE_ACCESSED`. Flag checks see the guest's value,
//!   the fast-path comparison and the write the adjusted one. A guest value with
//!   both `_PAGE_GUEST_KERNEL` and `_PAGE_GLOBAL` is logged ("Global bit is set in
//!   kernel page") and kept.

use crate::abi::{ROOT_PAGETABLE_FIRST_XEN_SLOT, ROOT_PAGETABLE_LAST_XEN_SLOT};
use crate::pte::*;

/// Disallowed L2/L3/L4 entry bits (Xen's `base_disallow_mask`).
pub const LN_DISALLOW: u64 = _PAGE_PWT | _PAGE_PCD | _PAGE_PSE | _PAGE_GLOBAL;
/// Disallowed L1 entry bits for a PV domain without I/O capabilities.
pub const L1_DISALLOW_DOMU: u64 = _PAGE_PWT | _PAGE_PCD | _PAGE_PAT;
/// Disallowed L1 entry bits for a domain with I/O capabilities (dom0), release build.
pub const L1_DISALLOW_IO_PRIV: u64 = 0;

/// Flags a guest may change without revalidation (`FASTPATH_FLAG_WHITELIST`):
/// NX, AVAIL_HIGH (bits 52..62), AVAIL, GLOBAL, DIRTY, ACCESSED, USER.
pub const FASTPATH_WHITELIST: u64 = _PAGE_NX
    | (0x7ff << 52)
    | _PAGE_AVAIL
    | _PAGE_GLOBAL
    | _PAGE_DIRTY
    | _PAGE_ACCESSED
    | _PAGE_USER;

/// Xen's `_PAGE_GUEST_KERNEL` (flag bit 12 = PTE bit 52, one of the AVAIL_HIGH
/// bits): marks an L1 entry Xen turned from a kernel mapping into a ring-3 one.
pub const _PAGE_GUEST_KERNEL: u64 = 1 << 52;

/// Xen's `adjust_guest_l1e` for a 64-bit PV domain.
#[inline(always)]
pub fn adjust_guest_l1e(e: u64) -> u64 {
    // Branch-free so the validation write-back loop vectorises: `p` is all ones
    // for a present entry.
    let p = 0u64.wrapping_sub(e & _PAGE_PRESENT);
    let no_user = 0u64.wrapping_sub(((e >> 2) & 1) ^ 1);
    let e = e | (p & no_user & (_PAGE_GUEST_KERNEL | _PAGE_USER));
    let no_gk = 0u64.wrapping_sub(((e >> 52) & 1) ^ 1);
    e | (p & no_gk & (_PAGE_GLOBAL | _PAGE_USER))
}

/// Xen's `adjust_guest_l{2,3,4}e` for a 64-bit PV domain (`level` 2..=4).
#[inline]
pub fn adjust_guest_lne(level: u32, e: u64) -> u64 {
    if e & _PAGE_PRESENT == 0 {
        e
    } else if level == 4 {
        e | _PAGE_USER | _PAGE_ACCESSED
    } else {
        e | _PAGE_USER
    }
}

/// Whether Xen warns "Global bit is set in kernel page" for this guest L1 value.
#[inline]
pub fn global_kernel_page(e: u64) -> bool {
    e & (_PAGE_PRESENT | _PAGE_GUEST_KERNEL | _PAGE_GLOBAL)
        == _PAGE_PRESENT | _PAGE_GUEST_KERNEL | _PAGE_GLOBAL
}

/// Start of the first guest-usable address above the hypervisor hole
/// (`HYPERVISOR_VIRT_END`, the end of L4 slot 271).
pub const HYPERVISOR_VIRT_END: u64 = 0xffff_8800_0000_0000;

/// Rules that differ between Xen domain configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Disallowed L1 bits ([`L1_DISALLOW_DOMU`] by default).
    pub l1_disallow: u64,
    /// Xen's `pv-linear-pt` boot option (default on in 4.17).
    pub linear_pt: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            l1_disallow: L1_DISALLOW_DOMU,
            linear_pt: true,
        }
    }
}

/// Whether L4 slot `slot` belongs to the hypervisor.
#[inline]
pub fn is_xen_l4_slot(slot: usize) -> bool {
    (ROOT_PAGETABLE_FIRST_XEN_SLOT..=ROOT_PAGETABLE_LAST_XEN_SLOT).contains(&slot)
}

/// Xen's `lNe_has_changed(old, new, ~FASTPATH_FLAG_WHITELIST)`: does anything but
/// whitelisted flags differ (address or a non-whitelisted flag)?
#[inline]
pub fn has_changed_beyond_fastpath(old: u64, new: u64) -> bool {
    (old ^ new) & !FASTPATH_WHITELIST != 0
}

/// Xen's `__addr_ok` for 64-bit PV: below the canonical hole or above the
/// hypervisor area.
#[inline]
pub fn addr_ok(va: u64) -> bool {
    !((1 << 47)..HYPERVISOR_VIRT_END).contains(&va)
}

/// Xen's 24-bit flag encoding of an entry (`get_pte_flags`), as printed in
/// "Bad L1 flags %x".
#[inline]
pub fn xen_flags(pte: u64) -> u64 {
    ((pte >> 40) & !0xfff & 0xff_ffff) | (pte & 0xfff)
}

/// Xen's `FIRST_RESERVED_GDT_ENTRY` (public `arch-x86/xen.h`: page 14 of the
/// GDT onwards is Xen's): a guest GDT has at most this many entries.
pub const FIRST_RESERVED_GDT_ENTRY: u32 = 14 * 4096 / 8;
/// Xen's `FLAT_KERNEL_CS` for 64-bit PV (`FLAT_RING3_CS64`, GDT index 262).
pub const FLAT_KERNEL_CS: u32 = 0xe033;

const SEGMENT_TYPE: u32 = 15 << 8;
const SEGMENT_S: u32 = 1 << 12;
const SEGMENT_DPL: u32 = 3 << 13;
const SEGMENT_P: u32 = 1 << 15;
/// A 64-bit PV kernel runs in ring 3 (`GUEST_KERNEL_RPL`).
const GUEST_KERNEL_RPL: u32 = 3;

/// Xen 4.17's `check_descriptor` (`arch/x86/pv/descriptor-tables.c`) for a
/// 64-bit PV domain: `None` if the descriptor is refused, else the value Xen
/// stores (possibly fixed up).
///
/// * Not present: accepted unchanged.
/// * The DPL is raised to the guest kernel's RPL (3), `__fixup_guest_selector`.
/// * Code and data segments (S set): accepted, no base/limit checks (those are
///   for 32-bit guests only), with the fixed-up DPL.
/// * System type 0 (the second half of a call gate): accepted unchanged (Xen
///   returns before writing the fix-up back).
/// * Any other system descriptor but a call gate (type 0xc): refused.
/// * Call gate: the target selector must be a guest GDT entry (index below
///   [`FIRST_RESERVED_GDT_ENTRY`]), Xen's `FLAT_KERNEL_CS`, or an LDT selector
///   (`guest_gate_selector_okay`); the DPL is forced to 0 (so using the gate
///   faults and Xen can emulate it) and the original (fixed-up) DPL goes into
///   the selector's RPL; the reserved bits 0..7 of the high word must be zero.
pub fn check_descriptor(desc: u64) -> Option<u64> {
    let (mut a, mut b) = (desc as u32, (desc >> 32) as u32);
    if b & SEGMENT_P == 0 {
        return Some(desc);
    }
    let mut dpl = (b >> 13) & 3;
    if dpl & 3 < GUEST_KERNEL_RPL {
        dpl = (dpl & !3) | GUEST_KERNEL_RPL;
    }
    b = (b & !SEGMENT_DPL) | (dpl << 13);
    if b & SEGMENT_S == 0 {
        if b & SEGMENT_TYPE == 0 {
            return Some(desc);
        }
        if b & SEGMENT_TYPE != 0xc00 {
            return None;
        }
        let cs = a >> 16;
        let gate_ok = (cs >> 3) < FIRST_RESERVED_GDT_ENTRY || cs == FLAT_KERNEL_CS || cs & 4 != 0;
        if !gate_ok {
            return None;
        }
        b &= !SEGMENT_DPL;
        let cs = (cs & !3) | dpl;
        a = (a & 0xffff) | (cs << 16);
        if b & 0xff != 0 {
            return None;
        }
    }
    Some(u64::from(a) | (u64::from(b) << 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Descriptors from a 64-bit Linux GDT (`GDT_ENTRY_INIT` in
    /// `arch/x86/include/asm/segment.h`), and what Xen's `check_descriptor`
    /// does to them, worked through Xen's code line by line.
    #[test]
    fn check_descriptor_follows_xen() {
        // Not present (P clear): anything goes, unchanged.
        assert_eq!(check_descriptor(0), Some(0));
        assert_eq!(
            check_descriptor(0xffff_7fff_ffff_ffff),
            Some(0xffff_7fff_ffff_ffff)
        );
        // __KERNEL_CS 64-bit: 0x00af9b000000ffff (DPL 0) -> DPL 3 (0x00affb...).
        assert_eq!(
            check_descriptor(0x00af_9b00_0000_ffff),
            Some(0x00af_fb00_0000_ffff)
        );
        // __KERNEL_DS: 0x00cf93000000ffff -> 0x00cff3000000ffff.
        assert_eq!(
            check_descriptor(0x00cf_9300_0000_ffff),
            Some(0x00cf_f300_0000_ffff)
        );
        // __USER_CS (DPL 3) unchanged; 32-bit user CS too (no limit checks for 64-bit PV).
        assert_eq!(
            check_descriptor(0x00af_fb00_0000_ffff),
            Some(0x00af_fb00_0000_ffff)
        );
        assert_eq!(
            check_descriptor(0x00cf_fb00_0000_ffff),
            Some(0x00cf_fb00_0000_ffff)
        );
        // DPL 1 and 2 are raised to 3 as well.
        assert_eq!(
            check_descriptor(0x00cf_b300_0000_ffff),
            Some(0x00cf_f300_0000_ffff)
        );
        assert_eq!(
            check_descriptor(0x00cf_d300_0000_ffff),
            Some(0x00cf_f300_0000_ffff)
        );
        // A present system descriptor of type 0 (upper half of a 16-byte gate):
        // accepted as is, DPL not rewritten.
        assert_eq!(
            check_descriptor(0x0000_8000_0000_0000),
            Some(0x0000_8000_0000_0000)
        );
        // TSS (type 9), LDT (type 2), interrupt gate (0xe), trap gate (0xf): refused.
        assert_eq!(check_descriptor(0x0000_8900_0000_0067), None);
        assert_eq!(check_descriptor(0x0000_8200_0000_ffff), None);
        assert_eq!(check_descriptor(0x0000_8e00_0010_0000), None);
        assert_eq!(check_descriptor(0x0000_8f00_0010_0000), None);
        // Call gate (type 0xc) to selector 0x10 (GDT index 2), DPL 3: DPL forced
        // to 0, the old DPL (3) in the selector's RPL: 0x10 -> 0x13.
        assert_eq!(
            check_descriptor(0x0000_ec00_0010_1000),
            Some(0x0000_8c00_0013_1000)
        );
        // DPL 0 call gate: DPL fixed up to 3 first, so the RPL becomes 3 too.
        assert_eq!(
            check_descriptor(0x0000_8c00_0010_1000),
            Some(0x0000_8c00_0013_1000)
        );
        // Gate to a Xen-reserved GDT entry (index 7168 = selector 0xe000): refused;
        // Xen's FLAT_KERNEL_CS (0xe033) and LDT selectors (TI bit) are fine.
        assert_eq!(check_descriptor(0x0000_ec00_e000_1000), None);
        assert_eq!(
            check_descriptor(0x0000_ec00_e033_1000),
            Some(0x0000_8c00_e033_1000)
        );
        assert_eq!(
            check_descriptor(0x0000_ec00_e004_1000),
            Some(0x0000_8c00_e007_1000)
        );
        // Last guest GDT entry (index 7167, selector 0xdff8): fine.
        assert_eq!(
            check_descriptor(0x0000_ec00_dff8_1000),
            Some(0x0000_8c00_dffb_1000)
        );
        // Call gate with reserved bits 0..7 of the high word set: refused.
        assert_eq!(check_descriptor(0x0000_ec01_0010_1000), None);
    }

    #[test]
    fn masks_match_xen_constants() {
        // Xen's base_disallow_mask in 24-bit flag space is ~0xFF0E67 & 0xFFFFFF
        // = 0x198 (PWT, PCD, PSE, GLOBAL).
        let allowed24: u64 = 0x1 | 0x2 | 0x4 | 0x20 | 0x40 | 0xe00 | (0x7ff << 12) | (1 << 23);
        assert_eq!(!allowed24 & 0xff_ffff, LN_DISALLOW);
        assert_eq!(LN_DISALLOW, 0x198);
        assert_eq!(L1_DISALLOW_DOMU, 0x98);
        assert!(is_xen_l4_slot(256) && is_xen_l4_slot(271));
        assert!(!is_xen_l4_slot(255) && !is_xen_l4_slot(272));
    }

    #[test]
    fn fastpath_and_flag_encoding() {
        let e = mk_pte(5, _PAGE_PRESENT | _PAGE_RW);
        assert!(!has_changed_beyond_fastpath(
            e,
            e | _PAGE_ACCESSED | _PAGE_NX
        ));
        assert!(has_changed_beyond_fastpath(e, e & !_PAGE_RW));
        assert!(has_changed_beyond_fastpath(
            e,
            mk_pte(6, _PAGE_PRESENT | _PAGE_RW)
        ));
        assert_eq!(xen_flags(_PAGE_NX | 0x63), 0x800063);
        assert!(addr_ok(0x7fff_ffff_f000) && addr_ok(0xffff_8880_0000_0000));
        assert!(!addr_ok(0xffff_8000_0000_0000) && !addr_ok(0x8000_0000_0000));
    }

    #[test]
    fn adjust_matches_xen_source_and_real_xen_readback() {
        // Observed on real Xen 4.17: written 0x800000001ebc1063, read back 0x801000001ebc1067.
        assert_eq!(
            adjust_guest_l1e(0x8000_0000_1ebc_1063),
            0x8010_0000_1ebc_1067
        );
        assert_eq!(
            adjust_guest_l1e(0x8000_0000_1ebc_1021),
            0x8010_0000_1ebc_1025
        );
        // A user mapping (USER set, no GUEST_KERNEL) gets GLOBAL.
        assert_eq!(adjust_guest_l1e(0x1027), 0x1127);
        // Guest-supplied GUEST_KERNEL with USER: unchanged; without USER: USER added.
        let gk = _PAGE_GUEST_KERNEL | 0x1025;
        assert_eq!(adjust_guest_l1e(gk), gk);
        assert_eq!(adjust_guest_l1e(gk & !_PAGE_USER), gk);
        // Not present: untouched, at every level.
        assert_eq!(adjust_guest_l1e(0x1002), 0x1002);
        assert_eq!(adjust_guest_lne(4, 0x1002), 0x1002);
        assert_eq!(adjust_guest_lne(2, 0x1003), 0x1007);
        assert_eq!(adjust_guest_lne(3, 0x1003), 0x1007);
        assert_eq!(adjust_guest_lne(4, 0x1003), 0x1027);
        assert!(global_kernel_page(gk | _PAGE_GLOBAL));
        assert!(!global_kernel_page(0x1127));
    }
}
