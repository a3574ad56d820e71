//! Descriptor tables (Xen's `pv/descriptor-tables.c`): `set_gdt` maps the guest's GDT frames
//! into the per-domain GDT area below Xen's reserved page, exactly as Xen does; unused guest
//! pages map a zero page. The frames take the validator's descriptor-page type, so no
//! writable mapping of them can exist while the CPU uses them.

use crate::hypercall::{err, Ctx, Hypervisor};
use crate::tlb::Flush;
use pagetable_validator::abi::errno;
use pagetable_validator::abi::x86 as xen;
use pagetable_validator::Mfn;

impl Hypervisor {
    /// `set_gdt(frame_list, entries)`.
    pub(crate) fn set_gdt(&mut self, ctx: &mut Ctx, list: u64, entries: u64) -> i64 {
        let entries = entries as u32 as u64;
        if entries > xen::FIRST_RESERVED_GDT_ENTRY {
            return err(errno::EINVAL);
        }
        let nr = entries.div_ceil(512) as usize;
        let mut frames = vec![Mfn(0); nr];
        for (i, f) in frames.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            if let Err(fault) = self
                .ram
                .read_virt(ctx.cr3, list.wrapping_add(i as u64 * 8), &mut b)
            {
                return self.efault(ctx, "set_gdt", "frame_list", fault);
            }
            *f = Mfn(u64::from_le_bytes(b));
        }
        // Validation reads the descriptors: replay needs the frames' contents.
        if self.log.machine() {
            for &f in &frames {
                self.snapshot(f.0, 1);
            }
        }
        // The frames take the descriptor-page type (validated, no writable mapping left).
        let r = self
            .validator
            .set_gdt(&mut self.ram, &frames, entries as u32);
        let rc = self.xen_result(ctx, r, "set_gdt");
        if rc != 0 {
            return rc;
        }
        for page in 0..xen::FIRST_RESERVED_GDT_PAGE {
            let pte = self.xen.gdt_pte(frames.get(page as usize).map(|m| m.0));
            self.ram.write_xen_pte(self.xen.gdt_pte_gpa(page), pte);
        }
        ctx.flush(Flush::Full);
        0
    }

    /// `update_descriptor(maddr, desc)`: the validator checks the descriptor and the frame's
    /// type, and stores it.
    pub(crate) fn update_descriptor(&mut self, ctx: &mut Ctx, maddr: u64, desc: u64) -> i64 {
        let r = self.validator.update_descriptor(&mut self.ram, maddr, desc);
        self.xen_result(ctx, r, "update_descriptor")
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
        match self.validator.gdt_frames().get((off / 4096) as usize) {
            Some(&mfn) => self.ram.read_u64_phys(mfn.maddr() + off % 4096),
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
