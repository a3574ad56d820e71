//! Checks `pagetable_validator::abi` (and the header-derivable parts of `pte`) against
//! Xen's real public headers from Debian's `libxen-dev`.
//!
//! The test is table-driven: every row pairs one of our values (a constant, a field
//! offset or a field size) with a C expression over the headers. A generated C program
//! prints each expression; every row whose value differs is listed in one failure.
//! A second test parses `abi.rs` itself so that a constant or struct field added there
//! without a row here fails too (unless exempted below with a reason).

use pagetable_validator::abi::{
    self, console, domid, elfnote, errno, hypercall, mmu, mmuext, sched, sif, start_info_offset,
    uvmf, version, MmuUpdate, MmuextOp, MulticallEntry, StartInfo,
};
use pagetable_validator::pte;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One comparison: our value against a C expression evaluated with Xen's headers.
#[derive(Clone, Debug)]
struct Check {
    /// Our name: `module::CONST` for constants, `Struct.field@offset` / `@size` for layouts.
    ours: String,
    /// C expression evaluated against the headers.
    c_expr: String,
    value: i128,
}

/// Constants whose value the public headers do not carry, with the reason.
/// These are the only names of `abi.rs` the layout test does not compare.
const EXEMPT: &[(&str, &str)] = &[
    (
        "hypercall::STUB_SIZE",
        "hypercall page stub size is set by Xen's hypercall_page_initialise, not a public header",
    ),
    ("hypercall::NR_STUBS", "derived: 4096 / STUB_SIZE"),
    (
        "START_INFO_MAGIC",
        "xen.h only documents the format \"xen-<version>-<platform>\"; the value comes from the domain builder",
    ),
];

/// `check!(path, "C expr")`: a constant compared with a C expression.
macro_rules! check {
    ($ours:path, $c:expr) => {
        Check {
            ours: stringify!($ours).replace(' ', ""),
            c_expr: String::from($c),
            value: $ours as i128,
        }
    };
}

/// Size of a field, named through an accessor so no instance is needed.
fn field_size<S, F>(_: fn(&S) -> &F) -> usize {
    size_of::<F>()
}

/// `field!(RustStruct, rust_field, "struct c_name", "c.member")`: offset and size.
macro_rules! field {
    ($s:ident, $f:ident, $cs:expr, $cf:expr) => {
        [
            Check {
                ours: format!("{}.{}@offset", stringify!($s), stringify!($f)),
                c_expr: format!("offsetof({}, {})", $cs, $cf),
                value: offset_of!($s, $f) as i128,
            },
            Check {
                ours: format!("{}.{}@size", stringify!($s), stringify!($f)),
                c_expr: format!("sizeof((({} *)0)->{})", $cs, $cf),
                value: field_size(|s: &$s| &s.$f) as i128,
            },
        ]
    };
}

/// `pad!(RustStruct, pad_field, "struct c_name", "c.prev", "c.next")`: our explicit
/// padding field must sit exactly in the C compiler's gap between `prev` and `next`.
macro_rules! pad {
    ($s:ident, $f:ident, $cs:expr, $prev:expr, $next:expr) => {{
        let end_prev = format!(
            "(offsetof({cs}, {p}) + sizeof((({cs} *)0)->{p}))",
            cs = $cs,
            p = $prev
        );
        [
            Check {
                ours: format!("{}.{}@offset", stringify!($s), stringify!($f)),
                c_expr: end_prev.clone(),
                value: offset_of!($s, $f) as i128,
            },
            Check {
                ours: format!("{}.{}@size", stringify!($s), stringify!($f)),
                c_expr: format!("(offsetof({}, {}) - {})", $cs, $next, end_prev),
                value: field_size(|s: &$s| &s.$f) as i128,
            },
        ]
    }};
}

fn size_check(name: &str, c_type: &str, value: usize) -> Check {
    Check {
        ours: format!("{name}@sizeof"),
        c_expr: format!("sizeof({c_type})"),
        value: value as i128,
    }
}

