/*
 * Exit-cost workload for scripts/bench-exits.sh: one kind of guest operation repeated N times,
 * timed with the guest's TSC. Command line "<case> <N>" (N decimal), case one of
 *   n  null hypercall: xen_version(XENVER_version)
 *   u  mmu_update of one entry (a pinned L1's slot 0, remapped between two data frames)
 *   b  mmu_update of 512 entries (the whole L1, remapped between two data frames)
 *   e  exception bounce: int3 in guest kernel mode, bounced to the trap handler, iret back
 *   s  syscall bounce: guest user mode -> syscall -> kernel callback -> iret to user mode
 * Prints "EXITS case rc=<letter>", "EXITS ops rc=<N>", "EXITS tsc rc=<guest TSC ticks for the
 * N operations>", "EXITS err rc=<OR of the hypercall results, 0 if all succeeded>" (hex), then
 * powers off. N = 0 gives the fixed cost of boot and setup, which the script subtracts.
 */
    .intel_syntax noprefix
#include "common.S"

    .set HC_SET_TRAP_TABLE, 0
    .set HC_STACK_SWITCH, 3
    .set HC_IRET, 23
    .set HC_CALLBACK_OP, 30
    .set KERNEL_CS, 0xe033
    .set KERNEL_CS_RPL0, 0xe030
    .set KERNEL_SS, 0xe02b
    .set PTE_RW, 0x67                   /* present | RW | user | accessed | dirty */

    .section .text.head, "ax"
    .globl _start
_start:
    lea rsp, [rip + stack_top]
    mov [rip + start_info], rsi
    lea rdi, [rip + trap_table]
    HYPERCALL HC_SET_TRAP_TABLE
    or [rip + errs], rax
    mov edi, 0                         /* CALLBACKOP_register */
    lea rsi, [rip + cb_syscall]
    HYPERCALL HC_CALLBACK_OP
    or [rip + errs], rax
    mov edi, KERNEL_SS
    lea rsi, [rip + trap_stack_top]    /* bounces from user mode land here */
    HYPERCALL HC_STACK_SWITCH
    or [rip + errs], rax

    /* Command line: the case letter in bl, N in r12. */
    mov rax, [rip + start_info]
    lea rsi, [rax + SI_CMDLINE]
    movzx ebx, byte ptr [rsi]
    xor r12d, r12d
    inc rsi
1:  movzx eax, byte ptr [rsi]
    cmp al, ' '
    jne 2f
    inc rsi
    jmp 1b
2:  movzx eax, byte ptr [rsi]
    sub eax, '0'
    cmp eax, 9
    ja 3f
    imul r12, r12, 10
    add r12, rax
    inc rsi
    jmp 2b
3:  mov [rip + ops], r12

    cmp bl, 'n'
    je case_null
    cmp bl, 'u'
    je case_mmu1
    cmp bl, 'b'
    je case_mmu512
    cmp bl, 'e'
    je case_exception
    cmp bl, 's'
    je case_syscall
    lea rdi, [rip + msg_usage]
    call puts
    mov dword ptr [rip + reason], 1    /* SHUTDOWN_reboot: not a result */
    jmp shutdown

/* rax = guest TSC */
tsc:
    rdtsc
    shl rdx, 32
    or rax, rdx
    ret

/* Reports the case, N, the TSC ticks since r14 and the errors, then powers off. */
finish:
    call tsc
    sub rax, r14
    mov r14, rax
    lea rdi, [rip + msg_case]
    movzx esi, bl
    call report
    lea rdi, [rip + msg_ops]
    mov rsi, [rip + ops]
    call report
    lea rdi, [rip + msg_tsc]
    mov rsi, r14
    call report
    lea rdi, [rip + msg_err]
    mov rsi, [rip + errs]
    call report
    mov dword ptr [rip + reason], 0
    jmp shutdown

case_null:
    call tsc
    mov r14, rax
    test r12, r12
    jz finish
1:  xor edi, edi                       /* XENVER_version */
    xor esi, esi
    HYPERCALL HC_XEN_VERSION
    dec r12
    jnz 1b
    jmp finish

/* l1_page becomes a pinned L1 (read-only first); r13 = its machine address, and the request
 * arrays map every slot to data_a (reqs_a) or data_b (reqs_b) writable. */
setup_l1:
    lea rdi, [rip + l1_page]
    call mfn_of
    mov r13, rax
    lea rdi, [rip + l1_page]
    mov rsi, r13
    mov edx, 0x21                      /* read-only */
    call uvm
    or [rip + errs], rax
    mov edi, 0                         /* MMUEXT_PIN_L1_TABLE */
    mov rsi, r13
    call mmuext1
    or [rip + errs], rax
    shl r13, 12
    lea rdi, [rip + data_a]
    call mfn_of
    shl rax, 12
    or rax, PTE_RW
    mov r8, rax
    lea rdi, [rip + data_b]
    call mfn_of
    shl rax, 12
    or rax, PTE_RW
    mov r9, rax
    xor ecx, ecx
