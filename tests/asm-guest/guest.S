/*
 * A tiny Xen PV x86_64 guest in assembly, for the VMM's boot tests.
 *
 * It is a genuine Xen PV kernel image (Xen ELF notes, hypercall page, entry with rsi =
 * start_info) that uses only hypercalls, prints through console_io, exercises the PV MMU
 * (pin a page still mapped RW, make it RO, pin, unpin, remap a VA to another frame), sends a
 * few hostile hypercalls, runs SSE2 cases, and powers off. A one-letter command line picks a
 * mode instead:
 *   (default) the run above      c  SHUTDOWN_crash        r  SHUTDOWN_reboot
 *   f  write to an unmapped address (page fault with no IDT: triple fault)
 *   o  `out` to a port (privileged)   w  clear CR0.WP, then a hypercall
 *   x  load CR3 with an unvalidated copy of the L4, then a hypercall
 *   h  hostile: 1000 pseudo-random hypercalls (mmu_update, update_va_mapping, mmuext_op,
 *      multicall, console_io, xen_version, unknown) with random and half-plausible
 *      arguments; batches point at a scratch page of random requests. Prints "H <nr> rc=<rc>" per
 *      call, so real Xen and the VMM can be compared call by call.
 *   l  spin forever (never shuts down: for `--timeout` and SIGINT/SIGTERM)
 *   b  long batches (longer than the VMM's preemption budget, so they run as Xen-style
 *      continuations): mmu_update of 700 MMU_MACHPHYS_UPDATE requests, the same with the
 *      PREEMPTED bit set by the guest, one with a bad 601st request, mmuext_op of 600 TLB
 *      flushes, and a multicall whose first entry is the 700-request mmu_update. Prints
 *      "Bnn ... rc=" lines: rc and `done` are what Xen gives wherever it preempts.
 * Numbers are printed as 16 hex digits. Build: cc -c guest.S; ld -T link.ld (see README.md).
 */
    .intel_syntax noprefix
#include "common.S"

/* ---- entry ---- */
    .section .text.head, "ax"
    .globl _start
_start:
    lea rsp, [rip + stack_top]
    mov [rip + start_info], rsi
    lea rdi, [rip + msg_hello]
    call puts
    lea rdi, [rip + msg_cmdline]
    call puts
    mov rdi, [rip + start_info]
    add rdi, SI_CMDLINE
    call puts
    call newline
    mov rax, [rip + start_info]
    cmp byte ptr [rax + SI_CMDLINE + 1], 0  /* modes are one-letter command lines */
    jne main_run
    movzx eax, byte ptr [rax + SI_CMDLINE]
    cmp al, 'c'
    je do_crash
    cmp al, 'r'
    je do_reboot
    cmp al, 'f'
    je do_fault
    cmp al, 'o'
    je do_out
    cmp al, 'w'
    je do_wp
    cmp al, 'x'
    je do_cr3
    cmp al, 'h'
    je do_hostile
    cmp al, 'b'
    je do_batch
    cmp al, 'l'
    je do_loop
    jmp main_run

    .text
