//! Input generation: the fuzzer's random numbers and the guest's moves — plausible frames,
//! entries, request arrays and hypercall arguments with a share of wild ones, candidate
//! pagetables built in pool frames, and the choice of the next call.

use super::{va, FuzzError, World, L1S, L2, L3, L4, MC, MC_SUB, NR, OUT, POOL, SCRATCH, TEXT};
use pagetable_validator::abi::{console, domid, hypercall as hc, mmuext, sched, uvmf};
use pagetable_validator::pte::{
    mk_pte, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_GLOBAL, _PAGE_NX, _PAGE_PCD, _PAGE_PRESENT,
    _PAGE_PSE, _PAGE_RW, _PAGE_USER, PAGE_SIZE,
};
use pagetable_validator::Policy;

/// The calls of a PV kernel beyond the MMU ones, given structured arguments by [`World::pv_args`].
/// Not `memory_op`: replay does not reproduce reservation changes (its `"memory_op"` records),
/// so an epoch with a successful one could not be replayed; its own tests cover it.
const PV_CALLS: [u64; 18] = [
    hc::SET_TRAP_TABLE,
    hc::SET_GDT,
    hc::STACK_SWITCH,
    hc::SET_CALLBACKS,
    hc::FPU_TASKSWITCH,
    hc::PLATFORM_OP,
    hc::SET_DEBUGREG,
    hc::GET_DEBUGREG,
    hc::UPDATE_DESCRIPTOR,
    hc::SET_TIMER_OP,
    hc::EVENT_CHANNEL_OP_COMPAT,
    hc::GRANT_TABLE_OP,
    hc::VM_ASSIST,
    hc::VCPU_OP,
    hc::SET_SEGMENT_BASE,
    hc::CALLBACK_OP,
    hc::EVENT_CHANNEL_OP,
    hc::PHYSDEV_OP,
];

/// xorshift64*: small, fast, reproducible.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(super) fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

impl World {
    fn pool(&mut self) -> u64 {
        POOL + self.rng.below(NR - POOL)
    }

    /// A frame number: mostly pool frames, sometimes any frame (not under audit, where a
    /// tolerated pin of the fuzzer's own scratch frames would let the VMM's outputs land in a
    /// table), the builder's tables, or outside the domain.
    fn mfn(&mut self) -> u64 {
        match self.rng.below(16) {
            0 => self.rng.next(),
            1 => NR + self.rng.below(4),
            2 if self.policy == Policy::Enforce => self.rng.below(NR),
            3 => [L4, L3, L2, L1S[0], L1S[1]][self.rng.below(5) as usize],
            _ => self.pool(),
        }
    }

    /// A pagetable entry value: plausible flags on a plausible frame, sometimes junk.
    fn pte(&mut self) -> u64 {
        if self.rng.chance(10) {
            return 0;
        }
        if self.rng.chance(20) {
            return self.rng.next();
        }
        let mut f = _PAGE_PRESENT | _PAGE_ACCESSED;
        for (bit, one_in) in [
            (_PAGE_RW, 2),
            (_PAGE_DIRTY, 3),
            (_PAGE_USER, 4),
            (_PAGE_NX, 4),
            (_PAGE_GLOBAL, 8),
            (_PAGE_PSE, 16),
            (_PAGE_PCD, 16),
        ] {
            if self.rng.chance(one_in) {
                f |= bit;
            }
        }
        if self.rng.chance(30) {
            f |= self.rng.next() & 0xe00; // software bits
        }
        if self.rng.chance(30) {
            f &= !_PAGE_PRESENT;
        }
        mk_pte(self.mfn(), f)
    }

    /// An `mmu_update` request: an entry of a pool frame or of the builder's tables.
    fn mmu_req(&mut self) -> [u64; 2] {
        let table = match self.rng.below(8) {
            0 => L1S[1], // remaps a pool frame (how a guest makes it read-only)
            1 => self.mfn(),
            _ => self.pool(),
        };
        let slot = self.rng.below(512);
        let cmd = match self.rng.below(20) {
            0 => 1,                     // MMU_MACHPHYS_UPDATE
            1 => 2,                     // PRESERVE_AD
            2 => 3,                     // NO_TRANSLATE
            3 => 4 + self.rng.below(4), // invalid
            _ => 0,
        };
        let val = if cmd == 1 {
            self.rng.below(NR + 4)
        } else {
            self.pte()
        };
        [(table << 12) | (slot << 3) | cmd, val]
    }

