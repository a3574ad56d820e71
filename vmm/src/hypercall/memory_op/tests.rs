//! memory_op on a GuestRam-backed Hypervisor (no KVM). Expected values come from Xen
//! 4.17.5's source (common/memory.c, arch/x86/mm.c, arch/x86/x86_64/mm.c), cited per test.

use super::*;
use crate::hypercall::fake_domain::{self, xen_domain};
use crate::hypercall::{Ctx, Hypervisor, PREEMPT_BUDGET};
use crate::logging::EventLog;
use crate::pv::cpuid::CpuidTable;
use crate::pv::xen_area::XenLayout;
use pagetable_validator::abi::{domid, MmuUpdate};
use pagetable_validator::pte::{mk_pte, _PAGE_PRESENT, _PAGE_RW};
use pagetable_validator::Mfn;
use pagetable_validator::Policy;

const MIB: u64 = 4;
const FRAMES: u64 = MIB * 256;
/// Guest VA `slot * 4096` (slots 1..16) maps frame `DATA + slot`, read-write.
const DATA: u64 = 16;
const L4: u64 = 1;
const L1: u64 = 4;
const MEM: u64 = hc::MEMORY_OP;

fn va(slot: u64) -> u64 {
    slot * 4096
}

fn hv() -> Hypervisor {
    hv_with(Policy::Enforce)
}

fn hv_with(policy: Policy) -> Hypervisor {
    let (mut ram, l, _, mut v) = xen_domain(FRAMES, MIB, policy, fake_domain::rules());
    let p = _PAGE_PRESENT | _PAGE_RW;
    ram.write_u64_phys(L4 << 12, mk_pte(2, p));
    ram.write_u64_phys(2 << 12, mk_pte(3, p));
    ram.write_u64_phys(3 << 12, mk_pte(L1, p));
    for s in 1..16 {
        ram.write_u64_phys((L1 << 12) + s * 8, mk_pte(DATA + s, p));
    }
    v.register_initial(&mut ram, Mfn(L4)).unwrap();
    let log = EventLog::new(None).unwrap();
    Hypervisor::new(
        ram,
        v,
        l,
        CpuidTable::default(),
        log,
        Box::new(std::io::sink()),
    )
}

fn ctx() -> Ctx {
    Ctx::new(L4 << 12, 0)
}

fn call(h: &mut Hypervisor, c: &mut Ctx, cmd: u64, arg: u64) -> i64 {
    h.hypercall(c, MEM, [cmd, arg, 0, 0, 0, 0])
}

fn put(h: &Hypervisor, va: u64, b: &[u8]) {
    h.ram.write_virt(L4 << 12, va, b).unwrap();
}

fn get_u64(h: &Hypervisor, va: u64) -> u64 {
    let mut b = [0u8; 8];
    h.ram.read_virt(L4 << 12, va, &mut b).unwrap();
    u64::from_le_bytes(b)
}

fn get_u32(h: &Hypervisor, va: u64) -> u32 {
    h.ram.read_u32_virt(L4 << 12, va).unwrap()
}

fn reservation(list: u64, nr: u64, order: u32, flags: u32, dom: u16) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&list.to_le_bytes());
    b[8..16].copy_from_slice(&nr.to_le_bytes());
    b[16..20].copy_from_slice(&order.to_le_bytes());
    b[20..24].copy_from_slice(&flags.to_le_bytes());
    b[24..26].copy_from_slice(&dom.to_le_bytes());
    b
}

fn put_list(h: &Hypervisor, at: u64, l: &[u64]) {
    let b: Vec<u8> = l.iter().flat_map(|x| x.to_le_bytes()).collect();
    put(h, at, &b);
}

/// The guest-visible M2P entry of `mfn`.
fn m2p(h: &Hypervisor, mfn: u64) -> u64 {
    h.ram.read_u64_phys(h.xen.m2p_gpa(mfn)).unwrap()
}

