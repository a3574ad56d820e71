//! Scenario `hostile`: garbage hypercalls from a deterministic PRNG. The hypervisor must survive
//! and answer each one with an error (or a harmless success), the same answer real Xen gives.
//!
//! Options: `seed=<n>` (default 1), `calls=<n>` (default 400, at most 5000). Each call prints one
//! transcript line `T<nnnn> <hypercall> <its non-address arguments> rc=<rc>` (batches add `done=`,
//! multicalls every entry's result), then `END hostile ...`.
//!
//! The garbage is hostile to the hypervisor but not to ourselves, so the run can finish and be
//! compared: every frame named is either one of a pool of fresh highmem pages (never mapped by
//! us; named through the P2M, so real Xen and the VMM see "the same" frames) or invalid on both
//! (beyond any RAM); batches point at scratch pages with exactly the number of entries filled,
//! or at bad pointers; `update_va_mapping` touches only the (unused here) vmalloc area or
//! addresses with no mapping; `NEW_BASEPTR`, `NEW_USER_BASEPTR`, `sched_op` and console output
//! of random bytes are left out (they would end or garble the run itself).

use pagetable_validator::abi::domid::DOMID_SELF;
use pagetable_validator::abi::{hypercall as hc, mmuext};
use pagetable_validator::pte::{layout, PAGE_SIZE};

use super::harness::pick_variant;
use super::Transcript;
use crate::cmdline::Cmdline;
use crate::hypercall;
use crate::mm::vmalloc::{NR_VMAP_AREAS, VMAP_STRIDE};
use crate::mm::Pfn;
use crate::setup::Kernel;
use crate::{println, t};

const POOL: usize = 16;
/// mmu_update requests live at the start of the request page, mmuext ops from here on, so a
/// batch of one kind never reads the other's entries.
const OPS_OFF: u64 = 2048;
/// A machine frame number no machine here has (4 GiB and up, under QEMU's 512 MiB and ours).
const BAD_MFN: u64 = 0x10_0000;

/// xorshift64: the same stream on every hypervisor.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Everything a call may point at.
struct Arena {
    /// mfns of the pool pages.
    pool: [u64; POOL],
    /// Request / op array page, multicall page, misc page (done, masks, version output).
    reqs: u64,
    calls: u64,
    misc: u64,
    /// One 1 KiB `xen_version` output buffer per multicall entry (at most 4 entries; the
    /// largest output, `xen_capabilities_info_t`, is 1 KiB).
    version_bufs: u64,
}

impl Arena {
    fn mfn(&self, r: &mut Rng) -> u64 {
        match r.below(8) {
            0 => BAD_MFN + r.below(1 << 20),
            1 => r.next() >> 12, // raw
            _ => self.pool[r.below(POOL as u64) as usize],
        }
    }

    /// A PTE: mostly a pool frame with random low flags (and sometimes NX), else junk that is
    /// not present. Never a present frame outside RAM: dom0 may map MMIO on real Xen, the
    /// VMM has none to give (a documented deviation, vmm/README.md).
    fn pte(&self, r: &mut Rng) -> u64 {
        match r.below(8) {
            0 => 0,
            1 | 2 => r.next() & !1,
            _ => {
                let nx = if r.below(4) == 0 { 1 << 63 } else { 0 };
                (self.mfn_pool(r) << 12) | r.below(0x1000) | nx
            }
        }
    }

    fn mfn_pool(&self, r: &mut Rng) -> u64 {
        self.pool[r.below(POOL as u64) as usize]
    }

    /// A pointer that cannot be dereferenced: null, non-canonical, Xen's area, unmapped user.
    fn bad_ptr(r: &mut Rng) -> u64 {
        match r.below(4) {
            0 => 0,
            1 => 0x0000_8000_0000_0000 | (r.next() & 0x7fff_ffff_f000),
            2 => 0xffff_8000_0000_0000 | (r.below(1 << 20) << 3),
            _ => 0x7000_0000_0000 + r.below(1 << 20) * 8,
        }
    }

