//! KVM VM and vCPU set up directly in 64-bit long mode, the way Xen starts a PV vCPU: the
//! guest kernel at CPL 3, paging on with the builder's L4 in CR3, write-protect on, SSE
//! usable, no SMEP/SMAP (Xen puts `_PAGE_USER` on the kernel's mappings, which run at CPL 3),
//! the Xen area's GDT/IDT/TSS and SYSCALL entry.

use crate::memory::GuestRam;
use crate::pv::cpuid::CpuidTable;
use crate::pv::flat_segment;
use crate::pv::xen_area::{XenLayout, TSS_LIMIT};
use kvm_bindings::{
    kvm_fpu, kvm_msr_entry, kvm_segment, kvm_userspace_memory_region, Msrs, KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use pagetable_validator::abi::x86 as xen;
use thiserror::Error;
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

pub const CR0_PE: u64 = 1 << 0;
pub const CR0_MP: u64 = 1 << 1;
pub const CR0_ET: u64 = 1 << 4;
pub const CR0_NE: u64 = 1 << 5;
pub const CR0_WP: u64 = 1 << 16;
pub const CR0_PG: u64 = 1 << 31;
pub const CR4_PAE: u64 = 1 << 5;
pub const CR4_OSFXSR: u64 = 1 << 9;
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
pub const CR4_OSXSAVE: u64 = 1 << 18;
pub const EFER_LME: u64 = 1 << 8;
pub const EFER_LMA: u64 = 1 << 10;
pub const EFER_NXE: u64 = 1 << 11;
/// Where KVM on Intel VMX keeps its real-mode TSS: three pages below 4 GiB, never guest RAM
/// here (the guest's memory starts at 0 and the Xen area follows it, far below).
const VMX_TSS_ADDR: usize = 0xfffb_d000;

#[derive(Debug, Error)]
pub enum ArchError {
    #[error("cannot open /dev/kvm: {0} (is KVM available and are you allowed to use it?)")]
    NoKvm(vmm_sys_util::errno::Error),
    #[error("/dev/kvm does not answer like KVM (KVM_GET_API_VERSION: {0})")]
    NotKvm(String),
    #[error("KVM: {what}: {err}")]
    Kvm {
        what: &'static str,
        err: vmm_sys_util::errno::Error,
    },
    #[error("guest memory: {0}")]
    GuestMemory(String),
    #[error("KVM refused to set MSR {0:#x}")]
    Msr(u32),
}

fn kvm_err(what: &'static str) -> impl FnOnce(vmm_sys_util::errno::Error) -> ArchError {
    move |err| ArchError::Kvm { what, err }
}

pub struct Machine {
    // Field order matters for drop: the vCPU before the VM, the VM before the KVM handle.
    pub vcpu: VcpuFd,
    _vm: VmFd,
    _kvm: Kvm,
}

impl Machine {
    /// Whether registers can travel in the shared `kvm_run` page (KVM_CAP_SYNC_REGS) instead
    /// of a KVM_GET/SET_(S)REGS ioctl each.
    pub fn has_sync_regs(&self) -> bool {
        self._kvm.check_extension(kvm_ioctls::Cap::SyncRegs)
    }
}

/// Opens /dev/kvm (separately, so the CLI can report its absence before anything else).
pub fn open_kvm() -> Result<Kvm, ArchError> {
    let kvm = Kvm::new().map_err(ArchError::NoKvm)?;
    // A bind mount or a stray file at /dev/kvm opens fine: make sure it answers like KVM.
    match kvm.get_api_version() {
        12 => Ok(kvm),
        v if v < 0 => Err(ArchError::NotKvm(
            vmm_sys_util::errno::Error::last().to_string(),
        )),
        v => Err(ArchError::NotKvm(format!("API version {v}, expected 12"))),
    }
}

/// Initial vCPU state from the domain builder.
pub struct BootParams<'a> {
    pub entry: u64,
    pub l4_mfn: u64,
    pub start_info_va: u64,
    pub stack_top: u64,
    pub xen: &'a XenLayout,
}

const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const EFER_SCE: u64 = 1 << 0;

/// Loads the vCPU's XCR0 (KVM_SET_XCRS).
pub fn set_xcr0(vcpu: &VcpuFd, xcr0: u64) -> Result<(), vmm_sys_util::errno::Error> {
    let mut x = kvm_bindings::kvm_xcrs {
        nr_xcrs: 1,
        ..Default::default()
    };
    x.xcrs[0].xcr = 0;
    x.xcrs[0].value = xcr0;
    vcpu.set_xcrs(&x)
}

