//! `vmm run --frame-map FILE.svg`: every guest frame drawn by its page type, in one SVG with
//! two panels: on the left the frame table at the first refusal (or the first tolerated
//! stray writable mapping under `--policy audit`), with the refused frame and each L1 that
//! still maps it RW marked and labelled with its provenance, and that L1's 512 entries drawn
//! with the guilty slot; on the right the frame table at exit. Without a refusal the left
//! panel says so.
//!
//! The frame table is read through the validator's public queries (`frame_info`), the L1
//! entries through guest memory; nothing here changes either.

use std::path::{Path, PathBuf};

use pagetable_validator::pte::{_PAGE_PRESENT, _PAGE_RW, ENTRIES};
use pagetable_validator::{Event, FrameInfo, GuestFrames, Mfn, PageType, Validator};
use plotters::prelude::*;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum FrameMapError {
    #[error("cannot write the frame map {path}: {err}")]
    Create { path: String, err: std::io::Error },
    #[error("cannot draw the frame map {path}: {err}")]
    Draw { path: String, err: String },
}

/// What a frame is, as drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    L4,
    L3,
    L2,
    L1,
    Desc,
    Writable,
    Other,
    Free,
}

const CLASSES: [(Class, &str, RGBColor); 8] = [
    (Class::L4, "L4", RGBColor(0x7b, 0x00, 0x8f)),
    (Class::L3, "L3", RGBColor(0x1f, 0x4e, 0xb4)),
    (Class::L2, "L2", RGBColor(0x17, 0x9c, 0xc9)),
    (Class::L1, "L1", RGBColor(0x2c, 0xa0, 0x2c)),
    (
        Class::Desc,
        "descriptor page (GDT/LDT)",
        RGBColor(0xe3, 0x9c, 0x00),
    ),
    (
        Class::Writable,
        "writable (mapped RW)",
        RGBColor(0xfa, 0xd4, 0xcf),
    ),
    (
        Class::Other,
        "other (referenced, e.g. mapped RO)",
        RGBColor(0xb8, 0xb8, 0xb8),
    ),
    (
        Class::Free,
        "free (no reference)",
        RGBColor(0xf2, 0xf2, 0xf2),
    ),
];
const REFUSED: RGBColor = RGBColor(0xd6, 0x00, 0x00);
/// An L1 entry mapping its frame RW (stronger than the writable frames' tint, it is small).
const RW_ENTRY: RGBColor = RGBColor(0xe8, 0x8a, 0x7d);

fn style(c: Class) -> (&'static str, RGBColor) {
    CLASSES
        .iter()
        .find(|(k, ..)| *k == c)
        .map(|(_, n, col)| (*n, *col))
        .unwrap_or(("?", BLACK))
}

fn class(f: &FrameInfo) -> Class {
    // A type whose count fell to 0 is only a leftover (Xen keeps it until the next change).
    let typed = f.type_count > 0 || f.pinned;
    match f.ty {
        PageType::L4 if typed => Class::L4,
        PageType::L3 if typed => Class::L3,
        PageType::L2 if typed => Class::L2,
        PageType::L1 if typed => Class::L1,
        PageType::SegDesc if typed => Class::Desc,
        PageType::Writable if typed => Class::Writable,
        _ if f.refs > 0 => Class::Other,
        _ => Class::Free,
    }
}

/// One L1 slot that maps the refused frame RW, with its provenance line and the L1's entries.
struct Mark {
    l1: Mfn,
    slot: usize,
    provenance: String,
    /// The L1's 512 entries at the refusal (present / RW bits are what is drawn).
    entries: Vec<u64>,
}

/// The frame table at the first refusal and what to mark on it.
struct AtRefusal {
    classes: Vec<Class>,
    frame: Mfn,
    headline: String,
    marks: Vec<Mark>,
    /// Mappings not drawn (more than `MAX_MARKS`).
    more: usize,
    /// Under `--policy audit`: the violation was tolerated, not refused.
    tolerated: bool,
}

const MAX_MARKS: usize = 3;
/// Pixels per marked mapping under the panels: provenance, caption, the L1's entries.
const STEP: i32 = 36 + 8 * 9 + 14;

