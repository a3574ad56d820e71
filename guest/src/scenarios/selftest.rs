//! Scenario `selftest`: the kernel checks its own building blocks (KUnit-style), one transcript
//! line per check with rc 0 = pass, 1 = fail. Covers what `basics` does not: the command-line
//! parser, the reverse map (both forms) over every pfn, `alloc_pages` orders and reuse, fixmap round trips.

use pagetable_validator::pte::{PAGE_KERNEL, PAGE_KERNEL_RO};

use super::Transcript;
use crate::cmdline::Cmdline;
use crate::mm::fixmap::{fix_to_virt, FIX_SCRATCH_BEGIN};
use crate::mm::p2m::M2p;
use crate::mm::{Mfn, Pfn};
use crate::setup::Kernel;
use crate::t;

fn check(ok: bool) -> i64 {
    if ok {
        0
    } else {
        1
    }
}

pub fn run(k: &mut Kernel, _variant: Option<&str>) {
    let mut t = Transcript::new("selftest");

    let c = Cmdline::parse(b"scenario=x variant=y flag scenario=z");
    let ok = c.get("scenario") == Some("z")
        && c.get("variant") == Some("y")
        && c.get("flag") == Some("")
        && c.get("missing").is_none();
    t!(
        t,
        check(ok),
        "cmdline: last key wins, bare word, missing key"
    );
    let c = Cmdline::parse(b"a=1 b=2\xff c=3");
    t!(
        t,
        check(c.get("a") == Some("1") && c.get("b") == Some("2") && c.get("c").is_none()),
        "cmdline: input stops at invalid UTF-8"
    );

    let n = k.p2m.nr_pages();
    let mut max_mfn = 0;
    let mut ok = true;
    for pfn in (0..n).map(Pfn) {
        let mfn = k.pfn_to_mfn(pfn);
        max_mfn = max_mfn.max(mfn.0);
        ok &= k.m2p.mfn_to_pfn(mfn) == Some(pfn);
    }
    t!(
        t,
        check(ok),
        "m2p: mfn_to_pfn inverts pfn_to_mfn for every pfn"
    );
    t!(
        t,
        check(k.m2p.mfn_to_pfn(Mfn(max_mfn + 1)).is_none()),
        "m2p: a foreign mfn has no pfn"
    );
    // The other representation (sorted runs) must agree on every frame and just outside.
    let runs = M2p::build_runs(&k.p2m, &mut k.memblock).expect("memblock for the runs form");
    let ok = (0..n)
        .map(|p| k.pfn_to_mfn(Pfn(p)))
        .all(|m| runs.mfn_to_pfn(m) == k.m2p.mfn_to_pfn(m))
        && runs.mfn_to_pfn(Mfn(max_mfn + 1)).is_none();
    t!(t, check(ok), "m2p: sorted-runs form agrees");

    let free = k.pages.nr_free();
    let mut blocks = [(Pfn(0), 0u32); 5];
    for (order, b) in (0..5u32).zip(blocks.iter_mut()) {
        *b = (k.pages.alloc_pages(order).expect("alloc_pages"), order);
    }
    let aligned = blocks.iter().all(|&(p, o)| p.0.is_multiple_of(1 << o));
    let disjoint = blocks.iter().enumerate().all(|(i, &(p, o))| {
        blocks[i + 1..]
            .iter()
            .all(|&(q, r)| p.0 + (1 << o) <= q.0 || q.0 + (1 << r) <= p.0)
    });
    t!(
        t,
        check(aligned),
        "alloc_pages: orders 0..4 naturally aligned"
    );
    t!(t, check(disjoint), "alloc_pages: blocks do not overlap");
    t!(
        t,
        check(k.pages.nr_free() == free - 31),
        "alloc_pages: free count drops by 31"
    );
    for &(p, o) in blocks.iter().rev() {
        k.pages.free_pages(p, o);
    }
    t!(
        t,
        check(k.pages.nr_free() == free),
        "free_pages: free count restored"
    );
    let again = k.pages.alloc_page();
    t!(
        t,
        check(again == Some(blocks[0].0)),
        "alloc_page: lowest free page is reused first"
    );

    // Write a pattern through one slot (RW), read it back through another (RO).
    let page = again.expect("alloc_page");
    let mfn = k.pfn_to_mfn(page);
    let (s1, s2) = (FIX_SCRATCH_BEGIN, FIX_SCRATCH_BEGIN + 1);
    let wrote = k.fixmap.with_page(s1, mfn, |p| {
        for i in 0..512 {
            // SAFETY: with_page maps the frame read-write at slot s1 for this closure.
            unsafe { p.add(i).write_volatile(0x5a5a_0000 + i as u64) };
        }
    });
    let mut ok = wrote.is_ok() && k.fixmap.set_fixmap(s2, mfn, PAGE_KERNEL_RO) == 0;
    if ok {
        let p = fix_to_virt(s2) as *const u64;
        // SAFETY: slot s2 maps the frame read-only right now.
        ok = (0..512).all(|i| unsafe { p.add(i).read_volatile() } == 0x5a5a_0000 + i as u64);
    }
    ok &= k.fixmap.clear_fixmap(s2) == 0;
    t!(
        t,
        check(ok),
        "fixmap: pattern written via one slot reads back via another"
    );
    k.clear_page(page);
    let mut zero = k.fixmap.set_fixmap(s2, mfn, PAGE_KERNEL) == 0;
    if zero {
        let p = fix_to_virt(s2) as *const u64;
        // SAFETY: slot s2 maps the frame right now.
        zero = (0..512).all(|i| unsafe { p.add(i).read_volatile() } == 0);
    }
    zero &= k.fixmap.clear_fixmap(s2) == 0;
    t!(t, check(zero), "clear_page: page reads back as zeroes");
    k.free_page(page);
    t.finish();
}
