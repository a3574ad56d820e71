/*
 * The PV CPU ABI, case by case, for the VMM's tests (and real Xen's, for comparison): a
 * trap table, exceptions and software interrupts bounced with Xen's frame, HYPERVISOR_iret
 * back to a resume point, privileged instructions (emulated or #GP), Xen's forced-emulation
 * prefix, guest user mode (iret to ring 3, SYSCALL / int 0x80 / #PF from user), writable
 * pagetables. Every case prints one line "Pnn <what> rc=<16 hex digits>" where the value is
 * (vector << 32 | error code) of the exception taken (0xff << 32: none) or a result.
 * Command line: (default) all cases; "k" loads a bad stack pointer and faults: Xen cannot
 * write the exception frame and crashes the domain.
 */
    .intel_syntax noprefix
#include "common.S"

    .set HC_SET_TRAP_TABLE, 0
    .set HC_STACK_SWITCH, 3
    .set HC_VM_ASSIST, 21
    .set HC_IRET, 23
    .set HC_CALLBACK_OP, 30
    .set KERNEL_CS, 0xe033
    .set KERNEL_CS_RPL0, 0xe030
    .set KERNEL_SS, 0xe02b
    .set NO_TRAP, 0xff00000000

/* ---- entry ---- */
    .section .text.head, "ax"
    .globl _start
_start:
    lea rsp, [rip + stack_top]
    mov [rip + start_info], rsi
    lea rdi, [rip + trap_table]
    HYPERCALL HC_SET_TRAP_TABLE
    lea rdi, [rip + msg_p00]
    mov rsi, rax
    call report
    mov edi, 0                         /* CALLBACKOP_register */
    lea rsi, [rip + cb_syscall]
    HYPERCALL HC_CALLBACK_OP
    lea rdi, [rip + msg_p00b]
    mov rsi, rax
    call report
    mov edi, KERNEL_SS
    lea rsi, [rip + trap_stack_top]    /* bounces from user mode land here */
    HYPERCALL HC_STACK_SWITCH
    mov rax, [rip + start_info]
    cmp byte ptr [rax + SI_CMDLINE], 'k'
    je bad_stack
    jmp cases

/* A trap handler: Xen's frame is { rcx, r11, [error code], rip, cs, rflags, rsp, ss }.
 * Record vector and error code, then HYPERVISOR_iret to the case's resume point in kernel
 * mode on the case's stack. */
    .macro handler vec, has_ec
h_\vec:
    pop rcx
    pop r11
    .if \has_ec
    pop rax
    .else
    xor eax, eax
    .endif
    mov rcx, \vec
    shl rcx, 32
    or rax, rcx
    mov [rip + last], rax
    mov rax, [rip + resume]
    mov [rsp], rax                     /* rip */
    mov qword ptr [rsp + 8], KERNEL_CS_RPL0
    mov rax, [rip + saved_rsp]
    mov [rsp + 24], rax                /* rsp */
    mov qword ptr [rsp + 32], KERNEL_SS
    push 0                             /* iret flags: not in syscall */
    jmp hypercall_page + HC_IRET * 32
    .endm

    .text
    handler 3, 0
    handler 6, 0
    handler 13, 1
    handler 14, 1
    handler 0x80, 0
    handler 0x81, 0

/* The syscall callback: from user mode, frame { rcx, r11, rip, cs, rflags, rsp, ss } on the
 * stack_switch stack, in guest kernel mode already: record and continue the cases there. */
h_syscall:
    mov rax, 0x100
    shl rax, 32
    mov [rip + last], rax
    mov rsp, [rip + saved_rsp]
    jmp [rip + resume]

/* A case: rdi = label, rsi = code to run (which may fault). Prints label + `last`. */
run_case:
    push rbx
    mov rbx, rdi
    mov rax, NO_TRAP
    mov [rip + last], rax
    lea rax, [rip + 1f]
    mov [rip + resume], rax
    mov [rip + saved_rsp], rsp
    jmp rsi
1:  mov rdi, rbx
    mov rsi, [rip + last]
    call report
    pop rbx
    ret

/* A case that reports rax instead (rsi = code that sets rax and jumps to [resume]). */
run_value:
    push r15                           /* cpuid clobbers rbx */
    mov r15, rdi
    lea rax, [rip + 1f]
    mov [rip + resume], rax
    mov [rip + saved_rsp], rsp
    jmp rsi
1:  mov rdi, r15
    mov rsi, rax
    call report
    pop r15
    ret

    .macro CASE label, code
    lea rdi, [rip + \label]
    lea rsi, [rip + \code]
    call run_case
    .endm
    .macro VALUE label, code
    lea rdi, [rip + \label]
    lea rsi, [rip + \code]
    call run_value
    .endm

