//! `grant_table_op` (grant_table.h): sub-ops, status codes, flags and the layouts of the
//! argument structures as byte offsets (`<STRUCT>_<FIELD>`, `<STRUCT>_SIZE`).

pub const GNTTABOP_MAP_GRANT_REF: u32 = 0;
pub const GNTTABOP_UNMAP_GRANT_REF: u32 = 1;
pub const GNTTABOP_SETUP_TABLE: u32 = 2;
pub const GNTTABOP_DUMP_TABLE: u32 = 3;
pub const GNTTABOP_TRANSFER: u32 = 4;
pub const GNTTABOP_COPY: u32 = 5;
pub const GNTTABOP_QUERY_SIZE: u32 = 6;
pub const GNTTABOP_UNMAP_AND_REPLACE: u32 = 7;
pub const GNTTABOP_SET_VERSION: u32 = 8;
pub const GNTTABOP_GET_STATUS_FRAMES: u32 = 9;
pub const GNTTABOP_GET_VERSION: u32 = 10;
pub const GNTTABOP_SWAP_GRANT_REF: u32 = 11;
pub const GNTTABOP_CACHE_FLUSH: u32 = 12;

pub const GNTST_OKAY: i16 = 0;
pub const GNTST_GENERAL_ERROR: i16 = -1;
pub const GNTST_BAD_DOMAIN: i16 = -2;
pub const GNTST_BAD_GNTREF: i16 = -3;
pub const GNTST_BAD_HANDLE: i16 = -4;
pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
pub const GNTST_PERMISSION_DENIED: i16 = -8;
pub const GNTST_BAD_PAGE: i16 = -9;
pub const GNTST_BAD_COPY_ARG: i16 = -10;
pub const GNTST_EAGAIN: i16 = -12;

pub const GNTMAP_DEVICE_MAP: u32 = 1 << 0;
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
pub const GNTMAP_READONLY: u32 = 1 << 2;
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;
pub const GNTTAB_CACHE_CLEAN: u32 = 1 << 0;
pub const GNTTAB_CACHE_INVAL: u32 = 1 << 1;
pub const GNTTAB_CACHE_SOURCE_GREF: u32 = 1 << 31;

/// Grant entry flags (`GTF_*`).
pub const GTF_PERMIT_ACCESS: u16 = 1;
pub const GTF_TYPE_MASK: u16 = 3;
pub const GTF_READONLY: u16 = 1 << 2;
pub const GTF_SUB_PAGE: u16 = 1 << 8;
pub const GTF_TRANSITIVE: u16 = 3;
pub const GTF_READING: u16 = 1 << 3;
pub const GTF_WRITING: u16 = 1 << 4;
/// Xen's `GNTTABOP_CONTINUATION_ARG_SHIFT` (common/grant_table.c): the sub-op is the low 12
/// bits of `cmd`; the bits above carry `cache_flush`'s continuation state.
pub const GNTTABOP_CMD_MASK: u32 = (1 << 12) - 1;
/// Entries 0..8 are the toolstack's; `set_version` preserves them.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// `sizeof(grant_entry_v1_t)`, `sizeof(grant_entry_v2_t)`, `sizeof(grant_status_t)`.
pub const ENTRY_V1_SIZE: u64 = 8;
pub const ENTRY_V2_SIZE: u64 = 16;
pub const STATUS_SIZE: u64 = 2;

pub const MAP_GRANT_REF_SIZE: u64 = 32;
pub const MAP_GRANT_REF_FLAGS: u64 = 8;
pub const MAP_GRANT_REF_REF: u64 = 12;
pub const MAP_GRANT_REF_DOM: u64 = 16;
pub const MAP_GRANT_REF_STATUS: u64 = 18;
pub const UNMAP_GRANT_REF_SIZE: u64 = 24;
pub const UNMAP_GRANT_REF_HANDLE: u64 = 16;
pub const UNMAP_GRANT_REF_STATUS: u64 = 20;
pub const UNMAP_AND_REPLACE_SIZE: u64 = 24;
pub const UNMAP_AND_REPLACE_HANDLE: u64 = 16;
pub const UNMAP_AND_REPLACE_STATUS: u64 = 20;
pub const SETUP_TABLE_SIZE: u64 = 24;
pub const SETUP_TABLE_NR_FRAMES: u64 = 4;
pub const SETUP_TABLE_STATUS: u64 = 8;
pub const SETUP_TABLE_FRAME_LIST: u64 = 16;
pub const TRANSFER_SIZE: u64 = 24;
pub const TRANSFER_DOMID: u64 = 8;
pub const TRANSFER_STATUS: u64 = 16;
pub const COPY_SIZE: u64 = 40;
pub const COPY_SOURCE: u64 = 0;
pub const COPY_DEST: u64 = 16;
pub const COPY_PTR_DOMID: u64 = 8;
pub const COPY_PTR_OFFSET: u64 = 10;
pub const COPY_LEN: u64 = 32;
pub const COPY_FLAGS: u64 = 34;
pub const COPY_STATUS: u64 = 36;
pub const QUERY_SIZE_SIZE: u64 = 16;
pub const QUERY_SIZE_NR_FRAMES: u64 = 4;
pub const QUERY_SIZE_MAX_NR_FRAMES: u64 = 8;
pub const QUERY_SIZE_STATUS: u64 = 12;
pub const SET_VERSION_SIZE: u64 = 4;
pub const GET_STATUS_FRAMES_SIZE: u64 = 16;
pub const GET_STATUS_FRAMES_DOM: u64 = 4;
pub const GET_STATUS_FRAMES_STATUS: u64 = 6;
pub const GET_STATUS_FRAMES_FRAME_LIST: u64 = 8;
pub const GET_VERSION_SIZE: u64 = 8;
pub const GET_VERSION_VERSION: u64 = 4;
pub const SWAP_GRANT_REF_SIZE: u64 = 12;
pub const SWAP_GRANT_REF_REF_B: u64 = 4;
pub const SWAP_GRANT_REF_STATUS: u64 = 8;
pub const CACHE_FLUSH_SIZE: u64 = 16;
pub const CACHE_FLUSH_OFFSET: u64 = 8;
pub const CACHE_FLUSH_LENGTH: u64 = 10;
pub const CACHE_FLUSH_OP: u64 = 12;
