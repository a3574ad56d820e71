//! Software fallback for SSE2 integer/logic instructions KVM's instruction emulator lacks.
//!
//! Why: on hosts where KVM itself has no hardware virtualization (e.g. kvm-pvm inside a VM, as
//! on this project's machines) ring-0 guest code runs through KVM's x86 emulator, which knows the
//! SSE *moves* but not `pxor`, `pcmpeqb`, `pmovmskb`, `pshufd`, ... The Rust guest (and its
//! precompiled libcore, e.g. `Formatter::pad`) uses them, so KVM stops with an emulation-failure
//! internal error. The run loop then asks this module to execute that one instruction on the
//! saved register state and resumes the guest. On hosts with VT-x/AMD-V this never runs.
//!
//! Only legacy-encoded (non-VEX) SSE2 forms on XMM registers are handled; anything else is
//! reported as unsupported, with the instruction bytes.

use crate::memory::{Fault, GuestRam};
use kvm_bindings::{kvm_fpu, kvm_regs};

#[derive(Debug, PartialEq, Eq)]
pub enum EmuError {
    Unsupported(String),
    Memory(Fault),
}

/// One decoded operand of the r/m field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rm {
    Reg(usize),
    Mem(u64),
}

struct Decoded {
    prefix: u8, // 0, 0x66, 0xf2, 0xf3
    rex_w: bool,
    op: u8,
    reg: usize,
    rm: Rm,
    imm: u8,
    len: u64,
}

fn gpr(r: &kvm_regs, i: usize) -> u64 {
    [
        r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15,
    ][i]
}

fn set_gpr(r: &mut kvm_regs, i: usize, v: u64) {
    let slot = match i {
        0 => &mut r.rax,
        1 => &mut r.rcx,
        2 => &mut r.rdx,
        3 => &mut r.rbx,
        4 => &mut r.rsp,
        5 => &mut r.rbp,
        6 => &mut r.rsi,
        7 => &mut r.rdi,
        8 => &mut r.r8,
        9 => &mut r.r9,
        10 => &mut r.r10,
        11 => &mut r.r11,
        12 => &mut r.r12,
        13 => &mut r.r13,
        14 => &mut r.r14,
        _ => &mut r.r15,
    };
    *slot = v;
}

/// Opcodes (after 0F) whose encoding carries an imm8.
fn has_imm8(op: u8) -> bool {
    matches!(op, 0x70..=0x73 | 0xc4 | 0xc5 | 0xc6)
}

