/*
 * Shared by the assembly test guests (guest.S, pvcpu.S): Xen ELF notes, the hypercall page,
 * and small helpers (console output, hex numbers, mfn lookup, one mmuext_op, one
 * update_va_mapping, shutdown). Each guest defines _start and its own modes.
 */
    .set VIRT_BASE, 0xffffffff80000000
    .set SI_PT_BASE, 88
    .set SI_MFN_LIST, 104
    .set SI_CMDLINE, 128
    .set DOMID_SELF, 0x7ff0
    .set HC_MMU_UPDATE, 1
    .set HC_MULTICALL, 13
    .set HC_UPDATE_VA_MAPPING, 14
    .set HC_XEN_VERSION, 17
    .set HC_CONSOLE_IO, 18
    .set HC_MMUEXT_OP, 26
    .set HC_SCHED_OP, 29

/* ---- Xen ELF notes ---- */
    .macro xen_note type, payload:vararg
    .balign 4
    .long 4
    .long 2f - 1f
    .long \type
    .asciz "Xen"
1:  \payload
2:  .balign 4
    .endm

    .section .note.Xen, "a"
    xen_note 6, .asciz "linux"
    xen_note 5, .asciz "xen-3.0"
    xen_note 8, .asciz "generic"
    xen_note 3, .quad VIRT_BASE
    xen_note 4, .quad VIRT_BASE
    xen_note 1, .quad _start
    xen_note 2, .quad hypercall_page

/* ---- the hypercall page: filled by the hypervisor ---- */
    .section .hypercall_page, "ax"
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0xcc

    .macro HYPERCALL nr
    call hypercall_page + \nr * 32
    .endm

    .text
/* mfn_of(rdi = kernel VA) -> rax = mfn, through start_info.mfn_list */
mfn_of:
    mov rax, rdi
    mov rcx, VIRT_BASE
    sub rax, rcx
    shr rax, 12
    mov rcx, [rip + start_info]
    mov rcx, [rcx + SI_MFN_LIST]
    mov rax, [rcx + rax * 8]
    ret

/* mmuext1(edi = cmd, rsi = arg1) -> rax: one mmuext_op on DOMID_SELF */
mmuext1:
    mov [rip + ext_op], edi
    mov [rip + ext_op + 8], rsi
    lea rdi, [rip + ext_op]
    mov esi, 1
    xor edx, edx
    mov r10d, DOMID_SELF
    HYPERCALL HC_MMUEXT_OP
    ret

/* uvm(rdi = va, rsi = mfn, rdx = flags of the pte) -> rax: update_va_mapping with UVMF_INVLPG */
uvm:
    shl rsi, 12
    or rsi, rdx
    mov edx, 2
    HYPERCALL HC_UPDATE_VA_MAPPING
    ret

shutdown:
    mov edi, 2                         /* SCHEDOP_shutdown */
    lea rsi, [rip + reason]
    HYPERCALL HC_SCHED_OP
    ud2

/* puts(rdi = NUL-terminated string) */
puts:
    mov rdx, rdi
    xor esi, esi
1:  cmp byte ptr [rdx + rsi], 0
    je 2f
    inc rsi
    jmp 1b
2:  xor edi, edi                       /* CONSOLEIO_write; rsi = len, rdx = buf */
    HYPERCALL HC_CONSOLE_IO
    ret

newline:
    lea rdi, [rip + msg_nl]
    jmp puts

/* report(rdi = label, rsi = value): "<label> rc=<16 hex digits>\n" */
report:
    push rbx
    mov rbx, rsi
    call puts
    lea rdi, [rip + msg_rc]
    call puts
    mov rdi, rbx
    call puthex
    call newline
    pop rbx
    ret

/* puthex(rdi = value): 16 hex digits */
puthex:
    push rbx
    mov rbx, rdi
    lea rdi, [rip + hexbuf + 16]
    mov ecx, 16
1:  dec rdi
    mov eax, ebx
    and eax, 15
    lea rdx, [rip + hexdigits]
    mov al, [rdx + rax]
    mov [rdi], al
    shr rbx, 4
    loop 1b
    lea rdi, [rip + hexbuf]
    call puts
    pop rbx
    ret

    .section .rodata
hexdigits:  .ascii "0123456789abcdef"
msg_rc:     .asciz " rc="
msg_nl:     .asciz "\n"

    .data
    .balign 8
start_info: .quad 0
reason:     .long 0
ext_op:     .long 0, 0
            .quad 0, 0
hexbuf:     .fill 16, 1, '0'
            .byte 0
    .text
