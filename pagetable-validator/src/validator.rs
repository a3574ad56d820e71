//! The validator object: frame table, policy, current base, event queue, and the
//! public query API. Operations live in `ops.rs`, reference counting in `refs.rs`.

use crate::event::{Event, Op, Violation, XenMsg};
use crate::frames::GuestFrames;
use crate::model::{Cold, Frame, FrameInfo, Mfn, PageType, Policy, Region, XenError};
use crate::rules::Rules;

/// Xen's PV page-type model over one guest's machine frames.
///
/// Assumes that validated pagetable frames change only through this validator
/// (the VMM maps them read-only), exactly as Xen does.
#[derive(Clone, Debug)]
pub struct Validator {
    /// The frame table, one array per field (see `model::Frame`): type words,
    /// untyped reference counts, cold counts.
    pub(crate) frames: Vec<Frame>,
    pub(crate) untyped: Vec<u32>,
    pub(crate) cold: Vec<Cold>,
    pub(crate) nr: u64,
    pub(crate) policy: Policy,
    pub(crate) rules: Rules,
    pub(crate) base: Option<Mfn>,
    /// The user-mode base (`MMUEXT_NEW_USER_BASEPTR`), holding an L4 type reference.
    pub(crate) user_base: Option<Mfn>,
    /// The GDT (`set_gdt`): frames holding a descriptor-page reference each.
    pub(crate) gdt: Vec<Mfn>,
    pub(crate) gdt_ents: u32,
    pub(crate) regions: Vec<Region>,
    pub(crate) m2p: Vec<u64>,
    pub(crate) events: Vec<Event>,
    pub(crate) seq: u64,
    /// Xen log lines and violations of the operation in progress.
    pub(crate) log: Vec<XenMsg>,
    pub(crate) violations: Vec<Violation>,
    /// What a validated L4 gets in the hypervisor slots 256..=271 (Xen's
    /// `init_xen_l4_slots`); all zero (cleared) unless the VMM installs its Xen area.
    pub(crate) xen_l4_slots: [u64; XEN_L4_SLOTS],
    /// The read-only M2P's L4 entry (slot 256), filled in by [`Validator::fill_ro_mpt`].
    pub(crate) xen_ro_mpt: u64,
    /// Hypervisor frames outside guest RAM that the guest may map (shared_info).
    pub(crate) xen_shared: Vec<Mfn>,
}

/// The frame-table index of `t`. Exact for every `t < nr` (the table's length, a `usize`);
/// only called after [`Validator::in_domain`].
#[inline(always)]
pub(crate) fn ix(t: Mfn) -> usize {
    t.0 as usize
}

/// Number of hypervisor L4 slots (256..=271).
pub const XEN_L4_SLOTS: usize =
    crate::abi::ROOT_PAGETABLE_LAST_XEN_SLOT - crate::abi::ROOT_PAGETABLE_FIRST_XEN_SLOT + 1;

impl Validator {
    pub fn new(nr_frames: u64, policy: Policy) -> Self {
        Self::with_rules(nr_frames, policy, Rules::default())
    }

    /// Like [`Validator::new`] with explicit domain rules (e.g. dom0's L1 mask).
    pub fn with_rules(nr_frames: u64, policy: Policy, rules: Rules) -> Self {
        let n = usize::try_from(nr_frames).expect("nr_frames fits in usize");
        Validator {
            frames: vec![Frame::default(); n],
            untyped: vec![0; n],
            cold: vec![Cold::default(); n],
            nr: nr_frames,
            policy,
            rules,
            base: None,
            user_base: None,
            gdt: Vec::new(),
            gdt_ents: 0,
            regions: Vec::new(),
            m2p: Vec::new(),
            events: Vec::new(),
            seq: 0,
            log: Vec::new(),
            violations: Vec::new(),
            xen_l4_slots: [0; XEN_L4_SLOTS],
            xen_ro_mpt: 0,
            xen_shared: Vec::new(),
        }
    }