    fn va(r: &mut Rng) -> u64 {
        match r.below(6) {
            0 => Self::bad_ptr(r),
            1 => 0x40_0000 + r.below(512) * PAGE_SIZE, // no tables there
            _ => {
                let pages = (NR_VMAP_AREAS * VMAP_STRIDE) as u64;
                layout::VMALLOC_BASE + r.below(pages) * PAGE_SIZE
            }
        }
    }

    fn domid(r: &mut Rng) -> u64 {
        match r.below(10) {
            0 => r.below(4),
            1 => r.next() & 0xffff_ffff,
            _ => DOMID_SELF as u64,
        }
    }

    /// Fills `n` mmu_update requests at `reqs`; returns (pointer, count) to pass.
    fn mmu_reqs(&self, r: &mut Rng, n: u64) -> (u64, u64) {
        for i in 0..n {
            let ptr = (self.mfn(r) << 12) | r.below(4);
            let val = self.pte(r);
            // SAFETY: `reqs` is our scratch page (direct map, RW); i < 32 entries of 16 bytes.
            unsafe {
                ((self.reqs + i * 16) as *mut u64).write_volatile(ptr);
                ((self.reqs + i * 16 + 8) as *mut u64).write_volatile(val);
            }
        }
        match r.below(10) {
            0 => (Self::bad_ptr(r), r.next() & 0xffff_ffff),
            1 => (self.reqs, (1 << 31) | n), // a "continuation" count
            _ => (self.reqs, n),
        }
    }

    /// Fills `n` mmuext ops; returns (pointer, count).
    fn mmuext_ops(&self, r: &mut Rng, n: u64) -> (u64, u64, u32) {
        let mut first = u32::MAX;
        for i in 0..n {
            let cmd = match r.below(12) {
                0 => r.next() as u32,
                _ => loop {
                    let c = r.below(22) as u32;
                    if c != mmuext::NEW_BASEPTR && c != mmuext::NEW_USER_BASEPTR {
                        break c;
                    }
                },
            };
            if i == 0 {
                first = cmd;
            }
            let arg1 = match cmd {
                mmuext::INVLPG_LOCAL | mmuext::INVLPG_MULTI | mmuext::INVLPG_ALL => Self::va(r),
                mmuext::SET_LDT => [0, self.misc, Self::bad_ptr(r)][r.below(3) as usize],
                _ => self.mfn(r),
            };
            let arg2 = match cmd {
                // A source frame: a pool frame or an invalid one, never one of ours.
                mmuext::COPY_PAGE => self.mfn(r),
                // A vCPU mask: readable or not.
                mmuext::TLB_FLUSH_MULTI | mmuext::INVLPG_MULTI if r.below(2) == 0 => {
                    Self::bad_ptr(r)
                }
                mmuext::TLB_FLUSH_MULTI | mmuext::INVLPG_MULTI => self.misc,
                _ if r.below(4) == 0 => r.next(),
                _ => r.below(16),
            };
            let op = self.reqs + OPS_OFF + i * 24;
            // SAFETY: scratch page, i < 32 ops of 24 bytes.
            unsafe {
                (op as *mut u64).write_volatile(cmd as u64);
                ((op + 8) as *mut u64).write_volatile(arg1);
                ((op + 16) as *mut u64).write_volatile(arg2);
            }
        }
        match r.below(10) {
            0 => (Self::bad_ptr(r), r.next() & 0xffff_ffff, first),
            _ => (self.reqs + OPS_OFF, n, first),
        }
    }

    fn done_ptr(&self, r: &mut Rng) -> u64 {
        match r.below(4) {
            0 => 0,
            1 => Self::bad_ptr(r),
            _ => self.misc,
        }
    }

    fn uvmf(&self, r: &mut Rng) -> u64 {
        match r.below(6) {
            0 => (self.misc) | r.below(3),
            1 => Self::bad_ptr(r) | 2,
            _ => r.below(8),
        }
    }
}

fn read_done(a: &Arena) -> u32 {
    // SAFETY: misc is the direct-map address of a lowmem page this scenario allocated and
    // never frees or remaps (page-aligned, so aligned for u32); Xen writes it only during calls.
    unsafe { (a.misc as *const u32).read_volatile() }
}

fn clear_done(a: &Arena) {
    // SAFETY: as in read_done: our own direct-mapped, page-aligned scratch page.
    unsafe { (a.misc as *mut u32).write_volatile(0xdead) };
}

