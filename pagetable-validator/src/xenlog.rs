//! Xen's debug-log messages (`gdprintk` in `arch/x86/mm.c`), reproduced so our
//! log can be read side by side with a real Xen debug build.
//!
//! Line numbers: the five messages observed on Xen 4.17 (DESIGN §4) carry the
//! line real Xen printed; for the others the 4.17 line is unknown and is shown as
//! `???` rather than guessed.

use crate::event::XenMsg;
use crate::model::Mfn;

pub(crate) const LINE_BAD_TYPE: u32 = 2940;
pub(crate) const LINE_PIN_ERROR: u32 = 3576;
pub(crate) const LINE_ALREADY_PINNED: u32 = 3588;
pub(crate) const LINE_NO_WRITABLE_TYPE: u32 = 1014;
pub(crate) const LINE_ERROR_GETTING_MFN: u32 = 1040;
pub(crate) const LINE_UNKNOWN: u32 = 0;

/// `%05lx` of an mfn or pfn (Xen's `PRI_mfn` / `PRI_pfn`).
pub(crate) fn hex5(v: u64) -> String {
    format!("{v:05x}")
}

pub(crate) fn msg(line: u32, text: String) -> XenMsg {
    XenMsg {
        file: "mm.c".into(),
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
    msg(LINE_UNKNOWN, format!("mfn {} not pinned", hex5(mfn)))
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