fn consistent(h: &Hypervisor) {
    h.validator.check_invariants(&h.ram).unwrap();
    for mfn in 0..FRAMES {
        assert_eq!(
            h.validator.m2p_entry(Mfn(mfn)),
            Some(m2p(h, mfn)).filter(|&p| p != INVALID_M2P_ENTRY),
            "M2P copies differ at {mfn:#x}"
        );
        if h.mem.is_free(mfn) {
            assert!(h.unreferenced(mfn), "free frame {mfn:#x} is referenced");
            assert_eq!(m2p(h, mfn), INVALID_M2P_ENTRY);
        }
    }
    assert_eq!(h.tot_pages(), FRAMES - h.mem.free_frames() as u64);
}

/// decrease_reservation of single frames: Xen returns the number of extents done.
fn give_back(h: &mut Hypervisor, frames: &[u64]) -> i64 {
    let mut c = ctx();
    put_list(h, va(2), frames);
    put(
        h,
        va(1),
        &reservation(va(2), frames.len() as u64, 0, 0, domid::DOMID_SELF),
    );
    call(h, &mut c, m::XENMEM_DECREASE_RESERVATION, va(1))
}

#[test]
fn queries_answer_as_xen() {
    let mut h = hv();
    let mut c = ctx();
    let max_page = h.xen.max_page();
    // XENMEM_maximum_ram_page: `max_page`; a start extent is -EINVAL.
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_MAXIMUM_RAM_PAGE, 0),
        max_page as i64
    );
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_MAXIMUM_RAM_PAGE | 1 << 6, 0),
        -22
    );
    // current/maximum_reservation: tot_pages and dom0's max_pages (UINT_MAX); domid 0 is
    // dom0 itself (rcu_lock_domain_by_any_id), others -ESRCH, unreadable -EFAULT.
    for dom in [domid::DOMID_SELF, 0] {
        put(&h, va(1), &dom.to_le_bytes());
        assert_eq!(
            call(&mut h, &mut c, m::XENMEM_CURRENT_RESERVATION, va(1)),
            FRAMES as i64
        );
        assert_eq!(
            call(&mut h, &mut c, m::XENMEM_MAXIMUM_RESERVATION, va(1)),
            4_294_967_295
        );
    }
    put(&h, va(1), &1u16.to_le_bytes());
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_CURRENT_RESERVATION, va(1)),
        -3
    );
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_MAXIMUM_RESERVATION, 0x50_0000),
        -14
    );
    assert_eq!(
        call(
            &mut h,
            &mut c,
            m::XENMEM_MAXIMUM_RESERVATION | 1 << 6,
            va(1)
        ),
        -22
    );
    // maximum_gpfn: (shared_info.arch.max_pfn ?: 1) - 1.
    put(&h, va(1), &domid::DOMID_SELF.to_le_bytes());
    assert_eq!(call(&mut h, &mut c, m::XENMEM_MAXIMUM_GPFN, va(1)), 0);
    let si = (h.xen.shared_info_mfn() << 12) + m::SHARED_INFO_ARCH_MAX_PFN as u64;
    h.ram.write_u64_phys(si, 1000);
    assert_eq!(call(&mut h, &mut c, m::XENMEM_MAXIMUM_GPFN, va(1)), 999);
    // machphys_mapping: the RO M2P's range; max_mfn = max_page - 1 for the hardware domain.
    assert_eq!(call(&mut h, &mut c, m::XENMEM_MACHPHYS_MAPPING, va(3)), 0);
    // (The M2P's alias in slot 257 on this project's hosts; Xen names slot 256's address.)
    assert_eq!(get_u64(&h, va(3)), 0xffff_8080_0000_0000);
    assert_eq!(get_u64(&h, va(3) + 8), 0xffff_80c0_0000_0000);
    assert_eq!(get_u64(&h, va(3) + 16), max_page - 1);
    // A pointer into the hypervisor's range fails even though the direct map backs it.
    let hole = XenLayout::directmap_va(DATA << 12);
    assert_eq!(call(&mut h, &mut c, m::XENMEM_MACHPHYS_MAPPING, hole), -14);
    // arch_memory_op switches on the whole cmd: a start extent makes it unknown.
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_MACHPHYS_MAPPING | 1 << 6, va(3)),
        -38
    );
    // PV dom0 has no pseudo-physical E820: -ENOSYS (after the copy: -EFAULT first).
    assert_eq!(call(&mut h, &mut c, m::XENMEM_MEMORY_MAP, va(1)), -38);
    assert_eq!(call(&mut h, &mut c, m::XENMEM_MEMORY_MAP, 0x50_0000), -14);
    // Unknown, not built (paging/sharing ops), compat M2P without PV32, sharing stubs.
    for op in [8, 20, 22, 29, 63] {
        assert_eq!(call(&mut h, &mut c, op, va(1)), -38, "op {op}");
    }
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_MACHPHYS_COMPAT_MFN_LIST, va(1)),
        -95
    );
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_GET_SHARING_FREED_PAGES, 0),
        0
    );
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_GET_SHARING_SHARED_PAGES, 0),
        0
    );
    // PoD target: dom0 is not HVM -> -EINVAL; other domains -ESRCH.
    let mut pod = [0u8; 40];
    pod[32..34].copy_from_slice(&domid::DOMID_SELF.to_le_bytes());
    put(&h, va(4), &pod);
    assert_eq!(call(&mut h, &mut c, m::XENMEM_GET_POD_TARGET, va(4)), -22);
    pod[32] = 5;
    pod[33] = 0;
    put(&h, va(4), &pod);
    assert_eq!(call(&mut h, &mut c, m::XENMEM_SET_POD_TARGET, va(4)), -3);
    consistent(&h);
}

