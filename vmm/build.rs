//! Builds the project's guest kernel (guest/, its own cargo workspace) and hands its ELF to the
//! `vmm` binary, which embeds it as the default kernel of `vmm run`.
//!
//! The guest is a bare-metal build: it must not inherit this build's flags or target dir, so
//! every CARGO_* / RUST* variable cargo set for us is removed (docs/guest-build.md). If the guest
//! cannot be built, the vmm still builds (with a warning) and `vmm run` without a KERNEL says so.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let repo = manifest
        .parent()
        .expect("vmm/ is inside the repo")
        .to_path_buf();
    let guest = repo.join("guest");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let dest = out.join("guest.elf");
    let status_file = out.join("guest-build-status.txt");

    for p in [
        "guest/src",
        "guest/Cargo.toml",
        "guest/Cargo.lock",
        "guest/build.rs",
        "guest/link.ld",
        "guest/.cargo/config.toml",
        "pagetable-validator/src/abi",
        "pagetable-validator/src/pte.rs",
    ] {
        println!("cargo:rerun-if-changed={}", repo.join(p).display());
    }
    println!("cargo:rerun-if-env-changed=VMM_SKIP_GUEST_BUILD");

    let result = if std::env::var_os("VMM_SKIP_GUEST_BUILD").is_some() {
        Err("VMM_SKIP_GUEST_BUILD is set".to_string())
    } else if !guest.join("Cargo.toml").exists() {
        Err("guest/Cargo.toml not found".to_string())
    } else {
        build_guest(&guest, &out)
    };
    match result {
        Ok(elf) => {
            std::fs::copy(&elf, &dest).expect("copy the guest ELF into OUT_DIR");
            std::fs::write(&status_file, "").expect("write OUT_DIR");
        }
        Err(why) => {
            println!("cargo:warning=vmm: the default guest was not embedded: {why}");
            std::fs::write(&dest, b"").expect("write OUT_DIR");
            std::fs::write(&status_file, why).expect("write OUT_DIR");
        }
    }
}

fn build_guest(guest: &std::path::Path, out: &std::path::Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = out.join("guest-target");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(guest)
        .args(["build", "--release", "--locked"])
        .env("CARGO_TARGET_DIR", &target_dir);
    // Clear what the outer build set: flags, target, wrappers, jobserver, profile variables.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let inherited_cargo =
            k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR";
        let rust = matches!(
            k.as_str(),
            "RUSTFLAGS"
                | "RUSTC"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "RUSTDOC"
                | "RUSTDOCFLAGS"
                | "TARGET"
                | "HOST"
                | "OUT_DIR"
                | "PROFILE"
                | "OPT_LEVEL"
                | "DEBUG"
                | "NUM_JOBS"
                | "RUSTC_LINKER"
        );
        if inherited_cargo || rust {
            cmd.env_remove(&k);
        }
    }
    let output = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("guest build failed: {}", tail.join(" | ")));
    }
    let elf = target_dir.join("release").join("xenkvm-guest");
    if elf.exists() {
        Ok(elf)
    } else {
        Err(format!("guest build produced no {}", elf.display()))
    }
}
