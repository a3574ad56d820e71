//! Brute-force oracle: recomputes every count from the roots (pinned frames and
//! the current base) and the table contents, independently of the incremental
//! bookkeeping in `refs.rs`, and compares.
//!
//! What it checks:
//! * every table reachable from a root is typed at the level it is reached at,
//!   validated, and no frame is reached at two levels;
//! * every reachable entry obeys the rules (flags, frames inside the domain,
//!   cleared hypervisor L4 slots, entries in Xen's adjusted form
//!   (`adjust_guest_lNe`), linear entries read-only and to a same-level
//!   table, no table both holding linear entries and being a linear target);
//! * type counts, general reference counts, writable references and linear
//!   counts equal what the reachable entries + pins + base imply;
//! * no pagetable has a writable reference (audit: only tolerated ones);
//! * unreachable frames hold no pagetable type;
//! * every GDT frame is a validated descriptor page whose descriptors all pass
//!   `check_descriptor` unchanged, with one type reference per GDT slot, and no
//!   writable reference (audit: only tolerated ones); no other frame is one.

use crate::frames::GuestFrames;
use crate::model::{FrameInfo, Mfn, PageType, Policy};
use crate::pte::{pte_mfn, _PAGE_PRESENT, _PAGE_RW, ENTRIES};
use crate::rules::{
    adjust_guest_l1e, adjust_guest_lne, check_descriptor, is_xen_l4_slot, LN_DISALLOW,
};
use crate::validator::Validator;

pub(crate) fn check<M: GuestFrames>(v: &Validator, mem: &M) -> Result<(), String> {
    let infos = v.frames_snapshot();
    let n = infos.len();
    if (mem.nr_frames() as usize) < n {
        return Err("guest memory smaller than the frame table".into());
    }
    let mut errs: Vec<String> = Vec::new();
    let mut live = vec![0u32; n];
    let mut work: Vec<usize> = Vec::new();
    // Roots.
    for (m, f) in infos.iter().enumerate() {
        if f.pinned {
            if !f.ty.is_table() {
                errs.push(format!("mfn {m:x} pinned but typed {:?}", f.ty));
            } else {
                reach(&mut live, m, f.ty.level(), "pinned", &mut errs, &mut work);
            }
        }
    }
    for (b, what) in [(v.base, "base"), (v.user_base, "user base")] {
        let Some(b) = b else { continue };
        if b.0 as usize >= n {
            errs.push(format!("{what} {b:x} outside the domain"));
        } else {
            reach(&mut live, b.0 as usize, 4, what, &mut errs, &mut work);
        }
    }

    // Reachability; linear vs. normal edges are told apart by the target's type.
    let mut buf = [0u64; ENTRIES];
    let mut tables: Vec<usize> = Vec::new();
    while let Some(p) = work.pop() {
        tables.push(p);
        let level = live[p];
        if level == 1 {
            continue;
        }
        mem.read_frame(Mfn(p as u64), &mut buf);
        for (slot, &e) in buf.iter().enumerate() {
            if e & _PAGE_PRESENT == 0 || (level == 4 && is_xen_l4_slot(slot)) {
                continue;
            }
            let t = pte_mfn(e) as usize;
            if t >= n || t == p {
                continue; // rule violations reported below
            }
            let tty = infos[t].ty;
            if tty.level() == level - 1 {
                reach(&mut live, t, level - 1, "entry", &mut errs, &mut work);
            } else if tty.level() == level {
                reach(&mut live, t, level, "linear entry", &mut errs, &mut work);
            } else {
                errs.push(format!(
                    "L{level} mfn {p:x} slot {slot} points to mfn {t:x} typed {tty:?}"
                ));
            }
        }
    }

    // Recount from the reachable tables.
    let mut refs = vec![0u64; n];
    let mut tcount = vec![0u64; n];
    let mut wcount = vec![0u64; n];
    let mut lin_entries = vec![0i64; n];
    let mut lin_uses = vec![0i64; n];
    for (m, f) in infos.iter().enumerate() {
        if f.pinned {
            refs[m] += 1;
            tcount[m] += 1;
        }
    }
    for b in [v.base, v.user_base].into_iter().flatten() {
        if (b.0 as usize) < n {
            refs[b.0 as usize] += 1;
            tcount[b.0 as usize] += 1;
        }
    }
    let mut gdt_refs = vec![0u64; n];
    for &g in &v.gdt {
        if g.0 as usize >= n {
            errs.push(format!("GDT frame {g:x} outside the domain"));
            continue;
        }
        gdt_refs[g.0 as usize] += 1;
        refs[g.0 as usize] += 1;
        tcount[g.0 as usize] += 1;
    }
    for (m, &c) in gdt_refs.iter().enumerate() {
        if c == 0 {
            continue;
        }
        if live[m] != 0 {
            errs.push(format!("GDT frame {m:x} is also reachable as L{}", live[m]));
        }
        mem.read_frame(Mfn(m as u64), &mut buf);
        for (i, &d) in buf.iter().enumerate() {
            if check_descriptor(d) != Some(d) {
                errs.push(format!(
                    "GDT frame {m:x} descriptor {i} {d:016x} not as Xen leaves it"
                ));
            }
        }
    }
    for &p in &tables {
        let level = live[p];
        mem.read_frame(Mfn(p as u64), &mut buf);
        for (slot, &e) in buf.iter().enumerate() {
            if level == 4 && is_xen_l4_slot(slot) {
                let k = slot - crate::abi::ROOT_PAGETABLE_FIRST_XEN_SLOT;
                let ro_mpt = k == 0 && e == v.xen_ro_mpt;
                if e != v.xen_l4_slots[k] && !ro_mpt {
                    errs.push(format!(
                        "L4 mfn {p:x}: Xen slot {slot} is {e:#x}, not the hypervisor's {:#x}",
                        v.xen_l4_slots[k]
                    ));
                }
                continue;
            }
            if e & _PAGE_PRESENT == 0 {
                continue;
            }
            let adjusted = if level == 1 {
                adjust_guest_l1e(e)
            } else {
                adjust_guest_lne(level, e)
            };
            if adjusted != e {
                errs.push(format!(
                    "L{level} mfn {p:x} slot {slot}: {e:016x} not in Xen's adjusted form"
                ));
            }
            let t = pte_mfn(e) as usize;
            let mask = if level == 1 {
                v.rules.l1_disallow
            } else {
                LN_DISALLOW
            };
            if e & mask != 0 {
                errs.push(format!(
                    "L{level} mfn {p:x} slot {slot}: bad flags {e:016x}"
                ));
            }
            if t >= n {
                errs.push(format!("L{level} mfn {p:x} slot {slot}: mfn {t:x} outside"));
                continue;
            }
            if level == 1 {
                refs[t] += 1;
                if e & _PAGE_RW != 0 {
                    wcount[t] += 1;
                }
                continue;
            }
            let linear = t == p || infos[t].ty.level() == level;
            if linear && e & _PAGE_RW != 0 {
                errs.push(format!(
                    "L{level} mfn {p:x} slot {slot}: writable linear entry"
                ));
            }
            if t == p {
                continue; // self-reference takes nothing
            }
            refs[t] += 1;
            tcount[t] += 1;
            if linear {
                lin_entries[p] += 1;
                lin_uses[t] += 1;
            }
        }
    }

    for (m, f) in infos.iter().enumerate() {
        if gdt_refs[m] > 0 {
            check_segdesc_frame(m, f, tcount[m], wcount[m], &mut errs);
            if u64::from(f.refs) != refs[m] {
                errs.push(format!(
                    "mfn {m:x}: refs {} != recomputed {}",
                    f.refs, refs[m]
                ));
            }
            continue;
        }
        check_frame(
            v,
            m,
            f,
            live[m],
            refs[m],
            tcount[m],
            wcount[m],
            lin_entries[m],
            lin_uses[m],
            &mut errs,
        );
        if errs.len() > 20 {
            break;
        }
    }

    if errs.is_empty() {
        Ok(())
    } else {
        // A broken rule usually breaks it for many entries: keep the report short.
        const SHOWN: usize = 20;
        let more = errs.len().saturating_sub(SHOWN);
        errs.truncate(SHOWN);
        if more > 0 {
            errs.push(format!("... and {more} more"));
        }
        Err(errs.join("\n"))
    }
}