#[test]
fn machine_memory_map_is_one_ram_range() {
    let mut h = hv();
    let mut c = ctx();
    let map = |n: u32, buf: u64| {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&n.to_le_bytes());
        b[8..].copy_from_slice(&buf.to_le_bytes());
        b
    };
    // The buffer must hold e820.nr_map + 1 entries.
    put(&h, va(1), &map(1, va(2)));
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_MACHINE_MEMORY_MAP, va(1)),
        -22
    );
    put(&h, va(1), &map(2, 0xffff_8100_0000_0000));
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_MACHINE_MEMORY_MAP, va(1)),
        -14
    );
    // A null buffer only counts.
    put(&h, va(1), &map(0, 0));
    assert_eq!(call(&mut h, &mut c, m::XENMEM_MACHINE_MEMORY_MAP, va(1)), 0);
    assert_eq!(get_u32(&h, va(1)), 1);
    put(&h, va(1), &map(128, va(2)));
    assert_eq!(call(&mut h, &mut c, m::XENMEM_MACHINE_MEMORY_MAP, va(1)), 0);
    assert_eq!(get_u32(&h, va(1)), 1);
    assert_eq!(get_u64(&h, va(2)), 0);
    assert_eq!(get_u64(&h, va(2) + 8), h.xen.max_page() << 12);
    assert_eq!(get_u32(&h, va(2) + 16), E820_RAM);
}

#[test]
fn machphys_mfn_list_names_the_m2p_frames() {
    let mut h = hv();
    let mut c = ctx();
    let list = |max: u32| {
        let mut b = [0u8; 24];
        b[..4].copy_from_slice(&max.to_le_bytes());
        b[8..16].copy_from_slice(&va(2).to_le_bytes());
        b[16..20].copy_from_slice(&77u32.to_le_bytes());
        b
    };
    // max_extents 0: the loop condition `i != max_extents` stops at once.
    put(&h, va(1), &list(0));
    assert_eq!(call(&mut h, &mut c, m::XENMEM_MACHPHYS_MFN_LIST, va(1)), 0);
    assert_eq!(get_u32(&h, va(1) + 16), 0);
    // One 2 MiB chunk covers max_page (< 256Ki) entries.
    put(&h, va(1), &list(10));
    assert_eq!(call(&mut h, &mut c, m::XENMEM_MACHPHYS_MFN_LIST, va(1)), 0);
    assert_eq!(get_u32(&h, va(1) + 16), 1);
    let first = get_u64(&h, va(2));
    assert_eq!(h.xen.m2p_chunk_mfn(0), Some(first));
    assert_eq!(h.ram.read_u64_phys((first << 12) + 8 * 5), Some(5));
}

