//! The C side of the ABI layout test: generates a probe program over Xen's headers,
//! compiles it with the system `cc`, runs it, and compares its output with our rows.
//! Also reads abi/ to list what it declares (for the completeness test).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One comparison: our value against a C expression evaluated with Xen's headers.
#[derive(Clone, Debug)]
pub struct Check {
    /// Our name: `module::CONST` for constants, `Struct.field@offset` / `@size` for layouts.
    pub ours: String,
    /// C expression evaluated against the headers.
    pub c_expr: String,
    pub value: i128,
}

/// Everything before `main`: the headers at their newest interface version (the one
/// Xen itself is built with; the values we check do not differ from the 0x00030205
/// Linux uses), and the full errno list as an enum.
/// errno.h lists EINTR/ERESTART only for `__XEN__` (Xen-internal values); it is
/// designed for re-inclusion with a caller-supplied XEN_ERRNO, so we get them all.
const C_PRELUDE: &str = r#"#define __XEN_INTERFACE_VERSION__ __XEN_LATEST_INTERFACE_VERSION__
#define __XEN_TOOLS__ 1
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <xen/xen.h>
#include <xen/sched.h>
#include <xen/version.h>
#include <xen/elfnote.h>
#include <xen/memory.h>
#include <xen/errno.h>
#include <xen/callback.h>
#include <xen/grant_table.h>
#include <xen/features.h>
#include <xen/physdev.h>
#include <xen/platform.h>
#include <xen/event_channel.h>
#include <xen/vcpu.h>

#define __XEN__ 1
#define XEN_ERRNO(name, value) XENKVM_##name = value,
enum xenkvm_errno {
#include <xen/errno.h>
};
#undef __XEN__

#define EMIT(key, expr) printf("%s %llu\n", key, (unsigned long long)(expr))

int main(void)
{
"#;

fn c_string_literal(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The C program: one `EMIT(key, expr)` per check, keyed by row index.
fn c_program(checks: &[Check], header_values: &[(&str, &str)]) -> String {
    let mut src = String::from(C_PRELUDE);
    for (i, c) in checks.iter().enumerate() {
        writeln!(src, "    EMIT(\"{i}\", {}); /* {} */", c.c_expr, c.ours).unwrap();
    }
    for (key, expr) in header_values {
        writeln!(src, "    EMIT({}, {expr});", c_string_literal(key)).unwrap();
    }
    src.push_str("    return 0;\n}\n");
    src
}

fn headers_present() -> bool {
    Path::new("/usr/include/xen/xen.h").exists()
}

/// Fails (in CI and locally alike) when libxen-dev is missing: the layout test is
/// the only thing standing between abi/ and a silently wrong ABI.
fn require_headers() {
    if headers_present() {
        return;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but Xen's public headers are missing (/usr/include/xen/xen.h): \
             .ci/run must install libxen-dev"
        );
    }
    panic!(
        "Xen's public headers are missing (/usr/include/xen/xen.h); the ABI layout test \
         needs them: run `apt-get install libxen-dev`"
    );
}

/// A scratch dir unique to this process and test, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("xenkvm-abi-layout-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles and runs the C program; returns key -> value as printed.
pub fn run_c(
    checks: &[Check],
    header_values: &[(&str, &str)],
    label: &str,
) -> BTreeMap<String, u64> {
    require_headers();
    let dir = ScratchDir::new(label);
    let src_path = dir.0.join("abi_layout.c");
    let exe_path = dir.0.join("abi_layout");
    let src = c_program(checks, header_values);
    std::fs::write(&src_path, &src).expect("write C source");

    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror", "-O0", "-o"])
        .arg(&exe_path)
        .arg(&src_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `cc` ({e}); install gcc"));
    assert!(
        out.status.success(),
        "compiling the ABI probe against Xen's headers failed ({}):\n{}\n--- source ---\n{src}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let run = Command::new(&exe_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe_path.display()));
    assert!(run.status.success(), "ABI probe exited with {}", run.status);
    let stdout = String::from_utf8(run.stdout).expect("probe output is UTF-8");
    stdout
        .lines()
        .map(|line| {
            let (k, v) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad probe line {line:?}"));
            let v = v
                .parse()
                .unwrap_or_else(|e| panic!("bad value in probe line {line:?}: {e}"));
            (k.to_string(), v)
        })
        .collect()
}

/// Every row whose C value differs from ours, rendered for humans.
pub fn mismatches(checks: &[Check], c_values: &BTreeMap<String, u64>) -> Vec<String> {
    checks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c_values.get(&i.to_string()) {
            None => Some(format!("{}: no value from C for `{}`", c.ours, c.c_expr)),
            Some(&hv) if i128::from(hv) != c.value => Some(format!(
                "{}: ours = {} ({:#x}), headers `{}` = {} ({:#x})",
                c.ours, c.value, c.value, c.c_expr, hv, hv
            )),
            Some(_) => None,
        })
        .collect()
}

pub fn header_value(c_values: &BTreeMap<String, u64>, key: &str) -> u64 {
    *c_values
        .get(key)
        .unwrap_or_else(|| panic!("probe did not print {key}"))
}

/// Names declared in abi/: `module::CONST` / `CONST`, and `Struct.field`.
pub fn declared_in_abi_rs() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pagetable-validator/src/abi");
    let mut names = BTreeSet::new();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("abi/ entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        // abi/<m>.rs is module `m`; abi/mod.rs is the root, whose inline `pub mod`s name theirs.
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let file_module = (stem != "mod").then(|| stem.to_string());
        declared_in(&text, file_module, &mut names);
    }
    names
}

/// The constants (`module::NAME`) and struct fields (`Struct.field`) one file of abi/ declares.
fn declared_in(text: &str, file_module: Option<String>, names: &mut BTreeSet<String>) {
    let mut module: Option<String> = file_module.clone();
    let mut strukt: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = line.strip_prefix("pub mod ") {
            if let Some(m) = rest.strip_suffix(" {") {
                module = Some(m.trim().to_string());
            }
        } else if let Some(rest) = line.strip_prefix("pub struct ") {
            strukt = Some(rest.trim_end_matches(" {").trim().to_string());
        } else if line.starts_with('}') {
            // The end of an inline module (in mod.rs) or of a struct at the file's top level.
            if strukt.take().is_none() {
                module = file_module.clone();
            }
        } else if let Some(rest) = t.strip_prefix("pub const ") {
            if rest.starts_with("fn ") {
                continue;
            }
            let name = rest.split(':').next().unwrap().trim();
            names.insert(match &module {
                Some(m) => format!("{m}::{name}"),
                None => name.to_string(),
            });
        } else if let (Some(s), Some(rest)) = (&strukt, t.strip_prefix("pub ")) {
            let field = rest.split(':').next().unwrap().trim();
            names.insert(format!("{s}.{field}"));
        }
    }
}
