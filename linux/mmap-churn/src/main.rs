//! `mmap-churn [ROUNDS] [PAGES]`: the initramfs's explicit memory-management workload.
//!
//! Every round maps PAGES anonymous pages (at most 512, one L1's worth) at a fresh 1 GiB-aligned
//! address of its own, so the kernel needs a new L1 (and L2) for it and frees them again at
//! `munmap`; on a Xen PV kernel that is a pin and an unpin per table. In between: every page
//! written (page faults fill L1 entries), `fork` with a child that checks and then dirties every
//! page (write-protect for COW, COW breaks), the parent's pages checked unchanged, `mprotect`
//! read-only and back, `mremap` to twice the size (may move: entries moved between L1s), and
//! `munmap` of one half and then the rest.
//!
//! Prints one deterministic line, `mmap=ok rounds=R pages=P`, or `mmap=FAIL(...)` naming the
//! first check or call that failed (exit status 1). Built statically
//! (`-C target-feature=+crt-static`) for the initramfs, where there is no dynamic loader; the
//! same source runs on the build host in the tests.

use std::process::ExitCode;

const PAGE: usize = 4096;
/// Round r maps at `BASE + r * STRIDE`: 1 GiB apart, so no two rounds share an L2 or L1.
const BASE: usize = 0x2000_0000_0000;
const STRIDE: usize = 1 << 30;

#[derive(Debug)]
struct Failure(String);

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn fail<T>(what: &str) -> Result<T, Failure> {
    Err(Failure(format!("{what} errno={}", errno())))
}

/// The word written into page `i` of round `r` by `who` (0 = parent, 1 = child).
fn pattern(r: usize, i: usize, who: usize) -> u64 {
    ((r as u64) << 40) | ((i as u64) << 8) | who as u64 | 0xa5a5_0000_0000_0000
}

/// Checks word 0 and the last word of each of `pages` pages at `p` against `pattern(r, i, who)`.
///
/// # Safety
/// `p` must point to `pages` mapped, readable pages.
unsafe fn check(p: *const u8, pages: usize, r: usize, who: usize) -> bool {
    (0..pages).all(|i| {
        let want = pattern(r, i, who);
        // SAFETY: page i lies inside the caller's mapping; both words are inside page i and
        // 8-byte aligned (the mapping is page aligned).
        let (a, b) = unsafe {
            let q = p.add(i * PAGE) as *const u64;
            (q.read_volatile(), q.add(PAGE / 8 - 1).read_volatile())
        };
        a == want && b == !want
    })
}

/// Writes `pattern(r, i, who)` (and its complement at the end) into each of `pages` pages.
///
/// # Safety
/// `p` must point to `pages` mapped, writable pages.
unsafe fn fill(p: *mut u8, pages: usize, r: usize, who: usize) {
    for i in 0..pages {
        let want = pattern(r, i, who);
        // SAFETY: as in `check`, and the caller guarantees the pages are writable.
        unsafe {
            let q = p.add(i * PAGE) as *mut u64;
            q.write_volatile(want);
            q.add(PAGE / 8 - 1).write_volatile(!want);
        }
    }
}

fn round(r: usize, pages: usize) -> Result<(), Failure> {
    let len = pages * PAGE;
    let hint = (BASE + r * STRIDE) as *mut libc::c_void;
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a fresh anonymous mapping at an address nothing else uses (NOREPLACE refuses to
    // clobber an existing mapping); no Rust object lives there.
    let p = unsafe {
        libc::mmap(
            hint,
            len,
            rw,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return fail("mmap");
    }
    let p = p as *mut u8;
    // SAFETY: p..p+len was just mapped read-write.
    unsafe { fill(p, pages, r, 0) };

    // fork: the child sees the parent's pages, then breaks COW on every one of them.
    // SAFETY: single-threaded program; the child only touches the mapping and calls _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return fail("fork");
    }
    if pid == 0 {
        // SAFETY: the child inherited the mapping (private, read-write).
        let ok = unsafe {
            let seen = check(p, pages, r, 0);
            fill(p, pages, r, 1);
            seen && check(p, pages, r, 1)
        };
        // SAFETY: _exit never returns and skips the parent's atexit state.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child; status is a valid out pointer.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return fail("waitpid");
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(Failure(format!("child of round {r} saw wrong data")));
    }
    // SAFETY: the mapping is still ours and readable.
    if !unsafe { check(p, pages, r, 0) } {
        return Err(Failure(format!(
            "round {r}: the child's writes reached the parent"
        )));
    }

    // mprotect read-only and back: every L1 entry rewritten twice.
    // SAFETY: changes protection of our own mapping only.
    if unsafe { libc::mprotect(p as *mut _, len, libc::PROT_READ) } != 0 {
        return fail("mprotect ro");
    }
    // SAFETY: read-only now, reads are fine.
    if !unsafe { check(p, pages, r, 0) } {
        return Err(Failure(format!("round {r}: data changed under mprotect")));
    }
    // SAFETY: as above.
    if unsafe { libc::mprotect(p as *mut _, len, rw) } != 0 {
        return fail("mprotect rw");
    }

    // mremap to twice the size: the kernel may move the entries to another L1.
    // SAFETY: resizes our own mapping; the old pointer is not used after a move.
    let q = unsafe { libc::mremap(p as *mut _, len, 2 * len, libc::MREMAP_MAYMOVE) };
    if q == libc::MAP_FAILED {
        return fail("mremap");
    }
    let q = q as *mut u8;
    // SAFETY: q..q+2*len is mapped read-write; the first half holds the old data.
    let ok = unsafe {
        let old = check(q, pages, r, 0);
        fill(q.add(len), pages, r + 1, 0);
        old && check(q.add(len), pages, r + 1, 0)
    };
    if !ok {
        return Err(Failure(format!("round {r}: data wrong after mremap")));
    }

    // munmap in two steps: first the upper half (splits the VMA), then the rest.
    // SAFETY: both ranges are inside our mapping and nothing references them afterwards.
    unsafe {
        if libc::munmap(q.add(len) as *mut _, len) != 0 {
            return fail("munmap half");
        }
        if !check(q, pages, r, 0) {
            return Err(Failure(format!(
                "round {r}: data wrong after partial munmap"
            )));
        }
        if libc::munmap(q as *mut _, len) != 0 {
            return fail("munmap");
        }
    }
    Ok(())
}

fn arg(args: &[String], i: usize, default: usize, max: usize) -> Result<usize, Failure> {
    match args.get(i) {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(Failure(format!("bad argument {s:?} (1..={max})"))),
        },
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let run = || -> Result<(usize, usize), Failure> {
        let rounds = arg(&args, 1, 64, 4096)?;
        // The mremap doubles the mapping: 2 * pages must still fit one L1 (512 entries).
        let pages = arg(&args, 2, 64, 256)?;
        for r in 0..rounds {
            round(r, pages)?;
        }
        Ok((rounds, pages))
    };
    match run() {
        Ok((rounds, pages)) => {
            println!("mmap=ok rounds={rounds} pages={pages}");
            ExitCode::SUCCESS
        }
        Err(Failure(why)) => {
            println!("mmap=FAIL({why})");
            ExitCode::FAILURE
        }
    }
}
