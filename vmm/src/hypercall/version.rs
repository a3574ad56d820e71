//! `xen_version`: we answer as Xen 4.17 (the version the conformance runs use), with an
//! extraversion that says who really answered.

use super::{Ctx, Hypervisor};
use pagetable_validator::abi::{errno, hypercall as hc, version as v, vmasst, x86, xenfeat};

/// Our build id: 20 bytes like a GNU SHA-1 build id (the contents mean nothing).
const BUILD_ID: &[u8; 20] = b"xenkvm-mmu-build-id!";

/// 4.17, as `(major << 16) | minor`.
pub const XEN_VERSION: i64 = (4 << 16) | 17;

/// XENVER_get_features submap 0 as Xen 4.17's common/kernel.c builds it for a PV hardware
/// domain: `memory_op_vnode_supported`, `dom0` (is_hardware_domain), the x86 PV bits
/// `mmu_pt_update_preserve_ad | highmem_assist | gnttab_map_avail_bits`, `direct_mapped`
/// (not paging_mode_translate), and `pae_pgdir_above_4gb` while VM_ASSIST(pae_extended_cr3)
/// is on. Never `writable_page_tables`/`auto_translated_physmap` (PV is not translated).
pub fn pv_dom0_features(vm_assist: u64) -> u32 {
    let mut m = (1 << xenfeat::MEMORY_OP_VNODE_SUPPORTED)
        | (1 << xenfeat::DOM0)
        | (1 << xenfeat::MMU_PT_UPDATE_PRESERVE_AD)
        | (1 << xenfeat::HIGHMEM_ASSIST)
        | (1 << xenfeat::GNTTAB_MAP_AVAIL_BITS)
        | (1 << xenfeat::DIRECT_MAPPED);
    if vm_assist & (1 << vmasst::VMASST_TYPE_PAE_EXTENDED_CR3) != 0 {
        m |= 1 << xenfeat::PAE_PGDIR_ABOVE_4GB;
    }
    m
}

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
            v::XENVER_GUEST_HANDLE => vec![0u8; 16],
            // Xen's own command line (1024 bytes); ours has none.
            v::XENVER_COMMANDLINE => vec![0u8; 1024],
            v::XENVER_EXTRAVERSION => padded(b"-xenkvm", v::EXTRAVERSION_LEN),
            v::XENVER_CAPABILITIES => padded(b"xen-3.0-x86_64", 1024),
            v::XENVER_CHANGESET => padded(b"xenkvm-mmu", 64),
            // compiler[64], compile_by[16], compile_domain[32], compile_date[32]
            v::XENVER_COMPILE_INFO => padded(b"rustc", 144),
            v::XENVER_PLATFORM_PARAMETERS => x86::HYPERVISOR_VIRT_START.to_le_bytes().to_vec(),
            v::XENVER_GET_FEATURES => {
                let idx = match self.ram.read_u32_virt(ctx.cr3, arg) {
                    Ok(i) => i,
                    Err(f) => return self.efault(ctx, "xen_version", "feature_info", f),
                };
                // Xen 4.17 knows only submap 0 (checked against it by the hostile scenario).
                if idx >= xenfeat::NR_SUBMAPS {
                    return super::err(errno::EINVAL);
                }
                // The whole xen_feature_info_t is copied back, submap_idx included.
                let mut fi = [0u8; 8];
                fi[4..].copy_from_slice(&pv_dom0_features(self.vcpu.pv.vm_assist).to_le_bytes());
                match self.write_guest(ctx.cr3, arg, &fi) {
                    Ok(()) => return 0,
                    Err(f) => return self.efault(ctx, "xen_version", "feature_info", f),
                }
            }
            v::XENVER_BUILD_ID => {
                // Like Xen (whose Debian build has a 20-byte GNU build id): a null argument
                // asks for the size; else `len` must be non-zero and large enough.
                if arg == 0 {
                    return BUILD_ID.len() as i64;
                }
                match self.ram.read_u32_virt(ctx.cr3, arg) {
                    Err(f) => return self.efault(ctx, "xen_version", "build_id", f),
                    Ok(0) => return super::err(errno::EINVAL),
                    Ok(len) if (len as usize) < BUILD_ID.len() => {
                        return super::err(errno::ENOBUFS)
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypercall::testenv::{self, va, BUF};

    fn features(hv: &mut Hypervisor, idx: u32) -> (i64, u32) {
        hv.t_write(BUF, 0, &idx.to_le_bytes());
        hv.t_write(BUF, 4, &0xdead_beefu32.to_le_bytes());
        let mut ctx = testenv::ctx();
        let a = [v::XENVER_GET_FEATURES, va(BUF, 0), 0, 0, 0, 0];
        let rc = hv.hypercall(&mut ctx, hc::XEN_VERSION, a);
        (rc, hv.t_u32(BUF, 4))
    }

    #[test]
    fn get_features_as_xen_4_17_gives_a_pv_dom0() {
        let mut hv = testenv::hypervisor();
        // Bits 5, 6, 7, 11, 13, 17 (common/kernel.c for is_pv_domain && is_hardware_domain,
        // !paging_mode_translate): Linux's required 5 and 7 among them.
        assert_eq!(features(&mut hv, 0), (0, 0x0002_28e0));
        // pae_pgdir_above_4gb follows VM_ASSIST(pae_extended_cr3), which Xen's dom0 builder
        // sets for PAE_MODE "yes" and Linux enables with vm_assist.
        let mut ctx = testenv::ctx();
        let a = [0, vmasst::VMASST_TYPE_PAE_EXTENDED_CR3, 0, 0, 0, 0];
        assert_eq!(hv.hypercall(&mut ctx, hc::VM_ASSIST, a), 0);
        assert_eq!(features(&mut hv, 0), (0, 0x0002_28f0));
        // XENFEAT_NR_SUBMAPS = 1: any other index is -EINVAL, nothing written.
        assert_eq!(features(&mut hv, 1), (-errno::EINVAL, 0xdead_beef));
    }
}