#[test]
fn increase_reservation_needs_free_memory() {
    let mut h = hv();
    let mut c = ctx();
    // XSA-231: every node value in mem_flags, no list; the heap is empty -> 0 done each
    // (nodes >= 64 fail propagate_node -> start_extent 0 as well).
    let mut flags = 0u32;
    while flags < 0x10000 {
        put(&h, va(1), &reservation(0, 1, 0, flags, domid::DOMID_SELF));
        assert_eq!(
            call(&mut h, &mut c, m::XENMEM_INCREASE_RESERVATION, va(1)),
            0
        );
        flags += 0x100;
    }
    consistent(&h);
    // Give two frames back, then ask again: one extent per call, mfns written to the list.
    assert_eq!(give_back(&mut h, &[200, 201]), 2);
    assert_eq!(h.tot_pages(), FRAMES - 2);
    put(&h, va(1), &reservation(va(3), 3, 0, 0x100, 0));
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_INCREASE_RESERVATION, va(1)),
        2
    );
    assert_eq!([get_u64(&h, va(3)), get_u64(&h, va(3) + 8)], [200, 201]);
    assert_eq!(h.tot_pages(), FRAMES);
    // The M2P stays invalid until the guest sets it (increase_reservation does not).
    assert_eq!(m2p(&h, 200), INVALID_M2P_ENTRY);
    consistent(&h);
}

#[test]
fn reservation_argument_checks_return_start_extent() {
    let mut h = hv();
    let mut c = ctx();
    assert_eq!(give_back(&mut h, &[300, 301, 302, 303]), 4);
    let cmd = m::XENMEM_INCREASE_RESERVATION;
    let with = |h: &mut Hypervisor, c: &mut Ctx, cmd: u64, r: [u8; 32]| {
        put(h, va(1), &r);
        call(h, c, cmd, va(1))
    };
    let s = domid::DOMID_SELF;
    // Unreadable argument: start_extent.
    assert_eq!(call(&mut h, &mut c, cmd | 3 << 6, 0x50_0000), 3);
    // nr_extents > UINT_MAX >> 6, start >= nr_extents, another domain: start_extent.
    assert_eq!(
        with(
            &mut h,
            &mut c,
            cmd,
            reservation(0, (u32::MAX >> 6) as u64 + 1, 0, 0, s)
        ),
        0
    );
    assert_eq!(
        with(&mut h, &mut c, cmd | 5 << 6, reservation(0, 5, 0, 0, s)),
        5
    );
    assert_eq!(with(&mut h, &mut c, cmd, reservation(0, 1, 0, 0, 3)), 0);
    // Address bits 1..=12 are -EINVAL; node 64 is past MAX_NUMNODES; order 19 > max_order.
    assert_eq!(with(&mut h, &mut c, cmd, reservation(0, 1, 0, 12, s)), 0);
    assert_eq!(
        with(&mut h, &mut c, cmd, reservation(0, 1, 0, 65 << 8, s)),
        0
    );
    assert_eq!(with(&mut h, &mut c, cmd, reservation(0, 1, 19, 0, s)), 0);
    // The list's start is checked (guest_handle_subrange_okay) before any work.
    let hole = 0xffff_8000_0000_0000u64;
    assert_eq!(with(&mut h, &mut c, cmd, reservation(hole, 1, 0, 0, s)), 0);
    assert_eq!(h.tot_pages(), FRAMES - 4);
    // Node 63 and vnode (ignored: dom0 has no vNUMA) pass; address bits 13 limit the
    // allocation to frames below 8 KiB: nothing free there.
    assert_eq!(
        with(&mut h, &mut c, cmd, reservation(0, 1, 0, 64 << 8, s)),
        1
    );
    assert_eq!(
        with(
            &mut h,
            &mut c,
            cmd,
            reservation(0, 1, 0, m::XENMEMF_VNODE | 200 << 8, s)
        ),
        1
    );
    assert_eq!(with(&mut h, &mut c, cmd, reservation(0, 1, 0, 13, s)), 0);
    // Order 1 needs an aligned pair: 302/303 are left.
    assert_eq!(with(&mut h, &mut c, cmd, reservation(va(3), 1, 1, 0, s)), 1);
    assert_eq!(get_u64(&h, va(3)), 302);
    assert_eq!(h.tot_pages(), FRAMES);
    // An unwritable list after the allocation: the extent is dom0's, not counted.
    assert_eq!(give_back(&mut h, &[400]), 1);
    let ro = reservation(0x7fff_ffff_f000, 1, 0, 0, s);
    assert_eq!(with(&mut h, &mut c, cmd, ro), 0);
    assert_eq!(h.tot_pages(), FRAMES);
    consistent(&h);
}

