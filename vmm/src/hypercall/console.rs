//! `console_io`: CONSOLEIO_write streams the guest buffer to our stdout page by page (a wild count
//! prints what is readable, then -EFAULT, like Xen's chunked copy); CONSOLEIO_read has no input.
//! A long write is preempted like Xen's `guest_console_write`: after [`CONSOLE_BUDGET`] bytes
//! in one exit it continues as `console_io(CONSOLEIO_write, count left, buffer advanced)`.

use super::{Ctx, Hypervisor};
use pagetable_validator::abi::{console, hypercall as hc};
use pagetable_validator::pte::PAGE_SIZE;
use std::io::Write;

/// Bytes one exit writes before the call continues itself.
pub const CONSOLE_BUDGET: u64 = 64 * 1024;

impl Hypervisor {
    pub(super) fn console_io(&mut self, ctx: &mut Ctx, a: [u64; 6]) -> i64 {
        let [cmd, count, buf, ..] = a;
        match cmd {
            console::CONSOLEIO_WRITE => {
                let count = count as u32 as u64;
                let mut chunk = [0u8; PAGE_SIZE as usize];
                let mut done = 0u64;
                let mut rc = 0;
                while done < count {
                    if done >= CONSOLE_BUDGET {
                        let _ = self.console.flush();
                        return ctx.create_continuation(
                            hc::CONSOLE_IO,
                            a,
                            &[(1, count - done), (2, buf.wrapping_add(done))],
                        );
                    }
                    let va = buf.wrapping_add(done);
                    let n = (PAGE_SIZE - (va & (PAGE_SIZE - 1))).min(count - done) as usize;
                    if let Err(f) = self.ram.read_virt(ctx.cr3, va, &mut chunk[..n]) {
                        rc = self.efault(ctx, "console_io", "buffer", f);
                        break;
                    }
                    // Our stdout failing (closed pipe) must not kill the guest: ignore.
                    let _ = self.console.write_all(&chunk[..n]);
                    self.stats.console_bytes += n as u64;
                    done += n as u64;
                }
                let _ = self.console.flush();
                rc
            }
            console::CONSOLEIO_READ => 0,
            _ => self.unsupported(ctx, hc::CONSOLE_IO, Some(cmd)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testenv::{hypervisor, va, BUF, L4};
    use super::*;
    use pagetable_validator::abi::hypercall as hc;

    #[test]
    fn a_long_write_continues_itself_like_xen() {
        let mut hv = hypervisor();
        let len = 3 * CONSOLE_BUDGET / 2;
        let mut a = [console::CONSOLEIO_WRITE, len, va(BUF, 0), 7, 8, 9];
        let mut exits = 0;
        loop {
            let mut ctx = Ctx::new(L4 << 12, 0);
            let rc = hv.console_io(&mut ctx, a);
            exits += 1;
            match ctx.continuation {
                Some(c) => {
                    assert_eq!(
                        rc,
                        hc::CONSOLE_IO as i64,
                        "Xen returns the hypercall number"
                    );
                    assert_eq!(c.nr, hc::CONSOLE_IO);
                    // (cmd, count left, buffer advanced); the other arguments untouched.
                    assert_eq!(c.args[0], console::CONSOLEIO_WRITE);
                    assert_eq!(c.args[1] + (c.args[2] - va(BUF, 0)), len);
                    assert_eq!(&c.args[3..], &[7, 8, 9]);
                    a = c.args;
                }
                None => {
                    assert_eq!(rc, 0);
                    break;
                }
            }
        }
        assert_eq!(exits, 2);
        assert_eq!(hv.stats.console_bytes, len);
    }
}
