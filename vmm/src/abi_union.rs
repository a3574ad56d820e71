//! Members of the C unions inside guest structures. Rust has no safe unions, so an abi type
//! keeps a union as its raw bytes or words; a member is its abi struct copied out of, or
//! into, the union's start (where every member of a C union begins).

use vm_memory::ByteValued;

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