#[test]
fn decrease_reservation_frees_only_unreferenced_frames() {
    let mut h = hv();
    let mut c = ctx();
    // Frames beyond max_page, Xen-area frames, already free frames stop the batch.
    let (max_page, si) = (h.xen.max_page(), h.xen.shared_info_mfn());
    assert_eq!(give_back(&mut h, &[100, max_page]), 1);
    assert_eq!(give_back(&mut h, &[si]), 0);
    assert_eq!(give_back(&mut h, &[100]), 0);
    assert_eq!(m2p(&h, 100), INVALID_M2P_ENTRY);
    assert_eq!(h.validator.m2p_entry(Mfn(100)), None);
    // A frame mapped by the L1 (data page of slot 9): the allocation reference goes, the
    // frame stays dom0's until its mapping goes.
    let mapped = DATA + 9;
    assert_eq!(give_back(&mut h, &[mapped]), 1);
    assert!(h.mem.is_released(mapped));
    assert_eq!(h.tot_pages(), FRAMES - 1);
    assert_eq!(
        give_back(&mut h, &[mapped]),
        1,
        "Xen: get_page succeeds, alloc ref already gone"
    );
    let pte = (L1 << 12) + 9 * 8;
    h.validator
        .mmu_update(&mut h.ram, MmuUpdate { ptr: pte, val: 0 })
        .unwrap();
    put(&h, va(1), &domid::DOMID_SELF.to_le_bytes());
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_CURRENT_RESERVATION, va(1)),
        FRAMES as i64 - 2
    );
    assert!(h.mem.is_free(mapped));
    // A freed frame cannot be given back again; order-1 extents cover two frames, and a
    // failure inside an extent keeps the pages before it freed without counting the extent.
    assert_eq!(give_back(&mut h, &[mapped]), 0);
    put_list(&h, va(2), &[500, 510]);
    put(&h, va(1), &reservation(va(2), 2, 1, 0, 0));
    assert_eq!(give_back_order(&mut h, &mut c), 2);
    assert!((500..502).chain(510..512).all(|f| h.mem.is_free(f)));
    assert_eq!(give_back(&mut h, &[601]), 1);
    put_list(&h, va(2), &[600]);
    put(&h, va(1), &reservation(va(2), 1, 1, 0, 0));
    assert_eq!(give_back_order(&mut h, &mut c), 0);
    assert!(h.mem.is_free(600));
    consistent(&h);
}

fn give_back_order(h: &mut Hypervisor, c: &mut Ctx) -> i64 {
    call(h, c, m::XENMEM_DECREASE_RESERVATION, va(1))
}

