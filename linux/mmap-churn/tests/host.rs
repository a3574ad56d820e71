//! mmap-churn on the build host (same source as the initramfs's static binary): the checks
//! pass on a correct kernel, and bad arguments give the FAIL line and exit status 1.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mmap-churn"))
        .args(args)
        .output()
        .expect("run mmap-churn");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn rounds_pass_on_the_host_kernel() {
    assert_eq!(
        run(&["8", "256"]),
        (Some(0), "mmap=ok rounds=8 pages=256\n".into())
    );
    // The defaults are what /init passes explicitly.
    assert_eq!(run(&[]), (Some(0), "mmap=ok rounds=64 pages=64\n".into()));
}

#[test]
fn bad_arguments_fail_with_one_line() {
    for args in [&["0"][..], &["x"], &["4", "257"]] {
        let (code, out) = run(args);
        assert_eq!(code, Some(1), "{args:?}");
        assert!(out.starts_with("mmap=FAIL(bad argument"), "{args:?}: {out}");
        assert_eq!(out.lines().count(), 1);
    }
}
