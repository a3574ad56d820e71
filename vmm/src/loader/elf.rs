//! ELF64 parsing for Xen PV kernels: program headers, Xen ELF notes (PT_NOTE segments or the
//! `.note.Xen` section), the legacy `__xen_guest` string, and the symbol table (for crash reports).
//!
//! Every offset read from the file is bounds-checked: a truncated or hostile image gives an
//! [`ElfError`], never a panic. The checks on the notes mirror Xen's libelf
//! (`elf_xen_note_check`, `elf_xen_addr_calc_check`), so we accept what Xen's builder accepts.

use pagetable_validator::abi::elfnote;
use thiserror::Error;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const SHT_SYMTAB: u32 = 2;
const SHT_NOTE: u32 = 7;
const EM_X86_64: u16 = 62;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
/// Xen's "not set" marker for addresses in its parser.
const UNSET: u64 = u64::MAX;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ElfError {
    #[error("not an ELF file (bad magic)")]
    NotElf,
    #[error("not a 64-bit little-endian ELF (only x86_64 Xen PV kernels are supported)")]
    Not64BitLe,
    #[error("ELF machine {0} is not x86_64")]
    NotX86_64(u16),
    #[error("ELF type {0} is not an executable")]
    NotExecutable(u16),
    #[error("truncated ELF: {0} lies outside the file")]
    Truncated(&'static str),
    #[error("not a Xen PV kernel: no Xen ELF notes and no __xen_guest section")]
    NoXenNotes,
    #[error("Xen ELF notes: {0}")]
    BadNotes(String),
    #[error("no PT_LOAD segment")]
    NoLoadSegments,
}

/// One PT_LOAD segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub paddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
}

/// The Xen parameters of a kernel, after Xen's defaulting rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XenParams {
    pub guest_os: String,
    pub xen_version: String,
    pub loader: String,
    pub virt_base: u64,
    pub paddr_offset: u64,
    /// Virtual entry point.
    pub entry: u64,
    /// Virtual address of the hypercall page, if the kernel asks for one.
    pub hypercall_page: Option<u64>,
    /// XEN_ELFNOTE_MOD_START_PFN with a non-zero value (libelf: `unmapped_initrd`): the kernel
    /// takes its initrd by pfn, outside the initial mapping (Linux does).
    pub unmapped_initrd: bool,
    /// Virtual start and end (exclusive) of the loaded image.
    pub virt_kstart: u64,
    pub virt_kend: u64,
    /// Where the notes came from ("PT_NOTE", ".note.Xen", "__xen_guest").
    pub source: &'static str,
}

/// A function or object symbol, for naming guest addresses in crash reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub addr: u64,
    pub size: u64,
    pub name: String,
}