fn constant_checks() -> Vec<Check> {
    vec![
        // Hypercall numbers (xen.h).
        check!(hypercall::SET_TRAP_TABLE, "__HYPERVISOR_set_trap_table"),
        check!(hypercall::MMU_UPDATE, "__HYPERVISOR_mmu_update"),
        check!(hypercall::SET_GDT, "__HYPERVISOR_set_gdt"),
        check!(hypercall::STACK_SWITCH, "__HYPERVISOR_stack_switch"),
        check!(hypercall::SET_CALLBACKS, "__HYPERVISOR_set_callbacks"),
        check!(hypercall::FPU_TASKSWITCH, "__HYPERVISOR_fpu_taskswitch"),
        check!(hypercall::SCHED_OP_COMPAT, "__HYPERVISOR_sched_op_compat"),
        check!(hypercall::PLATFORM_OP, "__HYPERVISOR_platform_op"),
        check!(hypercall::SET_DEBUGREG, "__HYPERVISOR_set_debugreg"),
        check!(hypercall::GET_DEBUGREG, "__HYPERVISOR_get_debugreg"),
        check!(hypercall::UPDATE_DESCRIPTOR, "__HYPERVISOR_update_descriptor"),
        check!(hypercall::MEMORY_OP, "__HYPERVISOR_memory_op"),
        check!(hypercall::MULTICALL, "__HYPERVISOR_multicall"),
        check!(hypercall::UPDATE_VA_MAPPING, "__HYPERVISOR_update_va_mapping"),
        check!(hypercall::SET_TIMER_OP, "__HYPERVISOR_set_timer_op"),
        check!(
            hypercall::EVENT_CHANNEL_OP_COMPAT,
            "__HYPERVISOR_event_channel_op_compat"
        ),
        check!(hypercall::XEN_VERSION, "__HYPERVISOR_xen_version"),
        check!(hypercall::CONSOLE_IO, "__HYPERVISOR_console_io"),
        check!(hypercall::PHYSDEV_OP_COMPAT, "__HYPERVISOR_physdev_op_compat"),
        check!(hypercall::GRANT_TABLE_OP, "__HYPERVISOR_grant_table_op"),
        check!(hypercall::VM_ASSIST, "__HYPERVISOR_vm_assist"),
        check!(
            hypercall::UPDATE_VA_MAPPING_OTHERDOMAIN,
            "__HYPERVISOR_update_va_mapping_otherdomain"
        ),
        check!(hypercall::IRET, "__HYPERVISOR_iret"),
        check!(hypercall::VCPU_OP, "__HYPERVISOR_vcpu_op"),
        check!(hypercall::SET_SEGMENT_BASE, "__HYPERVISOR_set_segment_base"),
        check!(hypercall::MMUEXT_OP, "__HYPERVISOR_mmuext_op"),
        check!(hypercall::XSM_OP, "__HYPERVISOR_xsm_op"),
        check!(hypercall::NMI_OP, "__HYPERVISOR_nmi_op"),
        check!(hypercall::SCHED_OP, "__HYPERVISOR_sched_op"),
        check!(hypercall::CALLBACK_OP, "__HYPERVISOR_callback_op"),
        check!(hypercall::XENOPROF_OP, "__HYPERVISOR_xenoprof_op"),
        check!(hypercall::EVENT_CHANNEL_OP, "__HYPERVISOR_event_channel_op"),
        check!(hypercall::PHYSDEV_OP, "__HYPERVISOR_physdev_op"),
        check!(hypercall::HVM_OP, "__HYPERVISOR_hvm_op"),
        check!(hypercall::SYSCTL, "__HYPERVISOR_sysctl"),
        check!(hypercall::DOMCTL, "__HYPERVISOR_domctl"),
        check!(hypercall::KEXEC_OP, "__HYPERVISOR_kexec_op"),
        // mmu_update commands (xen.h). The command lives in ptr[1:0], so the mask
        // must be exactly the union of all commands.
        check!(mmu::NORMAL_PT_UPDATE, "MMU_NORMAL_PT_UPDATE"),
        check!(mmu::MACHPHYS_UPDATE, "MMU_MACHPHYS_UPDATE"),
        check!(mmu::PT_UPDATE_PRESERVE_AD, "MMU_PT_UPDATE_PRESERVE_AD"),
        check!(mmu::PT_UPDATE_NO_TRANSLATE, "MMU_PT_UPDATE_NO_TRANSLATE"),
        check!(
            mmu::CMD_MASK,
            "(MMU_NORMAL_PT_UPDATE | MMU_MACHPHYS_UPDATE | MMU_PT_UPDATE_PRESERVE_AD | MMU_PT_UPDATE_NO_TRANSLATE)"
        ),
        // mmuext_op commands (xen.h).
        check!(mmuext::PIN_L1_TABLE, "MMUEXT_PIN_L1_TABLE"),
        check!(mmuext::PIN_L2_TABLE, "MMUEXT_PIN_L2_TABLE"),
        check!(mmuext::PIN_L3_TABLE, "MMUEXT_PIN_L3_TABLE"),
        check!(mmuext::PIN_L4_TABLE, "MMUEXT_PIN_L4_TABLE"),
        check!(mmuext::UNPIN_TABLE, "MMUEXT_UNPIN_TABLE"),
        check!(mmuext::NEW_BASEPTR, "MMUEXT_NEW_BASEPTR"),
        check!(mmuext::TLB_FLUSH_LOCAL, "MMUEXT_TLB_FLUSH_LOCAL"),
        check!(mmuext::INVLPG_LOCAL, "MMUEXT_INVLPG_LOCAL"),
        check!(mmuext::TLB_FLUSH_MULTI, "MMUEXT_TLB_FLUSH_MULTI"),
        check!(mmuext::INVLPG_MULTI, "MMUEXT_INVLPG_MULTI"),
        check!(mmuext::TLB_FLUSH_ALL, "MMUEXT_TLB_FLUSH_ALL"),
        check!(mmuext::INVLPG_ALL, "MMUEXT_INVLPG_ALL"),
        check!(mmuext::FLUSH_CACHE, "MMUEXT_FLUSH_CACHE"),
        check!(mmuext::SET_LDT, "MMUEXT_SET_LDT"),
        check!(mmuext::NEW_USER_BASEPTR, "MMUEXT_NEW_USER_BASEPTR"),
        check!(mmuext::CLEAR_PAGE, "MMUEXT_CLEAR_PAGE"),
        check!(mmuext::COPY_PAGE, "MMUEXT_COPY_PAGE"),
        check!(mmuext::MARK_SUPER, "MMUEXT_MARK_SUPER"),
        check!(mmuext::UNMARK_SUPER, "MMUEXT_UNMARK_SUPER"),
        check!(mmuext::FLUSH_CACHE_GLOBAL, "MMUEXT_FLUSH_CACHE_GLOBAL"),
        // update_va_mapping flags (xen.h).
        check!(uvmf::NONE, "UVMF_NONE"),
        check!(uvmf::TLB_FLUSH, "UVMF_TLB_FLUSH"),
        check!(uvmf::INVLPG, "UVMF_INVLPG"),
        check!(uvmf::FLUSHTYPE_MASK, "UVMF_FLUSHTYPE_MASK"),
        check!(uvmf::MULTI, "UVMF_MULTI"),
        check!(uvmf::LOCAL, "UVMF_LOCAL"),
        check!(uvmf::ALL, "UVMF_ALL"),
        // sched_op (sched.h).
        check!(sched::SCHEDOP_YIELD, "SCHEDOP_yield"),
        check!(sched::SCHEDOP_BLOCK, "SCHEDOP_block"),
        check!(sched::SCHEDOP_SHUTDOWN, "SCHEDOP_shutdown"),
        check!(sched::SCHEDOP_POLL, "SCHEDOP_poll"),
        check!(sched::SCHEDOP_REMOTE_SHUTDOWN, "SCHEDOP_remote_shutdown"),
        check!(sched::SCHEDOP_SHUTDOWN_CODE, "SCHEDOP_shutdown_code"),
        check!(sched::SCHEDOP_WATCHDOG, "SCHEDOP_watchdog"),
        check!(sched::SHUTDOWN_POWEROFF, "SHUTDOWN_poweroff"),
        check!(sched::SHUTDOWN_REBOOT, "SHUTDOWN_reboot"),
        check!(sched::SHUTDOWN_SUSPEND, "SHUTDOWN_suspend"),
        check!(sched::SHUTDOWN_CRASH, "SHUTDOWN_crash"),
        check!(sched::SHUTDOWN_WATCHDOG, "SHUTDOWN_watchdog"),
        // console_io (xen.h).
        check!(console::CONSOLEIO_WRITE, "CONSOLEIO_write"),
        check!(console::CONSOLEIO_READ, "CONSOLEIO_read"),
        // xen_version (version.h).
        check!(version::XENVER_VERSION, "XENVER_version"),
        check!(version::XENVER_EXTRAVERSION, "XENVER_extraversion"),
        check!(version::XENVER_COMPILE_INFO, "XENVER_compile_info"),
        check!(version::XENVER_CAPABILITIES, "XENVER_capabilities"),
        check!(version::XENVER_CHANGESET, "XENVER_changeset"),
        check!(
            version::XENVER_PLATFORM_PARAMETERS,
            "XENVER_platform_parameters"
        ),
        check!(version::XENVER_GET_FEATURES, "XENVER_get_features"),
        check!(version::XENVER_PAGESIZE, "XENVER_pagesize"),
        check!(version::EXTRAVERSION_LEN, "XEN_EXTRAVERSION_LEN"),
        // Domain ids (xen.h).
        check!(domid::DOMID_SELF, "DOMID_SELF"),
        check!(domid::DOMID_IO, "DOMID_IO"),
        check!(domid::DOMID_XEN, "DOMID_XEN"),
        check!(domid::DOMID_COW, "DOMID_COW"),
        check!(domid::DOMID_INVALID, "DOMID_INVALID"),
        check!(domid::DOMID_IDLE, "DOMID_IDLE"),
        // errno (errno.h). XENKVM_E* is the header's full list, including the
        // Xen-internal EINTR, generated by the C program (see C_PRELUDE).
        check!(errno::EPERM, "XENKVM_EPERM"),
        check!(errno::ENOENT, "XENKVM_ENOENT"),
        check!(errno::ESRCH, "XENKVM_ESRCH"),
        check!(errno::EINTR, "XENKVM_EINTR"),
        check!(errno::EIO, "XENKVM_EIO"),
        check!(errno::E2BIG, "XENKVM_E2BIG"),
        check!(errno::EAGAIN, "XENKVM_EAGAIN"),
        check!(errno::ENOMEM, "XENKVM_ENOMEM"),
        check!(errno::EACCES, "XENKVM_EACCES"),
        check!(errno::EFAULT, "XENKVM_EFAULT"),
        check!(errno::EBUSY, "XENKVM_EBUSY"),
        check!(errno::EEXIST, "XENKVM_EEXIST"),
        check!(errno::EINVAL, "XENKVM_EINVAL"),
        check!(errno::ENOSPC, "XENKVM_ENOSPC"),
        check!(errno::ERANGE, "XENKVM_ERANGE"),
        check!(errno::ENOSYS, "XENKVM_ENOSYS"),
        check!(errno::EOPNOTSUPP, "XENKVM_EOPNOTSUPP"),
        // ELF notes (elfnote.h).
        check!(elfnote::INFO, "XEN_ELFNOTE_INFO"),
        check!(elfnote::ENTRY, "XEN_ELFNOTE_ENTRY"),
        check!(elfnote::HYPERCALL_PAGE, "XEN_ELFNOTE_HYPERCALL_PAGE"),
        check!(elfnote::VIRT_BASE, "XEN_ELFNOTE_VIRT_BASE"),
        check!(elfnote::PADDR_OFFSET, "XEN_ELFNOTE_PADDR_OFFSET"),
        check!(elfnote::XEN_VERSION, "XEN_ELFNOTE_XEN_VERSION"),
        check!(elfnote::GUEST_OS, "XEN_ELFNOTE_GUEST_OS"),
        check!(elfnote::GUEST_VERSION, "XEN_ELFNOTE_GUEST_VERSION"),
        check!(elfnote::LOADER, "XEN_ELFNOTE_LOADER"),
        check!(elfnote::PAE_MODE, "XEN_ELFNOTE_PAE_MODE"),
        check!(elfnote::FEATURES, "XEN_ELFNOTE_FEATURES"),
        check!(elfnote::BSD_SYMTAB, "XEN_ELFNOTE_BSD_SYMTAB"),
        check!(elfnote::HV_START_LOW, "XEN_ELFNOTE_HV_START_LOW"),
        check!(elfnote::L1_MFN_VALID, "XEN_ELFNOTE_L1_MFN_VALID"),
        check!(elfnote::SUSPEND_CANCEL, "XEN_ELFNOTE_SUSPEND_CANCEL"),
        check!(elfnote::INIT_P2M, "XEN_ELFNOTE_INIT_P2M"),
        check!(elfnote::MOD_START_PFN, "XEN_ELFNOTE_MOD_START_PFN"),
        check!(
            elfnote::SUPPORTED_FEATURES,
            "XEN_ELFNOTE_SUPPORTED_FEATURES"
        ),
        check!(elfnote::PHYS32_ENTRY, "XEN_ELFNOTE_PHYS32_ENTRY"),
        // start_info.flags (xen.h).
        check!(sif::PRIVILEGED, "SIF_PRIVILEGED"),
        check!(sif::INITDOMAIN, "SIF_INITDOMAIN"),
        check!(sif::MULTIBOOT_MOD, "SIF_MULTIBOOT_MOD"),
        check!(sif::MOD_START_PFN, "SIF_MOD_START_PFN"),
        check!(sif::VIRT_P2M_4TOOLS, "SIF_VIRT_P2M_4TOOLS"),
        // Reserved L4 slots: the L4 indices of Xen's hole (arch-x86/xen-x86_64.h).
        check!(
            abi::ROOT_PAGETABLE_FIRST_XEN_SLOT,
            "((HYPERVISOR_VIRT_START >> 39) & 511)"
        ),
        check!(
            abi::ROOT_PAGETABLE_LAST_XEN_SLOT,
            "(((HYPERVISOR_VIRT_END - 1) >> 39) & 511)"
        ),
        check!(abi::MAX_GUEST_CMDLINE, "MAX_GUEST_CMDLINE"),
        // start_info offsets we publish as constants.
        check!(start_info_offset::MAGIC, "offsetof(struct start_info, magic)"),
        check!(
            start_info_offset::NR_PAGES,
            "offsetof(struct start_info, nr_pages)"
        ),
        check!(
            start_info_offset::SHARED_INFO,
            "offsetof(struct start_info, shared_info)"
        ),
        check!(start_info_offset::FLAGS, "offsetof(struct start_info, flags)"),
        check!(
            start_info_offset::STORE_MFN,
            "offsetof(struct start_info, store_mfn)"
        ),
        check!(
            start_info_offset::STORE_EVTCHN,
            "offsetof(struct start_info, store_evtchn)"
        ),
        check!(
            start_info_offset::CONSOLE,
            "offsetof(struct start_info, console)"
        ),
        check!(
            start_info_offset::PT_BASE,
            "offsetof(struct start_info, pt_base)"
        ),
        check!(
            start_info_offset::NR_PT_FRAMES,
            "offsetof(struct start_info, nr_pt_frames)"
        ),
        check!(
            start_info_offset::MFN_LIST,
            "offsetof(struct start_info, mfn_list)"
        ),
        check!(
            start_info_offset::MOD_START,
            "offsetof(struct start_info, mod_start)"
        ),
        check!(
            start_info_offset::MOD_LEN,
            "offsetof(struct start_info, mod_len)"
        ),
        check!(
            start_info_offset::CMD_LINE,
            "offsetof(struct start_info, cmd_line)"
        ),
        check!(
            start_info_offset::FIRST_P2M_PFN,
            "offsetof(struct start_info, first_p2m_pfn)"
        ),
        check!(
            start_info_offset::NR_P2M_FRAMES,
            "offsetof(struct start_info, nr_p2m_frames)"
        ),
        check!(start_info_offset::SIZE, "sizeof(struct start_info)"),
        // pte.rs: Xen's public headers carry no _PAGE_* bits; only the page size is
        // derivable (xen_pfn_to_cr3 shifts a frame number into an address).
        check!(pte::PAGE_SIZE, "xen_pfn_to_cr3(1)"),
        check!(pte::PAGE_SHIFT, "__builtin_ctzl(xen_pfn_to_cr3(1))"),
    ]
}

