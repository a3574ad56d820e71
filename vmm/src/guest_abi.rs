//! Guest structures as abi types: hypercall argument structures read and written whole (Xen's
//! `copy_from_guest` / `copy_to_guest`, a fault being -EFAULT), and the members of the C
//! unions inside them. Rust has no safe unions, so an abi type keeps a union as its raw bytes
//! or words; a member is its abi struct copied out of, or into, the union's start (where
//! every member of a C union begins).

use crate::hypercall::{Ctx, Hypervisor};
use vm_memory::ByteValued;

impl Hypervisor {
    /// The argument structure `T` at `va`, read whole; -EFAULT (logged as `call`'s `what`)
    /// if any byte of it is unreadable.
    pub(crate) fn read_arg<T: ByteValued + Default>(
        &mut self,
        ctx: &Ctx,
        va: u64,
        call: &str,
        what: &str,
    ) -> Result<T, i64> {
        self.ram
            .read_obj_virt(ctx.cr3, va)
            .map_err(|f| self.efault(ctx, call, what, f))
    }

    /// Writes `bytes` (a structure or one of its fields) back through `write_guest` (never
    /// into a validated pagetable, and logged); -EFAULT as for [`Self::read_arg`].
    pub(crate) fn write_arg(
        &mut self,
        ctx: &Ctx,
        va: u64,
        bytes: &[u8],
        call: &str,
        what: &str,
    ) -> Result<(), i64> {
        self.write_guest(ctx.cr3, va, bytes)
            .map_err(|f| self.efault(ctx, call, what, f))
    }
}

/// Member `M` of the union held in `u` (`M` is never larger than its union: abi_layout.rs
/// checks both sizes against Xen's headers).
pub fn member<M: ByteValued>(u: &[u8]) -> M {
    let mut m = M::zeroed();
    let n = m.as_slice().len();
    m.as_mut_slice().copy_from_slice(&u[..n]);
    m
}

/// Stores member `m` at the start of the union `u`, leaving the bytes after it as they are
/// (as a C assignment to one member does).
pub fn set_member<M: ByteValued>(u: &mut [u8], m: &M) {
    let b = m.as_slice();
    u[..b.len()].copy_from_slice(b);
}