/// Creates the VM and its vCPU, started as Xen starts a 64-bit PV vCPU: at CPL 3 on
/// FLAT_KERNEL_CS/SS, paging on with the builder's L4 (which carries the Xen area), the Xen
/// area's GDT, IDT and TSS loaded, SYSCALL/SYSENTER entering the Xen area's stubs. Returns
/// the machine and the CPUID table the vCPU was given.
pub fn create(
    kvm: Kvm,
    ram: &GuestRam,
    boot: &BootParams,
) -> Result<(Machine, CpuidTable), ArchError> {
    let vm = kvm.create_vm().map_err(kvm_err("create VM"))?;
    // Intel VMX needs a TSS area below 4 GiB, outside guest memory.
    vm.set_tss_address(VMX_TSS_ADDR)
        .map_err(kvm_err("set TSS address"))?;
    for (slot, region) in ram.mmap().iter().enumerate() {
        let host = region
            .get_host_address(vm_memory::MemoryRegionAddress(0))
            .map_err(|e| ArchError::GuestMemory(e.to_string()))?;
        let mr = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: `host` is the start of a live mmap of `region.len()` bytes owned by
        // `ram`, which the caller keeps alive for as long as the VM exists (`run::boot` drops
        // the Machine before the memory); slots do not overlap (one per
        // region of a GuestMemoryMmap, whose regions are disjoint).
        unsafe { vm.set_user_memory_region(mr) }.map_err(kvm_err("set user memory region"))?;
    }
    let vcpu = vm.create_vcpu(0).map_err(kvm_err("create vCPU"))?;
    let mut cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(kvm_err("get supported CPUID"))?;
    // A PV guest's native CPUID shows the hardware, not KVM's hypervisor leaves; the PV
    // policy (with Xen's leaves) is behind the forced-emulation prefix (pv/cpuid.rs).
    let kept: Vec<_> = cpuid
        .as_slice()
        .iter()
        .copied()
        .filter(|e| !(0x4000_0000..0x5000_0000).contains(&e.function))
        .collect();
    cpuid = kvm_bindings::CpuId::from_entries(&kept)
        .map_err(|e| ArchError::GuestMemory(format!("CPUID table: {e:?}")))?;
    vcpu.set_cpuid2(&cpuid).map_err(kvm_err("set CPUID"))?;
    let l1 = core::arch::x86_64::__cpuid_count(1, 0);
    let l7 = core::arch::x86_64::__cpuid_count(7, 0);
    let table = CpuidTable::from_kvm(&cpuid).with_native_vector_features(l1.ecx, l7.ebx);

    let x = boot.xen;
    let mut sregs = vcpu.get_sregs().map_err(kvm_err("get sregs"))?;
    sregs.cs = flat_segment(xen::FLAT_KERNEL_CS, true);
    let data = kvm_segment {
        type_: 3,
        db: 1,
        l: 0,
        ..flat_segment(xen::FLAT_KERNEL_SS, false)
    };
    sregs.ss = data;
    // FLAT_KERNEL_DS is the NUL selector in 64-bit mode.
    let nul = kvm_segment {
        selector: 0,
        present: 0,
        unusable: 1,
        ..data
    };
    sregs.ds = nul;
    sregs.es = nul;
    sregs.fs = nul;
    sregs.gs = nul;
    sregs.tr = kvm_segment {
        base: x.tss_va(),
        limit: TSS_LIMIT,
        selector: xen::TSS_SELECTOR,
        type_: 0xb,
        present: 1,
        dpl: 0,
        db: 0,
        s: 0,
        l: 0,
        g: 0,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    sregs.ldt = kvm_segment {
        selector: 0,
        type_: 0x2,
        s: 0,
        present: 0,
        unusable: 1,
        ..data
    };
    sregs.gdt.base = x.gdt_va();
    sregs.gdt.limit = xen::LAST_RESERVED_GDT_BYTE as u16;
    sregs.idt.base = x.idt_va();
    sregs.idt.limit = 256 * 16 - 1;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = boot.l4_mfn << 12;
    // OSXSAVE as in Xen's own CR4 (the guest's CR4 is virtual, `ctrlreg4`): XCR0 then
    // applies to the vCPU, starting with x87 + SSE until the kernel's `xsetbv` (xstate.rs).
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
    sregs.efer = EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE;
    vcpu.set_sregs(&sregs).map_err(kvm_err("set sregs"))?;
    set_xcr0(&vcpu, crate::pv::xstate::XSTATE_FP_SSE).map_err(kvm_err("set XCR0"))?;

    // SYSCALL enters Xen's ring-0 CS (SS = CS + 8); SYSRET's base is FLAT_RING3_CS32 (CS64 =
    // base + 16, SS = base + 8), as Xen's XEN_MSR_STAR.
    let star = (u64::from(xen::FLAT_RING3_CS32) << 48) | (u64::from(xen::HYPERVISOR_CS) << 32);
    let msrs = [
        (MSR_STAR, star),
        (MSR_LSTAR, x.syscall_entry()),
        (MSR_CSTAR, x.syscall32_entry()),
        // TF, IF, DF, IOPL, NT, AC cleared on entry (the VMM reads r11 for the guest's).
        (MSR_SYSCALL_MASK, 0x4_7700),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_IA32_SYSENTER_CS, u64::from(xen::HYPERVISOR_CS)),
        (MSR_IA32_SYSENTER_ESP, x.stack_top()),
        (MSR_IA32_SYSENTER_EIP, x.sysenter_entry()),
    ];
    let entries: Vec<kvm_msr_entry> = msrs
        .iter()
        .map(|&(index, data)| kvm_msr_entry {
            index,
            data,
            ..Default::default()
        })
        .collect();
    let msrs = Msrs::from_entries(&entries)
        .map_err(|e| ArchError::GuestMemory(format!("MSR list: {e:?}")))?;
    let n = vcpu.set_msrs(&msrs).map_err(kvm_err("set MSRs"))?;
    if n != entries.len() {
        return Err(ArchError::Msr(entries[n].index));
    }

    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(kvm_err("set FPU"))?;

    let mut regs = vcpu.get_regs().map_err(kvm_err("get regs"))?;
    regs = kvm_bindings::kvm_regs {
        // Xen starts PV vCPUs with interrupts (events) enabled.
        rflags: 0x202,
        rip: boot.entry,
        rsi: boot.start_info_va,
        rsp: boot.stack_top,
        ..regs
    };
    regs.rax = 0;
    vcpu.set_regs(&regs).map_err(kvm_err("set regs"))?;
    Ok((
        Machine {
            vcpu,
            _vm: vm,
            _kvm: kvm,
        },
        table,
    ))
}
