//! `vmm run`: load, build, boot, serve, report.

use crate::arch::{self, BootParams};
use crate::builder::{self, BuildConfig, P2mMode};
use crate::cli::{ExitStatus, P2mArg, PolicyArg, RunArgs};
use crate::frame_map::FrameMap;
use crate::hypercall::Hypervisor;
use crate::loader::bzimage::{self, BzImageError, KernelFormat};
use crate::loader::elf::{ElfError, KernelImage};
use crate::log_record::{DomainRecord, P2mRecord};
use crate::logging::{say, EventLog};
use crate::pv::cpuid::CpuidTable;
use crate::summary::Summary;
use crate::vcpu::{self, Outcome};
use pagetable_validator::abi::sched;
use pagetable_validator::Mfn;
use pagetable_validator::{Policy, Rules, Validator, L1_DISALLOW_IO_PRIV};
use std::borrow::Cow;
use std::time::Instant;
use thiserror::Error;

/// The project's guest kernel, built by build.rs (empty if that build failed).
static EMBEDDED_GUEST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guest.elf"));
/// Why the guest is not embedded (empty when it is).
const EMBEDDED_STATUS: &str = include_str!(concat!(env!("OUT_DIR"), "/guest-build-status.txt"));
/// Command line of the embedded guest when --cmdline is not given: the demo (xfs-vmap lazy
/// caught with its provenance, then the vmap-pages fix passing).
pub const DEFAULT_CMDLINE: &str = "scenario=demo";

