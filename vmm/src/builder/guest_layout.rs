//! The initial mapping's layout, computed exactly like Xen's dom0 builder (kernel, P2M,
//! start_info, bootstrap page tables, boot stack, padding to 4 MiB), and the P2M itself
//! (identity or a seeded permutation).

use super::{round_up, MIB};
use pagetable_validator::pte::PAGE_SIZE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum P2mMode {
    Identity,
    Shuffle { seed: u64 },
}

/// Where the builder put things (virtual addresses), for the guest registers and logs.
#[derive(Clone, Debug)]
pub struct Layout {
    pub v_start: u64,
    pub v_end: u64,
    pub kernel: (u64, u64),
    pub p2m: (u64, u64),
    pub start_info: u64,
    pub pt: (u64, u64),
    pub stack: (u64, u64),
    pub nr_pt_frames: u64,
}

/// splitmix64: a tiny, well-mixed PRNG; enough to shuffle frames reproducibly.
pub(super) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn make_p2m(nr_pages: u64, mode: P2mMode) -> Vec<u64> {
    let mut p2m: Vec<u64> = (0..nr_pages).collect();
    if let P2mMode::Shuffle { seed } = mode {
        let mut s = seed;
        for i in (1..p2m.len()).rev() {
            let j = (splitmix64(&mut s) % (i as u64 + 1)) as usize;
            p2m.swap(i, j);
        }
    }
    p2m
}

/// Computes the layout exactly like Xen's loop over `nr_pt_pages`. `initrd_va_len`: the length
/// of an initrd mapped right after the kernel (0 when there is none or it is not mapped).
pub(super) fn compute_layout(
    kstart: u64,
    kend: u64,
    initrd_va_len: u64,
    v_start: u64,
    nr_pages: u64,
) -> Option<Layout> {
    let p2m_start = round_up(
        round_up(kend, PAGE_SIZE)?.checked_add(initrd_va_len)?,
        PAGE_SIZE,
    )?;
    let p2m_end = p2m_start.checked_add(nr_pages * 8)?;
    let si_start = round_up(p2m_end, PAGE_SIZE)?;
    let si_end = si_start.checked_add(PAGE_SIZE)?;
    let pt_start = si_end;
    let mut nr_pt = 2u64;
    loop {
        let pt_end = pt_start.checked_add(nr_pt * PAGE_SIZE)?;
        let stack_end = pt_end.checked_add(PAGE_SIZE)?;
        let mut v_end = stack_end.checked_add(4 * MIB - 1)? & !(4 * MIB - 1);
        if v_end - stack_end < 512 * 1024 {
            v_end = v_end.checked_add(4 * MIB)?;
        }
        // Xen's count: one L4, plus the L3s, L2s and L1s the range [v_start, v_end) touches.
        let needed = 1
            + count_blocks(v_start, v_end, 39)
            + count_blocks(v_start, v_end, 30)
            + count_blocks(v_start, v_end, 21);
        if needed <= nr_pt {
            return Some(Layout {
                v_start,
                v_end,
                kernel: (kstart, kend),
                p2m: (p2m_start, p2m_end),
                start_info: si_start,
                pt: (pt_start, pt_end),
                stack: (pt_end, stack_end),
                nr_pt_frames: nr_pt,
            });
        }
        nr_pt += 1;
    }
}

/// Number of distinct (1 << s)-aligned blocks touched by [lo, hi), hi exclusive (hi may be 0 = 2^64).
fn count_blocks(lo: u64, hi: u64, s: u32) -> u64 {
    let last = hi.wrapping_sub(1) >> s;
    last - (lo >> s) + 1
}
