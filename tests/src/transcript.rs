//! The guest's scenario transcript (contract in `guest/src/scenarios/mod.rs`):
//! `T<nn> <description> rc=<signed decimal>` per operation, numbered from 01, then
//! `END <scenario> ops=<n> ok=<n> failed=<n>`. Other console lines are ignored. The same
//! scenario must give the same transcript under real Xen and under our VMM.

use std::fmt;

/// One operation line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub n: u32,
    pub what: String,
    pub rc: i64,
}

/// A parsed transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    pub ops: Vec<Op>,
    /// The `END ...` line, verbatim.
    pub end: String,
}

/// Why console output is not a well-formed transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TranscriptError {
    /// A `T..` line that does not parse.
    BadLine(String),
    /// Operation numbers must run 1, 2, 3, ...
    OutOfOrder { expected: u32, line: String },
    /// No `END` line (the guest died mid-scenario?).
    NoEnd,
    /// The `END` line's counts disagree with the operation lines.
    EndMismatch { end: String, ops: usize, ok: usize },
}

impl fmt::Display for TranscriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TranscriptError::BadLine(l) => write!(f, "malformed transcript line: {l:?}"),
            TranscriptError::OutOfOrder { expected, line } => {
                write!(f, "expected operation T{expected:02}, got {line:?}")
            }
            TranscriptError::NoEnd => write!(f, "no END line"),
            TranscriptError::EndMismatch { end, ops, ok } => {
                write!(
                    f,
                    "{end:?} disagrees with {ops} operations of which {ok} returned 0"
                )
            }
        }
    }
}

impl std::error::Error for TranscriptError {}

/// Parses `T<nn> <what> rc=<rc>`; `None` if the line is not an operation line at all.
fn parse_op(line: &str) -> Option<Result<Op, TranscriptError>> {
    let rest = line.strip_prefix('T')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits < 2 || rest.as_bytes().get(digits) != Some(&b' ') {
        return None;
    }
    let bad = || TranscriptError::BadLine(line.to_string());
    let n = rest[..digits].parse().map_err(|_| bad());
    let parsed = rest[digits + 1..]
        .rsplit_once(" rc=")
        .and_then(|(what, rc)| Some((what.to_string(), rc.parse::<i64>().ok()?)));
    Some(match (n, parsed) {
        (Ok(n), Some((what, rc))) => Ok(Op { n, what, rc }),
        _ => Err(bad()),
    })
}

impl Transcript {
    /// Extracts and checks the transcript from console lines.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Transcript, TranscriptError> {
        let mut ops = Vec::new();
        for line in lines.iter().map(|l| l.as_ref().trim_end()) {
            if line.starts_with("END ") {
                let t = Transcript {
                    ops,
                    end: line.to_string(),
                };
                t.check_end()?;
                return Ok(t);
            }
            if let Some(op) = parse_op(line) {
                let op = op?;
                let expected = ops.len() as u32 + 1;
                if op.n != expected {
                    return Err(TranscriptError::OutOfOrder {
                        expected,
                        line: line.to_string(),
                    });
                }
                ops.push(op);
            }
        }
        Err(TranscriptError::NoEnd)
    }

    fn check_end(&self) -> Result<(), TranscriptError> {
        let ok = self.ops.iter().filter(|o| o.rc == 0).count();
        let n = self.ops.len();
        let want = format!("ops={n} ok={ok} failed={}", n - ok);
        if self.end.ends_with(&want) {
            Ok(())
        } else {
            Err(TranscriptError::EndMismatch {
                end: self.end.clone(),
                ops: n,
                ok,
            })
        }
    }

    /// The return codes in order.
    pub fn rcs(&self) -> Vec<i64> {
        self.ops.iter().map(|o| o.rc).collect()
    }

    /// The transcript as lines, as the guest printed them (for line-by-line diffs).
    pub fn lines(&self) -> Vec<String> {
        self.ops
            .iter()
            .map(|o| format!("T{:02} {} rc={}", o.n, o.what, o.rc))
            .chain(std::iter::once(self.end.clone()))
            .collect()
    }
}

/// Compares two transcripts line by line (e.g. real Xen vs our VMM). `None` when identical;
/// otherwise a readable report of every differing line, labelled with `left`/`right`.
pub fn diff(left: &str, a: &Transcript, right: &str, b: &Transcript) -> Option<String> {
    let (la, lb) = (a.lines(), b.lines());
    let width = left.len().max(right.len());
    let mut out = String::new();
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i), lb.get(i));
        if x != y {
            let show = |l: Option<&String>| l.map_or("<missing>".to_string(), |s| s.clone());
            out += &format!(
                "line {}:\n  {left:<width$}: {}\n  {right:<width$}: {}\n",
                i + 1,
                show(x),
                show(y)
            );
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let lines = [
            "boot: whatever",
            "T01 pin_l1 A rc=-22",
            "xen noise",
            "T02 update_va_mapping A -> RO rc=0",
            "END basics ops=2 ok=1 failed=1",
        ];
        let t = Transcript::parse(&lines).unwrap();
        assert_eq!(t.rcs(), vec![-22, 0]);
        assert_eq!(t.ops[1].what, "update_va_mapping A -> RO");
        assert_eq!(t.lines()[0], "T01 pin_l1 A rc=-22");
    }

    #[test]
    fn rejects_gaps_bad_lines_missing_end_and_wrong_counts() {
        assert!(matches!(
            Transcript::parse(&["T02 x rc=0", "END s ops=1 ok=1 failed=0"]),
            Err(TranscriptError::OutOfOrder { expected: 1, .. })
        ));
        assert!(matches!(
            Transcript::parse(&["T01 x rc=zero"]),
            Err(TranscriptError::BadLine(_))
        ));
        assert_eq!(
            Transcript::parse(&["T01 x rc=0"]),
            Err(TranscriptError::NoEnd)
        );
        assert!(matches!(
            Transcript::parse(&["T01 x rc=0", "END s ops=1 ok=0 failed=1"]),
            Err(TranscriptError::EndMismatch { .. })
        ));
    }

    #[test]
    fn diff_names_each_differing_line() {
        let a = Transcript::parse(&["T01 x rc=0", "T02 y rc=-22", "END s ops=2 ok=1 failed=1"]);
        let b = Transcript::parse(&["T01 x rc=0", "T02 y rc=0", "END s ops=2 ok=2 failed=0"]);
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(diff("xen", &a, "vmm", &a), None);
        let d = diff("xen", &a, "vmm", &b).unwrap();
        assert!(
            d.contains("line 2:\n  xen: T02 y rc=-22\n  vmm: T02 y rc=0"),
            "{d}"
        );
        assert!(d.contains("line 3:"), "{d}");
        assert!(!d.contains("line 1:"), "{d}");
    }
}