/// A parsed Xen PV kernel image (borrowing the file bytes).
#[derive(Debug)]
pub struct KernelImage<'a> {
    pub data: &'a [u8],
    pub segments: Vec<Segment>,
    pub xen: XenParams,
    /// Sorted by address.
    pub symbols: Vec<Symbol>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&self, off: u64, len: u64, what: &'static str) -> Result<&'a [u8], ElfError> {
        let end = off.checked_add(len).ok_or(ElfError::Truncated(what))?;
        if end > self.0.len() as u64 {
            return Err(ElfError::Truncated(what));
        }
        Ok(&self.0[off as usize..end as usize])
    }
    fn u16(&self, off: u64, what: &'static str) -> Result<u16, ElfError> {
        let b = self.bytes(off, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, off: u64, what: &'static str) -> Result<u32, ElfError> {
        let b = self.bytes(off, 4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&self, off: u64, what: &'static str) -> Result<u64, ElfError> {
        let b = self.bytes(off, 8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}

#[derive(Default)]
struct RawNotes {
    guest_os: Option<String>,
    xen_version: Option<String>,
    loader: Option<String>,
    virt_base: Option<u64>,
    paddr_offset: Option<u64>,
    entry: Option<u64>,
    hypercall_page: Option<u64>,
    mod_start_pfn: Option<u64>,
    /// Legacy `__xen_guest` HYPERCALL_PAGE is a page number relative to VIRT_BASE.
    hypercall_page_pfn: Option<u64>,
    found: bool,
}

fn c_string(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// Xen's numeric notes may be 1, 2, 4 or 8 bytes wide.
fn numeric(desc: &[u8]) -> Result<u64, ElfError> {
    match desc.len() {
        1 => Ok(desc[0] as u64),
        2 => Ok(u16::from_le_bytes([desc[0], desc[1]]) as u64),
        4 => Ok(u32::from_le_bytes(desc.try_into().expect("4")) as u64),
        8 => Ok(u64::from_le_bytes(desc.try_into().expect("8"))),
        n => Err(ElfError::BadNotes(format!("numeric note of {n} bytes"))),
    }
}

fn align4(x: u64) -> u64 {
    x.saturating_add(3) & !3
}

/// Parses a run of ELF notes, keeping those named "Xen".
fn parse_notes(r: &Reader, off: u64, size: u64, notes: &mut RawNotes) -> Result<(), ElfError> {
    let end = off.checked_add(size).ok_or(ElfError::Truncated("notes"))?;
    r.bytes(off, size, "notes")?;
    let mut p = off;
    while p.saturating_add(12) <= end {
        let namesz = r.u32(p, "note header")? as u64;
        let descsz = r.u32(p + 4, "note header")? as u64;
        let ty = r.u32(p + 8, "note header")?;
        let name_off = p + 12;
        let desc_off = name_off.saturating_add(align4(namesz));
        let next = desc_off.saturating_add(align4(descsz));
        if next > end {
            return Err(ElfError::Truncated("note"));
        }
        let name = r.bytes(name_off, namesz, "note name")?;
        let desc = r.bytes(desc_off, descsz, "note desc")?;
        if c_string(name) == "Xen" {
            notes.found = true;
            match ty {
                elfnote::GUEST_OS => notes.guest_os = Some(c_string(desc)),
                elfnote::XEN_VERSION => notes.xen_version = Some(c_string(desc)),
                elfnote::LOADER => notes.loader = Some(c_string(desc)),
                elfnote::VIRT_BASE => notes.virt_base = Some(numeric(desc)?),
                elfnote::PADDR_OFFSET => notes.paddr_offset = Some(numeric(desc)?),
                elfnote::ENTRY => notes.entry = Some(numeric(desc)?),
                elfnote::HYPERCALL_PAGE => notes.hypercall_page = Some(numeric(desc)?),
                elfnote::MOD_START_PFN => notes.mod_start_pfn = Some(numeric(desc)?),
                _ => {}
            }
        }
        p = next;
    }
    Ok(())
}

/// The legacy `__xen_guest` section: "GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0x...,...".
fn parse_legacy(s: &str, notes: &mut RawNotes) -> Result<(), ElfError> {
    notes.found = true;
    let num = |v: &str| -> Result<u64, ElfError> {
        let v = v.trim();
        let r = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(h) => u64::from_str_radix(h, 16),
            None => v.parse(),
        };
        r.map_err(|_| ElfError::BadNotes(format!("__xen_guest: bad number {v:?}")))
    };
    for item in s.split(',') {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        match k.trim() {
            "GUEST_OS" => notes.guest_os = Some(v.to_string()),
            "XEN_VER" => notes.xen_version = Some(v.to_string()),
            "LOADER" => notes.loader = Some(v.to_string()),
            "VIRT_BASE" => notes.virt_base = Some(num(v)?),
            "ELF_PADDR_OFFSET" => notes.paddr_offset = Some(num(v)?),
            "HYPERCALL_PAGE" => notes.hypercall_page_pfn = Some(num(v)?),
            _ => {}
        }
    }
    Ok(())
}

impl<'a> KernelImage<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, ElfError> {
        let r = Reader(data);
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err(ElfError::NotElf);
        }
        if r.bytes(4, 2, "ELF header")? != [2, 1] {
            return Err(ElfError::Not64BitLe);
        }
        let e_type = r.u16(16, "ELF header")?;
        let machine = r.u16(18, "ELF header")?;
        if machine != EM_X86_64 {
            return Err(ElfError::NotX86_64(machine));
        }
        if e_type != ET_EXEC && e_type != ET_DYN {
            return Err(ElfError::NotExecutable(e_type));
        }
        let e_entry = r.u64(24, "ELF header")?;
        let phoff = r.u64(32, "ELF header")?;
        let shoff = r.u64(40, "ELF header")?;
        let phentsize = r.u16(54, "ELF header")? as u64;
        let phnum = r.u16(56, "ELF header")? as u64;
        let shentsize = r.u16(58, "ELF header")? as u64;
        let shnum = r.u16(60, "ELF header")? as u64;
        let shstrndx = r.u16(62, "ELF header")? as u64;

        let mut notes = RawNotes::default();
        let mut segments = Vec::new();
        let mut source = "";
        if phentsize < 56 && phnum > 0 {
            return Err(ElfError::Truncated("program header size"));
        }
        for i in 0..phnum {
            let ph = phoff.saturating_add(i * phentsize);
            let p_type = r.u32(ph, "program header")?;
            let offset = r.u64(ph + 8, "program header")?;
            let vaddr = r.u64(ph + 16, "program header")?;
            let paddr = r.u64(ph + 24, "program header")?;
            let filesz = r.u64(ph + 32, "program header")?;
            let memsz = r.u64(ph + 40, "program header")?;
            match p_type {
                PT_LOAD => {
                    r.bytes(offset, filesz, "PT_LOAD contents")?;
                    if filesz > memsz {
                        return Err(ElfError::Truncated("PT_LOAD filesz > memsz"));
                    }
                    if memsz > 0 {
                        segments.push(Segment {
                            vaddr,
                            paddr,
                            offset,
                            filesz,
                            memsz,
                        });
                    }
                }
                PT_NOTE => {
                    let before = notes.found;
                    parse_notes(&r, offset, filesz, &mut notes)?;
                    if notes.found && !before {
                        source = "PT_NOTE";
                    }
                }
                _ => {}
            }
        }

        // Sections: `.note.Xen` (if no PT_NOTE had them), `__xen_guest`, and the symbol table.
        let mut symbols = Vec::new();
        if shoff != 0 && shnum != 0 && shentsize >= 64 {
            let sh = |i: u64| shoff.saturating_add(i * shentsize);
            let shstr_off = r.u64(sh(shstrndx) + 24, "section header")?;
            let shstr_size = r.u64(sh(shstrndx) + 32, "section header")?;
            let shstr = r.bytes(shstr_off, shstr_size, "section names")?;
            for i in 0..shnum {
                let base = sh(i);
                let name_idx = r.u32(base, "section header")? as usize;
                let sh_type = r.u32(base + 4, "section header")?;
                let off = r.u64(base + 24, "section header")?;
                let size = r.u64(base + 32, "section header")?;
                let link = r.u32(base + 40, "section header")? as u64;
                let entsize = r.u64(base + 56, "section header")?;
                let name = shstr.get(name_idx..).map(c_string).unwrap_or_default();
                if sh_type == SHT_NOTE && name == ".note.Xen" && !notes.found {
                    parse_notes(&r, off, size, &mut notes)?;
                    source = ".note.Xen";
                } else if name == "__xen_guest" && !notes.found {
                    parse_legacy(&c_string(r.bytes(off, size, "__xen_guest")?), &mut notes)?;
                    source = "__xen_guest";
                } else if sh_type == SHT_SYMTAB && entsize >= 24 {
                    // Symbols are optional: a broken table only costs us names in reports.
                    if let Ok(s) = read_symbols(&r, off, size, entsize, sh(link)) {
                        symbols = s;
                    }
                }
            }
        }
        if !notes.found {
            return Err(ElfError::NoXenNotes);
        }
        if segments.is_empty() {
            return Err(ElfError::NoLoadSegments);
        }
        let xen = check_notes(&notes, &segments, e_entry, source)?;
        symbols.sort_by_key(|s| s.addr);
        Ok(KernelImage {
            data,
            segments,
            xen,
            symbols,
        })
    }

    /// Nearest symbol at or below `addr`, as "name+0xoff".
    pub fn symbolize(&self, addr: u64) -> Option<String> {
        let i = self.symbols.partition_point(|s| s.addr <= addr);
        let s = self.symbols.get(i.checked_sub(1)?)?;
        // Without a size, only trust it within 64 KiB.
        let limit = if s.size > 0 { s.size } else { 0x10000 };
        (addr - s.addr < limit).then(|| format!("{}+{:#x}", s.name, addr - s.addr))
    }
}

