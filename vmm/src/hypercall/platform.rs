//! `platform_op` (hypercall 7) as Xen 4.17's `arch/x86/platform_hypercall.c` answers our dom0
//! on the VMM's machine: one CPU (APIC id 0), booted by a BIOS without EDD, MBR signatures,
//! VBE/EDID or EFI, no ACPI tables (so no ACPI processor ids, no PM1a control block), no
//! dom0-controlled cpufreq.
//!
//! * `firmware_info`: DISK_INFO / DISK_MBR_SIGNATURE / VBEDDC_INFO -ESRCH (none recorded at
//!   boot), EFI_INFO -ENOSYS (not an EFI boot), KBD_SHIFT_FLAGS index 0 → 0 (the BIOS data
//!   area byte at 0x417 that Xen's boot code saved; no key held), others -EINVAL.
//! * `get_cpuinfo`: CPU 0 online, apic_id 0, acpi_id 0xffffffff (`acpi_get_processor_id` finds
//!   no MADT entry: -1), max_present 0; any other CPU `XEN_PCPU_FLAGS_INVALID`.
//! * `get_cpu_version`: CPU 0's vendor, family, model, stepping (from the CPUID the vCPU
//!   reports, decoded as Xen's `get_cpu_family`); any other CPU zeros.
//! * `settime32/64`: accepted (0) and recorded in [`Platform::settime`] — Xen's `do_settime`
//!   moves the wallclock of every domain; applying it to shared_info's `wc_*` belongs to the
//!   time code (pv/time.rs). settime64 with `mbz` ≠ 0 is -EINVAL.
//! * `enter_acpi_sleep`: S3 -EOPNOTSUPP (no wakeup vector), otherwise -EPERM (no PM1a control
//!   block / no extended sleep registers). Linux's poweroff then falls back to
//!   SCHEDOP_shutdown(poweroff), which ends the run.
//! * `change_freq`, `getidletime`: -ENOSYS (cpufreq not controlled by dom0), as Xen.
//! * The rest (memtype, microcode, quirks, EFI runtime, pminfo, CPU/memory hotplug, core
//!   parking, resource_op, get_symbol): -ENOSYS, reported as unsupported.

use super::{err, Ctx, Hypervisor};
use crate::guest_abi::member;
use pagetable_validator::abi::platform::*;
use pagetable_validator::abi::{errno, hypercall as hc};
use std::mem::offset_of;
use vm_memory::ByteValued;

/// What `settime` told us: (seconds, nanoseconds, the system time they correspond to).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settime {
    pub secs: u64,
    pub nsecs: u32,
    pub system_time: u64,
}

/// Platform state the guest changed.
#[derive(Debug, Clone, Default)]
pub struct Platform {
    /// The last wallclock dom0 set (XENPF_settime32/64), for the time code to apply.
    pub settime: Option<Settime>,
}

/// Xen's `get_cpu_family`: (family, model, stepping) from CPUID.1:EAX.
pub fn cpu_family(eax: u32) -> (u32, u32, u32) {
    let mut family = (eax >> 8) & 0xf;
    let mut model = (eax >> 4) & 0xf;
    if family == 0xf {
        family += (eax >> 20) & 0xff;
    }
    if family >= 6 {
        model |= (eax >> 12) & 0xf0;
    }
    (family, model, eax & 0xf)
}

