//! `console_io`: CONSOLEIO_write streams the guest buffer to our stdout page by page (a wild count
//! prints what is readable, then -EFAULT, like Xen's chunked copy); CONSOLEIO_read has no input.

use super::{Ctx, Hypervisor};
use pagetable_validator::abi::{console, hypercall as hc};
use pagetable_validator::pte::PAGE_SIZE;
use std::io::Write;

impl Hypervisor {
    pub(super) fn console_io(&mut self, ctx: &mut Ctx, cmd: u64, count: u64, buf: u64) -> i64 {
        match cmd {
            console::CONSOLEIO_WRITE => {
                let count = count as u32 as u64;
                let mut chunk = [0u8; PAGE_SIZE as usize];
                let mut done = 0u64;
                let mut rc = 0;
                while done < count {
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