pub fn run(k: &mut Kernel, variant: Option<&str>) {
    pick_variant("hostile", variant.or(Some("random")), &[("random", ())]);
    let cmdline = Cmdline::parse(k.start_info.cmd_line_bytes());
    let num = |key: &str, default: u64| {
        cmdline
            .get(key)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let seed = num("seed", 1).max(1);
    let calls = num("calls", 400).min(5000);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);

    let mut pool = [0u64; POOL];
    for p in pool.iter_mut() {
        let pfn = k.pages.alloc_highmem_page().expect("hostile: highmem pool");
        *p = k.pfn_to_mfn(pfn).0;
    }
    let mut page = || -> u64 {
        let pfn: Pfn = k.pages.alloc_page().expect("hostile: scratch page");
        k.directmap.page_address(pfn).expect("lowmem scratch")
    };
    let a = Arena {
        pool,
        reqs: page(),
        calls: page(),
        misc: page(),
        version_bufs: page(),
    };
    println!("hostile: seed={seed} calls={calls}, {POOL} pool frames");

    let mut t = Transcript::new("hostile");
    for _ in 0..calls {
        one_call(&mut t, &a, &mut rng);
    }
    t.finish();
    println!("hostile: the hypervisor answered every call; still alive");
}

fn one_call(t: &mut Transcript, a: &Arena, r: &mut Rng) {
    clear_done(a);
    match r.below(9) {
        0 | 1 => {
            let n = r.below(6);
            let (ptr, count) = a.mmu_reqs(r, n);
            let done = a.done_ptr(r);
            let dom = Arena::domid(r);
            // SAFETY: requests only name pool frames or invalid ones; pointers are scratch or
            // deliberately bad (the hypervisor must refuse them).
            let rc = unsafe { hypercall::hypercall5(hc::MMU_UPDATE, ptr, count, done, dom, 0) };
            let d = if done == a.misc { read_done(a) } else { 0xdead };
            t!(
                t,
                rc,
                "mmu_update count={count:#x} dom={dom:#x} done={d:#x}"
            );
        }
        2 | 3 => {
            let va = Arena::va(r);
            let val = a.pte(r);
            let flags = a.uvmf(r);
            let what = if (layout::VMALLOC_BASE..=layout::VMALLOC_END).contains(&va) {
                "vmalloc"
            } else {
                "unmapped/bad"
            };
            // SAFETY: only vmalloc-area VAs (unused by this scenario) or unmapped ones.
            let rc = unsafe { hypercall::hypercall5(hc::UPDATE_VA_MAPPING, va, val, flags, 0, 0) };
            t!(t, rc, "update_va_mapping va={what} flags={:#x}", flags & 7);
        }
        4 => {
            let n = r.below(5);
            let (ptr, count, first) = a.mmuext_ops(r, n);
            let done = a.done_ptr(r);
            let dom = Arena::domid(r);
            // SAFETY: ops never switch our base pointer; frames are pool or invalid ones.
            let rc = unsafe { hypercall::hypercall5(hc::MMUEXT_OP, ptr, count, done, dom, 0) };
            let d = if done == a.misc { read_done(a) } else { 0xdead };
            t!(
                t,
                rc,
                "mmuext_op count={count:#x} first_cmd={first:#x} dom={dom:#x} done={d:#x}"
            );
        }
        5 => multicall(t, a, r),
        6 => {
            let cmd = if r.below(5) == 0 {
                r.next() & 0xffff_ffff
            } else {
                r.below(12)
            };
            let arg = if r.below(3) == 0 {
                Arena::bad_ptr(r)
            } else {
                a.misc
            };
            // SAFETY: output goes to our misc scratch page (4 KiB) or a bad pointer.
            let rc = unsafe { hypercall::hypercall5(hc::XEN_VERSION, cmd, arg, 0, 0, 0) };
            t!(t, rc, "xen_version cmd={cmd:#x}");
        }
        7 => {
            // Never valid output: length 0, a bad buffer, or an unknown command.
            let (cmd, len, buf) = match r.below(3) {
                0 => (0, 0, a.misc),
                1 => (0, 1 + r.below(64), Arena::bad_ptr(r)),
                _ => (2 + r.below(100), r.below(64), a.misc),
            };
            // SAFETY: console_io reads at most `len` bytes of a scratch or bad buffer.
            let rc = unsafe { hypercall::hypercall5(hc::CONSOLE_IO, cmd, len, buf, 0, 0) };
            t!(t, rc, "console_io cmd={cmd} len={len}");
        }
        _ => {
            // Numbers Xen 4.17 leaves unassigned (11, 43..47, 56..) or far past its table.
            let nr = [11, 43, 45, 47, 60, 77, 99, 127][r.below(8) as usize];
            let (a1, a2) = (r.next(), r.next());
            // SAFETY: no hypervisor implements these: both must answer -ENOSYS.
            let rc = unsafe { hypercall::hypercall5(nr, a1, a2, 0, 0, 0) };
            t!(t, rc, "hypercall {nr}");
        }
    }
}

