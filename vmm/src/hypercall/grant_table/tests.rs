//! grant_table_op against Xen 4.17's common/grant_table.c (expected values cited per case).

use super::*;
use crate::hypercall::testenv::{self, va, BUF};
use pagetable_validator::abi::uvmf;
use pagetable_validator::pte::{mk_pte, _PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_RW};

const SELF: u16 = domid::DOMID_SELF;

/// The structure (an abi type) at `off` of BUF.
fn read<T: ByteValued + Default>(hv: &Hypervisor, off: u64) -> T {
    let mut t = T::default();
    t.as_mut_slice()
        .copy_from_slice(&hv.t_read::<4096>(BUF, 0)[off as usize..][..size_of::<T>()]);
    t
}

/// Grant entry `E` at `off` of the shared area.
fn entry<E: ByteValued + Default>(hv: &Hypervisor, off: u64) -> E {
    let mut e = E::default();
    hv.gnt_read_shared(off, e.as_mut_slice());
    e
}

fn call(hv: &mut Hypervisor, cmd: u32, uop: u64, count: u32) -> i64 {
    let mut ctx = testenv::ctx();
    hv.hypercall(
        &mut ctx,
        hc::GRANT_TABLE_OP,
        [u64::from(cmd), uop, u64::from(count), 0, 0, 0],
    )
}

fn query_size(hv: &mut Hypervisor, dom: u16) -> (i64, u32, u32, i16) {
    hv.t_write(BUF, 0, &[0xaa; 16]);
    hv.t_write(BUF, 0, &dom.to_le_bytes());
    let rc = call(hv, GNTTABOP_QUERY_SIZE, va(BUF, 0), 1);
    let op: GnttabQuerySize = read(hv, 0);
    (rc, op.nr_frames, op.max_nr_frames, op.status)
}

/// setup_table(dom, nr) with the frame list at BUF+0x800; returns (rc, status).
fn setup(hv: &mut Hypervisor, dom: u16, nr: u32) -> (i64, i16) {
    let op = GnttabSetupTable {
        dom,
        nr_frames: nr,
        status: 0x5555,
        frame_list: va(BUF, 0x800),
        ..Default::default()
    };
    hv.t_write(BUF, 0, op.as_slice());
    let rc = call(hv, GNTTABOP_SETUP_TABLE, va(BUF, 0), 1);
    (rc, read::<GnttabSetupTable>(hv, 0).status)
}

fn set_version(hv: &mut Hypervisor, v: u32) -> (i64, u32) {
    hv.t_write(BUF, 0x100, &v.to_le_bytes());
    let rc = call(hv, GNTTABOP_SET_VERSION, va(BUF, 0x100), 1);
    (rc, hv.t_u32(BUF, 0x100))
}

fn get_version(hv: &mut Hypervisor, dom: u16) -> (i64, u32) {
    hv.t_write(BUF, 0x110, &dom.to_le_bytes());
    hv.t_write(BUF, 0x114, &0u32.to_le_bytes());
    let rc = call(hv, GNTTABOP_GET_VERSION, va(BUF, 0x110), 1);
    (rc, hv.t_u32(BUF, 0x114))
}

#[test]
fn query_size_as_grant_table_init_leaves_it() {
    let mut hv = testenv::hypervisor();
    // INITIAL_NR_GRANT_FRAMES = 1, max_grant_frames = opt_max_grant_frames = 64.
    assert_eq!(query_size(&mut hv, SELF), (0, 1, 64, 0));
    // rcu_lock_domain_by_any_id(0) is dom0 itself.
    assert_eq!(query_size(&mut hv, 0), (0, 1, 64, 0));
    // Another domain: GNTST_bad_domain, the rest of the structure copied back unchanged.
    assert_eq!(
        query_size(&mut hv, 1),
        (0, 0xaaaa_aaaa, 0xaaaa_aaaa, GNTST_BAD_DOMAIN)
    );
    // count != 1: -EINVAL.
    assert_eq!(
        call(&mut hv, GNTTABOP_QUERY_SIZE, va(BUF, 0), 2),
        -errno::EINVAL
    );
}