    /// An `mmuext_op` element (cmd, arg1, arg2).
    fn ext_op(&mut self) -> (u32, u64, u64) {
        let cmd = match self.rng.below(24) {
            0..=5 => self.rng.below(4) as u32, // PIN_Lx
            6..=7 => mmuext::UNPIN_TABLE,
            8 => mmuext::NEW_BASEPTR,
            9..=10 => [
                mmuext::TLB_FLUSH_LOCAL,
                mmuext::INVLPG_LOCAL,
                mmuext::TLB_FLUSH_MULTI,
                mmuext::INVLPG_MULTI,
                mmuext::TLB_FLUSH_ALL,
                mmuext::INVLPG_ALL,
            ][self.rng.below(6) as usize],
            11 => mmuext::SET_LDT,
            12 => mmuext::CLEAR_PAGE,
            13 => mmuext::COPY_PAGE,
            14 => mmuext::NEW_USER_BASEPTR,
            15 => self.rng.below(32) as u32,
            16 => self.rng.next() as u32,
            _ => self.rng.below(4) as u32,
        };
        let arg1 = match cmd {
            mmuext::NEW_BASEPTR if self.rng.chance(2) => L4, // back to the builder's L4
            mmuext::INVLPG_LOCAL | mmuext::INVLPG_MULTI | mmuext::INVLPG_ALL => {
                va(self.rng.below(NR))
            }
            mmuext::SET_LDT => va(self.pool()),
            mmuext::NEW_USER_BASEPTR if self.rng.chance(2) => 0,
            _ => self.mfn(),
        };
        let arg2 = match cmd {
            mmuext::TLB_FLUSH_MULTI | mmuext::INVLPG_MULTI if self.rng.chance(2) => va(OUT),
            mmuext::SET_LDT => self.rng.below(10_000),
            mmuext::COPY_PAGE => self.mfn(),
            _ => self.rng.next(),
        };
        (cmd, arg1, arg2)
    }

    /// Writes `n` elements made by `f` at `at`; returns the VA.
    fn array(&mut self, at: u64, n: u64, mut f: impl FnMut(&mut Self) -> Vec<u8>) -> u64 {
        let mut bytes = Vec::new();
        for _ in 0..n {
            bytes.extend(f(self));
        }
        self.store(at, &bytes);
        at
    }

    fn batch_len(&mut self) -> u64 {
        match self.rng.below(10) {
            0 => 300 + self.rng.below(400), // preempted and continued
            1 => 0,
            _ => 1 + self.rng.below(6),
        }
    }

    /// (count, pdone, foreigndom) for a batch of `n` elements.
    fn batch_args(&mut self, n: u64) -> (u64, u64, u64) {
        let count = match self.rng.below(16) {
            0 => self.rng.next(),
            1 => n | (1 << 31), // the guest sets MMU_UPDATE_PREEMPTED itself
            2 => n + 1 + self.rng.below(1000), // past the array: reads what follows
            _ => n,
        };
        let pdone = match self.rng.below(8) {
            0 => 0,
            1 => self.rng.next(),
            2 => va(L4), // read-only: Xen ignores the failed write
            _ => va(OUT) + 8 * self.rng.below(16),
        };
        let dom = match self.rng.below(16) {
            0 => self.rng.next(),
            1 => 0,
            _ => u64::from(domid::DOMID_SELF),
        };
        (count, pdone, dom)
    }

    fn mmu_bytes(w: &mut Self) -> Vec<u8> {
        let [p, v] = w.mmu_req();
        [p.to_le_bytes(), v.to_le_bytes()].concat()
    }

    fn ext_bytes(w: &mut Self) -> Vec<u8> {
        let (c, a1, a2) = w.ext_op();
        let mut b = vec![0u8; 24];
        b[..4].copy_from_slice(&c.to_le_bytes());
        b[8..16].copy_from_slice(&a1.to_le_bytes());
        b[16..].copy_from_slice(&a2.to_le_bytes());
        b
    }