impl Hypervisor {
    /// `platform_op(op)`: the op is copied whole, then the command's member of its union is
    /// decoded (and written back at `u`'s offset).
    pub(super) fn platform_op(&mut self, ctx: &mut Ctx, uop: u64) -> i64 {
        let op: XenPlatformOp = match self.read_arg(ctx, uop, "platform_op", "xen_platform_op") {
            Ok(op) => op,
            Err(rc) => return rc,
        };
        if op.interface_version != XENPF_INTERFACE_VERSION {
            return err(errno::EACCES);
        }
        let u = ByteValued::as_slice(&op.u);
        let u_at = uop.wrapping_add(offset_of!(XenPlatformOp, u) as u64);
        match op.cmd {
            XENPF_SETTIME32 => {
                let t: XenpfSettime32 = member(u);
                self.platform.settime = Some(Settime {
                    secs: u64::from(t.secs),
                    nsecs: t.nsecs,
                    system_time: t.system_time,
                });
                0
            }
            XENPF_SETTIME64 => {
                let t: XenpfSettime64 = member(u);
                if t.mbz != 0 {
                    return err(errno::EINVAL);
                }
                self.platform.settime = Some(Settime {
                    secs: t.secs,
                    nsecs: t.nsecs,
                    system_time: t.system_time,
                });
                0
            }
            XENPF_FIRMWARE_INFO => {
                let fw: XenpfFirmwareInfo = member(u);
                match fw.ty {
                    XEN_FW_DISK_INFO | XEN_FW_DISK_MBR_SIGNATURE | XEN_FW_VBEDDC_INFO => {
                        err(errno::ESRCH)
                    }
                    XEN_FW_EFI_INFO => err(errno::ENOSYS),
                    XEN_FW_KBD_SHIFT_FLAGS if fw.index != 0 => err(errno::ESRCH),
                    XEN_FW_KBD_SHIFT_FLAGS => {
                        // `u.kbd_shift_flags`, the first byte of the member's union: no key
                        // held.
                        let at = u_at.wrapping_add(offset_of!(XenpfFirmwareInfo, u) as u64);
                        self.pf_write(ctx, at, &[0u8], "firmware_info")
                    }
                    _ => err(errno::EINVAL),
                }
            }
            XENPF_ENTER_ACPI_SLEEP => {
                let sleep: XenpfEnterAcpiSleep = member(u);
                let _extended = sleep.flags & XENPF_ACPI_SLEEP_EXTENDED;
                if sleep.sleep_state == ACPI_STATE_S3 {
                    err(errno::EOPNOTSUPP)
                } else {
                    // Extended: no sleep control/status registers; legacy: no PM1a block.
                    err(errno::EPERM)
                }
            }
            XENPF_CHANGE_FREQ | XENPF_GETIDLETIME => err(errno::ENOSYS),
            XENPF_GET_CPUINFO => {
                let mut info: XenpfPcpuinfo = member(u);
                if info.xen_cpuid != 0 {
                    info.flags = XEN_PCPU_FLAGS_INVALID;
                } else {
                    info.apic_id = 0;
                    info.acpi_id = u32::MAX;
                    info.flags = XEN_PCPU_FLAGS_ONLINE;
                }
                info.max_present = 0;
                self.pf_write(ctx, u_at, info.as_slice(), "get_cpuinfo")
            }
            XENPF_GET_CPU_VERSION => {
                let mut ver: XenpfPcpuVersion = member(u);
                let (vendor, fms) = if ver.xen_cpuid == 0 {
                    let l0 = self.cpuid.lookup(0, 0);
                    let mut v = [0u8; 12];
                    v[0..4].copy_from_slice(&l0[1].to_le_bytes());
                    v[4..8].copy_from_slice(&l0[3].to_le_bytes());
                    v[8..12].copy_from_slice(&l0[2].to_le_bytes());
                    (v, cpu_family(self.cpuid.lookup(1, 0)[0]))
                } else {
                    ([0u8; 12], (0, 0, 0))
                };
                ver.vendor_id = vendor;
                (ver.family, ver.model, ver.stepping) = fms;
                ver.max_present = 0;
                self.pf_write(ctx, u_at, ver.as_slice(), "get_cpu_version")
            }
            cmd => self.unsupported(ctx, hc::PLATFORM_OP, Some(u64::from(cmd))),
        }
    }

