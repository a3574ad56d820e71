//! Human-readable refusals: Xen's debug-log lines, one plain sentence, then one `provenance:`
//! line per stray writable mapping, naming the mapping the way a kernel developer looks for it.
//!
//! The validator gives each mapping as (L1 frame, slot, VAs + region). Here the VA becomes the
//! handle the guest's code uses: a vmalloc/vmap address and its offset in the area, a pkmap
//! slot (`PKMAP_NR`), a fixmap slot, or the direct-map address and the pfn it is the alias of.
//! The same strings go into the JSON log (`"provenance"`), so tests and tools need not re-derive
//! them.

use pagetable_validator::pte::layout;
use pagetable_validator::{Event, PageType, StrayMapping, VaRef, Violation, ViolationKind};

/// A guest VA named after the kernel facility that maps it (`layout` = the guest's memory
/// layout, guest/README.md), e.g. `pkmap slot 1 (va ffffe90000001000)`.
pub fn describe_va(v: &VaRef) -> String {
    let va = v.va;
    let region = v.region.as_deref().unwrap_or("unnamed region");
    let page = |base: u64| (va - base) >> 12;
    if (layout::VMALLOC_BASE..=layout::VMALLOC_END).contains(&va) {
        format!(
            "vmalloc va {va:016x} [{region} +{:#x}]",
            va - layout::VMALLOC_BASE
        )
    } else if (layout::PKMAP_BASE..=layout::PKMAP_END).contains(&va) {
        format!(
            "va {va:016x} [pkmap slot {}, kmap address PKMAP_ADDR({0})]",
            page(layout::PKMAP_BASE)
        )
    } else if (layout::FIXMAP_BASE..=layout::FIXMAP_END).contains(&va) {
        format!("va {va:016x} [fixmap slot {}]", page(layout::FIXMAP_BASE))
    } else if (layout::DIRECT_MAP_BASE..=layout::DIRECT_MAP_END).contains(&va) {
        format!(
            "direct-map va {va:016x} [direct map: the lowmem alias of pfn {:05x}]",
            page(layout::DIRECT_MAP_BASE)
        )
    } else {
        format!("va {va:016x} [{region}]")
    }
}

fn frame(v: &Violation) -> String {
    match v.pfn {
        // mfn first, as Xen's own lines name frames.
        Some(p) => format!("mfn {:05x} (pfn {p:05x})", v.frame),
        None => format!("mfn {:05x} (no pfn)", v.frame),
    }
}

/// What the frame is or should become, in words ("an L4 pagetable", "a descriptor page").
fn kind(t: PageType) -> String {
    match (t, t.level()) {
        (PageType::SegDesc, _) => "descriptor page (GDT/LDT)".into(),
        (_, 0) => format!("{t:?} page"),
        (_, n) => format!("L{n} pagetable"),
    }
}

fn article(t: PageType) -> &'static str {
    match t {
        PageType::SegDesc => "a",
        _ => "an",
    }
}

/// One line per writable mapping of the violation's frame (VAs: every one the validator found).
pub fn mapping_lines(v: &Violation) -> Vec<String> {
    let frame = frame(v);
    if v.mappings.is_empty() {
        return vec![format!("provenance: {frame}: no writable mapping found")];
    }
    v.mappings
        .iter()
        .map(|m: &StrayMapping| {
            let head = match v.kind {
                ViolationKind::StrayWritable => format!(
                    "provenance: {frame} still mapped RW by L1 mfn {:x} slot {}",
                    m.l1, m.slot
                ),
                ViolationKind::WritableMappingOfPagetable => format!(
                    "provenance: RW mapping of {frame} requested by L1 mfn {:x} slot {}",
                    m.l1, m.slot
                ),
            };
            let vas = if m.vas.is_empty() {
                " (not reachable from the current base or a pinned L4)".to_string()
            } else {
                let list: Vec<String> = m.vas.iter().map(describe_va).collect();
                let more = if m.more_vas > 0 {
                    format!(" and {} more", m.more_vas)
                } else {
                    String::new()
                };
                format!(" at {}{more}", list.join(", "))
            };
            format!("{head}{vas}")
        })
        .collect()
}

/// The plain-language sentence for a violation.
pub(crate) fn headline(v: &Violation, rc: i64) -> String {
    let frame = frame(v);
    let n = v.mappings.len();
    let what = match v.kind {
        ViolationKind::StrayWritable => format!(
            "{frame} cannot become {} {}: still mapped writable in {n} place{}",
            article(v.wanted),
            kind(v.wanted),
            if n == 1 { "" } else { "s" }
        ),
        ViolationKind::WritableMappingOfPagetable => format!(
            "{frame} is {} {}: a writable mapping of it is not allowed",
            if v.frame_pinned {
                "a pinned"
            } else {
                article(v.had)
            },
            kind(v.had)
        ),
    };
    if v.tolerated {
        format!("audit: tolerated (Xen would refuse): {what}")
    } else {
        format!("vmm: REFUSED ({rc}): {what}")
    }
}

/// Everything printed on stderr for one event with a refusal or a violation.
pub fn render(ev: &Event) -> String {
    let mut lines: Vec<String> = ev.xen_log.iter().map(|m| m.to_string()).collect();
    for v in &ev.violations {
        lines.push(headline(v, ev.rc));
        lines.extend(mapping_lines(v));
    }
    if ev.violations.is_empty() {
        lines.push(format!("vmm: {}", ev.summary()));
    }
    lines.join("\n")
}

/// The provenance lines of an event, for the JSON log.
pub fn json_lines(ev: &Event) -> Vec<String> {
    ev.violations.iter().flat_map(mapping_lines).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pagetable_validator::Mfn;

    fn va(va: u64, region: &str) -> String {
        describe_va(&VaRef {
            va,
            region: Some(region.into()),
            root: Mfn(1),
        })
    }

    #[test]
    fn names_the_facility_behind_each_va() {
        assert_eq!(
            va(0xffff_c900_0000_2000, "vmalloc/vmap area"),
            "vmalloc va ffffc90000002000 [vmalloc/vmap area +0x2000]"
        );
        assert!(va(0xffff_e900_0000_1000, "pkmap").contains("[pkmap slot 1,"));
        assert!(va(0xffff_e900_0021_0000, "fixmap").contains("[fixmap slot 16]"));
        assert!(va(0xffff_8880_0040_0000, "direct map")
            .ends_with("[direct map: the lowmem alias of pfn 00400]"));
        assert_eq!(va(0x40_0000, "user"), "va 0000000000400000 [user]");
    }
}