#[test]
fn setup_table_gives_xen_frames_outside_ram_that_the_guest_may_map() {
    let mut hv = testenv::hypervisor();
    assert_eq!(setup(&mut hv, SELF, 4), (0, GNTST_OKAY));
    for i in 0..4u64 {
        let mfn = hv.t_u64(BUF, 0x800 + i * 8);
        assert_eq!(mfn, hv.xen.gnttab_shared_mfn(i));
        assert!(mfn >= testenv::NR, "a frame outside guest RAM");
    }
    assert_eq!(query_size(&mut hv, SELF), (0, 4, 64, 0));
    // XTF's arch_map_gnttab: update_va_mapping(va, pte(frame, AD|RW|P), UVMF_INVLPG).
    let mut ctx = testenv::ctx();
    let pte = mk_pte(
        hv.xen.gnttab_shared_mfn(3),
        _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED,
    );
    let rc = hv.hypercall(
        &mut ctx,
        hc::UPDATE_VA_MAPPING,
        [va(0x200, 0), pte, uvmf::INVLPG, 0, 0, 0],
    );
    assert_eq!(rc, 0);
    // A grant frame not in use yet is Xen's own: refused like any foreign frame.
    let pte = mk_pte(hv.xen.gnttab_shared_mfn(9), _PAGE_PRESENT | _PAGE_ACCESSED);
    let rc = hv.hypercall(
        &mut ctx,
        hc::UPDATE_VA_MAPPING,
        [va(0x201, 0), pte, uvmf::INVLPG, 0, 0, 0],
    );
    assert_ne!(rc, 0);
    // Shrinking is not a thing: asking for fewer lists the first ones, nr_frames stays.
    assert_eq!(setup(&mut hv, 0, 2), (0, GNTST_OKAY));
    assert_eq!(query_size(&mut hv, SELF).1, 4);
}

#[test]
fn setup_table_errors() {
    let mut hv = testenv::hypervisor();
    // "d0 is limited to 64 grant-table frames": GNTST_general_error, rc 0.
    assert_eq!(setup(&mut hv, SELF, 65), (0, GNTST_GENERAL_ERROR));
    assert_eq!(setup(&mut hv, 7, 1), (0, GNTST_BAD_DOMAIN));
    assert_eq!(setup(&mut hv, SELF, 64), (0, GNTST_OKAY));
    // The frame list in Xen's range: guest_handle_okay fails, -EFAULT.
    hv.t_write(BUF, 16, &0xffff_8000_0000_0000u64.to_le_bytes());
    assert_eq!(
        call(&mut hv, GNTTABOP_SETUP_TABLE, va(BUF, 0), 1),
        -errno::EFAULT
    );
    // A read-only frame list (a pagetable frame is mapped RO): GNTST_bad_virt_addr.
    hv.t_write(BUF, 16, &va(testenv::L4, 0).to_le_bytes());
    assert_eq!(call(&mut hv, GNTTABOP_SETUP_TABLE, va(BUF, 0), 1), 0);
    assert_eq!(read::<GnttabSetupTable>(&hv, 0).status, GNTST_BAD_VIRT_ADDR);
    assert_eq!(
        call(&mut hv, GNTTABOP_SETUP_TABLE, va(BUF, 0), 0),
        -errno::EINVAL
    );
}

#[test]
fn dispatch_checks() {
    let mut hv = testenv::hypervisor();
    // (int)count < 0: -EINVAL.
    assert_eq!(
        call(&mut hv, GNTTABOP_QUERY_SIZE, va(BUF, 0), 0x8000_0000),
        -errno::EINVAL
    );
    // Continuation bits on anything but cache_flush: -EINVAL.
    assert_eq!(
        call(&mut hv, GNTTABOP_QUERY_SIZE | 0x1000, va(BUF, 0), 1),
        -errno::EINVAL
    );
    // dump_table and unknown sub-ops: -ENOSYS.
    assert_eq!(
        call(&mut hv, GNTTABOP_DUMP_TABLE, va(BUF, 0), 1),
        -errno::ENOSYS
    );
    assert_eq!(call(&mut hv, 13, va(BUF, 0), 1), -errno::ENOSYS);
}

