//! Guest RAM (one `GuestMemoryMmap` at guest-physical 0) and guest-virtual access.
//!
//! Under this VMM a Xen "machine frame" (mfn) is a guest-physical frame. The validator sees the
//! frames through [`GuestFrames`]; hypercall arguments that are guest pointers are translated by
//! walking the guest's current 4-level tables, like Xen's `copy_from_guest` does: every level
//! must be present, writes need RW at every level, and buffers may cross pages.

use pagetable_validator::pte::{self, PAGE_SIZE};
use pagetable_validator::{GuestFrames, Mfn};
use thiserror::Error;
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

#[derive(Debug, Error)]
pub enum MemoryError {
    #[error("{mib} MiB of guest memory is not a size this host can map")]
    SizeOutOfRange { mib: u64 },
    /// `limits` names the process limits in force (RLIMIT_AS, RLIMIT_DATA, strict overcommit),
    /// the usual reason an anonymous mapping fails.
    #[error("cannot map {mib} MiB of guest memory: {err}{limits}")]
    Mmap {
        mib: u64,
        err: String,
        limits: String,
    },
}

/// The limits that make a large anonymous mmap fail, as `" (RLIMIT_AS 3906 MiB, ...)"`, or
/// `""` when none is set.
fn mmap_limits() -> String {
    let mut found = Vec::new();
    for (name, res) in [
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ] {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the `rlimit` we pass, which lives on our stack.
        if unsafe { libc::getrlimit(res, &mut lim) } == 0 && lim.rlim_cur != libc::RLIM_INFINITY {
            found.push(format!("{name} {} MiB", lim.rlim_cur >> 20));
        }
    }
    if std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|s| s.trim() == "2") {
        found.push("vm.overcommit_memory=2 (strict)".into());
    }
    if found.is_empty() {
        String::new()
    } else {
        format!(" (limits: {})", found.join(", "))
    }
}

/// Why a guest-virtual access failed (the hypercall then returns -EFAULT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Fault {
    #[error("non-canonical address {0:#x}")]
    NonCanonical(u64),
    #[error("{0:#x} not mapped (L{1} entry not present)")]
    NotPresent(u64, u32),
    #[error("{0:#x} mapped read-only (L{1})")]
    ReadOnly(u64, u32),
    #[error("{0:#x} maps frame {1:#x} outside guest RAM")]
    OutsideRam(u64, u64),
    /// Audit policy only: a tolerated RW mapping of a validated pagetable; the VMM does not
    /// write its results into a table behind the validator.
    #[error("{0:#x} maps pagetable mfn {1:#x} (a tolerated RW mapping)")]
    PageTable(u64, u64),
}

pub struct GuestRam {
    mem: GuestMemoryMmap,
    /// Host address of guest-physical 0: RAM is one mapping of `nr_frames` pages there, owned
    /// by `mem` for as long as `self` lives. Word accesses (pagetable entries, the hot case)
    /// use it directly instead of vm-memory's region walk (~20x cheaper per entry).
    ram_host: usize,
    nr_frames: u64,
    /// Guest-physical addresses of pagetable entries changed from userspace in a way a
    /// shadowing host may still have cached (see [`needs_sync`]); the vCPU loop has ring-0
    /// code re-store them before the guest runs again (pv/xen_area/).
    touched: Vec<u64>,
}

/// Whether a store from userspace replacing pagetable entry `old` by `new` must be re-made by
/// ring-0 guest code before the guest runs: on hosts that shadow guest page tables, KVM sees
/// only stores made by the guest. A not-present entry is never cached, and an entry that only
/// gains rights (or A/D/avail bits) on the same frame faults and is re-walked; anything that
/// removes rights or changes the frame must be re-stored.
pub fn needs_sync(old: u64, new: u64) -> bool {
    const GAIN_ONLY: u64 = pte::_PAGE_RW
        | pte::_PAGE_USER
        | pte::_PAGE_ACCESSED
        | pte::_PAGE_DIRTY
        | pte::_PAGE_GLOBAL
        | pte::_PAGE_AVAIL
        | (0x7ff << 52);
    pte::pte_present(old) && old != new && ((old & !new) != 0 || (new & !old) & !GAIN_ONLY != 0)
}

