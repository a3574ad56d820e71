//! Little-endian fields of guest argument buffers the VMM reads by offset (the abi offsets
//! of structures too small or too irregular for a repr(C) type). One copy for every hypercall.

fn bytes<const N: usize>(b: &[u8], off: u64) -> [u8; N] {
    let o = off as usize;
    b[o..o + N].try_into().expect("N bytes")
}

pub fn u16_at(b: &[u8], off: u64) -> u16 {
    u16::from_le_bytes(bytes(b, off))
}

pub fn u32_at(b: &[u8], off: u64) -> u32 {
    u32::from_le_bytes(bytes(b, off))
}

pub fn u64_at(b: &[u8], off: u64) -> u64 {
    u64::from_le_bytes(bytes(b, off))
}

pub fn put_u32(b: &mut [u8], off: u64, v: u32) {
    let o = off as usize;
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
