//! Typed hypercall wrappers (Linux: arch/x86/include/asm/xen/hypercall.h).
//!
//! A hypercall is a `call` to `hypercall_page + nr * 32`; arguments in rdi, rsi, rdx, r10, r8;
//! result in rax (negative Xen errno on failure). Xen's stubs use `syscall`, so rcx and r11
//! are clobbered; the argument registers are treated as clobbered too. Under our VMM the
//! stubs exit with port I/O instead; the contract is the same.
//!
//! The MMU hypercalls can remove or change mappings behind Rust references, so they are
//! `unsafe`; console, version and shutdown cannot and are safe.

use core::arch::asm;

use pagetable_validator::abi::{
    console, domid, hypercall as nr, sched, version, MmuUpdate, MmuextOp, MulticallEntry,
};

extern "C" {
    /// Defined in head.rs; filled by the hypervisor.
    static hypercall_page: u8;
}

/// Raw five-argument hypercall.
///
/// # Safety
/// The arguments must be valid for hypercall `op` (pointers to live, correctly sized memory)
/// and its effect must not invalidate memory that Rust references still point to.
pub unsafe fn hypercall5(op: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    let ret: i64;
    // SAFETY: we call the stub for `op` inside the hypercall page; the stub follows the
    // declared register contract and returns with `ret`. The caller vouches for the arguments.
    // No `nostack`: the call pushes a return address, so the compiler keeps the red zone free.
    unsafe {
        asm!(
            "shl rax, 5",
            "lea r11, [rip + {page}]",
            "add rax, r11",
            "call rax",
            page = sym hypercall_page,
            inlateout("rax") op => ret,
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            inlateout("r8") a5 => _,
            out("rcx") _,
            out("r11") _,
        );
    }
    ret
}

/// `HYPERVISOR_mmu_update`: apply `reqs` (machine address of a PTE | command, new value).
/// Returns 0 or a negative errno; `done` receives how many requests succeeded.
///
/// # Safety
/// The updates must not unmap or write-protect memory that live Rust references use.
pub unsafe fn mmu_update(reqs: &[MmuUpdate], done: Option<&mut u32>, dom: u16) -> i64 {
    // SAFETY: the caller vouches for the updates' effects.
    unsafe { batch(nr::MMU_UPDATE, reqs, done, dom) }
}

/// A batched call `(list, count, done, dom)`: mmu_update and mmuext_op.
///
/// # Safety
/// The batch's effects must not invalidate memory that live Rust references use.
unsafe fn batch<T>(nr: u64, list: &[T], done: Option<&mut u32>, dom: u16) -> i64 {
    let done = done.map_or(0, |d| d as *mut u32 as u64);
    let (ptr, len) = (list.as_ptr() as u64, list.len() as u64);
    // SAFETY: list and done point to live memory for the call; the caller vouches for effects.
    unsafe { hypercall5(nr, ptr, len, done, dom as u64, 0) }
}

/// `HYPERVISOR_update_va_mapping`: write the L1 entry that maps `va` in the current address
/// space to `val`, then flush as `flags` (`UVMF_*`) says.
///
/// # Safety
/// Changing the mapping of `va` must not invalidate live Rust references into that page.
pub unsafe fn update_va_mapping(va: u64, val: u64, flags: u64) -> i64 {
    // SAFETY: plain values; the caller vouches for the effect on `va`.
    unsafe { hypercall5(nr::UPDATE_VA_MAPPING, va, val, flags, 0, 0) }
}

/// `HYPERVISOR_mmuext_op`: pin/unpin/new_baseptr/flush operations.
///
/// # Safety
/// The operations must not invalidate memory that live Rust references use.
pub unsafe fn mmuext_op(ops: &[MmuextOp], done: Option<&mut u32>, dom: u16) -> i64 {
    // SAFETY: the caller vouches for the operations' effects.
    unsafe { batch(nr::MMUEXT_OP, ops, done, dom) }
}

/// `HYPERVISOR_multicall`: run `calls` in order; each entry's `result` receives its return
/// value. Returns 0 when the batch itself was accepted.
///
/// # Safety
/// Every entry's arguments must be valid for its hypercall (pointers stay live for the call)
/// and the batch must not invalidate memory that live Rust references use.
pub unsafe fn multicall(calls: &mut [MulticallEntry]) -> i64 {
    // SAFETY: calls is live and writable for the call; the caller vouches for the entries.
    unsafe {
        hypercall5(
            nr::MULTICALL,
            calls.as_mut_ptr() as u64,
            calls.len() as u64,
            0,
            0,
            0,
        )
    }
}