fn layout_checks() -> Vec<Check> {
    const MU: &str = "struct mmu_update";
    const MX: &str = "struct mmuext_op";
    const MC: &str = "struct multicall_entry";
    const SI: &str = "struct start_info";
    let mut v = vec![
        size_check("MmuUpdate", MU, size_of::<MmuUpdate>()),
        size_check("MmuextOp", MX, size_of::<MmuextOp>()),
        size_check("MulticallEntry", MC, size_of::<MulticallEntry>()),
        size_check("StartInfo", SI, size_of::<StartInfo>()),
    ];
    v.extend(field!(MmuUpdate, ptr, MU, "ptr"));
    v.extend(field!(MmuUpdate, val, MU, "val"));

    v.extend(field!(MmuextOp, cmd, MX, "cmd"));
    v.extend(pad!(MmuextOp, _pad, MX, "cmd", "arg1"));
    v.extend(field!(MmuextOp, arg1, MX, "arg1"));
    v.extend(field!(MmuextOp, arg2, MX, "arg2"));
    // Every union member starts where our single u64 does (x86 is little-endian,
    // so a 32-bit nr_ents is the low half of arg2).
    for member in ["arg1.mfn", "arg1.linear_addr"] {
        v.push(Check {
            ours: format!("MmuextOp.arg1@offset (as {member})"),
            c_expr: format!("offsetof({MX}, {member})"),
            value: offset_of!(MmuextOp, arg1) as i128,
        });
    }
    for member in ["arg2.nr_ents", "arg2.vcpumask", "arg2.src_mfn"] {
        v.push(Check {
            ours: format!("MmuextOp.arg2@offset (as {member})"),
            c_expr: format!("offsetof({MX}, {member})"),
            value: offset_of!(MmuextOp, arg2) as i128,
        });
    }

    v.extend(field!(MulticallEntry, op, MC, "op"));
    v.extend(field!(MulticallEntry, result, MC, "result"));
    v.extend(field!(MulticallEntry, args, MC, "args"));
    v.push(Check {
        ours: "MulticallEntry.args[0]@size".into(),
        c_expr: format!("sizeof((({MC} *)0)->args[0])"),
        value: size_of::<u64>() as i128,
    });

    v.extend(field!(StartInfo, magic, SI, "magic"));
    v.extend(field!(StartInfo, nr_pages, SI, "nr_pages"));
    v.extend(field!(StartInfo, shared_info, SI, "shared_info"));
    v.extend(field!(StartInfo, flags, SI, "flags"));
    v.extend(pad!(StartInfo, _pad0, SI, "flags", "store_mfn"));
    v.extend(field!(StartInfo, store_mfn, SI, "store_mfn"));
    v.extend(field!(StartInfo, store_evtchn, SI, "store_evtchn"));
    v.extend(pad!(StartInfo, _pad1, SI, "store_evtchn", "console"));
    v.extend(field!(StartInfo, console_mfn, SI, "console.domU.mfn"));
    v.extend(field!(StartInfo, console_evtchn, SI, "console.domU.evtchn"));
    v.extend(pad!(StartInfo, _pad2, SI, "console.domU.evtchn", "pt_base"));
    v.push(Check {
        ours: "StartInfo.console_mfn@offset (as console.dom0.info_off)".into(),
        c_expr: format!("offsetof({SI}, console.dom0.info_off)"),
        value: offset_of!(StartInfo, console_mfn) as i128,
    });
    v.extend(field!(StartInfo, pt_base, SI, "pt_base"));
    v.extend(field!(StartInfo, nr_pt_frames, SI, "nr_pt_frames"));
    v.extend(field!(StartInfo, mfn_list, SI, "mfn_list"));
    v.extend(field!(StartInfo, mod_start, SI, "mod_start"));
    v.extend(field!(StartInfo, mod_len, SI, "mod_len"));
    v.extend(field!(StartInfo, cmd_line, SI, "cmd_line"));
    v.extend(field!(StartInfo, first_p2m_pfn, SI, "first_p2m_pfn"));
    v.extend(field!(StartInfo, nr_p2m_frames, SI, "nr_p2m_frames"));
    v
}

