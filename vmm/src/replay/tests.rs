use super::*;

fn lines(log: &[u8]) -> Vec<String> {
    String::from_utf8(log.to_vec())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn join(l: &[String]) -> Vec<u8> {
    let mut s = l.join("\n");
    s.push('\n');
    s.into_bytes()
}

fn run(log: &[u8]) -> Result<ReplayReport, ReplayError> {
    replay_from(log, "test.jsonl")
}

fn integrity(log: &[u8]) -> String {
    let r = run(log).unwrap_or_else(|e| panic!("{e}"));
    assert!(!r.clean());
    r.integrity.shown.join("\n")
}

/// An honest log and its lines; the index of the first line of `kind`.
fn sample() -> (Vec<u8>, Vec<String>) {
    let log = crate::fuzz::sample_log(300, 11);
    let l = lines(&log);
    (log, l)
}

fn first(l: &[String], kind: &str) -> usize {
    let pat = format!("\"event\":\"{kind}\"");
    l.iter().position(|x| x.contains(&pat)).unwrap()
}

#[test]
fn an_honest_log_replays_identically() {
    let (log, l) = sample();
    let r = run(&log).unwrap();
    assert!(r.clean(), "{:?}", r);
    assert_eq!(r.records, l.len() as u64);
    assert!(r.operations > 100, "{}", r.operations);
}

#[test]
fn a_deleted_line_is_a_gap() {
    let (_, mut l) = sample();
    let i = first(&l, "mmu_update");
    l.remove(i);
    let t = integrity(&join(&l));
    assert!(t.contains(&format!("record {i} is missing")), "{t}");
}

#[test]
fn moved_and_repeated_lines_are_reported() {
    let (_, l) = sample();
    let i = first(&l, "pin");
    let mut swapped = l.clone();
    swapped.swap(i, i + 1);
    let t = integrity(&join(&swapped));
    assert!(t.contains("out of order"), "{t}");
    let mut twice = l.clone();
    twice.insert(i, l[i].clone());
    let t = integrity(&join(&twice));
    assert!(
        t.contains(&format!("record {i} again or out of order")),
        "{t}"
    );
}

#[test]
fn a_killed_run_has_no_end_record() {
    let (_, mut l) = sample();
    l.pop();
    let t = integrity(&join(&l));
    assert!(t.contains("no end record"), "{t}");
    // Killed in the middle of writing a line: the cut line is named too.
    let mut cut = join(&l);
    cut.truncate(cut.len() - 20);
    let t = integrity(&cut);
    assert!(
        t.contains("is cut off") && t.contains("no end record"),
        "{t}"
    );
    // Records after the end record.
    let (_, mut l) = sample();
    let extra = l[l.len() - 2].clone();
    l.push(extra);
    let t = integrity(&join(&l));
    assert!(t.contains("after the end record"), "{t}");
}

#[test]
fn an_edited_result_is_a_difference() {
    let (log, _) = sample();
    let text = String::from_utf8(log).unwrap();
    let edited = text.replacen("\"rc\":-22", "\"rc\":0", 1);
    assert_ne!(text, edited);
    let r = run(edited.as_bytes()).unwrap();
    assert_eq!(r.mismatches.total, 1, "{:?}", r.mismatches);
    assert_eq!(r.integrity.total, 0);
}

/// Sizes are checked before anything is allocated; each bad value is one error.
#[test]
fn absurd_sizes_and_wrong_types_are_errors_not_panics() {
    let (_, l) = sample();
    for (from, to, want) in [
        (
            "\"nr_frames\":1024",
            "\"nr_frames\":1099511627776",
            "out of range",
        ),
        (
            "\"nr_frames\":1024",
            "\"nr_frames\":18446744073709551615",
            "out of range",
        ),
        ("\"nr_frames\":1024", "\"nr_frames\":0", "out of range"),
        ("\"nr_frames\":1024", "\"nr_frames\":-1", "not an unsigned"),
        (
            "\"nr_frames\":1024",
            "\"nr_frames\":1e300",
            "not an unsigned",
        ),
        ("\"log_format\":2", "\"log_format\":1", "log format 1"),
        ("\"log_format\":2,", "", "no log_format"),
        (
            "\"policy\":\"enforce\"",
            "\"policy\":\"lenient\"",
            "bad policy",
        ),
    ] {
        let mut e = l.clone();
        assert!(e[0].contains(from), "{from} not in {}", e[0]);
        e[0] = e[0].replacen(from, to, 1);
        let err = run(&join(&e)).unwrap_err().to_string();
        assert!(
            err.contains(want) && err.contains("line 1"),
            "{from}: {err}"
        );
        assert!(!err.contains('\n'));
    }
    let mut e = l.clone();
    let i = first(&l, "pin");
    e[i] = e[i].replacen("\"level\":", "\"level\":1099511627776", 1);
    let err = run(&join(&e)).unwrap_err().to_string();
    assert!(err.contains(&format!("line {}", i + 1)), "{err}");
    let mut e = l.clone();
    e[1] = e[1].replacen("\"start\":0", "\"start\":5", 1);
    assert!(run(&join(&e))
        .unwrap_err()
        .to_string()
        .contains("m2p record starts at 5"));
    let i = first(&l, "frames");
    let mut e = l.clone();
    e[i] = e[i].replacen("\"entries\":[[", "\"entries\":[[512,1],[", 1);
    let err = run(&join(&e)).unwrap_err().to_string();
    assert!(err.contains("0..512"), "{err}");
}

#[test]
fn not_a_log_is_one_error() {
    assert!(matches!(run(b""), Err(ReplayError::Empty { .. })));
    let mut x = 0x1234_5678_9abc_def1u64;
    let noise: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let e = run(&noise).unwrap_err();
    assert!(matches!(e, ReplayError::NotJson { line: 1, .. }), "{e}");
    assert!(matches!(
        run(b"{\"rec\":0,\"event\":\"pin\"}\n"),
        Err(ReplayError::Record { line: 1, .. })
    ));
    assert!(matches!(run(b"[1,2,3]\n"), Err(ReplayError::Record { .. })));
    // 10 GB of zeros, streamed: stops at the line limit without reading the rest.
    let zeros = std::io::repeat(0).take(10 << 30);
    let e = replay_from(zeros, "zeros").unwrap_err();
    assert!(matches!(e, ReplayError::LineTooLong { line: 1, .. }), "{e}");
    // A domain record and nothing else.
    let (_, l) = sample();
    let e = run(&join(&l[..1])).unwrap_err();
    assert!(
        matches!(
            e,
            ReplayError::NoOperations {
                have: 0,
                want: 1024,
                ..
            }
        ),
        "{e}"
    );
}

/// Random damage to an honest log: never a panic, always Ok or one error.
#[test]
fn mutated_logs_never_panic() {
    let (log, l) = sample();
    let mut x = 99u64;
    let mut rnd = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for _ in 0..300 {
        let mut m = match rnd(3) {
            0 => {
                let mut b = log.clone();
                for _ in 0..1 + rnd(8) {
                    let at = rnd(b.len());
                    b[at] = b"0123456789-\"{}[],:ex \n"[rnd(22)];
                }
                b
            }
            1 => {
                let mut e = l.clone();
                let i = rnd(e.len());
                let j = rnd(e.len());
                e.swap(i, j);
                e.remove(rnd(e.len()));
                join(&e)
            }
            _ => {
                let mut e = l.clone();
                let i = rnd(e.len());
                // A number replaced by an extreme one.
                e[i] = e[i].replacen(":1", ":18446744073709551615", 1);
                join(&e)
            }
        };
        if rnd(4) == 0 {
            m.truncate(rnd(m.len()));
        }
        let _ = run(&m);
    }
}