fn check_segdesc_frame(m: usize, f: &FrameInfo, tcount: u64, wcount: u64, errs: &mut Vec<String>) {
    if f.ty != PageType::SegDesc || !f.validated || u64::from(f.type_count) != tcount {
        errs.push(format!(
            "GDT frame {m:x} not a validated descriptor page x{tcount} (frame {f:?})"
        ));
    }
    if u64::from(f.tolerated_writable) != wcount {
        errs.push(format!(
            "descriptor page {m:x} has {wcount} writable mappings, {} tolerated",
            f.tolerated_writable
        ));
    }
}

fn reach(
    live: &mut [u32],
    m: usize,
    level: u32,
    why: &str,
    errs: &mut Vec<String>,
    work: &mut Vec<usize>,
) {
    if live[m] == 0 {
        live[m] = level;
        work.push(m);
    } else if live[m] != level {
        errs.push(format!(
            "mfn {m:x} reached as L{level} ({why}) and as L{}",
            live[m]
        ));
    }
}

#[allow(clippy::too_many_arguments)]
fn check_frame(
    v: &Validator,
    m: usize,
    f: &FrameInfo,
    live: u32,
    refs: u64,
    tcount: u64,
    wcount: u64,
    lin_entries: i64,
    lin_uses: i64,
    errs: &mut Vec<String>,
) {
    let mut bad = |what: String| errs.push(format!("mfn {m:x}: {what} (frame {f:?})"));
    if u64::from(f.refs) != refs {
        bad(format!("refs {} != recomputed {refs}", f.refs));
    }
    if live != 0 {
        if f.ty.level() != live || !f.validated {
            bad(format!("reachable as L{live} but not a validated L{live}"));
        }
        if u64::from(f.type_count) != tcount {
            bad(format!(
                "type count {} != recomputed {tcount}",
                f.type_count
            ));
        }
        if u64::from(f.tolerated_writable) != wcount {
            bad(format!(
                "pagetable has {wcount} writable mappings, {} tolerated",
                f.tolerated_writable
            ));
        }
    } else if wcount > 0 {
        if f.ty != PageType::Writable || !f.validated || u64::from(f.type_count) != wcount {
            bad(format!(
                "{wcount} writable mappings but not Writable x{wcount}"
            ));
        }
        if f.tolerated_writable != 0 {
            bad("tolerated count on a non-pagetable".into());
        }
    } else if f.ty != PageType::None
        || f.type_count != 0
        || f.validated
        || f.tolerated_writable != 0
    {
        bad("unreferenced frame not typed None/0".into());
    }
    if v.policy == Policy::Enforce && f.tolerated_writable != 0 {
        bad("tolerated writable mappings in enforce mode".into());
    }
    if lin_entries > 0 && lin_uses > 0 {
        bad("holds linear entries and is a linear target".into());
    }
    let lin = if lin_entries > 0 {
        lin_entries
    } else {
        -lin_uses
    };
    if i64::from(f.linear) != lin {
        bad(format!("linear count {} != recomputed {lin}", f.linear));
    }
}