#[test]
fn populate_physmap_sets_the_m2p() {
    let mut h = hv();
    let mut c = ctx();
    assert_eq!(give_back(&mut h, &[700, 701, 702, 703]), 4);
    put_list(&h, va(3), &[0x4000, 0x5000]);
    put(&h, va(1), &reservation(va(3), 2, 1, 0, domid::DOMID_SELF));
    assert_eq!(call(&mut h, &mut c, m::XENMEM_POPULATE_PHYSMAP, va(1)), 2);
    assert_eq!([get_u64(&h, va(3)), get_u64(&h, va(3) + 8)], [700, 702]);
    assert_eq!(
        [m2p(&h, 700), m2p(&h, 701), m2p(&h, 703)],
        [0x4000, 0x4001, 0x5001]
    );
    consistent(&h);
    // Empty heap: 0 done. PoD on oneself: refused (no progress). Null list: not okay.
    put(&h, va(1), &reservation(va(3), 1, 0, 0, domid::DOMID_SELF));
    assert_eq!(call(&mut h, &mut c, m::XENMEM_POPULATE_PHYSMAP, va(1)), 0);
    assert_eq!(give_back(&mut h, &[800]), 1);
    put(
        &h,
        va(1),
        &reservation(va(3), 1, 0, m::XENMEMF_POPULATE_ON_DEMAND, 0),
    );
    assert_eq!(call(&mut h, &mut c, m::XENMEM_POPULATE_PHYSMAP, va(1)), 0);
    put(&h, va(1), &reservation(0, 1, 0, 0, 0));
    assert_eq!(call(&mut h, &mut c, m::XENMEM_POPULATE_PHYSMAP, va(1)), 0);
    // An unreadable gpfn stops before allocating.
    put(&h, va(1), &reservation(0x50_0000, 1, 0, 0, 0));
    assert_eq!(call(&mut h, &mut c, m::XENMEM_POPULATE_PHYSMAP, va(1)), 0);
    assert!(h.mem.is_free(800));
    consistent(&h);
}

#[test]
fn long_reservations_continue() {
    let mut h = hv();
    let mut c = ctx();
    let frames: Vec<u64> = (600..900).collect();
    put_list(&h, va(4), &frames);
    put(&h, va(1), &reservation(va(4), 300, 0, 0, domid::DOMID_SELF));
    let cmd = m::XENMEM_DECREASE_RESERVATION;
    let a = [cmd, va(1), 0, 0, 0, 0];
    let rc = h.hypercall(&mut c, MEM, a);
    // hypercall_create_continuation(memory_op, "lh", op | (rc << MEMOP_EXTENT_SHIFT), arg)
    assert_eq!(rc, MEM as i64);
    let k = c.continuation.expect("continued");
    let done = u64::from(PREEMPT_BUDGET);
    assert_eq!(k.args[0], cmd | done << 6);
    assert_eq!(k.args[1], va(1));
    assert_eq!(h.mem.free_frames() as u64, done);
    let mut c2 = ctx();
    assert_eq!(h.hypercall(&mut c2, MEM, k.args), 300);
    assert!(c2.continuation.is_none());
    assert_eq!(h.tot_pages(), FRAMES - 300);
    consistent(&h);
}

fn exchange_arg(h: &Hypervisor, at: u64, input: [u8; 32], output: [u8; 32], nr_exchanged: u64) {
    let mut b = [0u8; 72];
    b[..32].copy_from_slice(&input);
    b[32..64].copy_from_slice(&output);
    b[64..].copy_from_slice(&nr_exchanged.to_le_bytes());
    put(h, at, &b);
}

#[test]
fn exchange_xsa_212_fails_with_efault() {
    let mut h = hv();
    let mut c = ctx();
    // tests/xsa-212/main.c: in.extent_start = &in_extents - idt_base, out.extent_start =
    // NULL, nr_exchanged = idt_base / 8, nr_extents = nr_exchanged + 1, out mem_flags 32.
    let idt = h.xen.idt_va();
    let pxt = va(2);
    put_list(&h, pxt, &[DATA + 10]);
    let so_far = idt / 8;
    let s = domid::DOMID_SELF;
    exchange_arg(
        &h,
        va(1),
        reservation(pxt.wrapping_sub(idt), so_far + 1, 0, 0, s),
        reservation(0, so_far + 1, 0, 32, s),
        so_far,
    );
    // The input subrange starts at pxt (fine), the output's at NULL + 8 * so_far = the IDT:
    // -EFAULT, with nr_exchanged written back unchanged (fail_early).
    assert_eq!(call(&mut h, &mut c, m::XENMEM_EXCHANGE, va(1)), -14);
    assert_eq!(get_u64(&h, va(1) + 64), so_far);
    consistent(&h);
}