    /// Arguments of one call of kind `nr` whose arrays go to `at` (or are wild).
    fn call_args(&mut self, nr: u64, at: u64) -> [u64; 6] {
        let ptr_or_wild = |w: &mut Self, p: u64| match w.rng.below(20) {
            0 => w.rng.next(),
            1 => 0,
            2 => va(L1S[0]) + w.rng.below(4096), // readable, not writable
            _ => p,
        };
        match nr {
            hc::MMU_UPDATE => {
                let n = self.batch_len();
                let p = self.array(at, n, Self::mmu_bytes);
                let (count, pdone, dom) = self.batch_args(n);
                [ptr_or_wild(self, p), count, pdone, dom, 0, 0]
            }
            hc::MMUEXT_OP => {
                let n = self.batch_len();
                let p = self.array(at, n, Self::ext_bytes);
                let (count, pdone, dom) = self.batch_args(n);
                [ptr_or_wild(self, p), count, pdone, dom, 0, 0]
            }
            hc::UPDATE_VA_MAPPING => {
                let va_ = match self.rng.below(8) {
                    0 => self.rng.next(),
                    1 => va(self.rng.below(NR)),
                    _ => va(self.pool()),
                };
                let flags = match self.rng.below(8) {
                    0 => self.rng.next(),
                    1 => uvmf::TLB_FLUSH | uvmf::ALL,
                    2 => uvmf::INVLPG | va(OUT),
                    3 => uvmf::TLB_FLUSH,
                    _ => uvmf::INVLPG,
                };
                [va_, self.pte(), flags, 0, 0, 0]
            }
            hc::XEN_VERSION => {
                let cmd = if self.rng.chance(8) {
                    self.rng.next()
                } else {
                    self.rng.below(12)
                };
                let out = va(OUT) + 8 * self.rng.below(64);
                [cmd, ptr_or_wild(self, out), 0, 0, 0, 0]
            }
            hc::CONSOLE_IO => {
                let cmd = match self.rng.below(8) {
                    0 => self.rng.next(),
                    1 => console::CONSOLEIO_READ,
                    _ => console::CONSOLEIO_WRITE,
                };
                let count = match self.rng.below(8) {
                    0 => self.rng.next(),
                    _ => self.rng.below(200),
                };
                let text = va(TEXT) + self.rng.below(4096);
                let buf = ptr_or_wild(self, text);
                [cmd, count, buf, 0, 0, 0]
            }
            hc::SCHED_OP | hc::SCHED_OP_COMPAT => {
                let cmd = match self.rng.below(6) {
                    0 => self.rng.next(),
                    1 => sched::SCHEDOP_SHUTDOWN_CODE,
                    2 => sched::SCHEDOP_BLOCK,
                    _ => sched::SCHEDOP_YIELD,
                };
                [cmd, ptr_or_wild(self, va(OUT)), 0, 0, 0, 0]
            }
            _ if PV_CALLS.contains(&nr) => self.pv_args(nr, at),
            _ => std::array::from_fn(|_| match self.rng.below(3) {
                0 => self.rng.next(),
                1 => va(SCRATCH),
                _ => self.rng.below(1024),
            }),
        }
    }

    /// A guest-made structure for a PV call's pointer argument: words that are small numbers,
    /// frames and addresses of the domain, or noise.
    fn pv_struct(&mut self, at: u64) -> u64 {
        let mut b = Vec::with_capacity(256);
        for _ in 0..32 {
            let w = match self.rng.below(8) {
                0 => self.rng.next(),
                1 => 0,
                2 => self.pool(),
                3 => va(self.pool()) + 8 * self.rng.below(512),
                4 => at + 8 * self.rng.below(32),
                5 => self.mfn() << 12,
                _ => self.rng.below(16),
            };
            b.extend(w.to_le_bytes());
        }
        self.store(at, &b);
        at
    }

    /// Arguments of the PV CPU, event, time, grant and memory calls: mostly a small command,
    /// a pointer to a guest-made structure and a small count, with a share of noise. The few
    /// calls whose first argument is not a command get their own shape.
    fn pv_args(&mut self, nr: u64, at: u64) -> [u64; 6] {
        let p = self.pv_struct(at);
        let noise = |w: &mut Self, v: u64| if w.rng.chance(10) { w.rng.next() } else { v };
        let small = self.rng.below(16);
        let count = match self.rng.below(8) {
            0 => self.rng.next(),
            1 => 0,
            2 => 8192 + self.rng.below(16), // past the GDT's frames / a grant batch
            _ => 1 + self.rng.below(4),
        };
        let args = match nr {
            hc::SET_TRAP_TABLE | hc::PLATFORM_OP | hc::EVENT_CHANNEL_OP_COMPAT => [p, 0, 0],
            hc::SET_GDT => [p, count, 0],
            hc::UPDATE_DESCRIPTOR => [
                (self.pool() << 12) + 8 * self.rng.below(512),
                self.rng.next(),
                0,
            ],
            hc::STACK_SWITCH | hc::SET_CALLBACKS => [small, va(self.pool()), va(self.pool())],
            hc::SET_TIMER_OP | hc::FPU_TASKSWITCH => [self.rng.below(3), 0, 0],
            hc::VCPU_OP => [small, self.rng.below(3), p],
            hc::SET_SEGMENT_BASE | hc::SET_DEBUGREG | hc::VM_ASSIST => {
                [self.rng.below(8), va(self.pool()), 0]
            }
            _ => [small, p, count],
        };
        let [a, b, c] = args;
        [noise(self, a), noise(self, b), noise(self, c), 0, 0, 0]
    }