#[test]
fn versions_and_status_frames() {
    let mut hv = testenv::hypervisor();
    assert_eq!(get_version(&mut hv, SELF), (0, 1));
    assert_eq!(get_version(&mut hv, 3), (-errno::ESRCH, 0));
    // A bad version: -EINVAL, the current version written back.
    assert_eq!(set_version(&mut hv, 3), (-errno::EINVAL, 1));
    assert_eq!(set_version(&mut hv, 1), (0, 1));
    // v1 has no status frames: asking for one is GNTST_general_error, for none okay.
    let gsf = |hv: &mut Hypervisor, nr: u32| {
        hv.t_write(BUF, 0x200, &nr.to_le_bytes());
        hv.t_write(BUF, 0x204, &SELF.to_le_bytes());
        hv.t_write(BUF, 0x208, &va(BUF, 0x900).to_le_bytes());
        let rc = call(hv, GNTTABOP_GET_STATUS_FRAMES, va(BUF, 0x200), 1);
        (rc, hv.t_u16(BUF, 0x206) as i16)
    };
    assert_eq!(gsf(&mut hv, 1), (0, GNTST_GENERAL_ERROR));
    assert_eq!(gsf(&mut hv, 0), (0, GNTST_OKAY));

    // Entry 0 (reserved) survives the switch; entry 9 does not.
    let mut e = [0u8; 8];
    e[0..2].copy_from_slice(&(GTF_PERMIT_ACCESS | GTF_READONLY).to_le_bytes());
    e[2..4].copy_from_slice(&5u16.to_le_bytes());
    e[4..8].copy_from_slice(&0x1234u32.to_le_bytes());
    hv.gnt_write_shared(0, &e);
    hv.gnt_write_shared(9 * 8, &e);
    assert_eq!(set_version(&mut hv, 2), (0, 2));
    assert_eq!(get_version(&mut hv, 0), (0, 2));
    let v2: GrantEntryV2 = entry(&hv, 0);
    assert_eq!(v2.flags, GTF_PERMIT_ACCESS | GTF_READONLY);
    assert_eq!(v2.domid, 5);
    assert_eq!(v2.frame, 0x1234);
    assert_eq!(entry::<GrantEntryV2>(&hv, 9 * 16), GrantEntryV2::default());
    // grant_to_status_frames(1) = 1 status frame, shared with the guest.
    assert_eq!(hv.gnttab.nr_status_frames, 1);
    assert_eq!(gsf(&mut hv, 1), (0, GNTST_OKAY));
    assert_eq!(hv.t_u64(BUF, 0x900), hv.xen.gnttab_status_mfn(0));
    assert_eq!(gsf(&mut hv, 2), (0, GNTST_GENERAL_ERROR));
    // Growing under v2 grows the status frames too: 9 shared frames need 2.
    assert_eq!(setup(&mut hv, SELF, 9), (0, GNTST_OKAY));
    assert_eq!(hv.gnttab.nr_status_frames, 2);

    // A reserved v2 entry with a frame above 4G cannot go back to v1: -ERANGE, still v2.
    let mut big = [0u8; 16];
    big[0..2].copy_from_slice(&GTF_PERMIT_ACCESS.to_le_bytes());
    big[8..16].copy_from_slice(&(1u64 << 32).to_le_bytes());
    hv.gnt_write_shared(16, &big);
    assert_eq!(set_version(&mut hv, 1), (-errno::ERANGE, 2));
    hv.gnt_write_shared(16, &[0u8; 16]);
    // Back to v1: entry 0 again as written, the status bits folded into the flags.
    hv.gnt_set_status(0, 1 << 3);
    assert_eq!(set_version(&mut hv, 1), (0, 1));
    let e1: GrantEntryV1 = entry(&hv, 0);
    assert_eq!(e1.flags, GTF_PERMIT_ACCESS | GTF_READONLY | (1 << 3));
    assert_eq!(e1.domid, 5);
    assert_eq!(e1.frame, 0x1234);
    assert_eq!(hv.gnttab.nr_status_frames, 0);
}

/// One map element: (flags, ref, dom) -> status, with the rest copied back.
fn map(hv: &mut Hypervisor, flags: u32, r: u32, dom: u16) -> i16 {
    let op = GnttabMapGrantRef {
        host_addr: 0x1000,
        flags,
        ref_: r,
        dom,
        handle: 0x7777,
        ..Default::default()
    };
    hv.t_write(BUF, 0x300, op.as_slice());
    assert_eq!(call(hv, GNTTABOP_MAP_GRANT_REF, va(BUF, 0x300), 1), 0);
    let out: GnttabMapGrantRef = read(hv, 0x300);
    assert_eq!(out.handle, 0x7777, "handle copied back as read");
    out.status
}

