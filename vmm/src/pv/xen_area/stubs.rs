//! The ring-0 code of the Xen area, assembled at its final addresses: one `out` per IDT vector,
//! the SYSCALL/SYSENTER entry points, and the sync trampoline that re-stores the VMM's
//! pagetable writes from CPL 0.

use super::{
    port, SyncFlush, XenAreaError, XenLayout, ENTRY_SYNC, ENTRY_SYSCALL, ENTRY_SYSCALL32,
    ENTRY_SYSENTER, PD_ENTRY,
};
use iced_x86::code_asm::*;
use pagetable_validator::pte::PAGE_SIZE;

/// The assembled ring-0 code.
pub(super) struct LayoutStubs {
    pub(super) vectors: Vec<u8>,
    pub(super) entry: Vec<u8>,
}

impl LayoutStubs {
    pub(super) fn assemble(l: &XenLayout) -> Result<Self, XenAreaError> {
        let e = |e: IcedError| XenAreaError::Asm(e.to_string());
        let mut vectors = vec![0xccu8; PAGE_SIZE as usize];
        for v in 0..=255u8 {
            let mut a = CodeAssembler::new(64).map_err(e)?;
            a.out(i32::from(port::vector(v)), al).map_err(e)?;
            a.ud2().map_err(e)?;
            let at = l.vector_stub(v);
            let code = a.assemble(at).map_err(e)?;
            assert!(code.len() <= 16, "vector stub fits its slot");
            let off = usize::from(v) * 16;
            vectors[off..off + code.len()].copy_from_slice(&code);
        }

        let entry_va = XenLayout::pd_va(PD_ENTRY);
        let mut entry = vec![0xccu8; PAGE_SIZE as usize];
        for (off, p) in [
            (ENTRY_SYSCALL, port::SYSCALL),
            (ENTRY_SYSCALL32, port::SYSCALL32),
            (ENTRY_SYSENTER, port::SYSENTER),
        ] {
            let mut a = CodeAssembler::new(64).map_err(e)?;
            a.out(i32::from(p), al).map_err(e)?;
            a.ud2().map_err(e)?;
            let code = a.assemble(entry_va + off).map_err(e)?;
            entry[off as usize..off as usize + code.len()].copy_from_slice(&code);
        }
        let code = sync_trampoline(entry_va + ENTRY_SYNC).map_err(e)?;
        let at = ENTRY_SYNC as usize;
        entry[at..at + code.len()].copy_from_slice(&code);
        debug_assert_eq!(l.sync_entry(), entry_va + ENTRY_SYNC);
        Ok(LayoutStubs { vectors, entry })
    }
}

/// The sync trampoline. In: rsi = queue VA, rcx = number of queued direct-map VAs, rdx =
/// [`SyncFlush`], rdi = the VA to `invlpg`. Re-stores each queued entry (`mov rax, [r8];
/// mov [r8], rax`), flushes, and exits with `out SYNC_DONE`.
fn sync_trampoline(ip: u64) -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut next = a.create_label();
    let mut flush = a.create_label();
    let mut full = a.create_label();
    let mut done = a.create_label();
    a.test(rcx, rcx)?;
    a.jz(flush)?;
    a.set_label(&mut next)?;
    a.mov(r8, qword_ptr(rsi))?;
    a.mov(rax, qword_ptr(r8))?;
    a.mov(qword_ptr(r8), rax)?;
    a.add(rsi, 8)?;
    a.dec(rcx)?;
    a.jnz(next)?;
    a.set_label(&mut flush)?;
    a.cmp(rdx, SyncFlush::Page as i32)?;
    a.jb(done)?;
    a.ja(full)?;
    a.invlpg(byte_ptr(rdi))?;
    a.jmp(done)?;
    a.set_label(&mut full)?;
    a.mov(rax, cr3)?;
    a.mov(cr3, rax)?;
    a.set_label(&mut done)?;
    a.out(i32::from(port::SYNC_DONE), al)?;
    a.ud2()?;
    a.assemble(ip)
}