impl GuestRam {
    /// `mib` MiB of RAM at guest-physical 0, and optionally `extra` = (first frame, frames) of
    /// VMM-owned memory beyond it (the Xen area) that guest pointers can never reach.
    pub fn new(mib: u64, extra: Option<(u64, u64)>) -> Result<Self, MemoryError> {
        let bytes = mib
            .checked_mul(1 << 20)
            .filter(|&b| b > 0 && b <= usize::MAX as u64)
            .ok_or(MemoryError::SizeOutOfRange { mib })?;
        let mut ranges = vec![(GuestAddress(0), bytes as usize)];
        if let Some((first, n)) = extra {
            ranges.push((GuestAddress(first * PAGE_SIZE), (n * PAGE_SIZE) as usize));
        }
        let mem = GuestMemoryMmap::from_ranges(&ranges).map_err(|e| MemoryError::Mmap {
            mib,
            err: e.to_string(),
            limits: mmap_limits(),
        })?;
        let ram_host = mem
            .get_host_address(GuestAddress(0))
            .map_err(|e| MemoryError::Mmap {
                mib,
                err: e.to_string(),
                limits: String::new(),
            })? as usize;
        Ok(GuestRam {
            mem,
            ram_host,
            nr_frames: bytes / PAGE_SIZE,
            touched: Vec::new(),
        })
    }