#[test]
fn map_and_unmap_with_nobody_to_share_with() {
    let mut hv = testenv::hypervisor();
    // No GNTMAP_host_map/device_map: "Bad flags in grant map op", GNTST_bad_gntref.
    assert_eq!(map(&mut hv, GNTMAP_READONLY, 0, 1), GNTST_BAD_GNTREF);
    // rcu_lock_domain_by_id: no domain 1, and DOMID_SELF is no id.
    assert_eq!(map(&mut hv, GNTMAP_HOST_MAP, 0, 1), GNTST_BAD_DOMAIN);
    assert_eq!(map(&mut hv, GNTMAP_HOST_MAP, 0, SELF), GNTST_BAD_DOMAIN);
    // Our own table: ref out of range (512 v1 entries in one frame), then an entry that
    // grants nothing to us (_set_status_v1: GNTST_general_error).
    assert_eq!(map(&mut hv, GNTMAP_HOST_MAP, 512, 0), GNTST_BAD_GNTREF);
    assert_eq!(map(&mut hv, GNTMAP_HOST_MAP, 9, 0), GNTST_GENERAL_ERROR);
    // Unmap: no handle exists (maptrack_limit 0): GNTST_bad_handle for each element.
    for i in 0..3u64 {
        hv.t_write(BUF, 0x400 + i * 24 + 20, &0x5555u16.to_le_bytes());
    }
    assert_eq!(
        call(&mut hv, GNTTABOP_UNMAP_GRANT_REF, va(BUF, 0x400), 3),
        0
    );
    for i in 0..3u64 {
        assert_eq!(hv.t_u16(BUF, 0x400 + i * 24 + 20) as i16, GNTST_BAD_HANDLE);
    }
    assert_eq!(
        call(&mut hv, GNTTABOP_UNMAP_AND_REPLACE, va(BUF, 0x400), 1),
        0
    );
    assert_eq!(hv.t_u16(BUF, 0x400 + 20) as i16, GNTST_BAD_HANDLE);
    // The array in Xen's range: -EFAULT before any element.
    assert_eq!(
        call(&mut hv, GNTTABOP_UNMAP_GRANT_REF, 0xffff_8000_0000_1000, 1),
        -errno::EFAULT
    );
}

#[test]
fn long_batches_continue() {
    let mut hv = testenv::hypervisor();
    let n = 600u64;
    for i in 0..n {
        hv.t_write(BUF, i * 32 % 4096, &[0u8; 32]);
    }
    // 600 elements of 32 bytes span frames BUF..BUF+5 (all writable data).
    let mut ctx = testenv::ctx();
    let a = [u64::from(GNTTABOP_MAP_GRANT_REF), va(BUF, 0), n, 0, 0, 0];
    let rc = hv.hypercall(&mut ctx, hc::GRANT_TABLE_OP, a);
    let c = ctx.continuation.expect("preempted");
    assert_eq!(rc, hc::GRANT_TABLE_OP as i64);
    let done = u64::from(crate::hypercall::PREEMPT_BUDGET);
    assert_eq!(c.args[..3], [a[0], va(BUF, 0) + done * 32, n - done]);
}

fn copy_op(src: (u64, u16, u16), dst: (u64, u16, u16), len: u16, flags: u16) -> GnttabCopy {
    let ptr = |(u, domid, offset)| GnttabCopyPtr {
        u,
        domid,
        offset,
        _pad: 0,
    };
    GnttabCopy {
        source: ptr(src),
        dest: ptr(dst),
        len,
        flags,
        ..Default::default()
    }
}

fn copy(hv: &mut Hypervisor, op: GnttabCopy) -> i16 {
    hv.t_write(BUF, 0x500, op.as_slice());
    assert_eq!(call(hv, GNTTABOP_COPY, va(BUF, 0x500), 1), 0);
    read::<GnttabCopy>(hv, 0x500).status
}

#[test]
fn copy_between_our_own_frames_and_its_errors() {
    let mut hv = testenv::hypervisor();
    hv.t_write(0x300, 0x10, b"granted!");
    let ok = copy_op((0x300, SELF, 0x10), (0x301, SELF, 0x20), 8, 0);
    assert_eq!(copy(&mut hv, ok), GNTST_OKAY);
    assert_eq!(&hv.t_read::<8>(0x301, 0x20), b"granted!");
    // gnttab_copy_lock_domain: a frame of another domain is GNTST_permission_denied, a
    // grant of one GNTST_bad_domain.
    let other = copy_op((0x300, 4, 0), (0x301, SELF, 0), 8, 0);
    assert_eq!(copy(&mut hv, other), GNTST_PERMISSION_DENIED);
    let other = copy_op((1, 4, 0), (0x301, SELF, 0), 8, GNTCOPY_SOURCE_GREF);
    assert_eq!(copy(&mut hv, other), GNTST_BAD_DOMAIN);
    // A frame that is not ours: GNTST_bad_page.
    let bad = copy_op((0x300, SELF, 0), (1 << 30, SELF, 0), 8, 0);
    assert_eq!(copy(&mut hv, bad), GNTST_BAD_PAGE);
    // Writing a pagetable (the L1 at frame 4): get_page_type(PGT_writable_page) fails.
    let pt = copy_op((0x300, SELF, 0), (4, SELF, 0), 8, 0);
    assert_eq!(copy(&mut hv, pt), GNTST_GENERAL_ERROR);
    let l1 = hv.t_u64(4, 0);
    assert_eq!(l1 & 1, 1, "the L1 entry is untouched");
    // Beyond the page: GNTST_bad_copy_arg.
    let far = copy_op((0x300, SELF, 4000), (0x301, SELF, 0), 200, 0);
    assert_eq!(copy(&mut hv, far), GNTST_BAD_COPY_ARG);
    // Our own grant reference out of range: GNTST_bad_gntref.
    let r = copy_op((600, 0, 0), (0x301, SELF, 0), 8, GNTCOPY_SOURCE_GREF);
    assert_eq!(copy(&mut hv, r), GNTST_BAD_GNTREF);
}