/// Header values the Rust side reasons about directly (not compared one-to-one).
const HEADER_VALUES: &[(&str, &str)] = &[
    ("HYPERVISOR_VIRT_START", "HYPERVISOR_VIRT_START"),
    ("HYPERVISOR_VIRT_END", "HYPERVISOR_VIRT_END"),
];

fn all_checks() -> Vec<Check> {
    let mut v = constant_checks();
    v.extend(layout_checks());
    v
}

/// Everything before `main`: the headers, at the newest interface version they
/// support (what Xen 4.17 itself implements), and the full errno list as an enum.
/// errno.h lists EINTR/ERESTART only for `__XEN__` (Xen-internal values); it is
/// designed for re-inclusion with a caller-supplied XEN_ERRNO, so we get them all.
const C_PRELUDE: &str = r#"#define __XEN_INTERFACE_VERSION__ __XEN_LATEST_INTERFACE_VERSION__
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <xen/xen.h>
#include <xen/sched.h>
#include <xen/version.h>
#include <xen/elfnote.h>
#include <xen/errno.h>

#define __XEN__ 1
#define XEN_ERRNO(name, value) XENKVM_##name = value,
enum xenkvm_errno {
#include <xen/errno.h>
};
#undef __XEN__

#define EMIT(key, expr) printf("%s %llu\n", key, (unsigned long long)(expr))

