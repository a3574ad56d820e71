//! Ending the domain (Linux: arch/x86/xen/enlighten_pv.c `xen_machine_power_off`, `xen_crash`).

use pagetable_validator::abi::sched::{SHUTDOWN_CRASH, SHUTDOWN_POWEROFF};

use crate::hypercall;

/// Clean poweroff: the domain's exit reason is "poweroff".
pub fn machine_power_off() -> ! {
    shutdown(SHUTDOWN_POWEROFF)
}

/// Crash: the domain's exit reason is "crash" (real Xen prints "Hardware Dom0 crashed").
pub fn machine_crash() -> ! {
    shutdown(SHUTDOWN_CRASH)
}

fn shutdown(reason: u32) -> ! {
    loop {
        let rc = hypercall::sched_shutdown(reason);
        // Only reached if the hypervisor refused; say so once per attempt and keep trying.
        crate::println!("shutdown({reason}) returned {rc}");
        hypercall::sched_yield();
    }
}
