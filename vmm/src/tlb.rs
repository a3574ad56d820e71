//! The guest's TLB, kept coherent by the VMM (the guest cannot flush: `invlpg` and `mov cr3`
//! are privileged, and under real Xen it asks Xen). The hypercall stub runs what we ask on the
//! way back: nothing, `invlpg [va]`, or a CR3 reload (full flush, ~35 ms on an emulated KVM
//! such as kvm-pvm, so it is worth avoiding).
//!
//! Rules (x86: a not-present entry is never cached, so filling one needs no flush):
//! * a changed L2..L4 entry that was present: full flush now (the paging-structure caches
//!   may hold it; a table unlinked from the walk may later become writable data);
//! * a changed L1 entry that was present, at a VA we know (`update_va_mapping`): `invlpg`;
//!   at an unknown VA (`mmu_update`): full flush if rights were added or the frame changed,
//!   otherwise (rights only removed) nothing now: Xen does not flush either, the guest
//!   flushes when it needs to;
//! * explicit requests: `INVLPG` forms and `UVMF_INVLPG` -> `invlpg`, TLB flushes -> full;
//!   `NEW_BASEPTR` and `UNPIN` -> full.
//! * **Safety**: any present L1 entry changed without a full flush leaves the TLB possibly
//!   *stale* (the same L1 slot may be cached at other VAs). Before any operation that may
//!   give a frame a pagetable type (pin, new base, an L2..L4 entry pointing to a table)
//!   completes, a stale TLB is flushed in full — so a stale writable translation never
//!   outlives a type change (Xen gets the same guarantee from its TLB-flush timestamps).
//!
//! Two different single-page flushes in one exit become a full flush (the stub has one VA).

use pagetable_validator::pte;
use pagetable_validator::{Event, Op};

/// What the stub must do before returning to the guest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flush {
    #[default]
    None,
    /// `invlpg [va]`.
    Page(u64),
    /// Reload CR3.
    Full,
}

impl Flush {
    /// Combines two requirements.
    pub fn add(self, other: Flush) -> Flush {
        match (self, other) {
            (Flush::None, x) | (x, Flush::None) => x,
            (Flush::Page(a), Flush::Page(b)) if a >> 12 == b >> 12 => Flush::Page(a),
            _ => Flush::Full,
        }
    }
}

/// Rights an entry grants; more bits = more rights (NX inverted).
fn rights(e: u64) -> u64 {
    (e & (pte::_PAGE_RW | pte::_PAGE_USER)) | (!e & pte::_PAGE_NX)
}

/// Whether `new` grants at most what `old` granted, to the same frame (or nothing).
fn only_removes(old: u64, new: u64) -> bool {
    !pte::pte_present(new)
        || (pte::pte_mfn(new) == pte::pte_mfn(old) && rights(new) & !rights(old) == 0)
}

/// The flush state of one domain across exits.
#[derive(Debug, Default)]
pub struct Tlb {
    /// A present L1 entry changed since the last full flush (see the module comment).
    pub stale: bool,
}

impl Tlb {
    /// Accounts for one successful validator operation; returns the flush it needs now.
    pub fn after(&mut self, ev: &Event) -> Flush {
        if ev.rc != 0 {
            return Flush::None; // a refused operation changed nothing
        }
        let type_change = || Flush::Full;
        match ev.op {
            Op::MmuUpdate {
                level, old, new, ..
            } => {
                let was = pte::pte_present(old);
                let mut f = Flush::None;
                if level >= 2 {
                    if was && old != new {
                        f = Flush::Full;
                    }
                    if pte::pte_present(new) && self.stale {
                        f = type_change(); // may validate a lower table
                    }
                } else if level == 1 && was && old != new {
                    if only_removes(old, new) {
                        self.stale = true;
                    } else {
                        f = Flush::Full; // VA unknown
                    }
                }
                f
            }
            Op::UpdateVaMapping { va, old, new, .. } => {
                if pte::pte_present(old) && old != new {
                    self.stale = true;
                    Flush::Page(va)
                } else {
                    Flush::None
                }
            }
            Op::Pin { .. } if self.stale => type_change(),
            Op::NewBaseptr { .. } | Op::Unpin { .. } => Flush::Full,
            _ => Flush::None,
        }
    }