    /// Takes the list of entries to re-store from ring 0 (see [`needs_sync`]).
    pub fn take_touched(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.touched)
    }

    pub fn has_touched(&self) -> bool {
        !self.touched.is_empty()
    }

    pub fn mmap(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    pub fn size(&self) -> u64 {
        self.nr_frames * PAGE_SIZE
    }

    /// Reads guest-physical memory; `false` if any byte is outside RAM.
    pub fn read_phys(&self, gpa: u64, buf: &mut [u8]) -> bool {
        self.mem.read_slice(buf, GuestAddress(gpa)).is_ok()
    }

    pub fn write_phys(&self, gpa: u64, buf: &[u8]) -> bool {
        self.mem.write_slice(buf, GuestAddress(gpa)).is_ok()
    }

    pub fn read_phys_u8(&self, gpa: u64) -> Option<u8> {
        self.mem.read_obj::<u8>(GuestAddress(gpa)).ok()
    }

    /// Writes a pagetable entry of the VMM's own (Xen-area) tables, recording it for the
    /// ring-0 re-store like the validator's stores.
    pub fn write_xen_pte(&mut self, gpa: u64, val: u64) {
        let old = self.read_u64_phys(gpa).unwrap_or(0);
        if needs_sync(old, val) {
            self.touched.push(gpa);
        }
        self.write_u64_phys(gpa, val);
    }

    /// The host address of the aligned RAM word at `gpa`, if it is one (not the Xen area).
    #[inline]
    fn ram_word(&self, gpa: u64) -> Option<*mut u64> {
        (gpa.is_multiple_of(8) && gpa < self.nr_frames * PAGE_SIZE)
            .then(|| (self.ram_host + gpa as usize) as *mut u64)
    }

    #[inline]
    pub fn read_u64_phys(&self, gpa: u64) -> Option<u64> {
        if let Some(p) = self.ram_word(gpa) {
            // SAFETY: `p` is 8-aligned and inside RAM's mapping (checked by `ram_word`), which
            // `self.mem` keeps mapped while `self` lives. The guest may write the word too, but
            // only while its vCPU runs, never during this call (one thread runs both); volatile,
            // as vm-memory's own accesses.
            return Some(unsafe { std::ptr::read_volatile(p) });
        }
        self.mem.read_obj::<u64>(GuestAddress(gpa)).ok()
    }

    #[inline]
    pub fn write_u64_phys(&self, gpa: u64, v: u64) -> bool {
        if let Some(p) = self.ram_word(gpa) {
            // SAFETY: as in `read_u64_phys`; the mapping is writable (RAM is mapped RW).
            unsafe { std::ptr::write_volatile(p, v) };
            return true;
        }
        self.mem.write_obj(v, GuestAddress(gpa)).is_ok()
    }

    /// Translates `va` through the tables rooted at `cr3` (guest-physical address of the L4).
    pub fn translate(&self, cr3: u64, va: u64, write: bool) -> Result<u64, Fault> {
        if !pte::is_canonical(va) {
            return Err(Fault::NonCanonical(va));
        }
        let mut table = cr3 & pte::PTE_ADDR_MASK;
        for level in (1..=4u32).rev() {
            let slot = pte::table_index(va, level) as u64;
            let entry = self
                .read_u64_phys(table + slot * 8)
                .ok_or(Fault::OutsideRam(va, table >> 12))?;
            if !pte::pte_present(entry) {
                return Err(Fault::NotPresent(va, level));
            }
            if write && !pte::pte_write(entry) {
                return Err(Fault::ReadOnly(va, level));
            }
            let addr = entry & pte::PTE_ADDR_MASK;
            // Superpages (PSE in L3/L2): the rest of the address is the offset.
            if (level == 3 || level == 2) && entry & pte::_PAGE_PSE != 0 {
                let span = 1u64 << (12 + 9 * (level - 1));
                let gpa = (addr & !(span - 1)) | (va & (span - 1));
                return self.check_ram(va, gpa);
            }
            if level == 1 {
                return self.check_ram(va, addr | (va & (PAGE_SIZE - 1)));
            }
            table = addr;
        }
        unreachable!("the loop returns at level 1")
    }

    fn check_ram(&self, va: u64, gpa: u64) -> Result<u64, Fault> {
        if gpa >> 12 < self.nr_frames {
            Ok(gpa)
        } else {
            Err(Fault::OutsideRam(va, gpa >> 12))
        }
    }

    /// Reads a guest-virtual buffer, page by page.
    pub fn read_virt(&self, cr3: u64, va: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.walk_chunks(cr3, va, buf.len(), false, |gpa, off, len| {
            self.read_phys(gpa, &mut buf[off..off + len])
        })
    }

    /// Writes a guest-virtual buffer, page by page (every page must be mapped RW).
    pub fn write_virt(&self, cr3: u64, va: u64, buf: &[u8]) -> Result<(), Fault> {
        // Translate every page first so a fault leaves guest memory unchanged.
        self.walk_chunks(cr3, va, buf.len(), true, |_, _, _| true)?;
        self.walk_chunks(cr3, va, buf.len(), true, |gpa, off, len| {
            self.write_phys(gpa, &buf[off..off + len])
        })
    }

    fn walk_chunks(
        &self,
        cr3: u64,
        va: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(u64, usize, usize) -> bool,
    ) -> Result<(), Fault> {
        let mut done = 0usize;
        while done < len {
            let cur = va.wrapping_add(done as u64);
            let gpa = self.translate(cr3, cur, write)?;
            let in_page = (PAGE_SIZE - (cur & (PAGE_SIZE - 1))) as usize;
            let n = in_page.min(len - done);
            if !f(gpa, done, n) {
                return Err(Fault::OutsideRam(cur, gpa >> 12));
            }
            done += n;
        }
        Ok(())
    }

    /// Reads a guest structure (an abi type) at a guest-virtual address.
    pub fn read_obj_virt<T: ByteValued + Default>(&self, cr3: u64, va: u64) -> Result<T, Fault> {
        let mut t = T::default();
        self.read_virt(cr3, va, t.as_mut_slice())?;
        Ok(t)
    }

    pub fn read_u32_virt(&self, cr3: u64, va: u64) -> Result<u32, Fault> {
        let mut b = [0u8; 4];
        self.read_virt(cr3, va, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

impl GuestFrames for GuestRam {
    fn nr_frames(&self) -> u64 {
        self.nr_frames
    }

    fn read_entry(&self, mfn: Mfn, slot: usize) -> u64 {
        // The validator only asks for mfn < nr_frames and slot < 512, so this is in RAM.
        self.read_u64_phys(mfn.maddr() + slot as u64 * 8)
            .unwrap_or(0)
    }

    fn write_entry(&mut self, mfn: Mfn, slot: usize, val: u64) {
        // Never give the validator a `frame_mut` view: every store must pass here to be
        // recorded for the ring-0 re-store.
        let gpa = mfn.maddr() + slot as u64 * 8;
        let old = self.read_u64_phys(gpa).unwrap_or(0);
        if needs_sync(old, val) {
            self.touched.push(gpa);
        }
        self.write_u64_phys(gpa, val);
    }

    fn read_frame(&self, mfn: Mfn, out: &mut [u64; 512]) {
        let mut bytes = [0u8; 4096];
        if self.read_phys(mfn.maddr(), &mut bytes) {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            }
        } else {
            out.fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pagetable_validator::pte::{mk_pte, _PAGE_PRESENT, _PAGE_RW};

    /// Tables: L4 at frame 1, L3 at 2, L2 at 3, L1 at 4; va 0x7000 -> frame 9 (RW), 0x8000 -> 10 (RO).
    fn setup() -> GuestRam {
        let ram = GuestRam::new(1, None).unwrap();
        let p = _PAGE_PRESENT | _PAGE_RW;
        ram.write_u64_phys(0x1000, mk_pte(2, p));
        ram.write_u64_phys(0x2000, mk_pte(3, p));
        ram.write_u64_phys(0x3000, mk_pte(4, p));
        ram.write_u64_phys(0x4000 + 7 * 8, mk_pte(9, p));
        ram.write_u64_phys(0x4000 + 8 * 8, mk_pte(10, _PAGE_PRESENT));
        ram.write_u64_phys(0x4000 + 9 * 8, mk_pte(0x100000, p));
        ram
    }

    #[test]
    fn walk_checks_present_rw_and_ram() {
        let ram = setup();
        assert_eq!(ram.translate(0x1000, 0x7123, true), Ok(0x9123));
        assert_eq!(ram.translate(0x1000, 0x8010, false), Ok(0xa010));
        assert_eq!(
            ram.translate(0x1000, 0x8010, true),
            Err(Fault::ReadOnly(0x8010, 1))
        );
        assert_eq!(
            ram.translate(0x1000, 0x6000, false),
            Err(Fault::NotPresent(0x6000, 1))
        );
        assert_eq!(
            ram.translate(0x1000, 0x9000, false),
            Err(Fault::OutsideRam(0x9000, 0x100000))
        );
        assert_eq!(
            ram.translate(0x1000, 0x8000_0000_0000, false),
            Err(Fault::NonCanonical(0x8000_0000_0000))
        );
    }

    #[test]
    fn page_crossing_buffers() {
        let ram = setup();
        ram.write_phys(0x9ffc, b"abcd");
        ram.write_phys(0xa000, b"efgh");
        let mut b = [0u8; 8];
        ram.read_virt(0x1000, 0x7ffc, &mut b).unwrap();
        assert_eq!(&b, b"abcdefgh");
        // A write crossing into the RO page fails and leaves the RW half untouched.
        assert!(ram.write_virt(0x1000, 0x7ffc, b"XXXXXXXX").is_err());
        ram.read_virt(0x1000, 0x7ffc, &mut b).unwrap();
        assert_eq!(&b, b"abcdefgh");
    }
}