    /// The hypervisor's L4 entries: written into slots 256..=271 of every L4 this
    /// validator validates, as Xen's `init_xen_l4_slots` does. They point outside
    /// guest RAM and are never reference-counted (validation ignores those slots).
    pub fn set_xen_l4_slots(&mut self, slots: [u64; XEN_L4_SLOTS], ro_mpt: u64) {
        self.xen_l4_slots = slots;
        self.xen_ro_mpt = ro_mpt;
    }

    /// Xen's `fill_ro_mpt` / `zap_ro_mpt`: slot 256 of the validated L4 `l4` gets the
    /// read-only M2P (when empty) or loses it. Xen does this when an L4 becomes a base, not
    /// at validation (unless the guest is `m2p_strict`).
    pub fn set_ro_mpt<M: GuestFrames>(&mut self, mem: &mut M, l4: Mfn, present: bool) {
        if !self.in_domain(l4) || self.page_type(l4) != PageType::L4 {
            return;
        }
        let slot = crate::abi::ROOT_PAGETABLE_FIRST_XEN_SLOT;
        let cur = mem.read_entry(l4, slot);
        match present {
            true if cur == 0 => mem.write_entry(l4, slot, self.xen_ro_mpt),
            false if cur != 0 => mem.write_entry(l4, slot, 0),
            _ => {}
        }
    }

    /// Frames of the hypervisor's (outside guest RAM) that L1 entries may map, read-only
    /// or writable, without taking references: Xen's pages shared with the guest.
    pub fn share_xen_frame(&mut self, mfn: Mfn) {
        if !self.xen_shared.contains(&mfn) {
            self.xen_shared.push(mfn);
        }
    }

    pub fn xen_l4_slots(&self) -> &[u64; XEN_L4_SLOTS] {
        &self.xen_l4_slots
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    pub fn rules(&self) -> Rules {
        self.rules
    }

    pub fn nr_frames(&self) -> u64 {
        self.nr
    }

    /// Named VA ranges used to label addresses in provenance.
    pub fn set_regions(&mut self, regions: Vec<Region>) {
        self.regions = regions;
    }

    /// mfn → pfn, for logs only (`u64::MAX` = none).
    pub fn set_m2p(&mut self, m2p: Vec<u64>) {
        self.m2p = m2p;
    }

    /// Sets one m2p entry (`u64::MAX` = none), as the hypervisor's own M2P changes when
    /// frames change hands (`memory_op`).
    pub fn set_m2p_entry(&mut self, mfn: Mfn, pfn: u64) {
        let Ok(i) = usize::try_from(mfn.0) else {
            return;
        };
        if i >= self.m2p.len() {
            if pfn == u64::MAX || !self.in_domain(mfn) {
                return;
            }
            self.m2p.resize(i + 1, u64::MAX);
        }
        self.m2p[i] = pfn;
    }

    /// The m2p entry of `mfn` (`None` when unknown).
    pub fn m2p_entry(&self, mfn: Mfn) -> Option<u64> {
        self.pfn_of(mfn)
    }

    pub fn user_base(&self) -> Option<Mfn> {
        self.user_base
    }

    pub fn current_base(&self) -> Option<Mfn> {
        self.base
    }

    pub fn frame_info(&self, mfn: Mfn) -> Option<FrameInfo> {
        let i = self.in_domain(mfn).then(|| ix(mfn))?;
        Some(self.frames[i].info(self.untyped[i], self.cold[i]))
    }

    pub fn is_pinned(&self, mfn: Mfn) -> bool {
        self.frame_info(mfn).is_some_and(|f| f.pinned)
    }

    pub fn page_type(&self, mfn: Mfn) -> PageType {
        self.frame_info(mfn).map_or(PageType::None, |f| f.ty)
    }

    /// All frames' state (for snapshot comparisons in tests and replay tools).
    pub fn frames_snapshot(&self) -> Vec<FrameInfo> {
        self.frames
            .iter()
            .zip(&self.untyped)
            .zip(&self.cold)
            .map(|((f, &u), &c)| f.info(u, c))
            .collect()
    }

    /// Events since the last call.
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Moves the events since the last call to the end of `out`. Unlike
    /// [`Validator::drain_events`] the validator keeps its event buffer, and the
    /// caller can reuse `out`: no allocation per batch, and the memory events are
    /// written to stays in the cache (a batch of 4096 `mmu_update`s writes
    /// 0.5 MiB of events).
    pub fn drain_events_into(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.events);
    }