#[derive(Debug, Error)]
enum SetupError {
    #[error("cannot read kernel {path}: {err}")]
    Read { path: String, err: std::io::Error },
    #[error("{path}: {err}")]
    Elf { path: String, err: ElfError },
    #[error("{path}: {err}")]
    BzImage { path: String, err: BzImageError },
    #[error("cannot read initrd {path}: {err}")]
    Initrd { path: String, err: std::io::Error },
    #[error("no embedded guest in this build ({0}); pass a KERNEL")]
    NoEmbedded(String),
    #[error(transparent)]
    Arch(#[from] arch::ArchError),
    #[error("{0}")]
    Build(#[from] builder::BuildError),
    #[error(transparent)]
    Log(#[from] crate::logging::LogError),
    #[error("the validator refused the builder's initial page tables: {0}")]
    Initial(pagetable_validator::XenError),
    #[error(transparent)]
    Vcpu(#[from] vcpu::VcpuError),
    #[error(transparent)]
    FrameMap(#[from] crate::frame_map::FrameMapError),
}

pub fn run(args: &RunArgs) -> ExitStatus {
    match boot(args) {
        Ok(code) => code,
        Err(e) => {
            say!("vmm: {e}");
            ExitStatus::Setup
        }
    }
}

fn boot(args: &RunArgs) -> Result<ExitStatus, SetupError> {
    let start = Instant::now();
    let (bytes, name, default_cmdline): (Cow<[u8]>, String, &str) = match &args.kernel {
        Some(p) => {
            let path = p.display().to_string();
            let b = std::fs::read(p).map_err(|err| SetupError::Read {
                path: path.clone(),
                err,
            })?;
            (Cow::Owned(b), path, "")
        }
        None if EMBEDDED_GUEST.is_empty() => {
            return Err(SetupError::NoEmbedded(EMBEDDED_STATUS.into()))
        }
        None => (
            Cow::Borrowed(EMBEDDED_GUEST),
            "(embedded guest)".into(),
            DEFAULT_CMDLINE,
        ),
    };
    // A bzImage (Debian's vmlinuz) carries the ELF as its payload, as Xen's builder reads it.
    let (elf, format) = bzimage::kernel_elf(&bytes).map_err(|err| SetupError::BzImage {
        path: name.clone(),
        err,
    })?;
    if format != KernelFormat::Elf && !args.quiet {
        eprintln!("vmm: {name}: {format}, {} byte ELF", elf.len());
    }
    let img = KernelImage::parse(&elf).map_err(|err| SetupError::Elf {
        path: name.clone(),
        err,
    })?;
    let p2m = match args.p2m {
        P2mArg::Identity => P2mMode::Identity,
        P2mArg::Shuffle => P2mMode::Shuffle {
            seed: args.seed.unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                t.as_nanos() as u64 ^ std::process::id() as u64
            }),
        },
    };
    if let P2mMode::Shuffle { seed } = p2m {
        say!("vmm: p2m shuffle seed {seed} (reproduce with --seed {seed})");
    }
    let cmdline = args.cmdline.as_deref().unwrap_or(default_cmdline);
    let initrd = match &args.initrd {
        Some(p) => Some(std::fs::read(p).map_err(|err| SetupError::Initrd {
            path: p.display().to_string(),
            err,
        })?),
        None => None,
    };
    let dom = builder::build(
        &img,
        &BuildConfig {
            mem_mib: args.mem,
            cmdline,
            p2m,
            initrd: initrd.as_deref(),
        },
    )?;
    drop(initrd);
    if dom.cmdline_truncated {
        say!("vmm: command line truncated to 1023 bytes");
    }
    // After the builder, so that a too-small --mem is reported without needing KVM.
    let kvm = arch::open_kvm()?;
    let policy = match args.policy {
        PolicyArg::Enforce => Policy::Enforce,
        PolicyArg::Audit => Policy::Audit,
    };
    let l = &dom.layout;
    if !args.quiet {
        say!(
            "vmm: {name}: entry {:#x}, notes from {}, {} MiB, p2m {}, policy {:?}, cmdline {cmdline:?}",
            dom.entry,
            img.xen.source,
            args.mem,
            if matches!(p2m, P2mMode::Identity) { "identity" } else { "shuffle" },
            policy
        );
        say!(
            "vmm: layout: kernel {:#x}-{:#x} p2m {:#x} start_info {:#x} page tables {:#x} ({} frames) stack {:#x} end {:#x}",
            l.kernel.0, l.kernel.1, l.p2m.0, l.start_info, l.pt.0, l.nr_pt_frames, l.stack.0, l.v_end
        );
        if let Some(i) = &dom.initrd {
            match i.va {
                Some(va) => eprintln!("vmm: initrd: {} bytes at {va:#x} (pfn {:#x})", i.len, i.pfn),
                None => eprintln!("vmm: initrd: {} bytes at pfn {:#x}, outside the initial mapping (MOD_START_PFN)", i.len, i.pfn),
            }
        }
    }

    let mut log = EventLog::new(args.log.as_deref())?;
    let frame_map = match &args.frame_map {
        Some(p) => Some(FrameMap::create(p)?),
        None => None,
    };
    let nr_frames = dom.ram.size() >> 12;
    let regions = dom.regions(img.xen.virt_kend);
    // We boot the guest as dom0 (SIF_PRIVILEGED | SIF_INITDOMAIN), like the conformance runs on
    // real Xen: a domain with I/O capabilities may use cache attributes in L1 entries.
    let rules = Rules {
        l1_disallow: L1_DISALLOW_IO_PRIV,
        ..Rules::default()
    };
    log.domain(
        DomainRecord {
            log_format: None,
            kernel: name.clone(),
            nr_frames,
            policy,
            p2m: Some(match p2m {
                P2mMode::Identity => P2mRecord::Identity,
                P2mMode::Shuffle { seed } => P2mRecord::Shuffle(seed),
            }),
            cmdline: cmdline.to_string(),
            l4: dom.l4_mfn,
            rules: rules.into(),
            regions: regions.clone(),
            xen: Some(dom.xen.replay_record()),
        },
        &dom.m2p,
    );
    let mut validator = Validator::with_rules(nr_frames, policy, rules);
    validator.set_m2p(dom.m2p.clone());
    validator.set_regions(regions);

    validator.set_xen_l4_slots(dom.xen.l4_slots(), dom.xen.ro_mpt_l4e());
    validator.share_xen_frame(Mfn(dom.xen.shared_info_mfn()));

    let l4_mfn = dom.l4_mfn;
    let mut hv = Hypervisor::new(
        dom.ram,
        validator,
        dom.xen,
        CpuidTable::default(),
        log,
        Box::new(std::io::stdout()),
    );
    hv.hypercall_page = dom.hypercall_page;
    hv.frame_map = frame_map;
    if hv.log.machine() {
        hv.snapshot(l4_mfn, 4);
    }
    let r = hv.validator.register_initial(&mut hv.ram, Mfn(l4_mfn));
    let events = hv.validator.drain_events();
    hv.log.validator_events(events, "domain_build", 0);
    if let Err(e) = r {
        return Err(failed(&mut hv, start, SetupError::Initial(e)));
    }
    // Xen's dom0 builder gives the initial L4 the read-only M2P (`ro_mpt` set).
    hv.fill_ro_mpt(l4_mfn);
    // The builder's stores happen before the vCPU first runs: nothing is cached yet.
    let _ = hv.ram.take_touched();

    // The machine borrows the guest memory: it is created after, and dropped before, `hv`.
    let boot = BootParams {
        entry: dom.entry,
        l4_mfn,
        start_info_va: l.start_info,
        stack_top: l.stack.1,
        xen: &hv.xen,
    };
    let (mut machine, cpuid) = match arch::create(kvm, &hv.ram, &boot) {
        Ok(m) => m,
        Err(e) => return Err(failed(&mut hv, start, e.into())),
    };
    hv.cpuid = cpuid;
    let boot_time = start.elapsed();
    let timeout = args.timeout.map(std::time::Duration::from_secs);
    let outcome = vcpu::run(&mut machine, &mut hv, &img, timeout);
    drop(machine);
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return Err(failed(&mut hv, start, e.into())),
    };

    let (code, what) = match &outcome {
        Outcome::Shutdown(r) => match *r {
            sched::SHUTDOWN_POWEROFF => (ExitStatus::Poweroff, "guest powered off".to_string()),
            sched::SHUTDOWN_CRASH => (
                ExitStatus::Crash,
                "guest CRASHED (SHUTDOWN_crash)".to_string(),
            ),
            sched::SHUTDOWN_WATCHDOG => (
                ExitStatus::Crash,
                "guest CRASHED (SHUTDOWN_watchdog)".to_string(),
            ),
            sched::SHUTDOWN_REBOOT => (
                ExitStatus::OtherShutdown,
                "guest asked for reboot (not supported)".to_string(),
            ),
            sched::SHUTDOWN_SUSPEND => (
                ExitStatus::OtherShutdown,
                "guest asked for suspend (not supported)".to_string(),
            ),
            r => (
                ExitStatus::OtherShutdown,
                format!("guest shut down with unknown reason {r}"),
            ),
        },
        Outcome::Stopped(rep) => {
            say!("vmm: {rep}");
            (
                ExitStatus::Stopped,
                format!("guest stopped by the VMM: {}", rep.what),
            )
        }
        Outcome::Interrupted(why) => (ExitStatus::Interrupted, format!("run ended: {why}")),
        Outcome::Crashed(rep) => {
            eprintln!("vmm: {rep}");
            (ExitStatus::Crash, format!("guest CRASHED ({})", rep.what))
        }
    };
    let mut code = code;
    if let Some(m) = &hv.frame_map {
        if let Err(e) = m.finish(
            &hv.validator,
            &format!("Guest frames by type: {name}, cmdline {cmdline:?}"),
        ) {
            say!("vmm: {e}");
            code = ExitStatus::Setup;
        }
    }
    let wall = start.elapsed();
    hv.log.end(&what, Some(code.code()), wall.as_secs_f64());
    let finished = hv.log.finish();
    if !args.quiet {
        let summary = Summary {
            stats: &hv.stats,
            refusals: hv.log.refusals,
            violations: hv.log.violations,
            messages: hv.log.message_counts(),
            wall,
            outcome: &what,
        };
        say!("{summary}");
        say!("(setup {:.3}s)", boot_time.as_secs_f64());
    } else if code != ExitStatus::Poweroff && !matches!(outcome, Outcome::Stopped(_)) {
        say!("vmm: {what}");
    }
    if let Err(e) = finished {
        say!("vmm: the JSON log is incomplete: {e}");
        return Ok(ExitStatus::Setup);
    }
    Ok(code)
}

/// A setup or KVM error after the log was opened: the log gets its end record (with the
/// error), so `vmm replay` can tell this run from a killed one.
fn failed(hv: &mut Hypervisor, start: Instant, e: SetupError) -> SetupError {
    hv.log.end(
        &format!("vmm error: {e}"),
        Some(ExitStatus::Setup.code()),
        start.elapsed().as_secs_f64(),
    );
    let _ = hv.log.finish();
    e
}