pub struct FrameMap {
    path: PathBuf,
    first: Option<AtRefusal>,
}

impl FrameMap {
    /// Checks now that `path` can be written (a bad path is a setup error before the boot).
    pub fn create(path: &Path) -> Result<FrameMap, FrameMapError> {
        std::fs::File::create(path).map_err(|err| FrameMapError::Create {
            path: path.display().to_string(),
            err,
        })?;
        Ok(FrameMap {
            path: path.to_path_buf(),
            first: None,
        })
    }

    /// The hook after each validator operation: keeps the state at the first event with a
    /// violation (a refusal, or under audit a tolerated one).
    pub fn observe<M: GuestFrames>(&mut self, v: &Validator, mem: &M, events: &[Event]) {
        if self.first.is_some() {
            return;
        }
        let Some((ev, viol)) = events
            .iter()
            .find_map(|e| e.violations.first().map(|x| (e, x)))
        else {
            return;
        };
        let lines = crate::provenance::mapping_lines(viol);
        let marks: Vec<Mark> = viol
            .mappings
            .iter()
            .zip(&lines)
            .take(MAX_MARKS)
            .map(|(m, line)| Mark {
                l1: m.l1,
                slot: m.slot as usize,
                provenance: line.clone(),
                entries: if m.l1.0 < mem.nr_frames() {
                    (0..ENTRIES).map(|s| mem.read_entry(m.l1, s)).collect()
                } else {
                    Vec::new()
                },
            })
            .collect();
        self.first = Some(AtRefusal {
            classes: classes(v),
            frame: viol.frame,
            headline: crate::provenance::headline(viol, ev.rc),
            more: viol.mappings.len().saturating_sub(marks.len()),
            tolerated: viol.tolerated,
            marks,
        });
    }

    /// Draws the file: the first refusal's panel and the panel at exit.
    pub fn finish(&self, v: &Validator, title: &str) -> Result<(), FrameMapError> {
        draw(&self.path, title, self.first.as_ref(), &classes(v)).map_err(|err| {
            FrameMapError::Draw {
                path: self.path.display().to_string(),
                err,
            }
        })
    }
}

/// Every frame's class, one byte each (no copy of the whole frame table).
fn classes(v: &Validator) -> Vec<Class> {
    (0..v.nr_frames())
        .map(|m| v.frame_info(Mfn(m)).as_ref().map_or(Class::Free, class))
        .collect()
}

/// Cells per row and cell size (px) for `n` frames: 128 columns of 5 px up to 16384 frames,
/// then wider rows of smaller cells so a panel stays about 640 px square.
fn grid(n: usize) -> (usize, i32) {
    let k = ((n as f64 / 16384.0).sqrt().ceil() as usize).max(1);
    (128 * k, (5 / k as i32).max(1))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Draws the frames of one panel at (x0, y0), its caption above and its counts below.
fn panel(
    area: &Area,
    (x0, y0): (i32, i32),
    classes: &[Class],
    caption: &str,
) -> Result<(), String> {
    let (cols, cell) = grid(classes.len());
    let rows = classes.len().div_ceil(cols);
    let font = ("sans-serif", 15).into_font();
    area.draw(&Text::new(caption.to_string(), (x0, y0 - 22), font))
        .map_err(err)?;
    let (w, h) = (cols as i32 * cell, rows as i32 * cell);
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + w, y0 + h)],
        style(Class::Free).1.filled(),
    ))
    .map_err(err)?;
    // One rectangle per run of equal frames within a row (free ones are the background).
    for r in 0..rows {
        let row = &classes[r * cols..((r + 1) * cols).min(classes.len())];
        let mut c = 0;
        while c < row.len() {
            let k = row[c];
            let mut e = c + 1;
            while e < row.len() && row[e] == k {
                e += 1;
            }
            if k != Class::Free {
                let y = y0 + r as i32 * cell;
                area.draw(&Rectangle::new(
                    [(x0 + c as i32 * cell, y), (x0 + e as i32 * cell, y + cell)],
                    style(k).1.filled(),
                ))
                .map_err(err)?;
            }
            c = e;
        }
    }
    area.draw(&Rectangle::new([(x0, y0), (x0 + w, y0 + h)], BLACK))
        .map_err(err)?;
    // Counts under the panel.
    let mut counts = Vec::new();
    for (k, name, _) in CLASSES {
        let n = classes.iter().filter(|&&c| c == k).count();
        counts.push(format!("{}: {n}", name.split(' ').next().unwrap_or(name)));
    }
    area.draw(&Text::new(
        counts.join("  "),
        (x0, y0 + h + 8),
        ("sans-serif", 12).into_font(),
    ))
    .map_err(err)?;
    Ok(())
}