fn decode(bytes: &[u8], regs: &kvm_regs, fs_base: u64, gs_base: u64) -> Result<Decoded, EmuError> {
    let bad = || EmuError::Unsupported(hex(bytes));
    let mut i = 0;
    let mut prefix = 0u8;
    let mut seg = 0u64;
    loop {
        match *bytes.get(i).ok_or_else(bad)? {
            p @ (0x66 | 0xf2 | 0xf3) => prefix = p,
            0x64 => seg = fs_base,
            0x65 => seg = gs_base,
            0x2e | 0x3e | 0x26 | 0x36 => {}
            _ => break,
        }
        i += 1;
    }
    let mut rex = 0u8;
    if (0x40..=0x4f).contains(bytes.get(i).ok_or_else(bad)?) {
        rex = bytes[i];
        i += 1;
    }
    if *bytes.get(i).ok_or_else(bad)? != 0x0f {
        return Err(bad());
    }
    let op = *bytes.get(i + 1).ok_or_else(bad)?;
    let modrm = *bytes.get(i + 2).ok_or_else(bad)?;
    i += 3;
    let md = modrm >> 6;
    let reg = (((modrm >> 3) & 7) | ((rex & 4) << 1)) as usize;
    let rmlo = modrm & 7;
    let rm;
    let mut rip_rel = None;
    if md == 3 {
        rm = Rm::Reg((rmlo | ((rex & 1) << 3)) as usize);
    } else {
        let mut addr: u64;
        if rmlo == 4 {
            let sib = *bytes.get(i).ok_or_else(bad)?;
            i += 1;
            let scale = sib >> 6;
            let index = ((sib >> 3) & 7) | ((rex & 2) << 2);
            let base = (sib & 7) | ((rex & 1) << 3);
            addr = if sib & 7 == 5 && md == 0 {
                let d =
                    i32::from_le_bytes(bytes.get(i..i + 4).ok_or_else(bad)?.try_into().expect("4"));
                i += 4;
                d as i64 as u64
            } else {
                gpr(regs, base as usize)
            };
            if index != 4 {
                addr = addr.wrapping_add(gpr(regs, index as usize) << scale);
            }
        } else if rmlo == 5 && md == 0 {
            let d = i32::from_le_bytes(bytes.get(i..i + 4).ok_or_else(bad)?.try_into().expect("4"));
            i += 4;
            rip_rel = Some(d as i64 as u64);
            addr = 0;
        } else {
            addr = gpr(regs, (rmlo | ((rex & 1) << 3)) as usize);
        }
        match md {
            1 => {
                let d = *bytes.get(i).ok_or_else(bad)? as i8;
                i += 1;
                addr = addr.wrapping_add(d as i64 as u64);
            }
            2 => {
                let d =
                    i32::from_le_bytes(bytes.get(i..i + 4).ok_or_else(bad)?.try_into().expect("4"));
                i += 4;
                addr = addr.wrapping_add(d as i64 as u64);
            }
            _ => {}
        }
        rm = Rm::Mem(addr.wrapping_add(seg));
    }
    let mut imm = 0;
    if has_imm8(op) {
        imm = *bytes.get(i).ok_or_else(bad)?;
        i += 1;
    }
    let len = i as u64;
    let rm = match (rm, rip_rel) {
        (Rm::Mem(a), Some(d)) => {
            Rm::Mem(a.wrapping_add(regs.rip).wrapping_add(len).wrapping_add(d))
        }
        (x, _) => x,
    };
    Ok(Decoded {
        prefix,
        rex_w: rex & 8 != 0,
        op,
        reg,
        rm,
        imm,
        len,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

type V = [u8; 16];

fn lanes<const N: usize>(v: &V) -> [u64; 16] {
    // Little-endian lanes of N bytes (N = 1, 2, 4, 8), as u64 values.
    let mut out = [0u64; 16];
    for (k, c) in v.chunks_exact(N).enumerate() {
        let mut b = [0u8; 8];
        b[..N].copy_from_slice(c);
        out[k] = u64::from_le_bytes(b);
    }
    out
}

fn from_lanes<const N: usize>(l: &[u64; 16]) -> V {
    let mut v = [0u8; 16];
    for (k, c) in v.chunks_exact_mut(N).enumerate() {
        c.copy_from_slice(&l[k].to_le_bytes()[..N]);
    }
    v
}

/// Lane-wise binary op on N-byte lanes.
fn lanewise<const N: usize>(a: &V, b: &V, f: impl Fn(u64, u64) -> u64) -> V {
    let (x, y) = (lanes::<N>(a), lanes::<N>(b));
    let mut r = [0u64; 16];
    let mask = if N == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * N)) - 1
    };
    for k in 0..16 / N {
        r[k] = f(x[k], y[k]) & mask;
    }
    from_lanes::<N>(&r)
}

fn sext<const N: usize>(x: u64) -> i64 {
    let s = 64 - 8 * N as u32;
    ((x << s) as i64) >> s
}

fn cmp_eq<const N: usize>(a: &V, b: &V) -> V {
    lanewise::<N>(a, b, |x, y| if x == y { u64::MAX } else { 0 })
}

fn cmp_gt<const N: usize>(a: &V, b: &V) -> V {
    lanewise::<N>(a, b, |x, y| {
        if sext::<N>(x) > sext::<N>(y) {
            u64::MAX
        } else {
            0
        }
    })
}

