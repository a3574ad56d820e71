//! The guest console over `console_io` (Linux: drivers/tty/hvc/hvc_xen.c, the dom0 path).
//!
//! Output is assembled into a small stack buffer and written with one hypercall per line (or
//! per full buffer), which keeps hypercall exits low under the VMM. No global state: each
//! `print!` uses a fresh [`Console`].

use core::fmt::{self, Write};

use crate::hypercall;

/// Writer over `CONSOLEIO_write`, line-buffered: one hypercall per line or per full buffer.
pub struct Console {
    buf: [u8; 256],
    len: usize,
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    pub const fn new() -> Console {
        Console {
            buf: [0; 256],
            len: 0,
        }
    }

    /// Writes out whatever is buffered.
    pub fn flush(&mut self) {
        if self.len > 0 {
            hypercall::console_write(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.flush();
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    // Console never fails; a Display impl that errors just truncates its own output.
    let _ = Console::new().write_fmt(args);
}

/// Print to the hypervisor console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::_print(format_args!($($arg)*)));
}

/// Print a line to the hypervisor console.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::_print(format_args!("{}\n", format_args!($($arg)*))));
}
