//! `guest/scenarios.manifest`, the one list of the guest's scenarios (format in its header):
//! parsed here for the scenario matrix test (tests/tests/scenarios_matrix.rs) and the
//! benchmark report (bench-report/), so the format is read in one place.

/// What a refusal's provenance must name on the VMM (checked on stderr and in the JSON log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prov {
    /// No check (the hostile run: refusals galore, of every kind).
    Any,
    /// No pin refused for a stray writable mapping.
    None,
    /// A stale vmap alias: `vmalloc va ffffc900...` and the L1 slot.
    Vmalloc,
    /// A kunmapped-but-unflushed pkmap slot.
    Pkmap,
    /// A kmap_atomic fixmap slot (the requested RW mapping of a pinned L1).
    Fixmap,
    /// The direct-map alias of the frame.
    DirectMap,
}

pub struct Case {
    pub cmdline: String,
    /// Expected `result=` of each VERDICT line, in order.
    pub verdicts: Vec<String>,
    pub prov: Prov,
    /// Where the case runs: `matrix`, `conformance`.
    pub runs: Vec<String>,
    /// The catalogue's one line.
    pub what: String,
}

/// The manifest, compiled in (cargo rebuilds the crate when it changes).
pub const MANIFEST: &str = include_str!("../../guest/scenarios.manifest");

/// Parses guest/scenarios.manifest (format in its header).
pub fn parse_manifest(text: &str) -> Result<Vec<Case>, String> {
    let mut cases: Vec<Case> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let [cmdline, verdicts, prov, runs, what] = f[..] else {
            return Err(format!("line {n}: {} fields, want 5: {line}", f.len()));
        };
        if !cmdline.starts_with("scenario=") {
            return Err(format!(
                "line {n}: cmdline must start with scenario=: {cmdline}"
            ));
        }
        if cases.iter().any(|c| c.cmdline == cmdline) {
            return Err(format!("line {n}: {cmdline} is listed twice"));
        }
        let verdicts = match verdicts {
            "-" => Vec::new(),
            v => v.split(',').map(|s| s.trim().to_string()).collect(),
        };
        if verdicts.iter().any(|v| v.is_empty() || v.contains(' ')) {
            return Err(format!("line {n}: bad verdict list"));
        }
        let prov = match prov {
            "any" => Prov::Any,
            "none" => Prov::None,
            "vmalloc" => Prov::Vmalloc,
            "pkmap" => Prov::Pkmap,
            "fixmap" => Prov::Fixmap,
            "directmap" => Prov::DirectMap,
            p => return Err(format!("line {n}: unknown provenance {p:?}")),
        };
        let runs: Vec<String> = match runs {
            "-" => Vec::new(),
            r => r.split_whitespace().map(str::to_string).collect(),
        };
        if let Some(r) = runs
            .iter()
            .find(|r| !["matrix", "conformance"].contains(&r.as_str()))
        {
            return Err(format!("line {n}: unknown runs {r:?}"));
        }
        if what.is_empty() {
            return Err(format!("line {n}: no description"));
        }
        cases.push(Case {
            cmdline: cmdline.to_string(),
            verdicts,
            prov,
            runs,
            what: what.to_string(),
        });
    }
    Ok(cases)
}

/// The compiled-in manifest, parsed (panics on a malformed manifest: its own test catches that).
pub fn manifest() -> Vec<Case> {
    parse_manifest(MANIFEST).unwrap_or_else(|e| panic!("guest/scenarios.manifest: {e}"))
}

impl Case {
    /// Whether the case is one of the matrix's (booted on both hypervisors by the matrix test).
    pub fn in_matrix(&self) -> bool {
        self.runs.iter().any(|r| r == "matrix")
    }
}