/// Interleave the low (hi = false) or high halves of a and b in N-byte lanes.
fn unpack<const N: usize>(a: &V, b: &V, hi: bool) -> V {
    let (x, y) = (lanes::<N>(a), lanes::<N>(b));
    let half = 8 / N;
    let off = if hi { half } else { 0 };
    let mut r = [0u64; 16];
    for k in 0..half {
        r[2 * k] = x[off + k];
        r[2 * k + 1] = y[off + k];
    }
    from_lanes::<N>(&r)
}

fn shift<const N: usize>(a: &V, count: u64, op: u8) -> V {
    let bits = 8 * N as u64;
    let l = lanes::<N>(a);
    let mut r = [0u64; 16];
    let mask = if N == 8 { u64::MAX } else { (1u64 << bits) - 1 };
    for k in 0..16 / N {
        r[k] = match op {
            2 => {
                if count >= bits {
                    0
                } else {
                    l[k] >> count
                }
            }
            6 => {
                if count >= bits {
                    0
                } else {
                    (l[k] << count) & mask
                }
            }
            _ => (sext::<N>(l[k]) >> count.min(bits - 1)) as u64 & mask, // 4: arithmetic
        };
    }
    from_lanes::<N>(&r)
}

fn u128v(v: &V) -> u128 {
    u128::from_le_bytes(*v)
}

