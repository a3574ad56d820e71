//! vector-state on the build host (same source as the initramfs's static binary): the host
//! kernel keeps every process's registers, and bad arguments give the FAIL line.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vector-state"))
        .args(args)
        .output()
        .expect("run vector-state");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn registers_survive_on_the_host_kernel() {
    let (code, out, err) = run(&["4", "200"]);
    assert_eq!((code, out.as_str()), (Some(0), "vector=ok\n"), "{err}");
    assert!(err.contains("4 processes x 200 rounds, 0 lost"), "{err}");
}

#[test]
fn bad_arguments_fail_with_one_line() {
    for args in [&["0"][..], &["x"], &["4", "0"], &["65"]] {
        let (code, out, _) = run(args);
        assert_eq!(code, Some(1), "{args:?}");
        assert!(
            out.starts_with("vector=FAIL(bad argument"),
            "{args:?}: {out}"
        );
        assert_eq!(out.lines().count(), 1);
    }
}
