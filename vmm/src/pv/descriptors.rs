//! Descriptor tables (Xen's `pv/descriptor-tables.c`): `set_gdt` maps the guest's GDT frames
//! into the per-domain GDT area below Xen's reserved page, exactly as Xen does; unused guest
//! pages map a zero page. The frames take the validator's descriptor-page type, so no
//! writable mapping of them can exist while the CPU uses them.

use crate::hypercall::{err, Ctx, Hypervisor};
use crate::tlb::Flush;
use pagetable_validator::abi::errno;
use pagetable_validator::abi::x86 as xen;

impl Hypervisor {
    /// `set_gdt(frame_list, entries)`.
    pub(crate) fn set_gdt(&mut self, ctx: &mut Ctx, list: u64, entries: u64) -> i64 {
        let entries = entries as u32 as u64;
        if entries > xen::FIRST_RESERVED_GDT_ENTRY {
            return err(errno::EINVAL);
        }
        let nr = entries.div_ceil(512) as usize;
        let mut frames = vec![0u64; nr];
        for (i, f) in frames.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            if let Err(fault) = self
                .ram
                .read_virt(ctx.cr3, list.wrapping_add(i as u64 * 8), &mut b)
            {
                return self.efault(ctx, "set_gdt", "frame_list", fault);
            }
            *f = u64::from_le_bytes(b);
        }
        // TODO(validator seg_desc type): until the validator types descriptor pages, only
        // check that the frames are the domain's.
        if frames.iter().any(|&f| f >= self.validator.nr_frames()) {
            return err(errno::EINVAL);
        }
        for page in 0..xen::FIRST_RESERVED_GDT_PAGE {
            let pte = self.xen.gdt_pte(frames.get(page as usize).copied());
            self.ram.write_xen_pte(self.xen.gdt_pte_gpa(page), pte);
        }
        self.vcpu.pv.gdt_frames = frames;
        self.vcpu.pv.gdt_ents = entries;
        ctx.flush(Flush::Full);
        0
    }

    /// `update_descriptor(maddr, desc)`: not served until the validator types descriptor
    /// pages.
    pub(crate) fn update_descriptor(&mut self, ctx: &mut Ctx, _maddr: u64, _desc: u64) -> i64 {
        self.unsupported(
            ctx,
            pagetable_validator::abi::hypercall::UPDATE_DESCRIPTOR,
            None,
        )
    }

    /// The 8-byte descriptor `sel` names in the GDT the CPU uses (None for an LDT selector
    /// or past the limit).
    pub fn read_descriptor(&self, sel: u16) -> Option<u64> {
        if sel & 4 != 0 {
            return None;
        }
        let off = u64::from(sel & !7);
        if off > xen::LAST_RESERVED_GDT_BYTE - 7 {
            return None;
        }
        if off >= xen::FIRST_RESERVED_GDT_BYTE {
            return self.ram.read_u64_phys(self.xen.gdt_gpa(off));
        }
        match self.vcpu.pv.gdt_frames.get((off / 4096) as usize) {
            Some(&mfn) => self.ram.read_u64_phys((mfn << 12) + off % 4096),
            None => Some(0),
        }
    }

    /// Base of the segment `sel` names (0 for NUL, a missing or a bad descriptor).
    pub fn descriptor_base(&self, sel: u16) -> Option<u64> {
        if sel & !3 == 0 {
            return Some(0);
        }
        let d = self.read_descriptor(sel)?;
        Some(((d >> 16) & 0xff_ffff) | (((d >> 56) & 0xff) << 24))
    }
}