int main(void)
{
"#;

fn c_string_literal(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The C program: one `EMIT(key, expr)` per check, keyed by row index.
fn c_program(checks: &[Check]) -> String {
    let mut src = String::from(C_PRELUDE);
    for (i, c) in checks.iter().enumerate() {
        writeln!(src, "    EMIT(\"{i}\", {}); /* {} */", c.c_expr, c.ours).unwrap();
    }
    for (key, expr) in HEADER_VALUES {
        writeln!(src, "    EMIT({}, {expr});", c_string_literal(key)).unwrap();
    }
    src.push_str("    return 0;\n}\n");
    src
}

fn headers_present() -> bool {
    Path::new("/usr/include/xen/xen.h").exists()
}

/// Fails (in CI and locally alike) when libxen-dev is missing: the layout test is
/// the only thing standing between abi.rs and a silently wrong ABI.
fn require_headers() {
    if headers_present() {
        return;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but Xen's public headers are missing (/usr/include/xen/xen.h): \
             .ci/run must install libxen-dev"
        );
    }
    panic!(
        "Xen's public headers are missing (/usr/include/xen/xen.h); the ABI layout test \
         needs them: run `apt-get install libxen-dev`"
    );
}

/// A scratch dir unique to this process and test, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "xenkvm-abi-layout-{}-{label}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles and runs the C program; returns key -> value as printed.
fn run_c(checks: &[Check], label: &str) -> BTreeMap<String, u64> {
    require_headers();
    let dir = ScratchDir::new(label);
    let src_path = dir.0.join("abi_layout.c");
    let exe_path = dir.0.join("abi_layout");
    let src = c_program(checks);
    std::fs::write(&src_path, &src).expect("write C source");

    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror", "-O0", "-o"])
        .arg(&exe_path)
        .arg(&src_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `cc` ({e}); install gcc"));
    assert!(
        out.status.success(),
        "compiling the ABI probe against Xen's headers failed ({}):\n{}\n--- source ---\n{src}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let run = Command::new(&exe_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe_path.display()));
    assert!(run.status.success(), "ABI probe exited with {}", run.status);
    let stdout = String::from_utf8(run.stdout).expect("probe output is UTF-8");
    stdout
        .lines()
        .map(|line| {
            let (k, v) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad probe line {line:?}"));
            let v = v
                .parse()
                .unwrap_or_else(|e| panic!("bad value in probe line {line:?}: {e}"));
            (k.to_string(), v)
        })
        .collect()
}

/// Every row whose C value differs from ours, rendered for humans.
fn mismatches(checks: &[Check], c_values: &BTreeMap<String, u64>) -> Vec<String> {
    checks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c_values.get(&i.to_string()) {
            None => Some(format!("{}: no value from C for `{}`", c.ours, c.c_expr)),
            Some(&hv) if i128::from(hv) != c.value => Some(format!(
                "{}: ours = {} ({:#x}), headers `{}` = {} ({:#x})",
                c.ours, c.value, c.value, c.c_expr, hv, hv
            )),
            Some(_) => None,
        })
        .collect()
}

fn header_value(c_values: &BTreeMap<String, u64>, key: &str) -> u64 {
    *c_values
        .get(key)
        .unwrap_or_else(|| panic!("probe did not print {key}"))
}

/// Our guest VA layout must stay clear of Xen's hole, and our slot helpers must
/// land the reserved slots exactly on it.
fn layout_vs_hole(c_values: &BTreeMap<String, u64>) -> Vec<String> {
    use pte::layout::*;
    let start = header_value(c_values, "HYPERVISOR_VIRT_START");
    let end = header_value(c_values, "HYPERVISOR_VIRT_END"); // exclusive
    let mut bad = Vec::new();
    let regions = [
        ("DIRECT_MAP", DIRECT_MAP_BASE, DIRECT_MAP_END),
        ("VMALLOC", VMALLOC_BASE, VMALLOC_END),
        ("PKMAP", PKMAP_BASE, PKMAP_END),
        ("FIXMAP", FIXMAP_BASE, FIXMAP_END),
        ("KERNEL", KERNEL_BASE, KERNEL_END),
        ("USER", 0, USER_END),
    ];
    for (name, lo, hi) in regions {
        if lo <= end - 1 && hi >= start {
            bad.push(format!(
                "pte::layout::{name} {lo:#x}..={hi:#x} overlaps Xen's hole {start:#x}..{end:#x}"
            ));
        }
    }
    let first = pte::va_of(abi::ROOT_PAGETABLE_FIRST_XEN_SLOT, 0, 0, 0);
    if first != start {
        bad.push(format!(
            "pte::va_of(FIRST_XEN_SLOT,0,0,0) = {first:#x}, HYPERVISOR_VIRT_START = {start:#x}"
        ));
    }
    let last = pte::va_of(abi::ROOT_PAGETABLE_LAST_XEN_SLOT, 511, 511, 511) + pte::PAGE_SIZE - 1;
    if last != end - 1 {
        bad.push(format!(
            "last byte of LAST_XEN_SLOT = {last:#x}, HYPERVISOR_VIRT_END - 1 = {:#x}",
            end - 1
        ));
    }
    bad
}

#[test]
fn abi_matches_libxen_dev_headers() {
    let checks = all_checks();
    let c_values = run_c(&checks, "main");
    let mut bad = mismatches(&checks, &c_values);
    bad.extend(layout_vs_hole(&c_values));
    assert!(
        bad.is_empty(),
        "{} of {} ABI values differ from Xen's headers (libxen-dev):\n  {}",
        bad.len(),
        checks.len(),
        bad.join("\n  ")
    );
    println!(
        "abi_layout: {} values checked against libxen-dev ({} constants, {} layout rows)",
        checks.len(),
        constant_checks().len(),
        layout_checks().len()
    );
}

/// The comparison itself must be able to fail: feed it values we know are wrong
/// (the pre-fix MMUEXT numbering, a wrong struct offset) and expect each reported.
#[test]
fn layout_test_reports_every_mismatch() {
    let mut checks = vec![
        check!(mmuext::PIN_L1_TABLE, "MMUEXT_PIN_L1_TABLE"),
        check!(mmuext::MARK_SUPER, "MMUEXT_MARK_SUPER"),
        check!(errno::EINVAL, "XENKVM_EINVAL"),
    ];
    checks.extend(field!(StartInfo, pt_base, "struct start_info", "pt_base"));
    let c_values = run_c(&checks, "selftest");
    assert!(mismatches(&checks, &c_values).is_empty());

    // The old abi.rs had MARK_SUPER = 18 (that is FLUSH_CACHE_GLOBAL in the headers).
    checks[1].value = 18;
    checks[2].value = 21;
    checks[3].value += 8;
    let bad = mismatches(&checks, &c_values);
    assert_eq!(bad.len(), 3, "expected three mismatches, got {bad:#?}");
    assert!(bad[0].contains("mmuext::MARK_SUPER") && bad[0].contains("MMUEXT_MARK_SUPER"));
    assert!(bad[1].contains("errno::EINVAL"));
    assert!(bad[2].contains("StartInfo.pt_base@offset"));
}

/// Names declared in abi.rs: `module::CONST` / `CONST`, and `Struct.field`.
fn declared_in_abi_rs() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pagetable-validator/src/abi.rs");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut names = BTreeSet::new();
    let mut module: Option<String> = None;
    let mut strukt: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = line.strip_prefix("pub mod ") {
            module = Some(rest.trim_end_matches(" {").trim().to_string());
        } else if let Some(rest) = line.strip_prefix("pub struct ") {
            strukt = Some(rest.trim_end_matches(" {").trim().to_string());
        } else if line.starts_with('}') {
            module = None;
            strukt = None;
        } else if let Some(rest) = t.strip_prefix("pub const ") {
            if rest.starts_with("fn ") {
                continue;
            }
            let name = rest.split(':').next().unwrap().trim();
            names.insert(match &module {
                Some(m) => format!("{m}::{name}"),
                None => name.to_string(),
            });
        } else if let (Some(s), Some(rest)) = (&strukt, t.strip_prefix("pub ")) {
            let field = rest.split(':').next().unwrap().trim();
            names.insert(format!("{s}.{field}"));
        }
    }
    names
}

/// Adding a constant or field to abi.rs without a row here must fail.
#[test]
fn every_abi_rs_item_is_checked() {
    let declared = declared_in_abi_rs();
    assert!(
        declared.len() > 150,
        "parser found only {} items in abi.rs; has its layout changed?",
        declared.len()
    );
    let mut covered: BTreeSet<String> = all_checks()
        .iter()
        .map(|c| {
            let name = c.ours.split('@').next().unwrap();
            name.strip_prefix("abi::").unwrap_or(name).to_string()
        })
        .collect();
    covered.extend(EXEMPT.iter().map(|(n, _)| n.to_string()));
    let missing: Vec<_> = declared.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "abi.rs items with no check in tests/tests/abi_layout.rs (add a row, or an \
         EXEMPT entry with the reason): {missing:?}"
    );
    // And nothing exempted that the table already checks or that no longer exists.
    for (name, _) in EXEMPT {
        assert!(
            declared.contains(*name),
            "EXEMPT names {name}, not in abi.rs"
        );
    }
}
