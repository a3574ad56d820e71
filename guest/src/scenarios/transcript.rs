//! The scenario transcript (format in `scenarios/mod.rs`).

use core::fmt;

use crate::println;

pub struct Transcript {
    scenario: &'static str,
    ops: u32,
    ok: u32,
}

impl Transcript {
    pub fn new(scenario: &'static str) -> Transcript {
        Transcript {
            scenario,
            ops: 0,
            ok: 0,
        }
    }

    /// Records one operation and its return code; returns the rc for the caller's use.
    pub fn op(&mut self, what: fmt::Arguments, rc: i64) -> i64 {
        self.ops += 1;
        if rc == 0 {
            self.ok += 1;
        }
        println!("T{:02} {} rc={}", self.ops, what, rc);
        rc
    }

    /// Prints the summary line.
    pub fn finish(self) {
        println!(
            "END {} ops={} ok={} failed={}",
            self.scenario,
            self.ops,
            self.ok,
            self.ops - self.ok
        );
    }
}

/// `t!(transcript, rc_expr, "format", args...)`: evaluates the operation, records it.
#[macro_export]
macro_rules! t {
    ($t:expr, $rc:expr, $($what:tt)*) => {{
        let rc: i64 = $rc;
        $t.op(format_args!($($what)*), rc)
    }};
}