    fn kind(&mut self) -> u64 {
        match self.rng.below(44) {
            0..=9 => hc::MMUEXT_OP,
            10..=17 => hc::MMU_UPDATE,
            18..=23 => hc::UPDATE_VA_MAPPING,
            24..=27 => hc::MULTICALL,
            28..=29 => hc::XEN_VERSION,
            30 => hc::CONSOLE_IO,
            31 => hc::SCHED_OP,
            32 => hc::SCHED_OP_COMPAT,
            33 => self.rng.below(64),
            34 => self.rng.next(),
            35..=38 => PV_CALLS[self.rng.below(PV_CALLS.len() as u64) as usize],
            _ => u64::MAX, // a guest store: a candidate pagetable in a pool frame
        }
    }

    /// The guest builds a candidate table: a few entries in a pool frame, then maybe maps it
    /// read-only (so that a pin can succeed).
    fn build_table(&mut self) -> Result<(), FuzzError> {
        let f = self.pool();
        let mut page = vec![0u8; PAGE_SIZE as usize];
        if self.rng.chance(4) {
            // An L4 that shares the kernel mapping, like Linux's pgd_alloc.
            let k = self
                .hv
                .ram
                .read_u64_phys(L4 * PAGE_SIZE + 511 * 8)
                .unwrap_or(0);
            page[511 * 8..].copy_from_slice(&k.to_le_bytes());
        }
        for _ in 0..1 + self.rng.below(8) {
            let s = self.rng.below(512) as usize;
            let e = self.pte();
            page[s * 8..s * 8 + 8].copy_from_slice(&e.to_le_bytes());
        }
        self.store(va(f), &page);
        if self.rng.chance(2) {
            let ro = mk_pte(f, _PAGE_PRESENT | _PAGE_ACCESSED);
            self.hypercall(hc::UPDATE_VA_MAPPING, [va(f), ro, uvmf::INVLPG, 0, 0, 0])?;
        }
        Ok(())
    }

    /// One fuzzer step: a top-level hypercall (continuations included) or a guest store.
    pub(super) fn step(&mut self) -> Result<(), FuzzError> {
        self.call += 1;
        let nr = self.kind();
        if nr == u64::MAX {
            return self.build_table();
        }
        if nr != hc::MULTICALL {
            let args = self.call_args(nr, va(SCRATCH));
            return self.hypercall(nr, args).map(|_| ());
        }
        let n = match self.rng.below(10) {
            0 => 300 + self.rng.below(100),
            1 => 0,
            _ => 1 + self.rng.below(8),
        };
        let mut entries = Vec::new();
        for j in 0..n {
            let op = match self.rng.below(12) {
                0 => hc::MULTICALL, // nested: -EINVAL
                1 => self.rng.next(),
                _ => self.kind(),
            };
            let op = if op == u64::MAX { hc::MMUEXT_OP } else { op };
            // Each of the first 8 entries has its own sub-array (1 KiB apart, 64 KiB in all).
            let at = va(MC_SUB) + (j % 8) * 1024;
            let args = if op == hc::MULTICALL {
                [va(MC), 1, 0, 0, 0, 0]
            } else {
                self.call_args(op, at)
            };
            entries.extend(op.to_le_bytes());
            entries.extend(0u64.to_le_bytes());
            for a in args {
                entries.extend(a.to_le_bytes());
            }
        }
        self.store(va(MC), &entries);
        let calls = if self.rng.chance(20) {
            self.rng.next()
        } else {
            va(MC)
        };
        let count = if self.rng.chance(20) {
            self.rng.next()
        } else {
            n
        };
        self.hypercall(hc::MULTICALL, [calls, count, 0, 0, 0, 0])
            .map(|_| ())
    }
}