/// A multicall entry for `update_va_mapping(va, val, flags)`.
pub fn mc_update_va_mapping(va: u64, val: u64, flags: u64) -> MulticallEntry {
    MulticallEntry {
        op: nr::UPDATE_VA_MAPPING,
        result: 0,
        args: [va, val, flags, 0, 0, 0],
    }
}

/// A multicall entry for a batched call `op(array, count, NULL done, DOMID_SELF)`: the shape
/// `mmu_update` and `mmuext_op` share.
fn mc_batch(op: u64, array: u64, count: usize) -> MulticallEntry {
    MulticallEntry {
        op,
        result: 0,
        args: [array, count as u64, 0, domid::DOMID_SELF as u64, 0, 0],
    }
}

/// A multicall entry for `mmuext_op(ops, DOMID_SELF)`; `ops` must outlive the multicall.
pub fn mc_mmuext_op(ops: &[MmuextOp]) -> MulticallEntry {
    mc_batch(nr::MMUEXT_OP, ops.as_ptr() as u64, ops.len())
}

/// A multicall entry for `mmu_update(reqs, DOMID_SELF)`; `reqs` must outlive the multicall.
pub fn mc_mmu_update(reqs: &[MmuUpdate]) -> MulticallEntry {
    mc_batch(nr::MMU_UPDATE, reqs.as_ptr() as u64, reqs.len())
}

/// `HYPERVISOR_console_io(CONSOLEIO_write, len, buf)`.
pub fn console_write(buf: &[u8]) -> i64 {
    // SAFETY: Xen only reads `buf.len()` bytes of live memory; no mapping changes.
    unsafe {
        hypercall5(
            nr::CONSOLE_IO,
            console::CONSOLEIO_WRITE,
            buf.len() as u64,
            buf.as_ptr() as u64,
            0,
            0,
        )
    }
}

/// `HYPERVISOR_sched_op(SCHEDOP_shutdown, &{ reason })`. Returns only if the hypervisor
/// refused.
pub fn sched_shutdown(reason: u32) -> i64 {
    // struct sched_shutdown { unsigned int reason; }
    let arg: u32 = reason;
    // SAFETY: Xen reads one u32 from a live stack variable.
    unsafe {
        hypercall5(
            nr::SCHED_OP,
            sched::SCHEDOP_SHUTDOWN,
            &arg as *const u32 as u64,
            0,
            0,
            0,
        )
    }
}

/// `HYPERVISOR_sched_op(SCHEDOP_yield)`.
pub fn sched_yield() -> i64 {
    // SAFETY: no memory arguments.
    unsafe { hypercall5(nr::SCHED_OP, sched::SCHEDOP_YIELD, 0, 0, 0, 0) }
}

/// `HYPERVISOR_xen_version(XENVER_version)`: `major << 16 | minor`, or a negative errno.
pub fn xen_version() -> i64 {
    // SAFETY: XENVER_version takes no buffer.
    unsafe { hypercall5(nr::XEN_VERSION, version::XENVER_VERSION, 0, 0, 0, 0) }
}

/// `HYPERVISOR_xen_version(XENVER_extraversion)`: e.g. ".7" for 4.17.7.
pub fn xen_extraversion(buf: &mut [u8; version::EXTRAVERSION_LEN]) -> i64 {
    // SAFETY: Xen writes at most EXTRAVERSION_LEN bytes into the live buffer.
    unsafe {
        hypercall5(
            nr::XEN_VERSION,
            version::XENVER_EXTRAVERSION,
            buf.as_mut_ptr() as u64,
            0,
            0,
            0,
        )
    }
}

/// `HYPERVISOR_set_gdt`: the GDT is `entries` descriptors in `frames` (machine frames that
/// take Xen's descriptor-page type: none may be mapped writable).
///
/// # Safety
/// The frames must not be memory that live Rust references write.
pub unsafe fn set_gdt(frames: &[u64], entries: u64) -> i64 {
    // SAFETY: the frame list is live for the call; the caller vouches for the frames.
    unsafe { hypercall5(nr::SET_GDT, frames.as_ptr() as u64, entries, 0, 0, 0) }
}

/// `HYPERVISOR_update_descriptor`: write descriptor `desc` at machine address `maddr` (a
/// descriptor page or a writable page), checked by Xen.
///
/// # Safety
/// `maddr` must not be memory that live Rust references use.
pub unsafe fn update_descriptor(maddr: u64, desc: u64) -> i64 {
    // SAFETY: plain values; the caller vouches for the target.
    unsafe { hypercall5(nr::UPDATE_DESCRIPTOR, maddr, desc, 0, 0, 0) }
}