    /// `__copy_field_to_guest`: 0, or -EFAULT.
    fn pf_write(&mut self, ctx: &Ctx, va: u64, b: &[u8], what: &str) -> i64 {
        match self.write_arg(ctx, va, b, "platform_op", what) {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypercall::testenv::{self, va, BUF};

    fn call(hv: &mut Hypervisor, cmd: u32, body: &[u8]) -> i64 {
        let mut op = XenPlatformOp {
            cmd,
            interface_version: XENPF_INTERFACE_VERSION,
            ..Default::default()
        };
        ByteValued::as_mut_slice(&mut op.u)[..body.len()].copy_from_slice(body);
        hv.t_write(BUF, 0, op.as_slice());
        let mut ctx = testenv::ctx();
        hv.hypercall(&mut ctx, hc::PLATFORM_OP, [va(BUF, 0), 0, 0, 0, 0, 0])
    }

    #[test]
    fn interface_version_first() {
        let mut hv = testenv::hypervisor();
        hv.t_write(BUF, 0, &[XENPF_GET_CPUINFO as u8, 0, 0, 0, 2, 0, 0, 3]);
        let mut ctx = testenv::ctx();
        let rc = hv.hypercall(&mut ctx, hc::PLATFORM_OP, [va(BUF, 0), 0, 0, 0, 0, 0]);
        assert_eq!(rc, -errno::EACCES);
        let rc = hv.hypercall(&mut ctx, hc::PLATFORM_OP, [0x1000, 0, 0, 0, 0, 0]);
        assert_eq!(rc, -errno::EFAULT);
    }

    #[test]
    fn firmware_info_of_a_bios_without_edd_vbe_or_efi() {
        let mut hv = testenv::hypervisor();
        let fw = |ty: u32, idx: u32| {
            let mut b = [0u8; 8];
            b[0..4].copy_from_slice(&ty.to_le_bytes());
            b[4..8].copy_from_slice(&idx.to_le_bytes());
            b
        };
        for ty in [
            XEN_FW_DISK_INFO,
            XEN_FW_DISK_MBR_SIGNATURE,
            XEN_FW_VBEDDC_INFO,
        ] {
            assert_eq!(
                call(&mut hv, XENPF_FIRMWARE_INFO, &fw(ty, 0)),
                -errno::ESRCH
            );
        }
        assert_eq!(
            call(&mut hv, XENPF_FIRMWARE_INFO, &fw(XEN_FW_EFI_INFO, 0)),
            -errno::ENOSYS
        );
        hv.t_write(BUF, 16, &[0x55]);
        let mut b = [0u8; 9];
        b[..8].copy_from_slice(&fw(XEN_FW_KBD_SHIFT_FLAGS, 0));
        b[8] = 0x55;
        assert_eq!(call(&mut hv, XENPF_FIRMWARE_INFO, &b), 0);
        assert_eq!(hv.t_read::<1>(BUF, 16), [0]);
        assert_eq!(
            call(&mut hv, XENPF_FIRMWARE_INFO, &fw(XEN_FW_KBD_SHIFT_FLAGS, 1)),
            -errno::ESRCH
        );
        assert_eq!(
            call(&mut hv, XENPF_FIRMWARE_INFO, &fw(9, 0)),
            -errno::EINVAL
        );
    }

    #[test]
    fn cpuinfo_and_version_of_one_cpu() {
        let mut hv = testenv::hypervisor();
        assert_eq!(call(&mut hv, XENPF_GET_CPUINFO, &[0; 20]), 0);
        let info = |hv: &Hypervisor| -> XenpfPcpuinfo {
            member(&hv.t_read::<20>(BUF, offset_of!(XenPlatformOp, u) as u64))
        };
        let want = XenpfPcpuinfo {
            xen_cpuid: 0,
            max_present: 0,
            flags: XEN_PCPU_FLAGS_ONLINE,
            apic_id: 0,
            acpi_id: u32::MAX,
        };
        assert_eq!(info(&hv), want);
        assert_eq!(call(&mut hv, XENPF_GET_CPUINFO, &[1, 0, 0, 0]), 0);
        assert_eq!(info(&hv).flags, XEN_PCPU_FLAGS_INVALID);
        assert_eq!(call(&mut hv, XENPF_GET_CPU_VERSION, &[1, 0, 0, 0]), 0);
        let ver: XenpfPcpuVersion = member(&hv.t_read::<32>(BUF, 8));
        assert_eq!((ver.xen_cpuid, ver.family), (1, 0));
        // Xen's get_cpu_family: family 6 model 0x55 stepping 4 from 0x00050654; family
        // 0xf + 0x0a from 0x00a60f12.
        assert_eq!(cpu_family(0x0005_0654), (6, 0x55, 4));
        assert_eq!(cpu_family(0x00a6_0f12), (0x19, 0x61, 2));
    }

    #[test]
    fn time_sleep_and_the_rest() {
        let mut hv = testenv::hypervisor();
        let mut t = [0u8; 24];
        t[0..8].copy_from_slice(&1_700_000_000u64.to_le_bytes());
        t[8..12].copy_from_slice(&5u32.to_le_bytes());
        t[16..24].copy_from_slice(&77u64.to_le_bytes());
        assert_eq!(call(&mut hv, XENPF_SETTIME64, &t), 0);
        let want = Settime {
            secs: 1_700_000_000,
            nsecs: 5,
            system_time: 77,
        };
        assert_eq!(hv.platform.settime, Some(want));
        t[12] = 1;
        assert_eq!(call(&mut hv, XENPF_SETTIME64, &t), -errno::EINVAL);
        // S5 (Linux's acpi_power_off) with no PM1a block: -EPERM; S3: -EOPNOTSUPP.
        assert_eq!(
            call(&mut hv, XENPF_ENTER_ACPI_SLEEP, &[0, 0, 0, 0, 5]),
            -errno::EPERM
        );
        assert_eq!(
            call(&mut hv, XENPF_ENTER_ACPI_SLEEP, &[0, 0, 0, 0, 3]),
            -errno::EOPNOTSUPP
        );
        assert_eq!(call(&mut hv, XENPF_CHANGE_FREQ, &[]), -errno::ENOSYS);
        assert_eq!(call(&mut hv, XENPF_MICROCODE_UPDATE, &[]), -errno::ENOSYS);
    }
}