    /// The stub reloaded CR3: nothing is stale any more.
    pub fn flushed_all(&mut self) {
        self.stale = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pagetable_validator::pte::{_PAGE_PRESENT as P, _PAGE_RW as RW};
    use pagetable_validator::Mfn;

    fn ev(op: Op, rc: i64) -> Event {
        Event {
            seq: 1,
            op,
            rc,
            xen_log: vec![],
            violations: vec![],
        }
    }
    fn upd(level: u32, old: u64, new: u64) -> Event {
        ev(
            Op::MmuUpdate {
                ptr: 0,
                val: new,
                table: Mfn(1),
                slot: 0,
                level,
                old,
                new,
            },
            0,
        )
    }
    fn pin() -> Event {
        ev(
            Op::Pin {
                level: 1,
                mfn: Mfn(5),
                pfn: Some(5),
            },
            0,
        )
    }

    #[test]
    fn filling_an_empty_entry_needs_no_flush() {
        let mut t = Tlb::default();
        assert_eq!(t.after(&upd(1, 0, 0x5000 | P | RW)), Flush::None);
        assert_eq!(t.after(&upd(2, 0, 0x5000 | P | RW)), Flush::None);
        assert!(!t.stale);
    }

    #[test]
    fn removing_rights_defers_until_a_type_change() {
        let mut t = Tlb::default();
        assert_eq!(t.after(&upd(1, 0x5000 | P | RW, 0)), Flush::None);
        assert_eq!(t.after(&upd(1, 0x6000 | P | RW, 0x6000 | P)), Flush::None);
        assert!(t.stale);
        // Pinning anything now must flush everything first.
        assert_eq!(t.after(&pin()), Flush::Full);
        t.flushed_all();
        assert_eq!(t.after(&pin()), Flush::None);
    }

    #[test]
    fn adding_rights_or_changing_the_frame_flushes_now() {
        let mut t = Tlb::default();
        assert_eq!(t.after(&upd(1, 0x5000 | P, 0x5000 | P | RW)), Flush::Full);
        assert_eq!(t.after(&upd(1, 0x5000 | P, 0x6000 | P)), Flush::Full);
        assert_eq!(t.after(&upd(2, 0x5000 | P | RW, 0)), Flush::Full);
    }

    #[test]
    fn known_va_gets_invlpg_and_marks_stale() {
        let mut t = Tlb::default();
        let e = ev(
            Op::UpdateVaMapping {
                va: 0xffff_8880_0000_1000,
                val: P,
                flags: 0,
                l1: Some(Mfn(3)),
                slot: 1,
                old: 0x1000 | P | RW,
                new: 0x1000 | P,
            },
            0,
        );
        assert_eq!(t.after(&e), Flush::Page(0xffff_8880_0000_1000));
        assert!(t.stale);
        // A refused operation changes nothing.
        let mut t = Tlb::default();
        let mut bad = upd(1, 0x5000 | P | RW, 0);
        bad.rc = -22;
        assert_eq!(t.after(&bad), Flush::None);
        assert!(!t.stale);
    }

    #[test]
    fn combining() {
        assert_eq!(Flush::None.add(Flush::Page(0x1000)), Flush::Page(0x1000));
        assert_eq!(
            Flush::Page(0x1000).add(Flush::Page(0x1000)),
            Flush::Page(0x1000)
        );
        assert_eq!(Flush::Page(0x1000).add(Flush::Page(0x2000)), Flush::Full);
        assert_eq!(Flush::Page(0x1000).add(Flush::Full), Flush::Full);
    }
}