fn read_symbols(
    r: &Reader,
    off: u64,
    size: u64,
    entsize: u64,
    strhdr: u64,
) -> Result<Vec<Symbol>, ElfError> {
    let str_off = r.u64(strhdr + 24, "string table header")?;
    let str_size = r.u64(strhdr + 32, "string table header")?;
    let strtab = r.bytes(str_off, str_size, "string table")?;
    let mut out = Vec::new();
    for i in 0..size / entsize {
        let e = off + i * entsize;
        let name = r.u32(e, "symbol")? as usize;
        let info = r.bytes(e + 4, 1, "symbol")?[0];
        let value = r.u64(e + 8, "symbol")?;
        let sz = r.u64(e + 16, "symbol")?;
        // STT_FUNC (2), STT_OBJECT (1) and untyped labels (0, e.g. from assembly).
        if info & 0xf <= 2 && value != 0 {
            let n = strtab.get(name..).map(c_string).unwrap_or_default();
            if !n.is_empty() {
                out.push(Symbol {
                    addr: value,
                    size: sz,
                    name: n,
                });
            }
        }
    }
    Ok(out)
}

/// Xen's libelf defaulting and checks (`elf_xen_note_check`, `elf_xen_addr_calc_check`).
fn check_notes(
    n: &RawNotes,
    segs: &[Segment],
    e_entry: u64,
    source: &'static str,
) -> Result<XenParams, ElfError> {
    let loader = n.loader.clone().unwrap_or_default();
    let guest_os = n.guest_os.clone().unwrap_or_default();
    let xen_version = n.xen_version.clone().unwrap_or_default();
    if !loader.starts_with("generic") && !guest_os.starts_with("linux") {
        return Err(ElfError::BadNotes(
            "will only load images built for the generic loader or Linux images".into(),
        ));
    }
    if !xen_version.starts_with("xen-3.0") {
        return Err(ElfError::BadNotes(format!(
            "will only load images built for Xen v3.0 (XEN_VERSION is {xen_version:?})"
        )));
    }
    let virt_base = n.virt_base.unwrap_or(0);
    // Xen: without PADDR_OFFSET, ELF notes imply 0 and the legacy string implies VIRT_BASE.
    let paddr_offset = n.paddr_offset.unwrap_or(if source == "__xen_guest" {
        virt_base
    } else {
        0
    });
    let virt_offset = virt_base.wrapping_sub(paddr_offset);
    let pstart = segs.iter().map(|s| s.paddr).min().unwrap_or(UNSET);
    let pend = segs
        .iter()
        .map(|s| s.paddr.saturating_add(s.memsz))
        .max()
        .unwrap_or(0);
    let virt_kstart = pstart.wrapping_add(virt_offset);
    let virt_kend = pend.wrapping_add(virt_offset);
    let entry = n.entry.unwrap_or(e_entry);
    let hypercall_page = match (n.hypercall_page, n.hypercall_page_pfn) {
        (Some(va), _) => Some(va),
        (None, Some(pfn)) => Some(virt_base.wrapping_add(pfn << 12)),
        _ => None,
    };
    if virt_kstart > virt_kend
        || entry < virt_kstart
        || entry > virt_kend
        || virt_base > virt_kstart
    {
        return Err(ElfError::BadNotes(format!(
            "ELF start or entries are out of bounds (virt_base {virt_base:#x}, image {virt_kstart:#x}..{virt_kend:#x}, entry {entry:#x})"
        )));
    }
    if virt_base & 0xfff != 0 {
        return Err(ElfError::BadNotes(format!(
            "VIRT_BASE {virt_base:#x} is not page aligned"
        )));
    }
    if let Some(hp) = hypercall_page {
        if hp < virt_kstart || hp.saturating_add(4096) > virt_kend || hp & 0xfff != 0 {
            return Err(ElfError::BadNotes(format!(
                "HYPERCALL_PAGE {hp:#x} is not a page inside the image"
            )));
        }
    }
    Ok(XenParams {
        guest_os,
        xen_version,
        loader,
        virt_base,
        paddr_offset,
        entry,
        hypercall_page,
        unmapped_initrd: n.mod_start_pfn.is_some_and(|v| v != 0),
        virt_kstart,
        virt_kend,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf_and_truncated() {
        assert_eq!(KernelImage::parse(b"").unwrap_err(), ElfError::NotElf);
        assert_eq!(
            KernelImage::parse(b"#!/bin/sh\n").unwrap_err(),
            ElfError::NotElf
        );
        assert_eq!(
            KernelImage::parse(b"\x7fELF\x01\x01").unwrap_err(),
            ElfError::Not64BitLe
        );
        assert!(matches!(
            KernelImage::parse(b"\x7fELF\x02\x01\x01").unwrap_err(),
            ElfError::Truncated(_)
        ));
    }

    #[test]
    fn host_binary_is_not_a_xen_kernel() {
        // The test binary itself: a valid x86_64 ELF without Xen notes.
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(KernelImage::parse(&exe).unwrap_err(), ElfError::NoXenNotes);
    }

    #[test]
    fn legacy_string() {
        let mut n = RawNotes::default();
        parse_legacy(
            "GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xffffffff80000000,HYPERCALL_PAGE=0x202",
            &mut n,
        )
        .unwrap();
        assert_eq!(n.virt_base, Some(0xffff_ffff_8000_0000));
        assert_eq!(n.hypercall_page_pfn, Some(0x202));
        assert!(parse_legacy("VIRT_BASE=zz", &mut n).is_err());
    }
}
