//! Scenarios: each exercises one memory-management pattern and prints a transcript.
//!
//! Transcript contract (the conformance tests diff it between real Xen and our VMM):
//! * one line per operation: `T<nn> <short description> rc=<signed decimal>`, numbered from 01;
//! * then one summary line: `END <scenario> ops=<n> ok=<rc==0 count> failed=<rc!=0 count>`.
//!
//! Lines must not depend on the hypervisor: no machine frames, no addresses, no absolute pfns
//! (the domain builders may lay out the bootstrap region differently). Other console lines
//! (e.g. `boot: ...`) are informational and not part of the transcript.

mod basics;
mod compound_vmap;
mod demo;
mod directmap_alias;
mod gdt_alias;
mod harness;
mod highpte;
mod hostile;
mod kmap;
mod selftest;
mod transcript;
mod xen_rules;
mod xfs_btree_walk;
mod xfs_vmap;

pub use transcript::Transcript;

use crate::cmdline::Cmdline;
use crate::setup::Kernel;
use crate::{println, reboot};

type ScenarioFn = fn(&mut Kernel, Option<&str>);

/// Every scenario by its `scenario=` name.
const SCENARIOS: &[(&str, ScenarioFn)] = &[
    ("basics", basics::run),
    ("selftest", selftest::run),
    ("kmap", kmap::run),
    ("highpte", highpte::run),
    ("xfs-vmap", xfs_vmap::run),
    ("demo", demo::run),
    ("hostile", hostile::run),
    ("compound-vmap", compound_vmap::run),
    ("directmap-alias", directmap_alias::run),
    ("gdt-alias", gdt_alias::run),
    ("xfs-btree-walk", xfs_btree_walk::run),
    ("xen-rules", xen_rules::run),
    ("panic", panic),
];

/// Scenario `panic`: panics on purpose, so tests can check that a guest crash is reported
/// (message and location on the console, then `SHUTDOWN_crash`).
fn panic(_k: &mut Kernel, variant: Option<&str>) {
    panic!("deliberate panic (variant={})", variant.unwrap_or("none"));
}

/// Runs the scenario the command line names (default: `basics`). An unknown name crashes the
/// domain with a message, so a typo cannot pass for a clean run.
pub fn run(k: &mut Kernel, cmdline: &Cmdline) {
    let name = cmdline.get("scenario").unwrap_or("basics");
    match SCENARIOS.iter().find(|(n, _)| *n == name) {
        Some((_, f)) => f(k, cmdline.get("variant")),
        None => {
            println!("unknown scenario '{name}'; known:");
            for (n, _) in SCENARIOS {
                println!("  {n}");
            }
            reboot::machine_crash()
        }
    }
}
