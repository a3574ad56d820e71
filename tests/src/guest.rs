//! Building the guest kernel (`guest/`, its own cargo workspace) from tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (parent of the `tests` crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// Builds the guest kernel (release) with `scripts/build-guest.sh` and returns the ELF's path.
///
/// Cheap when the guest is up to date; concurrent callers serialise on cargo's own lock.
/// Panics with the build output if the build fails (a broken guest must fail the test).
pub fn guest_elf() -> PathBuf {
    let script = repo_root().join("scripts/build-guest.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "guest build failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let path = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    assert!(
        path.is_file(),
        "build-guest.sh printed {path:?}, which is not a file\n{stderr}"
    );
    path
}
