//! `grant_table_op` (grant_table.h): sub-ops, status codes, flags, the grant entries and the
//! argument structures.

use super::{field_size, size_check, Check};
use pagetable_validator::abi::gnttab::{
    self, GnttabCacheFlush, GnttabCopy, GnttabCopyPtr, GnttabGetStatusFrames, GnttabGetVersion,
    GnttabMapGrantRef, GnttabQuerySize, GnttabSetVersion, GnttabSetupTable, GnttabSwapGrantRef,
    GnttabTransfer, GnttabUnmapAndReplace, GnttabUnmapGrantRef, GrantEntryHeader, GrantEntryV1,
    GrantEntryV2,
};
use std::mem::{offset_of, size_of};

pub fn constant_checks() -> Vec<Check> {
    let mut v = consts! {
        gnttab::GNTTABOP_MAP_GRANT_REF => "GNTTABOP_map_grant_ref",
        gnttab::GNTTABOP_UNMAP_GRANT_REF => "GNTTABOP_unmap_grant_ref",
        gnttab::GNTTABOP_SETUP_TABLE => "GNTTABOP_setup_table",
        gnttab::GNTTABOP_DUMP_TABLE => "GNTTABOP_dump_table",
        gnttab::GNTTABOP_TRANSFER => "GNTTABOP_transfer",
        gnttab::GNTTABOP_COPY => "GNTTABOP_copy",
        gnttab::GNTTABOP_QUERY_SIZE => "GNTTABOP_query_size",
        gnttab::GNTTABOP_UNMAP_AND_REPLACE => "GNTTABOP_unmap_and_replace",
        gnttab::GNTTABOP_SET_VERSION => "GNTTABOP_set_version",
        gnttab::GNTTABOP_GET_STATUS_FRAMES => "GNTTABOP_get_status_frames",
        gnttab::GNTTABOP_GET_VERSION => "GNTTABOP_get_version",
        gnttab::GNTTABOP_SWAP_GRANT_REF => "GNTTABOP_swap_grant_ref",
        gnttab::GNTTABOP_CACHE_FLUSH => "GNTTABOP_cache_flush",
        gnttab::GNTMAP_DEVICE_MAP => "GNTMAP_device_map",
        gnttab::GNTMAP_HOST_MAP => "GNTMAP_host_map",
        gnttab::GNTMAP_READONLY => "GNTMAP_readonly",
        gnttab::GNTCOPY_SOURCE_GREF => "GNTCOPY_source_gref",
        gnttab::GNTCOPY_DEST_GREF => "GNTCOPY_dest_gref",
        gnttab::GNTTAB_CACHE_CLEAN => "GNTTAB_CACHE_CLEAN",
        gnttab::GNTTAB_CACHE_INVAL => "GNTTAB_CACHE_INVAL",
        gnttab::GNTTAB_CACHE_SOURCE_GREF => "GNTTAB_CACHE_SOURCE_GREF",
        gnttab::GTF_PERMIT_ACCESS => "GTF_permit_access",
        gnttab::GTF_TYPE_MASK => "GTF_type_mask",
        gnttab::GTF_READONLY => "GTF_readonly",
        gnttab::GTF_SUB_PAGE => "GTF_sub_page",
        gnttab::GTF_TRANSITIVE => "GTF_transitive",
        gnttab::GTF_READING => "GTF_reading",
        gnttab::GTF_WRITING => "GTF_writing",
        gnttab::GNTTAB_NR_RESERVED_ENTRIES => "GNTTAB_NR_RESERVED_ENTRIES",
        gnttab::STATUS_SIZE => "sizeof(grant_status_t)",
    };
    // The status codes are negative in the headers: compared negated, so the C side prints a
    // positive value.
    v.extend(vec![
        neg!(gnttab::GNTST_OKAY, "GNTST_okay"),
        neg!(gnttab::GNTST_GENERAL_ERROR, "GNTST_general_error"),
        neg!(gnttab::GNTST_BAD_DOMAIN, "GNTST_bad_domain"),
        neg!(gnttab::GNTST_BAD_GNTREF, "GNTST_bad_gntref"),
        neg!(gnttab::GNTST_BAD_HANDLE, "GNTST_bad_handle"),
        neg!(gnttab::GNTST_BAD_VIRT_ADDR, "GNTST_bad_virt_addr"),
        neg!(gnttab::GNTST_PERMISSION_DENIED, "GNTST_permission_denied"),
        neg!(gnttab::GNTST_BAD_PAGE, "GNTST_bad_page"),
        neg!(gnttab::GNTST_BAD_COPY_ARG, "GNTST_bad_copy_arg"),
        neg!(gnttab::GNTST_EAGAIN, "GNTST_eagain"),
    ]);
    v
}

