//! `vmm run --frame-map FILE.svg` (vmm/src/frame_map.rs): the demo's refusal drawn with its
//! refused frame and the stale vmap alias that still maps it RW, labelled with the provenance
//! the VMM prints; a run without a refusal says so; a path that cannot be written is a setup
//! error before the guest boots.
//!
//! The demo's refusal itself (pin -22, real Xen's verdict) and its provenance (a vmalloc VA and
//! an L1 slot) are checked against real Xen by scenarios_matrix.rs; here the picture must show
//! that same refusal, read from the run's own Xen-style log line and provenance line.

mod vmm_support;

use std::path::PathBuf;

use vmm_support::*;
use xenkvm_tests::guest::guest_elf;

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("vmm-frame-map-{}-{name}", std::process::id()))
}

/// The SVG's text, with the entities plotters writes for `"`, `'`, `<`, `>`, `&` undone.
fn svg_text(path: &PathBuf) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[test]
fn the_demo_map_marks_the_refused_frame_and_the_stale_alias_with_its_provenance() {
    const T: &str = "the_demo_map_marks_the_refused_frame_and_the_stale_alias_with_its_provenance";
    if !kvm_or_skip(T) {
        return;
    }
    let svg = tmp("demo.svg");
    let run = vmm(&["run", "--frame-map", svg.to_str().unwrap()]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    // Xen's own debug-log line names the refused frame: "Error -22 while pinning mfn 00400".
    let mfn = run
        .stderr
        .lines()
        .find_map(|l| l.split("Error -22 while pinning mfn ").nth(1))
        .unwrap_or_else(|| panic!("no pin refusal in the demo:\n{}", run.dump()))
        .trim()
        .to_string();
    let prov = run
        .stderr
        .lines()
        .find(|l| l.starts_with("provenance: ") && l.contains(&format!("mfn {mfn} ")))
        .unwrap_or_else(|| panic!("no provenance line for mfn {mfn}:\n{}", run.dump()));
    assert!(
        prov.contains("still mapped RW by L1 mfn ") && prov.contains("at vmalloc va ffffc900"),
        "the demo's stale mapping is a vmap alias: {prov}"
    );
    let l1 = prov
        .split("by L1 mfn ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("L1 mfn");
    let text = svg_text(&svg);
    std::fs::remove_file(&svg).ok();
    for want in [
        "at the first refusal",
        "at exit",
        &format!("REFUSED (-22): mfn {mfn} "),
        prov,
        &format!("L1 mfn {l1}"),
        "refused",
    ] {
        assert!(text.contains(want), "the frame map lacks {want:?}");
    }
    // One refusal drawn (the demo has one), and both panels count their frames by type.
    assert_eq!(text.matches("REFUSED (").count(), 1);
    assert_eq!(text.matches("L4: ").count(), 2, "two panels with counts");
}

#[test]
fn a_run_without_refusal_says_so_and_a_bad_path_is_a_setup_error() {
    const T: &str = "a_run_without_refusal_says_so_and_a_bad_path_is_a_setup_error";
    if !kvm_or_skip(T) {
        return;
    }
    let elf = guest_elf();
    let svg = tmp("fix.svg");
    let run = vmm(&[
        "run",
        "-q",
        elf.to_str().unwrap(),
        "--cmdline",
        "scenario=xfs-vmap variant=vmap-pages",
        "--frame-map",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let text = svg_text(&svg);
    std::fs::remove_file(&svg).ok();
    assert!(text.contains("no refusal in this run"), "{text:.400}");
    assert!(!text.contains("REFUSED"));
    assert!(text.contains("at exit"));

    let bad = "/nonexistent-dir-for-vmm-test/map.svg";
    let run = vmm(&["run", "-q", "--frame-map", bad]);
    assert_eq!(run.status, Some(EXIT_SETUP), "{}", run.dump());
    assert!(
        run.stderr
            .contains(&format!("cannot write the frame map {bad}")),
        "{}",
        run.dump()
    );
    assert!(
        run.stdout.is_empty(),
        "the guest must not boot: {}",
        run.dump()
    );
}
