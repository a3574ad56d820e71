//! Ending a KVM_RUN from outside: the host timer that kicks the vCPU at its next deadline
//! ([`Kicker`]), and the SIGINT/SIGTERM handlers and `--timeout` timer that ask the run to
//! stop ([`Stopper`]). Their signal handlers set KVM's `immediate_exit`, so KVM_RUN returns
//! with EINTR even when the signal arrives just before it starts.

use super::VcpuError;
use crate::arch::Machine;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};
use std::time::Duration;

/// Why the run is to end from outside, set by the signal handlers: 0 none, else a signal
/// number (the timeout arrives as TIMEOUT_SIGNAL). A static because signal handlers cannot
/// reach anything else; only the vCPU thread reads it.
static STOP_REQUEST: AtomicI32 = AtomicI32::new(0);

/// The real-time signal (SIGRTMIN + this) the `--timeout` timer sends.
const TIMEOUT_SIGNAL: libc::c_int = 2;

extern "C" fn on_stop(sig: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    STOP_REQUEST.store(sig, Ordering::Release);
    on_kick(sig, ptr::null_mut(), ptr::null_mut());
}

/// The stop request as a sentence, if any.
pub(super) fn stop_requested() -> Option<String> {
    match STOP_REQUEST.load(Ordering::Acquire) {
        0 => None,
        libc::SIGINT => Some("interrupted by SIGINT".into()),
        libc::SIGTERM => Some("terminated by SIGTERM".into()),
        _ => Some("the --timeout elapsed".into()),
    }
}

/// `kvm_run.immediate_exit` of the vCPU this process runs, for the signal handler.
static IMMEDIATE_EXIT: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let p = IMMEDIATE_EXIT.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: `p` is `&mut kvm_run.immediate_exit` of the vCPU's live kvm_run mapping: set
        // by `Kicker::new` and reset to null by `Kicker`'s Drop, which runs before the
        // Machine (and so the mapping) can be dropped (the Kicker lives inside `run`, which
        // borrows the Machine). A one-byte volatile store is async-signal-safe; KVM reads the
        // byte at the next KVM_RUN entry.
        unsafe { p.write_volatile(1) }
    }
}

/// The host timer that interrupts KVM_RUN at the vCPU's next deadline.
/// SIGINT/SIGTERM handlers and the `--timeout` timer, for the length of a run.
pub(super) struct Stopper {
    timer: Option<libc::timer_t>,
}

impl Stopper {
    pub(super) fn new(timeout: Option<Duration>) -> Result<Self, VcpuError> {
        let terr = |what| move |err| VcpuError::Timer { what, err };
        STOP_REQUEST.store(0, Ordering::Release);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            vmm_sys_util::signal::register_signal_handler(sig, on_stop)
                .map_err(terr("install the SIGINT/SIGTERM handler"))?;
        }
        let Some(t) = timeout else {
            return Ok(Stopper { timer: None });
        };
        let sig = vmm_sys_util::signal::SIGRTMIN() + TIMEOUT_SIGNAL;
        vmm_sys_util::signal::register_signal_handler(sig, on_stop)
            .map_err(terr("install the timeout handler"))?;
        // SAFETY: sigevent is plain data; all-zero is a valid value that we then fill in.
        let mut sev: libc::sigevent = unsafe { std::mem::zeroed() };
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = sig;
        // SAFETY: gettid has no preconditions.
        sev.sigev_notify_thread_id = unsafe { libc::gettid() };
        let mut timer: libc::timer_t = ptr::null_mut();
        // SAFETY: `sev` and `timer` are valid for the call; the kernel writes the timer id.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut timer) } != 0 {
            return Err(VcpuError::Timer {
                what: "timer_create (--timeout)",
                err: vmm_sys_util::errno::Error::last(),
            });
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: t.as_secs() as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `timer` is the live timer just created; `spec` is valid for the call.
        if unsafe { libc::timer_settime(timer, 0, &spec, ptr::null_mut()) } != 0 {
            // SAFETY: the live timer from timer_create, deleted once.
            unsafe { libc::timer_delete(timer) };
            return Err(VcpuError::Timer {
                what: "timer_settime (--timeout)",
                err: vmm_sys_util::errno::Error::last(),
            });
        }
        Ok(Stopper { timer: Some(timer) })
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        if let Some(t) = self.timer {
            // SAFETY: the live timer from timer_create, deleted once here.
            unsafe { libc::timer_delete(t) };
        }
    }
}

pub(super) struct Kicker {
    timer: libc::timer_t,
    /// The deadline (guest system time) the host timer is set for.
    pub(super) armed_for: Option<i64>,
}

/// The real-time signal (SIGRTMIN + this) the host timer sends.
const KICK_SIGNAL: libc::c_int = 1;

impl Kicker {
    pub(super) fn new(m: &mut Machine) -> Result<Self, VcpuError> {
        let terr = |what| move |err| VcpuError::Timer { what, err };
        let sig = vmm_sys_util::signal::SIGRTMIN() + KICK_SIGNAL;
        vmm_sys_util::signal::register_signal_handler(sig, on_kick)
            .map_err(terr("install the signal handler"))?;
        let p: *mut u8 = &mut m.vcpu.get_kvm_run().immediate_exit;
        IMMEDIATE_EXIT.store(p, Ordering::Release);
        // SAFETY: sigevent is plain data; all-zero is a valid value that we then fill in.
        let mut sev: libc::sigevent = unsafe { std::mem::zeroed() };
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = sig;
        // SAFETY: gettid has no preconditions.
        sev.sigev_notify_thread_id = unsafe { libc::gettid() };
        let mut timer: libc::timer_t = ptr::null_mut();
        // SAFETY: `sev` and `timer` are valid for the call; the kernel writes the new timer's
        // id into `timer`.
        let r = unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut timer) };
        if r != 0 {
            IMMEDIATE_EXIT.store(ptr::null_mut(), Ordering::Release);
            return Err(VcpuError::Timer {
                what: "timer_create",
                err: vmm_sys_util::errno::Error::last(),
            });
        }
        Ok(Kicker {
            timer,
            armed_for: None,
        })
    }

    /// Sets the host timer for `deadline` (guest system time; `now` is the present), or
    /// disarms it.
    pub(super) fn arm(&mut self, deadline: Option<i64>, now: i64) -> Result<(), VcpuError> {
        if deadline == self.armed_for {
            return Ok(());
        }
        let ns = match deadline {
            Some(d) => d.saturating_sub(now).max(1_000),
            None => 0,
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: ns / 1_000_000_000,
                tv_nsec: ns % 1_000_000_000,
            },
        };
        // SAFETY: `self.timer` is the live timer from timer_create; `spec` is valid for the
        // call and the old value is not asked for.
        let r = unsafe { libc::timer_settime(self.timer, 0, &spec, ptr::null_mut()) };
        if r != 0 {
            return Err(VcpuError::Timer {
                what: "timer_settime",
                err: vmm_sys_util::errno::Error::last(),
            });
        }
        self.armed_for = deadline;
        Ok(())
    }
}

impl Drop for Kicker {
    fn drop(&mut self) {
        // SAFETY: `self.timer` is the live timer from timer_create, deleted once here.
        unsafe { libc::timer_delete(self.timer) };
        IMMEDIATE_EXIT.store(ptr::null_mut(), Ordering::Release);
    }
}
