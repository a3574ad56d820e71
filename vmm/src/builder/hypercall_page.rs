//! The hypercall page the guest calls through: one stub per hypercall that writes its number
//! to [`HYPERCALL_PORT`] (an exit to the VMM), and Xen's `HYPERVISOR_iret` stub.

use pagetable_validator::abi;

/// Port the hypercall stubs write the hypercall number to.
pub const HYPERCALL_PORT: u16 = 0xec;

/// The stub of hypercall `nr` (at `nr * 32` in the page): `mov eax, nr; out PORT, eax; ret`.
/// The guest runs at CPL 3; the TSS I/O bitmap opens only this port, so the `out` is an exit
/// to the VMM and nothing else (Xen's own page makes a `syscall`, which we accept as well).
pub fn hypercall_stub(nr: u32) -> [u8; 8] {
    let n = nr.to_le_bytes();
    [
        0xb8,
        n[0],
        n[1],
        n[2],
        n[3], // mov eax, nr
        0xe7,
        HYPERCALL_PORT as u8, // out PORT, eax
        0xc3,                 // ret
    ]
}

/// `HYPERVISOR_iret` is jumped to, not called, and never returns: like Xen's stub it pushes
/// rcx, r11 and rax so that the guest stack holds Xen's `iret_context` when the VMM reads it.
pub fn iret_stub() -> [u8; 12] {
    let mut s = [0u8; 12];
    s[..4].copy_from_slice(&[0x51, 0x41, 0x53, 0x50]); // push rcx; push r11; push rax
                                                       // mov eax, __HYPERVISOR_iret; out PORT, eax (no ret)
    s[4..11].copy_from_slice(&hypercall_stub(abi::hypercall::IRET as u32)[..7]);
    s[11] = 0x0f; // (ud2, never reached)
    s
}

/// Offset of the `out` in the stub of hypercall `nr`.
pub fn stub_out_offset(nr: u64) -> u64 {
    if nr == abi::hypercall::IRET {
        9
    } else {
        5
    }
}

/// The hypercall page: 128 stubs of 32 bytes, int3 padding.
pub(crate) fn hypercall_page() -> [u8; 4096] {
    let mut page = [0xccu8; 4096];
    for nr in 0..abi::hypercall::NR_STUBS {
        let off = (nr * abi::hypercall::STUB_SIZE) as usize;
        if nr == abi::hypercall::IRET {
            let s = iret_stub();
            page[off..off + s.len()].copy_from_slice(&s);
            page[off + s.len()] = 0x0b;
        } else {
            let s = hypercall_stub(nr as u32);
            page[off..off + s.len()].copy_from_slice(&s);
        }
    }
    page
}