cases:
    CASE msg_p01, c_int3
    CASE msg_p02, c_int80
    CASE msg_p03, c_int81
    CASE msg_p04, c_ud2
    CASE msg_p05, c_pf_read
    CASE msg_p06, c_pf_write_ro
    CASE msg_p07, c_cli
    CASE msg_p08, c_hlt
    CASE msg_p09, c_in
    CASE msg_p10, c_wrmsr_bad
    VALUE msg_p11, c_rdmsr_efer
    VALUE msg_p12, c_fep_cpuid
    CASE msg_p13, c_cr0_read
    CASE msg_p14, c_cr3_write_same

    /* Guest user mode on the kernel's own tables (as XTF does). */
    mov rdi, [rip + start_info]
    mov rsi, [rdi + SI_PT_BASE]
    mov rdi, rsi
    call mfn_of
    mov edi, 15                        /* MMUEXT_NEW_USER_BASEPTR */
    mov rsi, rax
    call mmuext1
    lea rdi, [rip + msg_p20]
    mov rsi, rax
    call report
    CASE msg_p21, c_user_syscall
    CASE msg_p22, c_user_int80
    CASE msg_p23, c_user_pf
    CASE msg_p24, c_user_int81

    /* Writable pagetables: a pinned L1 written through its read-only mapping. */
    mov edi, 0                         /* VMASST_CMD_enable */
    mov esi, 2                         /* VMASST_TYPE_writable_pagetables */
    HYPERCALL HC_VM_ASSIST
    lea rdi, [rip + msg_p30]
    mov rsi, rax
    call report
    lea rdi, [rip + l1_page]
    call mfn_of
    mov r12, rax                       /* r12 = mfn of l1_page */
    lea rdi, [rip + l1_page]
    mov rsi, r12
    mov edx, 0x21                      /* RO */
    call uvm
    mov edi, 0                         /* MMUEXT_PIN_L1_TABLE */
    mov rsi, r12
    call mmuext1
    lea rdi, [rip + msg_p31]
    mov rsi, rax
    call report
    lea rdi, [rip + data_page]
    call mfn_of
    mov r13, rax                       /* r13 = mfn of data_page */
    CASE msg_p32, c_ptwr_store
    lea rdi, [rip + msg_p33]
    mov rsi, [rip + l1_page]           /* Xen's adjusted form of what was written */
    call report_flags
    CASE msg_p34, c_ptwr_xchg
    lea rdi, [rip + msg_p35]
    mov rsi, [rip + l1_page]
    call report_flags
    CASE msg_p36, c_ptwr_selfmap
    lea rdi, [rip + msg_p37]
    mov rsi, [rip + l1_page + 8]       /* the refused entry stays empty */
    call report_flags

    /* A mapping made read-only must not be writable any more (TLB coherence). */
    mov byte ptr [rip + data_page], 1
    lea rdi, [rip + data_page]
    mov rsi, r13
    mov edx, 0x21
    call uvm
    CASE msg_p40, c_write_now_ro

    lea rdi, [rip + msg_bye]
    call puts
    mov dword ptr [rip + reason], 0
    jmp shutdown

c_int3:     int3
            jmp [rip + resume]
c_int80:    int 0x80
            jmp [rip + resume]
c_int81:    int 0x81
            jmp [rip + resume]
c_ud2:      ud2
c_pf_read:  mov rax, [0x1000]
            jmp [rip + resume]
c_pf_write_ro:
            mov rax, [rip + start_info]
            mov rax, [rax + SI_PT_BASE]
            mov byte ptr [rax], 0          /* the L4, mapped read-only */
            jmp [rip + resume]
c_cli:      cli
            jmp [rip + resume]
c_hlt:      hlt
            jmp [rip + resume]
c_in:       in al, 0x60
            jmp [rip + resume]
c_wrmsr_bad:
            mov ecx, 0x12345678
            xor eax, eax
            xor edx, edx
            wrmsr
            jmp [rip + resume]
c_rdmsr_efer:
            mov ecx, 0xc0000080
            rdmsr
            shl rdx, 32
            or rax, rdx
            jmp [rip + resume]
c_fep_cpuid:
            mov eax, 0x40000000
            xor ecx, ecx
            ud2
            .ascii "xen"
            cpuid
            mov eax, ebx                   /* "XenV" */
            jmp [rip + resume]
c_cr0_read: mov rax, cr0
            jmp [rip + resume]
c_cr3_write_same:
            mov rax, cr3
            mov cr3, rax
            jmp [rip + resume]

/* report_flags(rdi, rsi = pte): the entry's flag bits only (frame numbers differ between
 * hypervisors: mfns are the hypervisor's). */
report_flags:
    mov rax, 0xfff0000000000fff
    and rsi, rax
    jmp report