#[test]
fn exchange_checks_in_xens_order() {
    let mut h = hv();
    let mut c = ctx();
    let s = domid::DOMID_SELF;
    let list = va(2);
    put_list(&h, list, &[500, 501]);
    let ex = |h: &mut Hypervisor, c: &mut Ctx, i: [u8; 32], o: [u8; 32], n: u64| {
        exchange_arg(h, va(1), i, o, n);
        put(h, va(1) + 64, &n.to_le_bytes());
        let rc = call(h, c, m::XENMEM_EXCHANGE, va(1));
        (rc, get_u64(h, va(1) + 64))
    };
    let r = |nr, order, flags, dom| reservation(list, nr, order, flags, dom);
    // Unreadable argument: -EFAULT; a start extent: -EINVAL.
    assert_eq!(call(&mut h, &mut c, m::XENMEM_EXCHANGE, 0x50_0000), -14);
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_EXCHANGE | 1 << 6, va(1)),
        -22
    );
    // Order above max_order: -EPERM; then the sanity checks -EINVAL; all via fail_early,
    // which writes nr_exchanged back.
    assert_eq!(
        ex(&mut h, &mut c, r(1, 19, 0, s), r(1, 19, 0, s), 0),
        (-1, 0)
    );
    assert_eq!(
        ex(&mut h, &mut c, r(1, 0, 0, s), r(1, 0, 0, s), 2),
        (-22, 2)
    );
    assert_eq!(
        ex(&mut h, &mut c, r(1, 0, 0, s), r(1, 0, 0, 0), 0),
        (-22, 0)
    );
    assert_eq!(
        ex(&mut h, &mut c, r(2, 0, 0, s), r(1, 0, 0, s), 0),
        (-22, 0)
    );
    assert_eq!(
        ex(
            &mut h,
            &mut c,
            r(u64::MAX, 1, 0, s),
            r(u64::MAX, 1, 0, s),
            0
        ),
        (-22, 0)
    );
    // Nothing left: 0 without touching the guest's nr_exchanged.
    assert_eq!(ex(&mut h, &mut c, r(1, 0, 0, s), r(1, 0, 0, s), 1), (0, 1));
    // Bad node (-EINVAL), other domain (-ESRCH).
    assert_eq!(
        ex(&mut h, &mut c, r(1, 0, 0, s), r(1, 0, 65 << 8, s), 0),
        (-22, 0)
    );
    assert_eq!(ex(&mut h, &mut c, r(1, 0, 0, 9), r(1, 0, 0, 9), 0), (-3, 0));
    // Empty heap: the output allocation fails, -ENOMEM, the input frame stays dom0's
    // (what real Xen answered Linux's swiotlb exchanges).
    assert_eq!(
        ex(&mut h, &mut c, r(1, 0, 0, s), r(1, 0, 32, s), 0),
        (-12, 0)
    );
    assert!(h.owned(500));
    // A referenced input frame cannot be stolen: -EINVAL.
    put_list(&h, list, &[DATA + 3]);
    assert_eq!(
        ex(&mut h, &mut c, r(1, 0, 0, s), r(1, 0, 0, s), 0),
        (-22, 0)
    );
    consistent(&h);
}

