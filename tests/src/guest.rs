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

/// One run of a repository script (`bash <repo>/<script>`).
pub struct ScriptRun {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptRun {
    /// Runs `script` (a path relative to the repository). Panics if bash cannot be started.
    pub fn new(script: &str) -> Self {
        let path = repo_root().join(script);
        let out = Command::new("bash")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        ScriptRun {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with the script's output unless it succeeded: a broken build fails the test.
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what} failed ({}):\n{}\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Builds the guest kernel (release) with `scripts/build-guest.sh` and returns the ELF's path.
///
/// Cheap when the guest is up to date; concurrent callers serialise on cargo's own lock.
/// Panics with the build output if the build fails (a broken guest must fail the test).
pub fn guest_elf() -> PathBuf {
    let run = ScriptRun::new("scripts/build-guest.sh");
    run.assert_success("guest build");
    let path = PathBuf::from(run.stdout.lines().last().unwrap_or_default().trim());
    assert!(
        path.is_file(),
        "build-guest.sh printed {path:?}, which is not a file\n{}",
        run.stderr
    );
    path
}