pub fn layout_checks() -> Vec<Check> {
    const V1: &str = "struct grant_entry_v1";
    const HDR: &str = "struct grant_entry_header";
    const V2: &str = "union grant_entry_v2";
    const MAP: &str = "struct gnttab_map_grant_ref";
    const UNMAP: &str = "struct gnttab_unmap_grant_ref";
    const UAR: &str = "struct gnttab_unmap_and_replace";
    const SETUP: &str = "struct gnttab_setup_table";
    const XFER: &str = "struct gnttab_transfer";
    const PTR: &str = "struct gnttab_copy_ptr";
    const COPY: &str = "struct gnttab_copy";
    const QUERY: &str = "struct gnttab_query_size";
    const SETV: &str = "struct gnttab_set_version";
    const GSF: &str = "struct gnttab_get_status_frames";
    const GETV: &str = "struct gnttab_get_version";
    const SWAP: &str = "struct gnttab_swap_grant_ref";
    const FLUSH: &str = "struct gnttab_cache_flush";
    let mut v = vec![
        size_check("GrantEntryV1", V1, size_of::<GrantEntryV1>()),
        size_check("GrantEntryHeader", HDR, size_of::<GrantEntryHeader>()),
        size_check("GrantEntryV2", V2, size_of::<GrantEntryV2>()),
        size_check("GnttabMapGrantRef", MAP, size_of::<GnttabMapGrantRef>()),
        size_check(
            "GnttabUnmapGrantRef",
            UNMAP,
            size_of::<GnttabUnmapGrantRef>(),
        ),
        size_check(
            "GnttabUnmapAndReplace",
            UAR,
            size_of::<GnttabUnmapAndReplace>(),
        ),
        size_check("GnttabSetupTable", SETUP, size_of::<GnttabSetupTable>()),
        size_check("GnttabTransfer", XFER, size_of::<GnttabTransfer>()),
        size_check("GnttabCopyPtr", PTR, size_of::<GnttabCopyPtr>()),
        size_check("GnttabCopy", COPY, size_of::<GnttabCopy>()),
        size_check("GnttabQuerySize", QUERY, size_of::<GnttabQuerySize>()),
        size_check("GnttabSetVersion", SETV, size_of::<GnttabSetVersion>()),
        size_check(
            "GnttabGetStatusFrames",
            GSF,
            size_of::<GnttabGetStatusFrames>(),
        ),
        size_check("GnttabGetVersion", GETV, size_of::<GnttabGetVersion>()),
        size_check("GnttabSwapGrantRef", SWAP, size_of::<GnttabSwapGrantRef>()),
        size_check("GnttabCacheFlush", FLUSH, size_of::<GnttabCacheFlush>()),
    ];
    v.extend(field!(GrantEntryV1, flags, V1, "flags"));
    v.extend(field!(GrantEntryV1, domid, V1, "domid"));
    v.extend(field!(GrantEntryV1, frame, V1, "frame"));
    v.extend(field!(GrantEntryHeader, flags, HDR, "flags"));
    v.extend(field!(GrantEntryHeader, domid, HDR, "domid"));
    v.extend(field!(GrantEntryV2, flags, V2, "full_page.hdr.flags"));
    v.extend(field!(GrantEntryV2, domid, V2, "full_page.hdr.domid"));
    v.extend(field!(GrantEntryV2, pad0, V2, "full_page.pad0"));
    v.extend(field!(GrantEntryV2, frame, V2, "full_page.frame"));
    v.push(Check {
        ours: "GrantEntryV2.frame@offset (as sub_page.frame)".into(),
        c_expr: format!("offsetof({V2}, sub_page.frame)"),
        value: offset_of!(GrantEntryV2, frame) as i128,
    });
    v.extend(field!(GnttabMapGrantRef, host_addr, MAP, "host_addr"));
    v.extend(field!(GnttabMapGrantRef, flags, MAP, "flags"));
    v.extend(field!(GnttabMapGrantRef, ref_, MAP, "ref"));
    v.extend(field!(GnttabMapGrantRef, dom, MAP, "dom"));
    v.extend(field!(GnttabMapGrantRef, status, MAP, "status"));
    v.extend(field!(GnttabMapGrantRef, handle, MAP, "handle"));
    v.extend(field!(GnttabMapGrantRef, dev_bus_addr, MAP, "dev_bus_addr"));
    v.extend(field!(GnttabUnmapGrantRef, host_addr, UNMAP, "host_addr"));
    v.extend(field!(
        GnttabUnmapGrantRef,
        dev_bus_addr,
        UNMAP,
        "dev_bus_addr"
    ));
    v.extend(field!(GnttabUnmapGrantRef, handle, UNMAP, "handle"));
    v.extend(field!(GnttabUnmapGrantRef, status, UNMAP, "status"));
    v.extend(pad!(GnttabUnmapGrantRef, _pad, UNMAP, "status"));
    v.extend(field!(GnttabUnmapAndReplace, host_addr, UAR, "host_addr"));
    v.extend(field!(GnttabUnmapAndReplace, new_addr, UAR, "new_addr"));
    v.extend(field!(GnttabUnmapAndReplace, handle, UAR, "handle"));
    v.extend(field!(GnttabUnmapAndReplace, status, UAR, "status"));
    v.extend(pad!(GnttabUnmapAndReplace, _pad, UAR, "status"));
    v.extend(field!(GnttabSetupTable, dom, SETUP, "dom"));
    v.extend(pad!(GnttabSetupTable, _pad0, SETUP, "dom", "nr_frames"));
    v.extend(field!(GnttabSetupTable, nr_frames, SETUP, "nr_frames"));
    v.extend(field!(GnttabSetupTable, status, SETUP, "status"));
    v.extend(pad!(GnttabSetupTable, _pad1, SETUP, "status", "frame_list"));
    v.extend(field!(GnttabSetupTable, frame_list, SETUP, "frame_list"));
    v.extend(field!(GnttabTransfer, mfn, XFER, "mfn"));
    v.extend(field!(GnttabTransfer, domid, XFER, "domid"));
    v.extend(pad!(GnttabTransfer, _pad0, XFER, "domid", "ref"));
    v.extend(field!(GnttabTransfer, ref_, XFER, "ref"));
    v.extend(field!(GnttabTransfer, status, XFER, "status"));
    v.extend(pad!(GnttabTransfer, _pad1, XFER, "status"));
    v.extend(field!(GnttabCopyPtr, u, PTR, "u.gmfn"));
    v.push(Check {
        ours: "GnttabCopyPtr.u@offset (as u.ref)".into(),
        c_expr: format!("offsetof({PTR}, u.ref)"),
        value: offset_of!(GnttabCopyPtr, u) as i128,
    });
    v.extend(field!(GnttabCopyPtr, domid, PTR, "domid"));
    v.extend(field!(GnttabCopyPtr, offset, PTR, "offset"));
    v.extend(pad!(GnttabCopyPtr, _pad, PTR, "offset"));
    v.extend(field!(GnttabCopy, source, COPY, "source"));
    v.extend(field!(GnttabCopy, dest, COPY, "dest"));
    v.extend(field!(GnttabCopy, len, COPY, "len"));
    v.extend(field!(GnttabCopy, flags, COPY, "flags"));
    v.extend(field!(GnttabCopy, status, COPY, "status"));
    v.extend(pad!(GnttabCopy, _pad, COPY, "status"));
    v.extend(field!(GnttabQuerySize, dom, QUERY, "dom"));
    v.extend(pad!(GnttabQuerySize, _pad0, QUERY, "dom", "nr_frames"));
    v.extend(field!(GnttabQuerySize, nr_frames, QUERY, "nr_frames"));
    v.extend(field!(
        GnttabQuerySize,
        max_nr_frames,
        QUERY,
        "max_nr_frames"
    ));
    v.extend(field!(GnttabQuerySize, status, QUERY, "status"));
    v.extend(pad!(GnttabQuerySize, _pad1, QUERY, "status"));
    v.extend(field!(GnttabSetVersion, version, SETV, "version"));
    v.extend(field!(GnttabGetStatusFrames, nr_frames, GSF, "nr_frames"));
    v.extend(field!(GnttabGetStatusFrames, dom, GSF, "dom"));
    v.extend(field!(GnttabGetStatusFrames, status, GSF, "status"));
    v.extend(field!(GnttabGetStatusFrames, frame_list, GSF, "frame_list"));
    v.extend(field!(GnttabGetVersion, dom, GETV, "dom"));
    v.extend(field!(GnttabGetVersion, pad, GETV, "pad"));
    v.extend(field!(GnttabGetVersion, version, GETV, "version"));
    v.extend(field!(GnttabSwapGrantRef, ref_a, SWAP, "ref_a"));
    v.extend(field!(GnttabSwapGrantRef, ref_b, SWAP, "ref_b"));
    v.extend(field!(GnttabSwapGrantRef, status, SWAP, "status"));
    v.extend(pad!(GnttabSwapGrantRef, _pad, SWAP, "status"));
    v.extend(field!(GnttabCacheFlush, a, FLUSH, "a.dev_bus_addr"));
    v.push(Check {
        ours: "GnttabCacheFlush.a@offset (as a.ref)".into(),
        c_expr: format!("offsetof({FLUSH}, a.ref)"),
        value: offset_of!(GnttabCacheFlush, a) as i128,
    });
    v.extend(field!(GnttabCacheFlush, offset, FLUSH, "offset"));
    v.extend(field!(GnttabCacheFlush, length, FLUSH, "length"));
    v.extend(field!(GnttabCacheFlush, op, FLUSH, "op"));
    v
}
