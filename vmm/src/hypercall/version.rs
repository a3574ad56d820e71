//! `xen_version`: we answer as Xen 4.17 (the version the conformance runs use), with an
//! extraversion that says who really answered.

use super::{Ctx, Hypervisor};
use pagetable_validator::abi::{errno, hypercall as hc, version as v};

const XENVER_GUEST_HANDLE: u64 = 8;
const XENVER_COMMANDLINE: u64 = 9;
const XENVER_BUILD_ID: u64 = 10;
/// Linux/Xen `ENOBUFS`.
const ENOBUFS: i64 = 105;
/// Our build id: 20 bytes like a GNU SHA-1 build id (the contents mean nothing).
const BUILD_ID: &[u8; 20] = b"xenkvm-mmu-build-id!";

/// 4.17, as `(major << 16) | minor`.
pub const XEN_VERSION: i64 = (4 << 16) | 17;
/// `HYPERVISOR_VIRT_START` for x86_64 PV.
const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;
/// `XENFEAT_mmu_pt_update_preserve_ad`: we serve MMU_PT_UPDATE_PRESERVE_AD.
const XENFEAT_MMU_PT_UPDATE_PRESERVE_AD: u32 = 5;

impl Hypervisor {
    pub(super) fn xen_version(&mut self, ctx: &mut Ctx, cmd: u64, arg: u64) -> i64 {
        let out: Vec<u8> = match cmd {
            v::XENVER_VERSION => return XEN_VERSION,
            // Xen: a non-null argument to XENVER_pagesize is an error.
            v::XENVER_PAGESIZE => {
                return if arg == 0 {
                    4096
                } else {
                    super::err(errno::EINVAL)
                }
            }
            // xen_domain_handle_t: dom0's is all zero.
            XENVER_GUEST_HANDLE => vec![0u8; 16],
            // Xen's own command line (1024 bytes); ours has none.
            XENVER_COMMANDLINE => vec![0u8; 1024],
            v::XENVER_EXTRAVERSION => padded(b"-xenkvm", v::EXTRAVERSION_LEN),
            v::XENVER_CAPABILITIES => padded(b"xen-3.0-x86_64", 1024),
            v::XENVER_CHANGESET => padded(b"xenkvm-mmu", 64),
            // compiler[64], compile_by[16], compile_domain[32], compile_date[32]
            v::XENVER_COMPILE_INFO => padded(b"rustc", 144),
            v::XENVER_PLATFORM_PARAMETERS => HYPERVISOR_VIRT_START.to_le_bytes().to_vec(),
            v::XENVER_GET_FEATURES => {
                let idx = match self.ram.read_u32_virt(ctx.cr3, arg) {
                    Ok(i) => i,
                    Err(f) => return self.efault(ctx, "xen_version", "feature_info", f),
                };
                // Xen 4.17 knows only submap 0 (checked against it by the hostile scenario).
                if idx != 0 {
                    return super::err(errno::EINVAL);
                }
                let map = 1u32 << XENFEAT_MMU_PT_UPDATE_PRESERVE_AD;
                match self.write_guest(ctx.cr3, arg + 4, &map.to_le_bytes()) {
                    Ok(()) => return 0,
                    Err(f) => return self.efault(ctx, "xen_version", "feature_info", f),
                }
            }
            XENVER_BUILD_ID => {
                // Like Xen (whose Debian build has a 20-byte GNU build id): a null argument
                // asks for the size; else `len` must be non-zero and large enough.
                if arg == 0 {
                    return BUILD_ID.len() as i64;
                }
                match self.ram.read_u32_virt(ctx.cr3, arg) {
                    Err(f) => return self.efault(ctx, "xen_version", "build_id", f),
                    Ok(0) => return super::err(errno::EINVAL),
                    Ok(len) if (len as usize) < BUILD_ID.len() => return super::err(ENOBUFS),
                    Ok(_) => {}
                }
                return match self.write_guest(ctx.cr3, arg + 4, BUILD_ID) {
                    Ok(()) => BUILD_ID.len() as i64,
                    Err(f) => self.efault(ctx, "xen_version", "build_id", f),
                };
            }
            _ => return self.unsupported(ctx, hc::XEN_VERSION, Some(cmd)),
        };
        match self.write_guest(ctx.cr3, arg, &out) {
            Ok(()) => 0,
            Err(f) => self.efault(ctx, "xen_version", "buffer", f),
        }
    }
}

fn padded(s: &[u8], len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    b[..s.len()].copy_from_slice(s);
    b
}
