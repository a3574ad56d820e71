//! `vector-state [PROCS] [ROUNDS]`: does the kernel keep each process's vector registers?
//!
//! PROCS processes run at once; each, ROUNDS times, fills vector registers with its own byte,
//! makes a `sched_yield` system call (the others run in between) and checks the registers —
//! all inside one `asm!` block, so no compiled code (which may legitimately clobber them)
//! runs between the fill and the check. Checked: xmm0/xmm15 always, ymm0/ymm15 where the CPU
//! and XCR0 give AVX2, zmm16/zmm31 (state FXSAVE has no room for) where they give AVX-512F.
//! A kernel that switches tasks with FXSAVE while user code can use AVX fails here: the upper
//! YMM halves and zmm16-31 are then shared by every process.
//!
//! Prints one deterministic line on stdout, `vector=ok` or `vector=FAIL(...)` (exit status
//! 1), and on stderr what was checked. Built statically for the initramfs, like mmap-churn.

use std::arch::asm;
use std::process::ExitCode;

/// `__NR_sched_yield` on x86_64.
const SYS_SCHED_YIELD: u64 = 24;

/// The registers' bytes after one round: xmm (32 bytes), ymm (64), zmm (128).
fn round_xmm(b: u8) -> Vec<u8> {
    let mut out = [0u8; 32];
    // SAFETY: writes 32 bytes to `out` (32 bytes); the syscall clobbers only rax, rcx, r11
    // (declared); the vector registers used are declared clobbered.
    unsafe {
        asm!(
            "movd xmm15, {b:e}",
            "punpcklbw xmm15, xmm15",
            "pshuflw xmm15, xmm15, 0",
            "punpcklqdq xmm15, xmm15",
            "movdqa xmm0, xmm15",
            "mov eax, {nr:e}",
            "syscall",
            "movdqu [{o}], xmm0",
            "movdqu [{o} + 16], xmm15",
            b = in(reg) u32::from(b),
            nr = in(reg) SYS_SCHED_YIELD as u32,
            o = in(reg) out.as_mut_ptr(),
            out("rax") _, out("rcx") _, out("r11") _, out("xmm0") _, out("xmm15") _,
        );
    }
    out.to_vec()
}

#[target_feature(enable = "avx2")]
fn round_ymm(b: u8) -> Vec<u8> {
    let mut out = [0u8; 64];
    // SAFETY: as `round_xmm`, 64 bytes; AVX2 is enabled (the caller checked the CPU and XCR0).
    unsafe {
        asm!(
            "vmovd xmm15, {b:e}",
            "vpbroadcastb ymm15, xmm15",
            "vmovdqa ymm0, ymm15",
            "mov eax, {nr:e}",
            "syscall",
            "vmovdqu [{o}], ymm0",
            "vmovdqu [{o} + 32], ymm15",
            "vzeroupper",
            b = in(reg) u32::from(b),
            nr = in(reg) SYS_SCHED_YIELD as u32,
            o = in(reg) out.as_mut_ptr(),
            out("rax") _, out("rcx") _, out("r11") _, out("ymm0") _, out("ymm15") _,
        );
    }
    out.to_vec()
}

#[target_feature(enable = "avx512f")]
fn round_zmm(b: u8) -> Vec<u8> {
    let mut out = [0u8; 128];
    // SAFETY: as `round_xmm`, 128 bytes; AVX-512F is enabled (the caller checked).
    unsafe {
        asm!(
            "vpbroadcastd zmm16, {b:e}",
            "vmovdqa64 zmm31, zmm16",
            "mov eax, {nr:e}",
            "syscall",
            "vmovdqu64 [{o}], zmm16",
            "vmovdqu64 [{o} + 64], zmm31",
            b = in(reg) u32::from_ne_bytes([b; 4]),
            nr = in(reg) SYS_SCHED_YIELD as u32,
            o = in(reg) out.as_mut_ptr(),
            out("rax") _, out("rcx") _, out("r11") _, out("zmm16") _, out("zmm31") _,
        );
    }
    out.to_vec()
}

struct Features {
    avx2: bool,
    avx512f: bool,
}

impl Features {
    fn names(&self) -> String {
        let mut v = vec!["sse"];
        if self.avx2 {
            v.push("avx2");
        }
        if self.avx512f {
            v.push("avx512f");
        }
        v.join(" ")
    }
}

/// One process's rounds: the first register state that came back wrong, if any.
fn rounds(b: u8, n: u32, f: &Features) -> Result<(), String> {
    for r in 0..n {
        let mut sets = vec![("xmm", round_xmm(b))];
        if f.avx2 {
            // SAFETY: the CPU and the OS (XCR0) support AVX2, checked in `main`.
            sets.push(("ymm", unsafe { round_ymm(b) }));
        }
        if f.avx512f {
            // SAFETY: as above, for AVX-512F.
            sets.push(("zmm", unsafe { round_zmm(b) }));
        }
        for (what, bytes) in sets {
            if let Some(i) = bytes.iter().position(|&x| x != b) {
                return Err(format!(
                    "round {r}: {what} byte {i} is {:#04x}, not {b:#04x}",
                    bytes[i]
                ));
            }
        }
    }
    Ok(())
}

fn arg(args: &[String], i: usize, default: u32, max: u32) -> Result<u32, String> {
    match args.get(i) {
        None => Ok(default),
        Some(s) => match s.parse::<u32>() {
            Ok(v) if (1..=max).contains(&v) => Ok(v),
            _ => Err(format!("bad argument {s:?} (1..={max})")),
        },
    }
}

fn run() -> Result<String, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let procs = arg(&args, 0, 4, 64)?;
    let n = arg(&args, 1, 1000, 1_000_000)?;
    let f = Features {
        avx2: std::arch::is_x86_feature_detected!("avx2"),
        avx512f: std::arch::is_x86_feature_detected!("avx512f"),
    };
    let mut children = Vec::new();
    for k in 0..procs {
        // SAFETY: single-threaded program; the child computes and calls _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err("fork".into());
        }
        if pid == 0 {
            let code = match rounds(0x41 + k as u8, n, &f) {
                Ok(()) => 0,
                Err(e) => {
                    // One write, so that lines of processes failing at once do not mix.
                    let line = format!("vector-state: process {k}: {e}\n");
                    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
                    1
                }
            };
            // SAFETY: _exit never returns and skips the parent's atexit state.
            unsafe { libc::_exit(code) };
        }
        children.push(pid);
    }
    let mut failed = 0;
    for pid in children {
        let mut status = 0;
        // SAFETY: waiting for our own child; status is a valid out pointer.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return Err("waitpid".into());
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            failed += 1;
        }
    }
    eprintln!(
        "vector-state: {}: {procs} processes x {n} rounds, {failed} lost registers",
        f.names()
    );
    if failed > 0 {
        return Err(format!("{failed} of {procs} processes lost registers"));
    }
    Ok("vector=ok".into())
}

fn main() -> ExitCode {
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("vector=FAIL({e})");
            ExitCode::FAILURE
        }
    }
}
