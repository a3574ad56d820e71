//! KVM VM and vCPU set up directly in 64-bit long mode, the way Xen starts a PV vCPU:
//! paging on with the builder's L4 in CR3, write-protect on (so RO mappings of pagetables bind
//! the guest kernel, which runs in ring 0 here), SSE usable, no SMEP/SMAP (PV kernels may put
//! `_PAGE_USER` on their own mappings), flat 64-bit segments.

use crate::builder::{KERNEL_CS, KERNEL_DS};
use crate::memory::GuestRam;
use kvm_bindings::{kvm_fpu, kvm_segment, kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
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
pub const EFER_LME: u64 = 1 << 8;
pub const EFER_LMA: u64 = 1 << 10;
pub const EFER_NXE: u64 = 1 << 11;

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
    #[error("the kernel has no HYPERCALL_PAGE note: this VMM serves hypercalls only through the hypercall page")]
    NoHypercallPage,
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
pub struct BootParams {
    pub entry: u64,
    pub l4_mfn: u64,
    /// Linear base and limit of the flat GDT (in the hypercall page).
    pub gdt: Option<(u64, u16)>,
    pub start_info_va: u64,
    pub stack_top: u64,
}

pub fn create(kvm: Kvm, ram: &GuestRam, boot: &BootParams) -> Result<Machine, ArchError> {
    let (gdt_base, gdt_limit) = boot.gdt.ok_or(ArchError::NoHypercallPage)?;
    let vm = kvm.create_vm().map_err(kvm_err("create VM"))?;
    // Intel VMX needs a TSS area below 4 GiB; put it outside guest RAM's reach.
    vm.set_tss_address(0xfffb_d000)
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
    let cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(kvm_err("get supported CPUID"))?;
    vcpu.set_cpuid2(&cpuid).map_err(kvm_err("set CPUID"))?;

    let mut sregs = vcpu.get_sregs().map_err(kvm_err("get sregs"))?;
    let code = kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: KERNEL_CS,
        type_: 0xb, // execute/read, accessed
        present: 1,
        dpl: 0,
        db: 0,
        s: 1,
        l: 1,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    let data = kvm_segment {
        selector: KERNEL_DS,
        type_: 0x3,
        l: 0,
        db: 1,
        ..code
    };
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = kvm_segment {
        selector: 0x18,
        type_: 0xb,
        s: 0,
        l: 0,
        g: 0,
        limit: 0x67,
        ..code
    };
    sregs.ldt = kvm_segment {
        selector: 0,
        type_: 0x2,
        s: 0,
        present: 0,
        unusable: 1,
        ..data
    };
    sregs.gdt.base = gdt_base;
    sregs.gdt.limit = gdt_limit;
    // No IDT: a PV kernel registers traps with Xen, never with the CPU. Any exception becomes
    // a triple fault, which the run loop reports with RIP, CR2 and the symbol.
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = boot.l4_mfn << 12;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.efer = EFER_LME | EFER_LMA | EFER_NXE;
    vcpu.set_sregs(&sregs).map_err(kvm_err("set sregs"))?;

    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(kvm_err("set FPU"))?;

    let mut regs = vcpu.get_regs().map_err(kvm_err("get regs"))?;
    regs = kvm_bindings::kvm_regs {
        rflags: 0x2,
        rip: boot.entry,
        rsi: boot.start_info_va,
        rsp: boot.stack_top,
        ..regs
    };
    regs.rax = 0;
    vcpu.set_regs(&regs).map_err(kvm_err("set regs"))?;
    Ok(Machine {
        vcpu,
        _vm: vm,
        _kvm: kvm,
    })
}