/// The pixel centre of frame `mfn` in a panel at (x0, y0).
fn centre(n: usize, (x0, y0): (i32, i32), mfn: Mfn) -> (i32, i32) {
    let (cols, cell) = grid(n);
    let i = mfn.0 as usize;
    (
        x0 + (i % cols) as i32 * cell + cell / 2,
        y0 + (i / cols) as i32 * cell + cell / 2,
    )
}

/// A square outline of `r` px around `p`.
fn ring(area: &Area, p: (i32, i32), r: i32, color: RGBColor) -> Result<(), String> {
    for d in 0..2 {
        area.draw(&Rectangle::new(
            [(p.0 - r - d, p.1 - r - d), (p.0 + r + d, p.1 + r + d)],
            color,
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// The L1's 512 entries as a 32 x 16 strip: empty, RO, RW, and the stray slot in red.
fn l1_strip(area: &Area, (x0, y0): (i32, i32), m: &Mark) -> Result<(), String> {
    const C: i32 = 9;
    for (s, &e) in m.entries.iter().enumerate() {
        let (x, y) = (x0 + (s % 64) as i32 * C, y0 + (s / 64) as i32 * C);
        let color = if s == m.slot {
            REFUSED
        } else if e & _PAGE_PRESENT == 0 {
            WHITE
        } else if e & _PAGE_RW != 0 {
            RW_ENTRY
        } else {
            style(Class::Other).1
        };
        area.draw(&Rectangle::new(
            [(x, y), (x + C - 1, y + C - 1)],
            color.filled(),
        ))
        .map_err(err)?;
    }
    area.draw(&Rectangle::new(
        [(x0 - 1, y0 - 1), (x0 + 64 * C, y0 + 8 * C)],
        BLACK,
    ))
    .map_err(err)?;
    let (x, y) = (x0 + (m.slot % 64) as i32 * C, y0 + (m.slot / 64) as i32 * C);
    area.draw(&Rectangle::new([(x - 1, y - 1), (x + C, y + C)], BLACK))
        .map_err(err)?;
    Ok(())
}

fn draw(path: &Path, title: &str, first: Option<&AtRefusal>, now: &[Class]) -> Result<(), String> {
    let n = now.len();
    let (cols, cell) = grid(n);
    let (pw, ph) = (cols as i32 * cell, n.div_ceil(cols) as i32 * cell);
    let marks = first.map_or(0, |f| f.marks.len() as i32);
    let gap = 60;
    let (left, top) = (30, 80);
    let width = (2 * pw + gap + 2 * left).max(1100);
    let notes_y = top + ph + 40;
    let legend_y = notes_y + 40 + marks * STEP + 10;
    let height = legend_y + 30 * 2 + 20;
    let root = SVGBackend::new(path, (width as u32, height as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    root.draw(&Text::new(
        title.to_string(),
        (left, 18),
        ("sans-serif", 19).into_font(),
    ))
    .map_err(err)?;
    let right = (left + pw + gap, top);
    match first {
        Some(f) => {
            let caption = if f.tolerated {
                "at the first stray writable mapping (tolerated: --policy audit)"
            } else {
                "at the first refusal"
            };
            panel(&root, (left, top), &f.classes, caption)?;
            let small = ("sans-serif", 13).into_font();
            let p = centre(f.classes.len(), (left, top), f.frame);
            ring(&root, p, 6, REFUSED)?;
            let what = if f.tolerated { "tolerated" } else { "refused" };
            root.draw(&Text::new(what, (p.0 + 9, p.1 - 6), small.color(&REFUSED)))
                .map_err(err)?;
            root.draw(&Text::new(
                f.headline.clone(),
                (left, notes_y),
                ("sans-serif", 14).into_font().color(&REFUSED),
            ))
            .map_err(err)?;
            for (i, m) in f.marks.iter().enumerate() {
                let y = notes_y + 24 + i as i32 * STEP;
                let q = centre(f.classes.len(), (left, top), m.l1);
                ring(&root, q, 5, BLACK)?;
                root.draw(&Text::new(
                    format!("L1 mfn {:x}", m.l1),
                    (q.0 + 8, q.1 + 2),
                    small.clone(),
                ))
                .map_err(err)?;
                // From the marked L1 down to its provenance line.
                root.draw(&PathElement::new(
                    vec![q, (q.0, y - 2), (left, y - 2)],
                    BLACK,
                ))
                .map_err(err)?;
                root.draw(&Text::new(m.provenance.clone(), (left, y), small.clone()))
                    .map_err(err)?;
                let label = format!(
                    "L1 mfn {:x}, its 512 entries (white: empty, grey: RO, pink: RW; red, outlined: slot {}, the stray RW mapping)",
                    m.l1, m.slot
                );
                root.draw(&Text::new(label, (left, y + 18), small.clone()))
                    .map_err(err)?;
                l1_strip(&root, (left, y + 36), m)?;
            }
            if f.more > 0 {
                let y = notes_y + 24 + marks * STEP;
                root.draw(&Text::new(
                    format!(
                        "... and {} more writable mappings (all in the --log file)",
                        f.more
                    ),
                    (left, y),
                    small,
                ))
                .map_err(err)?;
            }
        }
        None => {
            root.draw(&Text::new(
                "no refusal in this run",
                (left, top + ph / 2),
                ("sans-serif", 16).into_font(),
            ))
            .map_err(err)?;
        }
    }
    panel(&root, right, now, "at exit")?;
    // The legend: two rows of four.
    for (i, (_, name, color)) in CLASSES.iter().enumerate() {
        let (x, y) = (left + (i % 4) as i32 * 270, legend_y + (i / 4) as i32 * 26);
        root.draw(&Rectangle::new([(x, y), (x + 14, y + 14)], color.filled()))
            .map_err(err)?;
        root.draw(&Rectangle::new([(x, y), (x + 14, y + 14)], BLACK))
            .map_err(err)?;
        root.draw(&Text::new(
            name.to_string(),
            (x + 20, y),
            ("sans-serif", 13).into_font(),
        ))
        .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pagetable_validator::Policy;

    #[test]
    fn classes_follow_type_and_counts() {
        let f = |ty, type_count, refs, pinned| FrameInfo {
            ty,
            type_count,
            validated: type_count > 0,
            pinned,
            refs,
            tolerated_writable: 0,
            linear: 0,
        };
        assert_eq!(class(&f(PageType::L4, 0, 1, true)), Class::L4);
        assert_eq!(class(&f(PageType::L1, 1, 1, false)), Class::L1);
        assert_eq!(class(&f(PageType::SegDesc, 1, 1, false)), Class::Desc);
        assert_eq!(class(&f(PageType::Writable, 2, 2, false)), Class::Writable);
        // A leftover type with no count: what its references say.
        assert_eq!(class(&f(PageType::L1, 0, 1, false)), Class::Other);
        assert_eq!(class(&f(PageType::Writable, 0, 0, false)), Class::Free);
        assert_eq!(class(&f(PageType::None, 0, 3, false)), Class::Other);
        assert_eq!(grid(16384), (128, 5));
        assert_eq!(grid(65536), (256, 2));
    }

    #[test]
    fn a_bad_path_is_an_error_and_no_refusal_is_said() {
        let bad = Path::new("/nonexistent-dir/map.svg");
        let e = FrameMap::create(bad).err().expect("error");
        assert!(e.to_string().contains("/nonexistent-dir/map.svg"), "{e}");
        let path = std::env::temp_dir().join(format!("frame-map-{}.svg", std::process::id()));
        let map = FrameMap::create(&path).unwrap();
        let v = Validator::new(64, Policy::Enforce);
        map.finish(&v, "unit test").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        assert!(svg.contains("no refusal in this run") && svg.contains("at exit"));
        assert!(
            svg.contains("free: 64"),
            "every frame of a fresh validator is free"
        );
    }
}