#[test]
fn exchange_swaps_frames() {
    let mut h = hv();
    let mut c = ctx();
    let s = domid::DOMID_SELF;
    assert_eq!(give_back(&mut h, &[900, 901]), 2);
    // Two order-0 input frames for one order-1 output extent (in_chunk_order 1).
    put_list(&h, va(3), &[500, 501]);
    put_list(&h, va(4), &[0x7000]);
    exchange_arg(
        &h,
        va(1),
        reservation(va(3), 2, 0, 0, s),
        reservation(va(4), 1, 1, 0, s),
        0,
    );
    assert_eq!(call(&mut h, &mut c, m::XENMEM_EXCHANGE, va(1)), 0);
    assert_eq!(get_u64(&h, va(1) + 64), 2);
    assert_eq!(get_u64(&h, va(4)), 900);
    assert_eq!([m2p(&h, 900), m2p(&h, 901)], [0x7000, 0x7001]);
    assert!(h.mem.is_free(500) && h.mem.is_free(501));
    assert_eq!(h.tot_pages(), FRAMES - 2);
    // The same frame named twice is stolen once: -EINVAL, nothing changes.
    put_list(&h, va(3), &[600, 600]);
    put_list(&h, va(4), &[0x8000]);
    exchange_arg(
        &h,
        va(1),
        reservation(va(3), 2, 0, 0, s),
        reservation(va(4), 1, 1, 0, s),
        0,
    );
    assert_eq!(call(&mut h, &mut c, m::XENMEM_EXCHANGE, va(1)), -22);
    assert!(h.owned(600));
    consistent(&h);
}

#[test]
fn hostile_memory_ops_keep_the_model_consistent() {
    let mut h = hv();
    let mut c = ctx();
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let op = next() % 30;
        let start = if next() % 8 == 0 { next() % 4 } else { 0 };
        let nr = match next() % 4 {
            0 => next(),
            1 => next() % 600,
            _ => next() % 4,
        };
        let order = match next() % 8 {
            0 => next() as u32,
            1 => 1 + next() as u32 % 3,
            _ => 0,
        };
        let list: Vec<u64> = (0..64).map(|_| next() % (FRAMES + 64)).collect();
        put_list(&h, va(4), &list);
        let lva = if next() % 8 == 0 { next() } else { va(4) };
        let r = reservation(lva, nr, order, next() as u32 & 0x3_ffff, domid::DOMID_SELF);
        exchange_arg(
            &h,
            va(1),
            r,
            reservation(va(5), nr, order, 0, 0),
            next() % 3,
        );
        let arg = if next() % 16 == 0 { next() } else { va(1) };
        c.continuation = None;
        let _ = call(&mut h, &mut c, op | start << 6, arg);
        // Occasionally unmap and remap a data page so released frames come and go.
        if next() % 16 == 0 {
            let slot = 1 + next() % 15;
            if slot != 1 && slot != 4 && slot != 5 {
                let pte = (L1 << 12) + slot * 8;
                let _ = h
                    .validator
                    .mmu_update(&mut h.ram, MmuUpdate { ptr: pte, val: 0 });
            }
        }
        c = ctx();
    }
    consistent(&h);
}

#[test]
fn lists_never_land_in_pagetables() {
    // Audit mode tolerates a writable mapping of the L1 (slot 15 -> the L1 frame itself);
    // a list there must not be written: the extent is dom0's, not counted (as for any
    // unwritable list), and the L1 is unchanged.
    let mut h = hv_with(Policy::Audit);
    let mut c = ctx();
    let pte = (L1 << 12) + 15 * 8;
    let val = mk_pte(L1, _PAGE_PRESENT | _PAGE_RW);
    h.validator
        .mmu_update(&mut h.ram, MmuUpdate { ptr: pte, val })
        .unwrap();
    let _ = h.validator.drain_events();
    assert_eq!(give_back(&mut h, &[300]), 1);
    let before = h.ram.read_u64_phys(L1 << 12).unwrap();
    put(&h, va(1), &reservation(va(15), 1, 0, 0, domid::DOMID_SELF));
    assert_eq!(
        call(&mut h, &mut c, m::XENMEM_INCREASE_RESERVATION, va(1)),
        0
    );
    assert_eq!(h.ram.read_u64_phys(L1 << 12).unwrap(), before);
    assert_eq!(h.tot_pages(), FRAMES);
    consistent(&h);
}