/* Enter user mode at rdi (HYPERVISOR_iret with a ring-3 CS) on the user stack. */
to_user:
    push KERNEL_SS
    lea rax, [rip + user_stack_top]
    push rax
    push 0x202
    push KERNEL_CS
    push rdi
    push 0
    jmp hypercall_page + HC_IRET * 32
c_user_syscall:
    lea rdi, [rip + u_syscall]
    jmp to_user
c_user_int80:
    lea rdi, [rip + u_int80]
    jmp to_user
c_user_pf:
    lea rdi, [rip + u_pf]
    jmp to_user
c_user_int81:
    lea rdi, [rip + u_int81]
    jmp to_user
u_syscall:  syscall
            ud2
u_int80:    int 0x80
            ud2
u_pf:       mov rax, [0x1000]
            ud2
u_int81:    int 0x81
            ud2

c_ptwr_store:
    mov rax, r13
    shl rax, 12
    or rax, 0x25                       /* present | user | accessed: becomes 0x125 on Xen */
    mov [rip + l1_page], rax
    jmp [rip + resume]
c_ptwr_xchg:
    xor eax, eax
    xchg [rip + l1_page], rax          /* ptep_get_and_clear */
    jmp [rip + resume]
c_ptwr_selfmap:
    mov rax, r12
    shl rax, 12
    or rax, 0x67                       /* the L1 itself, writable: refused, #PF */
    mov [rip + l1_page + 8], rax
    jmp [rip + resume]
c_write_now_ro:
    mov byte ptr [rip + data_page], 2
    jmp [rip + resume]

bad_stack:
    mov rsp, 0x800000000badc0de
    pushf
    ud2

    .section .rodata
msg_bye:    .asciz "pvcpu: bye\n"
msg_p00:    .asciz "P00 set_trap_table"
msg_p00b:   .asciz "P00 callback_op register syscall"
msg_p01:    .asciz "P01 int3 (DPL 3 entry)"
msg_p02:    .asciz "P02 int 0x80 (DPL 3 entry)"
msg_p03:    .asciz "P03 int 0x81 (DPL 0 entry): #GP(0x81 << 3 | 2)"
msg_p04:    .asciz "P04 ud2"
msg_p05:    .asciz "P05 read unmapped 0x1000"
msg_p06:    .asciz "P06 write the read-only L4"
msg_p07:    .asciz "P07 cli with vIOPL 0"
msg_p08:    .asciz "P08 hlt"
msg_p09:    .asciz "P09 in al, 0x60 with vIOPL 0"
msg_p10:    .asciz "P10 wrmsr 0x12345678"
msg_p11:    .asciz "P11 rdmsr EFER"
msg_p12:    .asciz "P12 forced-emulation cpuid 0x40000000 ebx"
msg_p13:    .asciz "P13 mov rax, cr0"
msg_p14:    .asciz "P14 mov cr3, rax (same base)"
msg_p20:    .asciz "P20 mmuext NEW_USER_BASEPTR (kernel L4)"
msg_p21:    .asciz "P21 user syscall -> syscall callback"
msg_p22:    .asciz "P22 user int 0x80 (DPL 3)"
msg_p23:    .asciz "P23 user read unmapped 0x1000"
msg_p24:    .asciz "P24 user int 0x81 (DPL 0): #GP"
msg_p30:    .asciz "P30 vm_assist writable_pagetables"
msg_p31:    .asciz "P31 pin_l1 a zeroed page"
msg_p32:    .asciz "P32 store into the pinned L1 through its RO mapping"
msg_p33:    .asciz "P33 the entry reads back"
msg_p34:    .asciz "P34 xchg the entry with 0"
msg_p35:    .asciz "P35 the entry reads back"
msg_p36:    .asciz "P36 store a writable self-map into the L1"
msg_p37:    .asciz "P37 the entry reads back"
msg_p40:    .asciz "P40 write a page just made read-only"

    .data
    .balign 8
last:       .quad 0
resume:     .quad 0
saved_rsp:  .quad 0
trap_table:
    .byte 3, 3
    .word KERNEL_CS
    .long 0
    .quad h_3
    .byte 6, 0
    .word KERNEL_CS
    .long 0
    .quad h_6
    .byte 13, 0
    .word KERNEL_CS
    .long 0
    .quad h_13
    .byte 14, 0
    .word KERNEL_CS
    .long 0
    .quad h_14
    .byte 0x80, 3
    .word KERNEL_CS
    .long 0
    .quad h_0x80
    .byte 0x81, 0
    .word KERNEL_CS
    .long 0
    .quad h_0x81
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
data_page:
    .fill 4096, 1, 0
user_stack:
    .fill 4096, 1, 0
user_stack_top:
trap_stack:
    .fill 4096, 1, 0
trap_stack_top:
stack:
    .fill 8192, 1, 0
stack_top:
