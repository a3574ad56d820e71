//! Xen's debug-log messages (`gdprintk` in `arch/x86/mm.c`), reproduced so our
//! log can be read side by side with a real Xen debug build, which prints
//! `arch/x86/mm.c:LINE:d0v0 TEXT` (the source path relative to `xen/`).
//!
//! Line numbers are those of Xen 4.17.5's `arch/x86/mm.c` (Debian's
//! 4.17.5+72 source, the debug build of docs/testing.md); the five lines observed
//! on real Xen (docs/testing.md, the basic pin sequence) and the ones the
//! `xen-rules` scenario provokes were checked against that debug build.
//! Messages from a macro (the linear-pagetable checks) carry the line of the
//! macro's expansion, as `__LINE__` does in Xen.

use crate::event::XenMsg;
use crate::model::Mfn;

pub(crate) const LINE_BAD_TYPE: u32 = 2940;
pub(crate) const LINE_PIN_ERROR: u32 = 3576;
pub(crate) const LINE_ALREADY_PINNED: u32 = 3588;
pub(crate) const LINE_NO_WRITABLE_TYPE: u32 = 1014;
pub(crate) const LINE_ERROR_GETTING_MFN: u32 = 1040;
/// `get_page_from_l1e`: "Bad L1 flags", "non-privileged attempt to map MMIO space".
pub(crate) const LINE_GET_L1_BAD_FLAGS: u32 = 877;
pub(crate) const LINE_MMIO: u32 = 901;
/// `get_page_from_l{2,3,4}e`: "Bad Lx flags" (index = level).
pub(crate) const LINE_GET_LN_BAD_FLAGS: [u32; 5] = [0, 0, 1134, 1157, 1181];
/// `define_get_linear_pagetable(lN)` expansions (index = level).
pub(crate) const LINE_LINEAR: [u32; 5] = [0, 0, 1124, 1148, 1172];
/// "Failure %d in promote_lN_table" (index = level).
pub(crate) const LINE_PROMOTE_FAILURE: [u32; 5] = [0, 1366, 1474, 1593, 1784];
pub(crate) const LINE_ERROR_VALIDATING: u32 = 2649;
pub(crate) const LINE_TYPE_COUNT_OVERFLOW: u32 = 2899;
pub(crate) const LINE_NEW_BASEPTR: u32 = 3346;
/// `MMUEXT_NEW_USER_BASEPTR`: "Error %d installing new mfn %" PRI_mfn.
pub(crate) const LINE_NEW_USER_BASEPTR: u32 = 3708;
pub(crate) const LINE_BAD_OWNER: u32 = 3632;
pub(crate) const LINE_NOT_PINNED: u32 = 3642;
/// `mod_lN_entry`: "Bad Lx flags" (index = level).
pub(crate) const LINE_MOD_BAD_FLAGS: [u32; 5] = [0, 2160, 2276, 2338, 2400];
pub(crate) const LINE_L4_XEN_PRIVATE: u32 = 2389;
pub(crate) const LINE_NORMAL_UPDATE: u32 = 4114;
pub(crate) const LINE_MACHPHYS_UPDATE: u32 = 4238;
/// `adjust_guest_l1e` in `arch/x86/pv/mm.h`.
pub(crate) const LINE_GLOBAL_KERNEL_PAGE: u32 = 98;

/// Xen's `count_info` of a domain page as printed in "caf=": `PGC_allocated`
/// plus the general references, which in Xen include the allocation's own.
pub(crate) fn xen_count_info(refs: u32) -> u64 {
    (1 << 63) | (u64::from(refs) + 1)
}

/// C's `%#x`: `0` for zero, else `0x…`.
pub(crate) fn c_alt_hex(v: u64) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

/// `%05lx` of an mfn or pfn (Xen's `PRI_mfn` / `PRI_pfn`).
pub(crate) fn hex5(v: impl std::fmt::LowerHex) -> String {
    format!("{v:05x}")
}

pub(crate) fn msg(line: u32, text: String) -> XenMsg {
    XenMsg {
        file: "arch/x86/mm.c".into(),
        line,
        text,
    }
}

/// A message from another Xen source file.
pub(crate) fn msg_in(file: &str, line: u32, text: String) -> XenMsg {
    XenMsg {
        file: file.into(),
        line,
        text,
    }
}

pub(crate) fn bad_type(saw: u64, exp: u64, mfn: Mfn, pfn: u64) -> XenMsg {
    msg(
        LINE_BAD_TYPE,
        format!(
            "Bad type (saw {saw:016x} != exp {exp:016x}) for mfn {} (pfn {})",
            hex5(mfn),
            hex5(pfn)
        ),
    )
}

/// `validate_page`'s failure line; `refs` is the general count (printed as
/// Xen's `count_info`).
pub(crate) fn error_validating(
    line: u32,
    mfn: Mfn,
    pfn: u64,
    ty: u64,
    refs: u32,
    taf: u64,
) -> XenMsg {
    msg(
        line,
        format!(
            "Error while validating mfn {} (pfn {}) for type {ty:016x}: caf={:08x} taf={taf:016x}",
            hex5(mfn),
            hex5(pfn),
            xen_count_info(refs)
        ),
    )
}

pub(crate) fn pin_error(rc: i64, mfn: Mfn) -> XenMsg {
    msg(
        LINE_PIN_ERROR,
        format!("Error {rc} while pinning mfn {}", hex5(mfn)),
    )
}

pub(crate) fn already_pinned(mfn: Mfn) -> XenMsg {
    msg(
        LINE_ALREADY_PINNED,
        format!("mfn {} already pinned", hex5(mfn)),
    )
}

pub(crate) fn not_pinned(mfn: Mfn) -> XenMsg {
    msg(LINE_NOT_PINNED, format!("mfn {} not pinned", hex5(mfn)))
}

pub(crate) fn no_writable_type() -> XenMsg {
    msg(
        LINE_NO_WRITABLE_TYPE,
        "Could not get page type PGT_writable_page".into(),
    )
}

pub(crate) fn error_getting_mfn(mfn: Mfn, pfn: u64, pte: u64) -> XenMsg {
    msg(
        LINE_ERROR_GETTING_MFN,
        format!(
            "Error getting mfn {} (pfn {}) from L1 entry {pte:016x} for l1e_owner d0, pg_owner d0",
            hex5(mfn),
            hex5(pfn)
        ),
    )
}

/// `adjust_guest_l1e`'s warning (`arch/x86/pv/mm.h`); Xen prints the entry's
/// frame number with `%lx`.
pub(crate) fn global_kernel_page(e: u64) -> XenMsg {
    msg_in(
        "arch/x86/pv/mm.h",
        LINE_GLOBAL_KERNEL_PAGE,
        format!(
            "Global bit is set in kernel page {:x}",
            crate::pte::pte_mfn(e)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_formats() {
        assert_eq!(c_alt_hex(0), "0");
        assert_eq!(c_alt_hex(0x104), "0x104");
        // Real Xen's debug log: "caf=8000000000000003" where we count 2 references.
        assert_eq!(format!("{:08x}", xen_count_info(2)), "8000000000000003");
    }
}
