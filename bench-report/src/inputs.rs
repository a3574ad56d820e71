//! The perf benchmarks' files in `${CARGO_TARGET_DIR:-target}/bench/`, as their producers write
//! them: `validator.json` (`cargo bench -p pagetable-validator --bench validate`) and
//! `vmm_exits.json` (`scripts/bench-exits.sh`). Either may be absent; the report says so.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::stats::Spread;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Space {
    /// ro_contig, rw_contig, ro_random, rw_random.
    pub name: String,
    pub entries: u64,
    pub pin_ns: Spread,
    pub unpin_ns: Spread,
    pub raw_read_ns: Spread,
    pub naive_loop_ns: Spread,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidatorBench {
    pub spaces: Vec<Space>,
    pub mmu_update_ns_per_entry: Spread,
    /// The same batch where every entry takes the fast path (optional: newer benches).
    #[serde(default)]
    pub mmu_update_fast_path_ns_per_entry: Option<Spread>,
    pub frame_table_bytes_per_frame: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExitCase {
    /// null_hypercall, mmu_update_1, mmu_update_512, exception_bounce, syscall_bounce.
    pub name: String,
    pub ops: u64,
    pub exits_per_op: f64,
    pub total_ns_per_op: f64,
    /// The VMM's own work per exit (the goal: ≤ 2 µs) and the exit's cost (KVM, hardware).
    pub own_ns_per_exit: f64,
    pub exit_ns_per_exit: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VmmExits {
    pub cases: Vec<ExitCase>,
}

/// A file read: its contents and when it was written, or why there are none (absent,
/// unreadable, another shape).
pub enum Input<T> {
    Read(T, String),
    Missing(String),
}

impl<T> Input<T> {
    pub fn get(&self) -> Option<&T> {
        match self {
            Input::Read(t, _) => Some(t),
            Input::Missing(_) => None,
        }
    }

    /// When the file was written (empty when it was not read).
    pub fn date(&self) -> &str {
        match self {
            Input::Read(_, d) => d,
            Input::Missing(_) => "",
        }
    }
}

pub fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Input<T> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Input::Missing(format!("{} does not exist", path.display()))
        }
        Err(e) => Input::Missing(format!("{}: {e}", path.display())),
        Ok(s) => match serde_json::from_str(&s) {
            Ok(t) => Input::Read(
                t,
                crate::machine::file_date(path).unwrap_or_else(|| "unknown".into()),
            ),
            Err(e) => Input::Missing(format!(
                "{} is not in the expected shape: {e}",
                path.display()
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_shape_and_names_what_is_missing() {
        let dir = std::env::temp_dir().join(format!("bench-report-inputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("validator.json");
        let s = r#"{"low":1,"median":2,"high":3}"#;
        std::fs::write(
            &p,
            format!(
                r#"{{"spaces":[{{"name":"ro_contig","entries":1048576,"pin_ns":{s},"unpin_ns":{s},
                "raw_read_ns":{s},"naive_loop_ns":{s}}}],"mmu_update_ns_per_entry":{s},
                "frame_table_bytes_per_frame":12}}"#
            ),
        )
        .unwrap();
        let v: Input<ValidatorBench> = load(&p);
        let v = v.get().expect("parsed");
        assert_eq!(v.spaces[0].name, "ro_contig");
        assert_eq!(v.spaces[0].pin_ns.median, 2.0);
        std::fs::write(&p, "{}").unwrap();
        assert!(matches!(load::<ValidatorBench>(&p), Input::Missing(m) if m.contains("shape")));
        assert!(
            matches!(load::<VmmExits>(&dir.join("none.json")), Input::Missing(m) if m.contains("does not exist"))
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