#[test]
fn swap_transfer_cache_flush() {
    let mut hv = testenv::hypervisor();
    hv.gnt_write_shared(8, &[1, 0, 2, 0, 3, 0, 0, 0]);
    let swap = |hv: &mut Hypervisor, a: u32, b: u32| {
        hv.t_write(BUF, 0x600, &a.to_le_bytes());
        hv.t_write(BUF, 0x604, &b.to_le_bytes());
        assert_eq!(call(hv, GNTTABOP_SWAP_GRANT_REF, va(BUF, 0x600), 1), 0);
        hv.t_u16(BUF, 0x608) as i16
    };
    assert_eq!(swap(&mut hv, 1, 2), GNTST_OKAY);
    let mut e = [0u8; 8];
    hv.gnt_read_shared(16, &mut e);
    assert_eq!(e, [1, 0, 2, 0, 3, 0, 0, 0]);
    hv.gnt_read_shared(8, &mut e);
    assert_eq!(e, [0; 8]);
    assert_eq!(swap(&mut hv, 1, 512), GNTST_BAD_GNTREF);
    assert_eq!(swap(&mut hv, 3, 3), GNTST_OKAY);

    let transfer = |hv: &mut Hypervisor, mfn: u64, dom: u16| {
        hv.t_write(BUF, 0x700, &mfn.to_le_bytes());
        hv.t_write(BUF, 0x708, &dom.to_le_bytes());
        assert_eq!(call(hv, GNTTABOP_TRANSFER, va(BUF, 0x700), 1), 0);
        hv.t_u16(BUF, 0x710) as i16
    };
    assert_eq!(transfer(&mut hv, 1 << 30, 1), GNTST_BAD_PAGE);
    assert_eq!(transfer(&mut hv, 0x300, 1), GNTST_BAD_DOMAIN);

    let flush = |hv: &mut Hypervisor, addr: u64, off: u16, len: u16, op: u32| {
        hv.t_write(BUF, 0x780, &addr.to_le_bytes());
        hv.t_write(BUF, 0x788, &off.to_le_bytes());
        hv.t_write(BUF, 0x78a, &len.to_le_bytes());
        hv.t_write(BUF, 0x78c, &op.to_le_bytes());
        call(hv, GNTTABOP_CACHE_FLUSH, va(BUF, 0x780), 1)
    };
    assert_eq!(flush(&mut hv, 0x300 << 12, 0, 64, GNTTAB_CACHE_CLEAN), 0);
    let both = GNTTAB_CACHE_CLEAN | GNTTAB_CACHE_INVAL;
    assert_eq!(flush(&mut hv, 0x300 << 12, 0, 64, both), 0);
    // x86's invalidate_dcache_va_range: -EOPNOTSUPP.
    assert_eq!(
        flush(&mut hv, 0x300 << 12, 0, 64, GNTTAB_CACHE_INVAL),
        -errno::EOPNOTSUPP
    );
    assert_eq!(
        flush(&mut hv, 0x300 << 12, 4096, 0, GNTTAB_CACHE_CLEAN),
        -errno::EINVAL
    );
    assert_eq!(flush(&mut hv, 0x300 << 12, 0, 0, 0), 0);
    // One of Xen's own frames (the area's first, an M2P table): no owner, -EPERM.
    let xen_frame = hv.xen.base_frame << 12;
    assert_eq!(
        flush(&mut hv, xen_frame, 0, 64, GNTTAB_CACHE_CLEAN),
        -errno::EPERM
    );
}