main_run:
    lea rdi, [rip + msg_version]
    xor edi, edi
    xor esi, esi
    HYPERCALL HC_XEN_VERSION
    mov rbx, rax
    lea rdi, [rip + msg_version]
    mov rsi, rbx
    call report

    lea rdi, [rip + test_page]
    call mfn_of
    mov r12, rax                       /* r12 = mfn of test_page */
    lea rdi, [rip + page2]
    call mfn_of
    mov r13, rax                       /* r13 = mfn of page2 */

    mov edi, 0                         /* MMUEXT_PIN_L1_TABLE */
    mov rsi, r12
    call mmuext1
    lea rdi, [rip + msg_a01]
    mov rsi, rax
    call report

    lea rdi, [rip + test_page]
    mov rsi, r12
    mov edx, 0x21                      /* present | accessed: read-only */
    call uvm
    lea rdi, [rip + msg_a02]
    mov rsi, rax
    call report

    mov edi, 0
    mov rsi, r12
    call mmuext1
    lea rdi, [rip + msg_a03]
    mov rsi, rax
    call report

    mov edi, 4                         /* MMUEXT_UNPIN_TABLE */
    mov rsi, r12
    call mmuext1
    lea rdi, [rip + msg_a04]
    mov rsi, rax
    call report

    lea rdi, [rip + test_page]
    mov rsi, r12
    mov edx, 0x63                      /* present | rw | accessed | dirty */
    call uvm
    lea rdi, [rip + msg_a05]
    mov rsi, rax
    call report

    /* TLB coherence: touch test_page, remap its VA to page2's frame, read through it. */
    mov rax, [rip + test_page]
    lea rdi, [rip + test_page]
    mov rsi, r13
    mov edx, 0x63
    call uvm
    mov rbx, [rip + test_page]         /* must be page2's marker, not test_page's zero */
    lea rdi, [rip + msg_a06]
    mov rsi, rbx
    call report
    lea rdi, [rip + test_page]
    mov rsi, r12
    mov edx, 0x63
    call uvm
    lea rdi, [rip + msg_a07]
    mov rsi, rax
    call report

    /* Hostile calls. */
    HYPERCALL 99
    lea rdi, [rip + msg_a08]
    mov rsi, rax
    call report

    lea rdi, [rip + mmu_req]
    mov esi, 1
    xor edx, edx
    mov r10d, 5                        /* no such domain */
    HYPERCALL HC_MMU_UPDATE
    lea rdi, [rip + msg_a09]
    mov rsi, rax
    call report

    mov dword ptr [rip + done_var], 0x55
    mov edi, 0x1000                    /* not mapped */
    mov esi, 0x7fffffff                /* wild count */
    lea rdx, [rip + done_var]
    mov r10d, DOMID_SELF
    HYPERCALL HC_MMUEXT_OP
    lea rdi, [rip + msg_a10]
    mov rsi, rax
    call report
    lea rdi, [rip + msg_a10d]
    mov esi, [rip + done_var]
    call report

    lea rdi, [rip + mc_entries]
    mov esi, 3
    HYPERCALL HC_MULTICALL
    lea rdi, [rip + msg_a11]
    mov rsi, rax
    call report
    lea rdi, [rip + msg_a11a]
    mov rsi, [rip + mc_entries + 8]
    call report
    lea rdi, [rip + msg_a11b]
    mov rsi, [rip + mc_entries + 64 + 8]
    call report
    lea rdi, [rip + msg_a11c]
    mov rsi, [rip + mc_entries + 128 + 8]
    call report

    call sse_tests

    lea rdi, [rip + msg_bye]
    call puts
    mov dword ptr [rip + reason], 0    /* SHUTDOWN_poweroff */
    jmp shutdown

do_crash:
    mov dword ptr [rip + reason], 3    /* SHUTDOWN_crash */
    jmp shutdown
do_reboot:
    mov dword ptr [rip + reason], 1    /* SHUTDOWN_reboot */
    jmp shutdown

    .globl do_fault
do_fault:
    mov byte ptr [0x1000], 1           /* unmapped: #PF, no IDT -> triple fault */
    jmp do_fault

    .globl do_loop
do_loop:                               /* spins forever: for --timeout and signals */
    pause
    jmp do_loop

    .globl do_out
do_out:
    out 0x80, al
    jmp do_out

do_wp:
    mov rax, cr0
    and rax, ~0x10000
    mov cr0, rax
    lea rdi, [rip + msg_hello]
    call puts
    jmp do_wp

do_cr3:
    /* Copy the (RO-mapped) L4 into test_page and run on the copy: never validated. */
    mov rsi, [rip + start_info]
    mov rsi, [rsi + SI_PT_BASE]
    lea rdi, [rip + test_page]
    mov ecx, 512
    rep movsq
    lea rdi, [rip + test_page]
    call mfn_of
    shl rax, 12
    mov cr3, rax
    lea rdi, [rip + msg_hello]
    call puts
    jmp do_cr3

/* Mode b: long batches. r12 = mfn of test_page, r13 = its pfn. */
    .set BATCH_N, 700
    .set EXT_N, 600
do_batch:
    lea rdi, [rip + test_page]
    call mfn_of
    mov r12, rax
    lea rax, [rip + test_page]
    mov rcx, VIRT_BASE
    sub rax, rcx
    shr rax, 12
    mov r13, rax
    call fill_machphys

    mov dword ptr [rip + done_var], 0
    lea rdi, [rip + batch_reqs]
    mov esi, BATCH_N
    lea rdx, [rip + done_var]
    mov r10d, DOMID_SELF
    HYPERCALL HC_MMU_UPDATE
    lea rdi, [rip + msg_b01]
    mov rsi, rax
    call report
    lea rdi, [rip + msg_b01d]
    mov esi, [rip + done_var]
    call report

    /* The guest sets MMU_UPDATE_PREEMPTED itself: Xen reads `done` back and adds to it. */
    mov dword ptr [rip + done_var], 0x55
    lea rdi, [rip + batch_reqs]
    mov esi, 0x80000000 + 300
    lea rdx, [rip + done_var]
    mov r10d, DOMID_SELF
    HYPERCALL HC_MMU_UPDATE
    lea rdi, [rip + msg_b02]
    mov rsi, rax
    call report
    lea rdi, [rip + msg_b02d]
    mov esi, [rip + done_var]
    call report

    /* Request 600 names an mfn outside the domain: -EINVAL, done = 600. */
    mov rax, 0xfffffff001
    mov [rip + batch_reqs + 600 * 16], rax
    mov dword ptr [rip + done_var], 0
    lea rdi, [rip + batch_reqs]
    mov esi, BATCH_N
    lea rdx, [rip + done_var]
    mov r10d, DOMID_SELF
    HYPERCALL HC_MMU_UPDATE
    lea rdi, [rip + msg_b03]
    mov rsi, rax
    call report
    lea rdi, [rip + msg_b03d]
    mov esi, [rip + done_var]
    call report
    call fill_machphys

    lea rdi, [rip + batch_ops]
    mov ecx, EXT_N
1:  mov dword ptr [rdi], 6             /* MMUEXT_TLB_FLUSH_LOCAL */
    add rdi, 24
    dec ecx
    jnz 1b
    mov dword ptr [rip + done_var], 0
    lea rdi, [rip + batch_ops]
    mov esi, EXT_N
    lea rdx, [rip + done_var]
    mov r10d, DOMID_SELF
    HYPERCALL HC_MMUEXT_OP
    lea rdi, [rip + msg_b04]
    mov rsi, rax
    call report
    lea rdi, [rip + msg_b04d]
    mov esi, [rip + done_var]
    call report

    /* multicall [mmu_update(batch_reqs, 700, &done_var, DOMID_SELF), xen_version(0)] */
    mov dword ptr [rip + done_var], 0
    lea rax, [rip + batch_reqs]
    mov [rip + mc_batch + 16], rax
    lea rax, [rip + done_var]
    mov [rip + mc_batch + 32], rax
    lea rdi, [rip + mc_batch]
    mov esi, 2
    HYPERCALL HC_MULTICALL
    lea rdi, [rip + msg_b05]
    mov rsi, rax
    call report
    lea rdi, [rip + msg_b05a]
    mov rsi, [rip + mc_batch + 8]
    call report
    lea rdi, [rip + msg_b05d]
    mov esi, [rip + done_var]
    call report
    lea rdi, [rip + msg_b05b]
    mov rsi, [rip + mc_batch + 64 + 8]
    call report
    /* Not compared with Xen (where Xen preempts is its own affair): the entry's count
     * argument, rewritten by a continuation of the sub-call. */
    lea rdi, [rip + msg_b05c]
    mov rsi, [rip + mc_batch + 24]
    call report

    lea rdi, [rip + msg_bye]
    call puts
    mov dword ptr [rip + reason], 0
    jmp shutdown

/* Fills batch_reqs with BATCH_N MMU_MACHPHYS_UPDATE requests m2p[r12] = r13. */
fill_machphys:
    lea rdi, [rip + batch_reqs]
    mov rax, r12
    shl rax, 12
    or rax, 1                          /* MMU_MACHPHYS_UPDATE */
    mov ecx, BATCH_N
1:  mov [rdi], rax
    mov [rdi + 8], r13
    add rdi, 16
    dec ecx
    jnz 1b
    ret

/* xorshift64 on r15 -> rax */
rand:
    mov rax, r15
    mov rcx, rax
    shl rcx, 13
    xor rax, rcx
    mov rcx, rax
    shr rcx, 7
    xor rax, rcx
    mov rcx, rax
    shl rcx, 17
    xor rax, rcx
    mov r15, rax
    ret

/* plausible() -> rax: small number, scratch pointer, frame address, VA in the unused low 2 MiB
 * of the initial mapping, or raw random bits. Frames are those of pfns >= 0x400: never in use. */
plausible:
    call rand
    mov rdx, rax
    shr rdx, 8
    and eax, 7
    cmp eax, 0
    je 1f
    cmp eax, 1
    je 2f
    cmp eax, 2
    je 3f
    cmp eax, 3
    je 4f
    cmp eax, 4
    je 5f
    mov rax, rdx                       /* raw */
    ret
1:  mov rax, rdx                       /* small */
    and eax, 0x1f
    ret
2:  and edx, 0x1f0                     /* pointer into the scratch requests */
    lea rax, [rip + scratch]
    add rax, rdx
    ret
3:  call rand_mfn                      /* a machine frame of one of our pfns 0x400.. */
    ret
4:  call rand_mfn                      /* a PTE: such a frame | random low flags */
    shl rax, 12
    and edx, 0xfff
    or rax, rdx
    ret

/* rand_mfn(rdx = random) -> rax = mfn_list[0x400 + rdx % 0x3c00]: frames the guest owns but
 * never uses, named through the P2M so that real Xen and the VMM see the same pages. */
rand_mfn:
    mov rax, rdx
    and eax, 0x3bff
    add eax, 0x400
    mov rcx, [rip + start_info]
    mov rcx, [rcx + SI_MFN_LIST]
    mov rax, [rcx + rax * 8]
    ret
5:  and edx, 0x1ff000                  /* a VA in the unused first 2 MiB of the mapping */
    mov rax, VIRT_BASE
    add rax, rdx
    ret

do_hostile:
    mov r15, 0x9e3779b97f4a7c15
    mov r14d, 1000
1:  /* Fill 512 bytes of scratch with plausible values (requests, ops, multicall entries). */
    lea rbx, [rip + scratch]
    mov r13d, 64
2:  call plausible
    mov [rbx], rax
    add rbx, 8
    dec r13d
    jnz 2b
    /* Keep multicalls small and shutdown-free: entry ops from a fixed list. */
    lea rbx, [rip + scratch]
    xor r13d, r13d
3:  call rand
    and eax, 7
    lea rcx, [rip + hostile_ops]
    movzx eax, byte ptr [rcx + rax]
    mov [rbx + r13], rax
    add r13d, 64
    cmp r13d, 512
    jb 3b
    call rand
    and eax, 7
    lea rcx, [rip + hostile_ops]
    movzx r12d, byte ptr [rcx + rax]
    call plausible
    mov [rip + h_args], rax
    call plausible
    mov [rip + h_args + 8], rax
    call plausible
    mov [rip + h_args + 16], rax
    call plausible
    mov [rip + h_args + 24], rax
    call rand
    mov [rip + h_args + 32], rax
    cmp r12d, HC_MULTICALL             /* keep multicall batches short */
    jne 4f
    and qword ptr [rip + h_args + 8], 7
4:  cmp r12d, HC_UPDATE_VA_MAPPING     /* only remap the unused low 2 MiB, never ourselves */
    jne 5f
    call rand
    and eax, 0x1ff000
    mov rcx, VIRT_BASE
    add rax, rcx
    mov [rip + h_args], rax
5:  mov rdi, [rip + h_args]
    mov rsi, [rip + h_args + 8]
    mov rdx, [rip + h_args + 16]
    mov r10, [rip + h_args + 24]
    mov r8, [rip + h_args + 32]
    mov rax, r12
    shl rax, 5
    lea rcx, [rip + hypercall_page]
    add rax, rcx
    call rax
    push rax                           /* one line per call: the same PRNG gives the same calls */
    lea rdi, [rip + msg_h]
    call puts
    mov rdi, r12
    call puthex
    pop rsi
    lea rdi, [rip + msg_empty]
    call report
    dec r14d
    jnz 1b
    lea rdi, [rip + msg_hostile]
    call puts
    mov dword ptr [rip + reason], 0
    jmp shutdown

/* report_xmm(rdi = label): "<label> lo=<hex> hi=<hex>\n" of the 16 bytes at sse_out */
report_xmm:
    call puts
    lea rdi, [rip + msg_lo]
    call puts
    mov rdi, [rip + sse_out]
    call puthex
    lea rdi, [rip + msg_hi]
    call puts
    mov rdi, [rip + sse_out + 8]
    call puthex
    jmp newline

/*
 * SSE2 integer/logic instructions on fixed inputs, printed. Where KVM has no hardware
 * virtualization its instruction emulator lacks most of these and the VMM executes them
 * (vmm/src/emulate.rs); on real Xen the CPU does. The conformance test compares the output.
 */
    .macro SSE_CASE label, i1, i2, i3
    movdqu xmm0, [rip + sse_a]
    movdqu xmm1, [rip + sse_b]
    \i1
    \i2
    \i3
    movdqu [rip + sse_out], xmm0
    lea rdi, [rip + \label]
    call report_xmm
    .endm

sse_tests:
    SSE_CASE s01, "pxor xmm0, xmm1"
    SSE_CASE s02, "pand xmm0, xmm1"
    SSE_CASE s03, "por xmm0, xmm1"
    SSE_CASE s04, "pandn xmm0, xmm1"
    SSE_CASE s05, "xorps xmm0, xmm1"
    SSE_CASE s06, "paddb xmm0, xmm1"
    SSE_CASE s07, "paddw xmm0, xmm1"
    SSE_CASE s08, "paddd xmm0, xmm1"
    SSE_CASE s09, "paddq xmm0, xmm1"
    SSE_CASE s10, "psubb xmm0, xmm1"
    SSE_CASE s11, "psubq xmm0, xmm1"
    SSE_CASE s12, "pcmpeqb xmm0, xmm1"
    SSE_CASE s13, "pcmpeqd xmm0, xmm1"
    SSE_CASE s14, "pcmpgtb xmm0, xmm1"
    SSE_CASE s15, "punpcklbw xmm0, xmm1"
    SSE_CASE s16, "punpckhbw xmm0, xmm1"
    SSE_CASE s17, "punpckldq xmm0, xmm1"
    SSE_CASE s18, "punpcklqdq xmm0, xmm1"
    SSE_CASE s19, "punpckhqdq xmm0, xmm1"
    SSE_CASE s20, "pshufd xmm0, xmm1, 0x1b"
    SSE_CASE s21, "pshuflw xmm0, xmm1, 0x1b"
    SSE_CASE s22, "pshufhw xmm0, xmm1, 0x1b"
    SSE_CASE s23, "psrlq xmm0, 5"
    SSE_CASE s24, "psllq xmm0, 7"
    SSE_CASE s25, "psrldq xmm0, 3"
    SSE_CASE s26, "pslldq xmm0, 5"
    SSE_CASE s27, "psrad xmm0, 3"
    SSE_CASE s28, "psrlw xmm0, 9"
    SSE_CASE s29, "pmovmskb eax, xmm1", "movd xmm0, eax"
    SSE_CASE s30, "mov eax, 0xbeef", "pinsrw xmm0, eax, 5"
    SSE_CASE s31, "pextrw eax, xmm1, 3", "movq xmm0, rax"
    SSE_CASE s32, "movq xmm0, xmm1"
    SSE_CASE s33, "pcmpeqb xmm0, [rip + sse_a]"
    SSE_CASE s34, "psadbw xmm0, xmm1"
    SSE_CASE s35, "pmaxub xmm0, xmm1"
    SSE_CASE s36, "pminub xmm0, xmm1"
    SSE_CASE s37, "pmuludq xmm0, xmm1"
    SSE_CASE s38, "shufps xmm0, xmm1, 0x4e"
    SSE_CASE s39, "movq xmm2, [rip + sse_count]", "psrlq xmm0, xmm2"
    SSE_CASE s40, "lea rax, [rip + sse_b]", "mov ecx, 1", "pxor xmm0, [rax + rcx * 8 - 8]"
    SSE_CASE s41, "movdqa xmm9, xmm1", "paddd xmm9, xmm0", "movdqa xmm0, xmm9"
    SSE_CASE s42, "movd xmm0, [rip + sse_count]", "pand xmm0, xmm1"
    ret

    .section .rodata
msg_hello:  .asciz "asm-guest: hello from a Xen PV guest in assembly\n"
msg_cmdline: .asciz "asm-guest: cmdline="
msg_version: .asciz "A00 xen_version"
msg_a01:    .asciz "A01 pin_l1 page still mapped RW"
msg_a02:    .asciz "A02 update_va_mapping page -> RO"
msg_a03:    .asciz "A03 pin_l1 page mapped RO"
msg_a04:    .asciz "A04 unpin page"
msg_a05:    .asciz "A05 update_va_mapping page -> RW"
msg_a06:    .asciz "A06 read through VA remapped to page2"
msg_a07:    .asciz "A07 update_va_mapping VA back to page"
msg_a08:    .asciz "A08 hypercall 99"
msg_a09:    .asciz "A09 mmu_update domid 5"
msg_a10:    .asciz "A10 mmuext_op unmapped ops, wild count"
msg_a10d:   .asciz "A10 done"
msg_a11:    .asciz "A11 multicall [xen_version, multicall, sched_op yield]"
msg_a11a:   .asciz "A11 entry 0"
msg_a11b:   .asciz "A11 entry 1"
msg_a11c:   .asciz "A11 entry 2"
msg_b01:    .asciz "B01 mmu_update 700 machphys"
msg_b01d:   .asciz "B01 done"
msg_b02:    .asciz "B02 mmu_update 300|PREEMPTED, done 0x55"
msg_b02d:   .asciz "B02 done"
msg_b03:    .asciz "B03 mmu_update 700, request 600 bad"
msg_b03d:   .asciz "B03 done"
msg_b04:    .asciz "B04 mmuext_op 600 tlb_flush_local"
msg_b04d:   .asciz "B04 done"
msg_b05:    .asciz "B05 multicall [mmu_update 700, xen_version]"
msg_b05a:   .asciz "B05 entry 0"
msg_b05d:   .asciz "B05 done"
msg_b05b:   .asciz "B05 entry 1"
msg_b05c:   .asciz "b05 entry 0 count arg"
s01:        .asciz "S01"
s02:        .asciz "S02"
s03:        .asciz "S03"
s04:        .asciz "S04"
s05:        .asciz "S05"
s06:        .asciz "S06"
s07:        .asciz "S07"
s08:        .asciz "S08"
s09:        .asciz "S09"
s10:        .asciz "S10"
s11:        .asciz "S11"
s12:        .asciz "S12"
s13:        .asciz "S13"
s14:        .asciz "S14"
s15:        .asciz "S15"
s16:        .asciz "S16"
s17:        .asciz "S17"
s18:        .asciz "S18"
s19:        .asciz "S19"
s20:        .asciz "S20"
s21:        .asciz "S21"
s22:        .asciz "S22"
s23:        .asciz "S23"
s24:        .asciz "S24"
s25:        .asciz "S25"
s26:        .asciz "S26"
s27:        .asciz "S27"
s28:        .asciz "S28"
s29:        .asciz "S29"
s30:        .asciz "S30"
s31:        .asciz "S31"
s32:        .asciz "S32"
s33:        .asciz "S33"
s34:        .asciz "S34"
s35:        .asciz "S35"
s36:        .asciz "S36"
s37:        .asciz "S37"
s38:        .asciz "S38"
s39:        .asciz "S39"
s40:        .asciz "S40"
s41:        .asciz "S41"
s42:        .asciz "S42"
msg_lo:     .asciz " lo="
msg_hi:     .asciz " hi="
msg_bye:    .asciz "asm-guest: bye\n"
msg_hostile: .asciz "asm-guest: hostile run survived\n"
/* mmu_update, update_va_mapping, mmuext_op x2, multicall, console_io, xen_version, unknown */
msg_h:      .asciz "H "
msg_empty:  .asciz ""
hostile_ops: .byte 1, 14, 26, 26, 13, 18, 17, 77

    .data
    .balign 8
done_var:   .long 0
mmu_req:    .quad 0, 0
    .balign 16
sse_a:      .quad 0x0123456789abcdef, 0xfedcba9876543210
sse_b:      .quad 0x0f1e2d3c4b5a6978, 0x0123cdef89ab4567
sse_out:    .quad 0, 0
sse_count:  .quad 13
    .balign 64
mc_entries:
    .quad HC_XEN_VERSION, 0, 0, 0, 0, 0, 0, 0
    .quad HC_MULTICALL, 0, 0, 0, 0, 0, 0, 0
    .quad HC_SCHED_OP, 0, 0, 0, 0, 0, 0, 0
    .balign 4096
page2:
    .quad 0x5eed5eed5eed5eed
    .fill 4088, 1, 0
    .balign 64
mc_batch:
    .quad HC_MMU_UPDATE, 0, 0, 700, 0, DOMID_SELF, 0, 0
    .quad HC_XEN_VERSION, 0, 0, 0, 0, 0, 0, 0

    .bss
    .balign 8
h_args:
    .fill 40, 1, 0
    .balign 4096
scratch:
    .fill 4096, 1, 0
test_page:
    .fill 4096, 1, 0
stack:
    .fill 8192, 1, 0
stack_top:
    /* Mode b's batches, after everything else so the other modes' addresses stay put. */
    .balign 4096
batch_reqs:
    .fill 700 * 16, 1, 0
    .balign 8
batch_ops:
    .fill 600 * 24, 1, 0