/// Executes the instruction at `regs.rip`. On success `regs`/`fpu` hold the new state
/// (RIP advanced) and the caller writes them back.
pub fn emulate(
    ram: &GuestRam,
    cr3: u64,
    regs: &mut kvm_regs,
    fpu: &mut kvm_fpu,
    fs: u64,
    gs: u64,
) -> Result<String, EmuError> {
    let mut bytes = [0u8; 15];
    // The instruction may end near an unmapped page: read what is there.
    let mut n = 15;
    while n > 0 && ram.read_virt(cr3, regs.rip, &mut bytes[..n]).is_err() {
        n -= 1;
    }
    let bytes = &bytes[..n];
    let d = decode(bytes, regs, fs, gs)?;
    let text = hex(&bytes[..d.len as usize]);
    let unsupported = || EmuError::Unsupported(text.clone());
    let xmm = |i: usize| -> V { fpu.xmm[i] };
    let src = |d: &Decoded| -> Result<V, EmuError> {
        match d.rm {
            Rm::Reg(r) => Ok(fpu.xmm[r]),
            Rm::Mem(a) => {
                let mut v = [0u8; 16];
                ram.read_virt(cr3, a, &mut v).map_err(EmuError::Memory)?;
                Ok(v)
            }
        }
    };
    let a = xmm(d.reg);
    let result: Option<V> = match (d.prefix, d.op) {
        // Logic (ps/pd/integer forms are bitwise identical).
        (0 | 0x66, 0x54) | (0x66, 0xdb) => Some((u128v(&a) & u128v(&src(&d)?)).to_le_bytes()),
        (0 | 0x66, 0x55) | (0x66, 0xdf) => Some((!u128v(&a) & u128v(&src(&d)?)).to_le_bytes()),
        (0 | 0x66, 0x56) | (0x66, 0xeb) => Some((u128v(&a) | u128v(&src(&d)?)).to_le_bytes()),
        (0 | 0x66, 0x57) | (0x66, 0xef) => Some((u128v(&a) ^ u128v(&src(&d)?)).to_le_bytes()),
        // Integer add/sub.
        (0x66, 0xfc) => Some(lanewise::<1>(&a, &src(&d)?, u64::wrapping_add)),
        (0x66, 0xfd) => Some(lanewise::<2>(&a, &src(&d)?, u64::wrapping_add)),
        (0x66, 0xfe) => Some(lanewise::<4>(&a, &src(&d)?, u64::wrapping_add)),
        (0x66, 0xd4) => Some(lanewise::<8>(&a, &src(&d)?, u64::wrapping_add)),
        (0x66, 0xf8) => Some(lanewise::<1>(&a, &src(&d)?, u64::wrapping_sub)),
        (0x66, 0xf9) => Some(lanewise::<2>(&a, &src(&d)?, u64::wrapping_sub)),
        (0x66, 0xfa) => Some(lanewise::<4>(&a, &src(&d)?, u64::wrapping_sub)),
        (0x66, 0xfb) => Some(lanewise::<8>(&a, &src(&d)?, u64::wrapping_sub)),
        (0x66, 0xda) => Some(lanewise::<1>(&a, &src(&d)?, u64::min)),
        (0x66, 0xde) => Some(lanewise::<1>(&a, &src(&d)?, u64::max)),
        (0x66, 0xf4) => Some(lanewise::<8>(&a, &src(&d)?, |x, y| {
            (x & 0xffff_ffff).wrapping_mul(y & 0xffff_ffff)
        })),
        (0x66, 0xf6) => {
            // psadbw: per 8-byte half, the sum of absolute byte differences.
            let (x, y) = (a, src(&d)?);
            let half = |o: usize| {
                (0..8)
                    .map(|k| (x[o + k] as i64 - y[o + k] as i64).unsigned_abs())
                    .sum::<u64>()
            };
            Some(from_lanes::<8>(&{
                let mut l = [0u64; 16];
                l[0] = half(0);
                l[1] = half(8);
                l
            }))
        }
        // Compares.
        (0x66, 0x74) => Some(cmp_eq::<1>(&a, &src(&d)?)),
        (0x66, 0x75) => Some(cmp_eq::<2>(&a, &src(&d)?)),
        (0x66, 0x76) => Some(cmp_eq::<4>(&a, &src(&d)?)),
        (0x66, 0x64) => Some(cmp_gt::<1>(&a, &src(&d)?)),
        (0x66, 0x65) => Some(cmp_gt::<2>(&a, &src(&d)?)),
        (0x66, 0x66) => Some(cmp_gt::<4>(&a, &src(&d)?)),
        // Unpacks.
        (0x66, 0x60) => Some(unpack::<1>(&a, &src(&d)?, false)),
        (0x66, 0x61) => Some(unpack::<2>(&a, &src(&d)?, false)),
        (0x66, 0x62) => Some(unpack::<4>(&a, &src(&d)?, false)),
        (0x66, 0x6c) => Some(unpack::<8>(&a, &src(&d)?, false)),
        (0x66, 0x68) => Some(unpack::<1>(&a, &src(&d)?, true)),
        (0x66, 0x69) => Some(unpack::<2>(&a, &src(&d)?, true)),
        (0x66, 0x6a) => Some(unpack::<4>(&a, &src(&d)?, true)),
        (0x66, 0x6d) => Some(unpack::<8>(&a, &src(&d)?, true)),
        // Shuffles.
        (0x66, 0x70) => {
            let s = lanes::<4>(&src(&d)?);
            let mut r = [0u64; 16];
            for (k, slot) in r.iter_mut().take(4).enumerate() {
                *slot = s[((d.imm >> (2 * k)) & 3) as usize];
            }
            Some(from_lanes::<4>(&r))
        }
        (0xf2 | 0xf3, 0x70) => {
            let s = lanes::<2>(&src(&d)?);
            let mut r = s;
            let base = if d.prefix == 0xf2 { 0 } else { 4 };
            for k in 0..4 {
                r[base + k] = s[base + ((d.imm >> (2 * k)) & 3) as usize];
            }
            Some(from_lanes::<2>(&r))
        }
        (0, 0xc6) => {
            let (x, y) = (lanes::<4>(&a), lanes::<4>(&src(&d)?));
            let i = d.imm;
            let mut r = [0u64; 16];
            r[0] = x[(i & 3) as usize];
            r[1] = x[((i >> 2) & 3) as usize];
            r[2] = y[((i >> 4) & 3) as usize];
            r[3] = y[((i >> 6) & 3) as usize];
            Some(from_lanes::<4>(&r))
        }
        // Shifts by immediate: 71 = words, 72 = dwords, 73 = qwords (/3, /7: whole-register bytes).
        (0x66, 0x71..=0x73) => {
            let Rm::Reg(r) = d.rm else {
                return Err(unsupported());
            };
            let x = xmm(r);
            let sub = (d.reg & 7) as u8;
            let c = d.imm as u64;
            let v = match (d.op, sub) {
                (0x71, 2 | 4 | 6) => shift::<2>(&x, c, sub),
                (0x72, 2 | 4 | 6) => shift::<4>(&x, c, sub),
                (0x73, 2 | 6) => shift::<8>(&x, c, sub),
                (0x73, 3) => (if c >= 16 { 0 } else { u128v(&x) >> (8 * c) }).to_le_bytes(),
                (0x73, 7) => (if c >= 16 { 0 } else { u128v(&x) << (8 * c) }).to_le_bytes(),
                _ => return Err(unsupported()),
            };
            fpu.xmm[r] = v;
            None
        }
        // Shifts by an xmm count.
        (0x66, 0xd1 | 0xd2 | 0xd3 | 0xf1 | 0xf2 | 0xf3 | 0xe1 | 0xe2) => {
            let c = u64::from_le_bytes(src(&d)?[..8].try_into().expect("8"));
            Some(match d.op {
                0xd1 => shift::<2>(&a, c, 2),
                0xd2 => shift::<4>(&a, c, 2),
                0xd3 => shift::<8>(&a, c, 2),
                0xf1 => shift::<2>(&a, c, 6),
                0xf2 => shift::<4>(&a, c, 6),
                0xf3 => shift::<8>(&a, c, 6),
                0xe1 => shift::<2>(&a, c, 4),
                _ => shift::<4>(&a, c, 4),
            })
        }
        // pmovmskb r32, xmm
        (0x66, 0xd7) => {
            let Rm::Reg(r) = d.rm else {
                return Err(unsupported());
            };
            let m = fpu.xmm[r]
                .iter()
                .enumerate()
                .fold(0u64, |m, (k, b)| m | (((*b >> 7) as u64) << k));
            set_gpr(regs, d.reg, m);
            None
        }
        // pinsrw xmm, r32/m16, imm8
        (0x66, 0xc4) => {
            let w = match d.rm {
                Rm::Reg(r) => gpr(regs, r) as u16,
                Rm::Mem(addr) => {
                    let mut b = [0u8; 2];
                    ram.read_virt(cr3, addr, &mut b).map_err(EmuError::Memory)?;
                    u16::from_le_bytes(b)
                }
            };
            let mut v = a;
            let k = (d.imm & 7) as usize * 2;
            v[k..k + 2].copy_from_slice(&w.to_le_bytes());
            Some(v)
        }
        // pextrw r32, xmm, imm8
        (0x66, 0xc5) => {
            let Rm::Reg(r) = d.rm else {
                return Err(unsupported());
            };
            let k = (d.imm & 7) as usize * 2;
            set_gpr(
                regs,
                d.reg,
                u16::from_le_bytes([fpu.xmm[r][k], fpu.xmm[r][k + 1]]) as u64,
            );
            None
        }
        // movd/movq xmm, r/m32/64 (zero-extended)
        (0x66, 0x6e) => {
            let size = if d.rex_w { 8 } else { 4 };
            let mut v = [0u8; 16];
            match d.rm {
                Rm::Reg(r) => v[..size].copy_from_slice(&gpr(regs, r).to_le_bytes()[..size]),
                Rm::Mem(addr) => ram
                    .read_virt(cr3, addr, &mut v[..size])
                    .map_err(EmuError::Memory)?,
            }
            Some(v)
        }
        // movd/movq r/m32/64, xmm
        (0x66, 0x7e) => {
            let size = if d.rex_w { 8 } else { 4 };
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(&a[..size]);
            match d.rm {
                Rm::Reg(r) => set_gpr(regs, r, u64::from_le_bytes(b)),
                Rm::Mem(addr) => ram
                    .write_virt(cr3, addr, &b[..size])
                    .map_err(EmuError::Memory)?,
            }
            None
        }
        // movq xmm, xmm/m64 (zero upper)
        (0xf3, 0x7e) => {
            let mut v = [0u8; 16];
            match d.rm {
                Rm::Reg(r) => v[..8].copy_from_slice(&fpu.xmm[r][..8]),
                Rm::Mem(addr) => ram
                    .read_virt(cr3, addr, &mut v[..8])
                    .map_err(EmuError::Memory)?,
            }
            Some(v)
        }
        // movq xmm/m64, xmm
        (0x66, 0xd6) => {
            match d.rm {
                Rm::Reg(r) => {
                    let mut v = [0u8; 16];
                    v[..8].copy_from_slice(&a[..8]);
                    fpu.xmm[r] = v;
                }
                Rm::Mem(addr) => ram
                    .write_virt(cr3, addr, &a[..8])
                    .map_err(EmuError::Memory)?,
            }
            None
        }
        // Moves KVM usually handles itself, here for completeness of the fallback.
        (0x66 | 0xf3, 0x6f) | (0 | 0x66, 0x10 | 0x28) => Some(src(&d)?),
        (0x66 | 0xf3, 0x7f) | (0 | 0x66, 0x11 | 0x29) => {
            match d.rm {
                Rm::Reg(r) => fpu.xmm[r] = a,
                Rm::Mem(addr) => ram.write_virt(cr3, addr, &a).map_err(EmuError::Memory)?,
            }
            None
        }
        _ => return Err(unsupported()),
    };
    if let Some(v) = result {
        fpu.xmm[d.reg] = v;
    }
    regs.rip = regs.rip.wrapping_add(d.len);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> kvm_regs {
        kvm_regs {
            rip: 0x1000,
            rax: 0x10,
            rbx: 0x20,
            ..Default::default()
        }
    }

    #[test]
    fn decodes_modrm_sib_and_rip_relative() {
        // pxor xmm1, xmm1
        let d = decode(&[0x66, 0x0f, 0xef, 0xc9], &regs(), 0, 0).unwrap();
        assert_eq!((d.op, d.reg, d.rm, d.len), (0xef, 1, Rm::Reg(1), 4));
        // movdqu xmm0, [rax+rdx*1+0x90]  (f3 0f 6f 84 10 90 00 00 00)
        let mut r = regs();
        r.rdx = 0x5;
        let d = decode(&[0xf3, 0x0f, 0x6f, 0x84, 0x10, 0x90, 0, 0, 0], &r, 0, 0).unwrap();
        assert_eq!((d.rm, d.len), (Rm::Mem(0x10 + 0x5 + 0x90), 9));
        // pcmpeqb xmm8, [rip+0x10] with REX.R: 66 44 0f 74 05 10 00 00 00
        let d = decode(
            &[0x66, 0x44, 0x0f, 0x74, 0x05, 0x10, 0, 0, 0],
            &regs(),
            0,
            0,
        )
        .unwrap();
        assert_eq!((d.reg, d.rm), (8, Rm::Mem(0x1000 + 9 + 0x10)));
        // pshufd xmm0, xmm1, 0x44 has an imm8
        let d = decode(&[0x66, 0x0f, 0x70, 0xc1, 0x44], &regs(), 0, 0).unwrap();
        assert_eq!((d.imm, d.len), (0x44, 5));
        assert!(decode(&[0x90], &regs(), 0, 0).is_err());
    }

    #[test]
    fn lane_ops() {
        let a: V = core::array::from_fn(|i| i as u8);
        let b: V = core::array::from_fn(|i| if i % 2 == 0 { i as u8 } else { 0xff });
        let eq = cmp_eq::<1>(&a, &b);
        assert_eq!(eq[0], 0xff);
        assert_eq!(eq[1], 0);
        let gt = cmp_gt::<1>(&a, &b); // 0xff is -1: every odd byte of a is greater
        assert_eq!((gt[0], gt[1]), (0, 0xff));
        let u = unpack::<1>(&a, &b, false);
        assert_eq!(&u[..4], &[0, 0, 1, 0xff]);
        let s = shift::<8>(&a, 8, 2);
        assert_eq!(&s[..8], &[1, 2, 3, 4, 5, 6, 7, 0]);
        let add = lanewise::<8>(&[0xff; 16], &from_lanes::<8>(&[1; 16]), u64::wrapping_add);
        assert_eq!(add, [0; 16]);
    }
}