/// A multicall of up to 4 entries (possibly nested multicalls); every entry's result printed.
fn multicall(t: &mut Transcript, a: &Arena, r: &mut Rng) {
    let n = r.below(5);
    let ops = [
        hc::MMU_UPDATE,
        hc::UPDATE_VA_MAPPING,
        hc::MMUEXT_OP,
        hc::MMUEXT_OP,
        hc::MULTICALL,
        hc::XEN_VERSION,
        77,
    ];
    // One batch of requests / ops shared by the entries that need one.
    let (reqs, nreq) = a.mmu_reqs(r, 3);
    for i in 0..n {
        let op = ops[r.below(ops.len() as u64) as usize];
        let args: [u64; 6] = match op {
            hc::MMU_UPDATE => [reqs, nreq, a.done_ptr(r), DOMID_SELF as u64, 0, 0],
            hc::UPDATE_VA_MAPPING => [Arena::va(r), a.pte(r), a.uvmf(r), 0, 0, 0],
            hc::MMUEXT_OP => {
                let (p, c, _) = a.mmuext_ops(r, 2);
                [p, c, 0, DOMID_SELF as u64, 0, 0]
            }
            hc::MULTICALL => [a.calls, 1, 0, 0, 0, 0], // nested: refused
            hc::XEN_VERSION => {
                // Its own 1 KiB buffer, with a fixed first word (`len` / `submap_idx`): what
                // an earlier entry wrote differs between hypervisors (e.g. Xen's cmdline).
                let buf = a.version_bufs + 1024 * i;
                // SAFETY: `version_bufs` is our direct-mapped scratch page (never freed) and
                // i < 4, so the 1 KiB buffer [buf, buf + 1024) lies inside it.
                unsafe { (buf as *mut u32).write_volatile(0xdead) };
                [r.below(12), buf, 0, 0, 0, 0]
            }
            _ => [r.next(), r.next(), 0, 0, 0, 0],
        };
        let e = a.calls + i * 64;
        // SAFETY: our multicall scratch page (direct-mapped, never freed), i < 4 entries of
        // 64 bytes.
        unsafe {
            (e as *mut u64).write_volatile(op);
            ((e + 8) as *mut i64).write_volatile(0x5a5a);
            for (j, v) in args.iter().enumerate() {
                ((e + 16 + j as u64 * 8) as *mut u64).write_volatile(*v);
            }
        }
    }
    // Both mmuext batches of an entry share the op array: the later one wins, on both sides.
    let (ptr, count) = match r.below(8) {
        0 => (Arena::bad_ptr(r), n),
        _ => (a.calls, n),
    };
    // SAFETY: entries as built above; pointers inside are scratch, bad, or pool frames.
    let rc = unsafe { hypercall::hypercall5(hc::MULTICALL, ptr, count, 0, 0, 0) };
    let mut results = [0i64; 4];
    for (i, res) in results.iter_mut().enumerate().take(n as usize) {
        // SAFETY: a.calls is our direct-mapped scratch page; entry i < 4 of 64 bytes, result
        // at offset 8, lies inside it.
        *res = unsafe { ((a.calls + i as u64 * 64 + 8) as *const i64).read_volatile() };
    }
    t!(
        t,
        rc,
        "multicall nr={n} results={:?}",
        &results[..n as usize]
    );
}