1:  lea rax, [r13 + rcx * 8]
    mov rdx, rcx
    shl rdx, 4
    lea rsi, [rip + reqs_a]
    mov [rsi + rdx], rax
    mov [rsi + rdx + 8], r8
    lea rsi, [rip + reqs_b]
    mov [rsi + rdx], rax
    mov [rsi + rdx + 8], r9
    inc ecx
    cmp ecx, 512
    jne 1b
    ret

/* r15 = entries per mmu_update; alternates reqs_a / reqs_b. */
mmu_loop:
    call tsc
    mov r14, rax
    test r12, r12
    jz finish
1:  lea rdi, [rip + reqs_a]
    lea rax, [rip + reqs_b]
    test r12, 1
    cmovnz rdi, rax
    mov rsi, r15
    xor edx, edx
    mov r10d, DOMID_SELF
    HYPERCALL HC_MMU_UPDATE
    or [rip + errs], rax
    dec r12
    jnz 1b
    jmp finish

case_mmu1:
    call setup_l1
    mov r15d, 1
    jmp mmu_loop

case_mmu512:
    call setup_l1
    mov r15d, 512
    jmp mmu_loop

case_exception:
    call tsc
    mov r14, rax
    test r12, r12
    jz finish
1:  int3
    dec r12
    jnz 1b
    jmp finish

/* int3 handler: Xen's frame { rcx, r11, rip, cs, rflags, rsp, ss }; back to the instruction
 * after the int3 in kernel mode. */
h_3:
    pop rcx
    pop r11
    mov qword ptr [rsp + 8], KERNEL_CS_RPL0
    push 0                             /* iret flags */
    jmp hypercall_page + HC_IRET * 32

case_syscall:
    /* User mode runs on the kernel's own tables (as XTF does). */
    mov rdi, [rip + start_info]
    mov rdi, [rdi + SI_PT_BASE]
    call mfn_of
    mov edi, 15                        /* MMUEXT_NEW_USER_BASEPTR */
    mov rsi, rax
    call mmuext1
    or [rip + errs], rax
    call tsc
    mov r14, rax
    test r12, r12
    jz finish
    xor r13d, r13d                     /* 1: the user loop is done */
    mov [rip + saved_rsp], rsp
    push KERNEL_SS
    lea rax, [rip + user_stack_top]
    push rax
    push 0x202
    push KERNEL_CS
    lea rax, [rip + u_loop]
    push rax
    push 0                             /* iret flags */
    jmp hypercall_page + HC_IRET * 32
u_loop:
    syscall
    dec r12
    jnz u_loop
    mov r13d, 1
    syscall
    ud2

/* The syscall callback (guest kernel mode, on the stack_switch stack), frame as for h_3:
 * iret back to user mode after the syscall, or, when the loop is done, on to finish. */
h_syscall:
    test r13, r13
    jnz 1f
    pop rcx
    pop r11
    mov qword ptr [rsp + 8], KERNEL_CS
    push 0
    jmp hypercall_page + HC_IRET * 32
1:  mov rsp, [rip + saved_rsp]
    jmp finish

    .section .rodata
msg_usage:  .asciz "exits: command line \"<n|u|b|e|s> <N>\"\n"
msg_case:   .asciz "EXITS case"
msg_ops:    .asciz "EXITS ops"
msg_tsc:    .asciz "EXITS tsc"
msg_err:    .asciz "EXITS err"

    .data
    .balign 8
ops:        .quad 0
errs:       .quad 0
saved_rsp:  .quad 0
trap_table:
    .byte 3, 3
    .word KERNEL_CS
    .long 0
    .quad h_3
    .quad 0, 0
cb_syscall:
    .word 2                            /* CALLBACKTYPE_syscall */
    .word 1                            /* CALLBACKF_mask_events */
    .long 0
    .quad h_syscall

    .bss
    .balign 4096
l1_page:
    .fill 4096, 1, 0
data_a:
    .fill 4096, 1, 0
data_b:
    .fill 4096, 1, 0
reqs_a:
    .fill 512 * 16, 1, 0
reqs_b:
    .fill 512 * 16, 1, 0
user_stack:
    .fill 4096, 1, 0
user_stack_top:
trap_stack:
    .fill 4096, 1, 0
trap_stack_top:
stack:
    .fill 8192, 1, 0
stack_top:
