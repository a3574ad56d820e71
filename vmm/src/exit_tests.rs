//! Exit handling with fake exits, on a GuestRam-backed Hypervisor (no KVM): each entry into
//! the hypervisor (hypercall through the page, SYSCALL, exceptions through the vector stubs,
//! `int n`, iret) is fed to `handle_exit` and its effect on the register image and on guest
//! memory is checked against Xen's `create_bounce_frame` / `do_iret` / `switch_to_kernel`.

use crate::exit::{Action, Exit};
use crate::hypercall::fake_domain::xen_domain;
use crate::hypercall::Hypervisor;
use crate::logging::EventLog;
use crate::pv::cpuid::CpuidTable;
use crate::pv::xen_area::port;
use crate::pv::{flat_segment, CpuImage};
use pagetable_validator::abi::errno;
use pagetable_validator::abi::x86::{self as xen, TrapInfo};
use pagetable_validator::pte::{mk_pte, _PAGE_PRESENT, _PAGE_RW};
use pagetable_validator::Mfn;
use pagetable_validator::{Policy, Rules};

const MIB: u64 = 4;
const FRAMES: u64 = MIB * 256;
const L4: u64 = 1;
const L1: u64 = 4;
/// VA `slot * 4096` (slots 1..32) maps frame `DATA + slot` RW.
const DATA: u64 = 16;
const HP: u64 = 0x1000; // hypercall page (slot 1)
const STACK_TOP: u64 = 0x8000; // kernel stack: slots 4..7
const KERNEL_SP: u64 = 0xc000; // stack_switch stack: slots 8..11
const HANDLER: u64 = 0x5_0000;

fn domain() -> Hypervisor {
    let (mut ram, l, _, mut v) = xen_domain(FRAMES, MIB, Policy::Enforce, Rules::default());
    let p = _PAGE_PRESENT | _PAGE_RW;
    ram.write_u64_phys(L4 << 12, mk_pte(2, p));
    ram.write_u64_phys(2 << 12, mk_pte(3, p));
    ram.write_u64_phys(3 << 12, mk_pte(L1, p));
    for s in 1..32 {
        ram.write_u64_phys((L1 << 12) + s * 8, mk_pte(DATA + s, p));
    }
    v.register_initial(&mut ram, Mfn(L4)).unwrap();
    let mut hv = Hypervisor::new(
        ram,
        v,
        l,
        CpuidTable::default(),
        EventLog::new(None).unwrap(),
        Box::new(std::io::sink()),
    );
    hv.hypercall_page = Some(HP);
    let page = crate::builder::hypercall_page();
    hv.ram.write_phys((DATA + 1) << 12, &page);
    let mut c = CpuImage::default();
    c.sregs.cr3 = L4 << 12;
    c.regs.rsp = STACK_TOP;
    c.regs.rflags = 0x202;
    hv.vcpu.cpu = c;
    hv.vcpu
        .cpu
        .set_guest_segments(xen::FLAT_KERNEL_CS, xen::FLAT_KERNEL_SS);
    hv
}

fn read(hv: &Hypervisor, va: u64) -> u64 {
    let mut b = [0u8; 8];
    hv.ram.read_virt(L4 << 12, va, &mut b).unwrap();
    u64::from_le_bytes(b)
}

fn write(hv: &Hypervisor, va: u64, v: u64) {
    hv.ram.write_virt(L4 << 12, va, &v.to_le_bytes()).unwrap();
}

fn trap(hv: &mut Hypervisor, vector: u8, dpl: u8) {
    hv.vcpu.pv.trap_ctxt[usize::from(vector)] = TrapInfo {
        vector,
        flags: dpl,
        cs: xen::FLAT_KERNEL_CS,
        _pad: 0,
        address: HANDLER + u64::from(vector),
    };
}

/// The CPU's frame on the ring-0 stack and the vCPU at the vector stub, as after the stub's
/// `out`.
fn at_vector_stub(hv: &mut Hypervisor, vector: u8, ec: Option<u32>, rip: u64, rsp: u64) -> Exit {
    let l = hv.xen.clone();
    let mut words = vec![rip, u64::from(xen::FLAT_KERNEL_CS), 0x202, rsp, 0xe02b];
    if let Some(e) = ec {
        words.insert(0, u64::from(e));
    }
    let sp = l.stack_top() - words.len() as u64 * 8;
    for (i, w) in words.iter().enumerate() {
        hv.ram
            .write_u64_phys(l.pd_gpa(sp + i as u64 * 8).unwrap(), *w);
    }
    hv.vcpu.cpu.regs.rsp = sp;
    hv.vcpu.cpu.regs.rip = l.vector_stub(vector);
    hv.vcpu.cpu.sregs.cs = kvm_bindings::kvm_segment {
        dpl: 0,
        ..flat_segment(xen::HYPERVISOR_CS, true)
    };
    Exit::Stub(port::vector(vector))
}

#[test]
fn hypercall_through_the_page_returns_after_the_out() {
    for at_out in [true, false] {
        let mut hv = domain();
        let out = HP + 17 * 32 + 5;
        hv.vcpu.cpu.regs.rip = if at_out { out } else { out + 2 };
        hv.vcpu.cpu.regs.rax = 17;
        hv.vcpu.cpu.regs.rdi = 0; // XENVER_version
        assert_eq!(hv.handle_exit(Exit::HypercallPort), Action::Resume);
        assert_eq!(hv.vcpu.cpu.regs.rax, (4 << 16) | 17);
        assert_eq!(hv.vcpu.cpu.regs.rip, out + 2);
        assert_eq!(hv.io_rip_after, Some(!at_out));
    }
}

#[test]
fn a_page_fault_is_bounced_with_xens_frame() {
    let mut hv = domain();
    trap(&mut hv, 14, 0);
    hv.vcpu.cpu.regs.rcx = 0x1111;
    hv.vcpu.cpu.regs.r11 = 0x2222;
    hv.vcpu.cpu.sregs.cr2 = 0xdead_0000;
    let exit = at_vector_stub(&mut hv, 14, Some(0x6), 0x4_0123, STACK_TOP - 0x18);
    assert_eq!(hv.handle_exit(exit), Action::Resume);
    let r = hv.vcpu.cpu.regs;
    assert_eq!(r.rip, HANDLER + 14);
    // 16-byte aligned below the interrupted rsp: { rcx, r11, ec, rip, cs, rflags, rsp, ss }.
    let base = ((STACK_TOP - 0x18) & !0xf) - 8 * 8;
    assert_eq!(r.rsp, base);
    let f: Vec<u64> = (0..8).map(|i| read(&hv, base + i * 8)).collect();
    // Kernel mode: the user bit of the error code is cleared; CS shows RPL 0 and, in bits
    // 32-39, the saved upcall mask (1: a vCPU starts with events masked), so the frame's IF
    // is clear.
    assert_eq!(
        f,
        [
            0x1111,
            0x2222,
            0x2,
            0x4_0123,
            (1 << 32) | 0xe030,
            0x2,
            STACK_TOP - 0x18,
            0xe02b
        ]
    );
    assert_eq!(hv.vcpu.cpu.sregs.cs.dpl, 3);
    let cr2 = hv.ram.read_u64_phys(hv.vcpu.pv.vcpu_info_gpa + 16).unwrap();
    assert_eq!(cr2, 0xdead_0000, "the guest reads CR2 from vcpu_info");
}

#[test]
fn no_handler_or_a_bad_stack_crashes_the_domain() {
    let mut hv = domain();
    let exit = at_vector_stub(&mut hv, 13, Some(0), 0x4_0000, STACK_TOP);
    match hv.handle_exit(exit) {
        Action::Crash(w) => assert!(w.contains("Unhandled: vec 13, #GP[0000]"), "{w}"),
        a => panic!("{a:?}"),
    }
    let mut hv = domain();
    trap(&mut hv, 3, 3);
    let exit = at_vector_stub(&mut hv, 3, None, 0x4_0000, 0x8000_0000_0bad_c0de);
    match hv.handle_exit(exit) {
        Action::Crash(w) => assert!(w.contains("create_bounce_frame"), "{w}"),
        a => panic!("{a:?}"),
    }
}

#[test]
fn int_n_follows_the_trap_tables_dpl() {
    // This host's #UD for `int 0x80` at CPL 3 is the software interrupt.
    let mut hv = domain();
    trap(&mut hv, 0x80, 3);
    trap(&mut hv, 13, 0);
    write(&hv, 0x1_8000, 0x80cd);
    let exit = at_vector_stub(&mut hv, 6, None, 0x1_8000, STACK_TOP);
    assert_eq!(hv.handle_exit(exit), Action::Resume);
    assert_eq!(hv.vcpu.cpu.regs.rip, HANDLER + 0x80);
    let rsp = hv.vcpu.cpu.regs.rsp;
    assert_eq!(read(&hv, rsp + 16), 0x1_8002, "returns after the int");
    // DPL 0: #GP(0x80 << 3 | 2) at the int.
    let mut hv = domain();
    trap(&mut hv, 0x80, 0);
    trap(&mut hv, 13, 0);
    write(&hv, 0x1_8000, 0x80cd);
    let exit = at_vector_stub(&mut hv, 6, None, 0x1_8000, STACK_TOP);
    assert_eq!(hv.handle_exit(exit), Action::Resume);
    assert_eq!(hv.vcpu.cpu.regs.rip, HANDLER + 13);
    let rsp = hv.vcpu.cpu.regs.rsp;
    assert_eq!(read(&hv, rsp + 16), 0x402);
    assert_eq!(read(&hv, rsp + 24), 0x1_8000);
}

#[test]
fn iret_restores_xens_frame_and_the_upcall_mask() {
    let mut hv = domain();
    // iret_context at rsp: rax, r11, rcx, flags, rip, cs, rflags, rsp, ss.
    let sp = STACK_TOP - 9 * 8;
    let ctx = [7, 0x33, 0x44, 0, 0x4_5678, 0xe030, 0x0046, 0x7000, 0xe02b];
    for (i, w) in ctx.iter().enumerate() {
        write(&hv, sp + i as u64 * 8, *w);
    }
    hv.vcpu.cpu.regs.rsp = sp;
    hv.vcpu.cpu.regs.rax = 23;
    hv.vcpu.cpu.regs.rip = HP + 23 * 32 + 9;
    assert_eq!(hv.handle_exit(Exit::HypercallPort), Action::Resume);
    let r = hv.vcpu.cpu.regs;
    assert_eq!(
        (r.rax, r.r11, r.rcx, r.rip, r.rsp),
        (7, 0x33, 0x44, 0x4_5678, 0x7000)
    );
    // IF forced, the guest's IF (clear here) becomes the upcall mask.
    assert_eq!(r.rflags, 0x0046 | 0x202);
    let mask = hv.ram.read_phys_u8(hv.vcpu.pv.vcpu_info_gpa + 1).unwrap();
    assert_eq!(mask, 1);
    assert!(
        hv.vcpu.pv.kernel_mode,
        "RPL 0 in the frame: back to kernel mode"
    );
}

#[test]
fn syscall_is_a_hypercall_in_kernel_mode_and_a_bounce_from_user_mode() {
    let mut hv = domain();
    let l = hv.xen.clone();
    hv.vcpu.cpu.regs.rip = l.syscall_entry();
    hv.vcpu.cpu.regs.rax = 17;
    hv.vcpu.cpu.regs.rdi = 0;
    hv.vcpu.cpu.regs.rcx = 0x4_1002;
    hv.vcpu.cpu.regs.r11 = 0x246;
    assert_eq!(hv.handle_exit(Exit::Stub(port::SYSCALL)), Action::Resume);
    assert_eq!(hv.vcpu.cpu.regs.rax, (4 << 16) | 17);
    assert_eq!(hv.vcpu.cpu.regs.rip, 0x4_1002);

    // From user mode: the syscall callback, on the stack_switch stack, in kernel mode.
    let mut hv = domain();
    hv.validator.new_user_baseptr(&mut hv.ram, Mfn(L4)).unwrap();
    hv.vcpu.pv.kernel_mode = false;
    hv.vcpu.pv.kernel_sp = KERNEL_SP;
    hv.vcpu.pv.callbacks.syscall = crate::pv::Callback {
        address: HANDLER,
        mask_events: true,
    };
    hv.vcpu.cpu.regs.rip = l.syscall_entry();
    hv.vcpu.cpu.regs.rcx = 0x4_2002;
    hv.vcpu.cpu.regs.r11 = 0x202;
    assert_eq!(hv.handle_exit(Exit::Stub(port::SYSCALL)), Action::Resume);
    assert!(hv.vcpu.pv.kernel_mode);
    let r = hv.vcpu.cpu.regs;
    assert_eq!(r.rip, HANDLER);
    assert_eq!(r.rsp, KERNEL_SP - 7 * 8);
    assert_eq!(read(&hv, r.rsp + 16), 0x4_2002, "rip in the frame = rcx");
    let mask = hv.ram.read_phys_u8(hv.vcpu.pv.vcpu_info_gpa + 1).unwrap();
    assert_eq!(mask, 1, "CALLBACKF_mask_events");
}

#[test]
fn a_stub_port_from_guest_code_is_guest_io() {
    let mut hv = domain();
    trap(&mut hv, 13, 0);
    // `out 0xe1, al` at 0x1_8000 in guest code; this host reports RIP past it.
    write(&hv, 0x1_8000, 0xe1e6);
    hv.io_rip_after = Some(true);
    hv.vcpu.cpu.regs.rip = 0x1_8002;
    assert_eq!(hv.handle_exit(Exit::Stub(port::SYSCALL)), Action::Resume);
    assert_eq!(hv.vcpu.cpu.regs.rip, HANDLER + 13);
    let rsp = hv.vcpu.cpu.regs.rsp;
    assert_eq!(read(&hv, rsp + 24), 0x1_8000, "#GP at the out itself");
}

/// Xen's `int reg`: a register number with high bits set is the truncated one, and neither
/// call indexes with the full 64-bit value (the fuzzer found that panic).
#[test]
fn debug_registers_take_the_truncated_register_number() {
    let mut hv = domain();
    assert_eq!(hv.set_debugreg((1 << 32) | 2, 0x1000), 0);
    assert_eq!(hv.get_debugreg((1 << 32) | 2), 0x1000);
    assert_eq!(hv.get_debugreg(2), 0x1000);
    assert_eq!(hv.get_debugreg(0x0001_0000_0000_0008), -errno::ENODEV);
    assert_eq!(hv.set_debugreg(0xffff_0000_0000_0009, 0), -errno::ENODEV);
}

/// The exits a PV guest cannot cause by design stop the domain with a reason naming the exit,
/// and leave the register image alone.
#[test]
fn the_other_exits_stop_the_domain_and_say_why() {
    for (exit, says) in [
        (Exit::Hlt, "hlt"),
        (Exit::TripleFault, "triple fault"),
        (Exit::Internal, "internal error"),
        (Exit::FailEntry(7), "entry failure, hardware reason 0x7"),
        (
            Exit::Mmio(0xfee0_0000),
            "guest-physical 0xfee00000 outside RAM",
        ),
        (Exit::Other("shutdown".into()), "unexpected exit shutdown"),
    ] {
        let mut hv = domain();
        let before = hv.vcpu.cpu.regs;
        match hv.handle_exit(exit) {
            Action::Stop(why) => assert!(why.contains(says), "{why}"),
            a => panic!("{a:?}"),
        }
        assert_eq!(hv.vcpu.cpu.regs, before);
    }
    // Port I/O from ring 0 (the VMM's own stubs never do it) stops; from the guest (CPL 3) it
    // is the guest's I/O (bounced as #GP without an I/O bitmap, see above).
    let mut hv = domain();
    hv.vcpu.cpu.sregs.cs.dpl = 0;
    match hv.handle_exit(Exit::Io {
        port: 0x80,
        write: false,
    }) {
        Action::Stop(why) => assert!(
            why.contains("port I/O (in) on port 0x80 from ring 0"),
            "{why}"
        ),
        a => panic!("{a:?}"),
    }
}