    /// The one bounds check of a frame number: inside the domain (`t < nr`). Every mfn a
    /// guest names goes through it where it enters; the accessors below then index the
    /// frame table directly (an mfn outside it there is a bug of ours and panics like a
    /// slice index, never a guest's doing).
    #[inline(always)]
    pub(crate) fn in_domain(&self, t: Mfn) -> bool {
        t.0 < self.nr
    }

    /// The type word of frame `t` (in the domain).
    #[inline(always)]
    pub(crate) fn frame(&self, t: Mfn) -> Frame {
        self.frames[ix(t)]
    }

    #[inline(always)]
    pub(crate) fn frame_mut(&mut self, t: Mfn) -> &mut Frame {
        &mut self.frames[ix(t)]
    }

    /// The untyped (RO L1) reference count of frame `t` (in the domain).
    #[inline(always)]
    pub(crate) fn untyped_mut(&mut self, t: Mfn) -> &mut u32 {
        &mut self.untyped[ix(t)]
    }

    /// The rarely used counts of frame `t` (in the domain).
    #[inline(always)]
    pub(crate) fn cold(&self, t: Mfn) -> Cold {
        self.cold[ix(t)]
    }

    #[inline(always)]
    pub(crate) fn cold_mut(&mut self, t: Mfn) -> &mut Cold {
        &mut self.cold[ix(t)]
    }

    /// The general reference count of frame `t` (see `model::Frame`).
    #[inline]
    pub(crate) fn refs_of(&self, t: Mfn) -> u32 {
        let i = ix(t);
        self.frames[i].refs(self.untyped[i], self.cold[i])
    }

    /// The pfn of `mfn` from the m2p, if known.
    pub(crate) fn pfn_of(&self, mfn: Mfn) -> Option<u64> {
        usize::try_from(mfn.0)
            .ok()
            .and_then(|i| self.m2p.get(i).copied())
            .filter(|&p| p != u64::MAX)
    }

    /// The pfn as Xen prints it (`INVALID_M2P_ENTRY` when unknown).
    pub(crate) fn pfn_or_invalid(&self, mfn: Mfn) -> u64 {
        self.pfn_of(mfn).unwrap_or(u64::MAX)
    }

    /// Guest memory must cover the frame table, or entries could not be read.
    pub(crate) fn check_mem<M: GuestFrames>(&self, mem: &M) -> Result<(), XenError> {
        if mem.nr_frames() < self.nr {
            return Err(XenError::inval(format!(
                "guest memory has {} frames, frame table {}",
                mem.nr_frames(),
                self.nr
            )));
        }
        Ok(())
    }

    /// Records the event of a finished operation.
    #[inline]
    pub(crate) fn finish(&mut self, op: Op, res: &Result<(), XenError>) {
        self.seq += 1;
        let ev = Event {
            seq: self.seq,
            op,
            rc: res.as_ref().map_or_else(XenError::errno, |_| 0),
            xen_log: std::mem::take(&mut self.log),
            violations: std::mem::take(&mut self.violations),
        };
        self.events.push(ev);
    }

    /// Brute-force oracle check (slow): recompute all counts from scratch and compare.
    pub fn check_invariants<M: GuestFrames>(&self, mem: &M) -> Result<(), String> {
        crate::oracle::check(self, mem)
    }
}
