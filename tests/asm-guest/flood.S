/*
 * A Xen PV x86_64 guest in assembly that floods the hypervisor, to measure what a hostile
 * guest costs the VMM (stderr lines, memory). A one-letter command line picks the flood:
 *   p  100,000 pins of a page still mapped RW (each refused with -EINVAL), as multicalls of
 *      250 mmuext_op entries
 *   q  the same with 2,000 pins
 *   n  1,000,000 distinct unassigned hypercall numbers (multicall entries 1000, 1001, ...)
 *   v  1,000,000 distinct unknown xen_version sub-commands (64, 65, ...)
 * then prints "flood: done" and powers off. Build like guest.S (same link.ld).
 */
    .intel_syntax noprefix

    .set VIRT_BASE, 0xffffffff80000000
    .set SI_MFN_LIST, 104
    .set SI_CMDLINE, 128
    .set DOMID_SELF, 0x7ff0
    .set HC_MULTICALL, 13
    .set HC_XEN_VERSION, 17
    .set HC_CONSOLE_IO, 18
    .set HC_MMUEXT_OP, 26
    .set HC_SCHED_OP, 29
    .set MC_N, 250

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

    .section .hypercall_page, "ax"
    .globl hypercall_page
hypercall_page:
    .fill 4096, 1, 0xcc

    .macro HYPERCALL nr
    call hypercall_page + \nr * 32
    .endm

    .section .text.head, "ax"
    .globl _start
_start:
    lea rsp, [rip + stack_top]
    mov [rip + start_info], rsi
    lea rdi, [rip + msg_hello]
    call puts
    mov rax, [rip + start_info]
    movzx eax, byte ptr [rax + SI_CMDLINE]
    mov r12d, 100000 / MC_N
    cmp al, 'p'
    je pins
    mov r12d, 2000 / MC_N
    cmp al, 'q'
    je pins
    cmp al, 'n'
    je numbers
    cmp al, 'v'
    je versions
    jmp finish

    .text
/* r12 multicalls of MC_N entries, each an mmuext_op pinning test_page as an L1. */
pins:
    lea rdi, [rip + test_page]
    mov rax, VIRT_BASE
    sub rdi, rax
    shr rdi, 12
    mov rax, [rip + start_info]
    mov rax, [rax + SI_MFN_LIST]
    mov rax, [rax + rdi * 8]
    mov [rip + ext_op + 8], rax        /* MMUEXT_PIN_L1_TABLE (0), mfn of test_page */
    lea rdi, [rip + mc]
    mov ecx, MC_N
1:  mov qword ptr [rdi], HC_MMUEXT_OP
    lea rax, [rip + ext_op]
    mov [rdi + 16], rax
    mov qword ptr [rdi + 24], 1
    mov qword ptr [rdi + 32], 0
    mov qword ptr [rdi + 40], DOMID_SELF
    add rdi, 64
    dec ecx
    jnz 1b
2:  lea rdi, [rip + mc]
    mov esi, MC_N
    HYPERCALL HC_MULTICALL
    dec r12d
    jnz 2b
    jmp finish

/* 4000 multicalls of MC_N entries with the hypercall numbers 1000, 1001, ... */
numbers:
    mov r12d, 1000000 / MC_N
    mov r13, 1000
1:  lea rdi, [rip + mc]
    mov ecx, MC_N
2:  mov [rdi], r13
    inc r13
    add rdi, 64
    dec ecx
    jnz 2b
    lea rdi, [rip + mc]
    mov esi, MC_N
    HYPERCALL HC_MULTICALL
    dec r12d
    jnz 1b
    jmp finish

/* 4000 multicalls of MC_N xen_version calls with the sub-commands 64, 65, ... */
versions:
    mov r12d, 1000000 / MC_N
    mov r13, 64
1:  lea rdi, [rip + mc]
    mov ecx, MC_N
2:  mov qword ptr [rdi], HC_XEN_VERSION
    mov [rdi + 16], r13
    mov qword ptr [rdi + 24], 0
    inc r13
    add rdi, 64
    dec ecx
    jnz 2b
    lea rdi, [rip + mc]
    mov esi, MC_N
    HYPERCALL HC_MULTICALL
    dec r12d
    jnz 1b
    jmp finish

finish:
    lea rdi, [rip + msg_done]
    call puts
    mov edi, 2                         /* SCHEDOP_shutdown, reason 0 = poweroff */
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

    .section .rodata
msg_hello:  .asciz "flood: start\n"
msg_done:   .asciz "flood: done\n"

    .data
    .balign 8
start_info: .quad 0
reason:     .long 0
    .balign 8
ext_op:     .long 0, 0
            .quad 0, 0

    .bss
    .balign 4096
test_page:
    .fill 4096, 1, 0
    .balign 64
mc:
    .fill MC_N * 64, 1, 0
    .balign 16
stack:
    .fill 8192, 1, 0
stack_top:
