//! Provenance of writable mappings: which L1 slots map a frame RW and at which
//! virtual addresses those slots are reachable. Slow scans, run only when a
//! refusal (or an audit violation) is being reported.

use std::collections::HashMap;

use crate::event::{StrayMapping, VaRef};
use crate::frames::GuestFrames;
use crate::model::{Mfn, PageType};
use crate::pte::{va_of, _PAGE_PRESENT, _PAGE_RW, ENTRIES};
use crate::rules::is_xen_l4_slot;
use crate::validator::Validator;

/// VAs listed per mapping; the rest are counted.
const MAX_VAS: usize = 32;

/// child table → (parent table, slot) for every typed (non-linear) edge.
struct Parents(HashMap<Mfn, Vec<(Mfn, u16)>>);

impl Parents {
    fn of(&self, child: Mfn) -> &[(Mfn, u16)] {
        self.0.get(&child).map_or(&[], Vec::as_slice)
    }
}

impl Validator {
    fn table_frames(&self, ty: PageType) -> impl Iterator<Item = Mfn> + '_ {
        self.frames
            .iter()
            .enumerate()
            .filter(move |(_, f)| f.ty() == ty && f.count() > 0)
            .map(|(m, _)| Mfn(m as u64))
    }

    fn parents<M: GuestFrames>(&self, mem: &M) -> Parents {
        let mut map: HashMap<Mfn, Vec<(Mfn, u16)>> = HashMap::new();
        let mut buf = [0u64; ENTRIES];
        for level in 2..=4u32 {
            let ty = PageType::table(level).expect("level");
            let child_ty = PageType::table(level - 1).expect("level");
            for p in self.table_frames(ty) {
                mem.read_frame(p, &mut buf);
                for (slot, &e) in buf.iter().enumerate() {
                    if e & _PAGE_PRESENT == 0 || (level == 4 && is_xen_l4_slot(slot)) {
                        continue;
                    }
                    let c = Mfn::of_pte(e);
                    if self.in_domain(c) && c != p && self.frame(c).ty() == child_ty {
                        map.entry(c).or_default().push((p, slot as u16));
                    }
                }
            }
        }
        Parents(map)
    }

    /// Roots of address spaces: the current base first, then pinned L4s.
    fn roots(&self) -> Vec<Mfn> {
        let mut roots: Vec<Mfn> = self.base.into_iter().collect();
        for (m, f) in self.frames.iter().enumerate() {
            let m = Mfn(m as u64);
            if f.pinned() && f.ty() == PageType::L4 && Some(m) != self.base {
                roots.push(m);
            }
        }
        roots
    }

    fn region_of(&self, va: u64) -> Option<String> {
        self.regions
            .iter()
            .find(|r| r.start <= va && va <= r.end)
            .map(|r| r.name.clone())
    }

    fn vas_with(
        &self,
        parents: &Parents,
        roots: &[Mfn],
        l1: Mfn,
        slot: u16,
    ) -> (Vec<VaRef>, usize) {
        let mut found: Vec<(u64, Mfn)> = Vec::new();
        for &(l2, s2) in parents.of(l1) {
            for &(l3, s3) in parents.of(l2) {
                for &(l4, s4) in parents.of(l3) {
                    if roots.contains(&l4) {
                        let va = va_of(s4 as usize, s3 as usize, s2 as usize, slot as usize);
                        found.push((va, l4));
                    }
                }
            }
        }
        // One entry per VA, preferring the current base as the root.
        let rank = |r: Mfn| roots.iter().position(|&x| x == r).unwrap_or(usize::MAX);
        found.sort_by_key(|&(va, r)| (va, rank(r)));
        found.dedup_by_key(|&mut (va, _)| va);
        let more = found.len().saturating_sub(MAX_VAS);
        let vas = found
            .into_iter()
            .take(MAX_VAS)
            .map(|(va, root)| VaRef {
                va,
                region: self.region_of(va),
                root,
            })
            .collect();
        (vas, more)
    }

    /// VAs at which slot `slot` of L1 `l1` is reachable from the roots.
    pub(crate) fn vas_of_slot<M: GuestFrames>(
        &self,
        mem: &M,
        l1: Mfn,
        slot: u16,
    ) -> (Vec<VaRef>, usize) {
        let parents = self.parents(mem);
        self.vas_with(&parents, &self.roots(), l1, slot)
    }

    /// Every L1 slot (of a table holding references) that maps `t` writable.
    pub(crate) fn writable_mappings<M: GuestFrames>(&self, mem: &M, t: Mfn) -> Vec<StrayMapping> {
        let mut hits = Vec::new();
        let mut buf = [0u64; ENTRIES];
        for l1 in self.table_frames(PageType::L1) {
            mem.read_frame(l1, &mut buf);
            for (slot, &e) in buf.iter().enumerate() {
                if e & (_PAGE_PRESENT | _PAGE_RW) == _PAGE_PRESENT | _PAGE_RW && Mfn::of_pte(e) == t
                {
                    hits.push((l1, slot as u16, e));
                }
            }
        }
        if hits.is_empty() {
            return Vec::new();
        }
        let parents = self.parents(mem);
        let roots = self.roots();
        hits.into_iter()
            .map(|(l1, slot, pte)| {
                let (vas, more_vas) = self.vas_with(&parents, &roots, l1, slot);
                StrayMapping {
                    l1,
                    slot,
                    pte,
                    vas,
                    more_vas,
                    requested: false,
                }
            })
            .collect()
    }
}
