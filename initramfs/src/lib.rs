//! The project's initramfs for Debian's Linux as a Xen PV guest: a cpio "newc" archive
//! (the format the kernel unpacks, `Documentation/driver-api/early-userspace/buffer-format.rst`),
//! gzip-compressed (the kernel has CONFIG_RD_GZIP).
//!
//! [`Initramfs`] is a general builder (directories, files, symlinks, character devices, in the
//! order added; parents must come first). [`project`] lays out the project's image: a static
//! busybox with the applet links `/init` uses, `/init` itself, `/dev/console` and `/dev/null`
//! (the kernel opens `/dev/console` for init before any devtmpfs exists), mount points,
//! extra static programs, and kernel modules in `/lib/modules` (for `insmod`). Every header field that is not the content (inode numbers, mtime,
//! uid/gid) is fixed, and gzip's header has no time stamp, so the same inputs give the same
//! bytes.
#![forbid(unsafe_code)]

use std::io::{self, Write};
use thiserror::Error;

/// File type bits of `st_mode`.
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

#[derive(Debug, Error)]
pub enum InitramfsError {
    #[error("bad path {0:?}: must be absolute, without '.', '..', empty or NUL components")]
    BadPath(String),
    #[error("{0} is added twice")]
    Duplicate(String),
    #[error("{path}: its parent directory {parent} is not in the archive (add it first)")]
    NoParent { path: String, parent: String },
    #[error("{0} is larger than a cpio newc entry can hold (4 GiB)")]
    TooLarge(String),
    #[error("{what}: {why}")]
    NotStaticElf { what: String, why: &'static str },
    #[error("{what}: not a kernel module: {why}")]
    NotKernelModule { what: String, why: &'static str },
    #[error("/init: {0}")]
    BadInit(&'static str),
    #[error("writing the archive: {0}")]
    Io(#[from] io::Error),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDev { major: u32, minor: u32 },
}

#[derive(Clone, Debug)]
struct Entry {
    /// Without the leading '/', as the kernel expects ("bin/busybox").
    name: String,
    /// Permission bits only.
    perm: u32,
    kind: Kind,
}

/// An initramfs under construction.
#[derive(Clone, Debug, Default)]
pub struct Initramfs {
    entries: Vec<Entry>,
}

fn check_path(path: &str) -> Result<String, InitramfsError> {
    let rel = path
        .strip_prefix('/')
        .ok_or_else(|| InitramfsError::BadPath(path.into()))?;
    if rel.is_empty()
        || rel.contains('\0')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(InitramfsError::BadPath(path.into()));
    }
    Ok(rel.to_string())
}

impl Initramfs {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&mut self, path: &str, perm: u32, kind: Kind) -> Result<(), InitramfsError> {
        let name = check_path(path)?;
        if self.entries.iter().any(|e| e.name == name) {
            return Err(InitramfsError::Duplicate(path.into()));
        }
        if let Some((parent, _)) = name.rsplit_once('/') {
            let ok = self
                .entries
                .iter()
                .any(|e| e.name == parent && e.kind == Kind::Dir);
            if !ok {
                return Err(InitramfsError::NoParent {
                    path: path.into(),
                    parent: format!("/{parent}"),
                });
            }
        }
        if let Kind::File(d) = &kind {
            if u32::try_from(d.len()).is_err() {
                return Err(InitramfsError::TooLarge(path.into()));
            }
        }
        self.entries.push(Entry {
            name,
            perm: perm & 0o7777,
            kind,
        });
        Ok(())
    }

    pub fn dir(&mut self, path: &str, perm: u32) -> Result<(), InitramfsError> {
        self.add(path, perm, Kind::Dir)
    }

    pub fn file(&mut self, path: &str, perm: u32, data: Vec<u8>) -> Result<(), InitramfsError> {
        self.add(path, perm, Kind::File(data))
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), InitramfsError> {
        self.add(path, 0o777, Kind::Symlink(target.into()))
    }

    pub fn char_dev(
        &mut self,
        path: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> Result<(), InitramfsError> {
        self.add(path, perm, Kind::CharDev { major, minor })
    }

    /// Number of entries (the trailer not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the uncompressed cpio newc archive, trailer included.
    pub fn write_cpio<W: Write>(&self, mut w: W) -> Result<W, InitramfsError> {
        for (i, e) in self.entries.iter().enumerate() {
            let (ty, data, nlink, rdev): (u32, &[u8], u32, (u32, u32)) = match &e.kind {
                Kind::Dir => (S_IFDIR, &[], 2, (0, 0)),
                Kind::File(d) => (S_IFREG, d, 1, (0, 0)),
                Kind::Symlink(t) => (S_IFLNK, t.as_bytes(), 1, (0, 0)),
                Kind::CharDev { major, minor } => (S_IFCHR, &[], 1, (*major, *minor)),
            };
            let size =
                u32::try_from(data.len()).map_err(|_| InitramfsError::TooLarge(e.name.clone()))?;
            let mut entry = cpio::newc::Builder::new(&e.name)
                .ino(i as u32 + 1)
                .mode(ty | e.perm)
                .nlink(nlink)
                .rdev_major(rdev.0)
                .rdev_minor(rdev.1)
                .write(w, size);
            entry.write_all(data)?;
            w = entry.finish()?;
        }
        Ok(cpio::newc::trailer(w)?)
    }

    /// The archive, gzip-compressed (no file name or time stamp in the gzip header).
    pub fn to_gzip(&self) -> Result<Vec<u8>, InitramfsError> {
        let gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::best());
        Ok(self.write_cpio(gz)?.finish()?)
    }
}

/// The x86_64 ELF header fields both checks read: `e_type` and the program header table.
struct ElfHeader {
    e_type: u16,
    phoff: u64,
    phentsize: u16,
    phnum: u16,
}

fn elf_header(bytes: &[u8]) -> Result<ElfHeader, &'static str> {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file");
    }
    if bytes.get(4..6) != Some(&[2, 1]) || u16_at(18) != Some(62) {
        return Err("not a 64-bit little-endian x86_64 ELF");
    }
    let (Some(e_type), Some(phoff), Some(phentsize), Some(phnum)) =
        (u16_at(16), u64_at(32), u16_at(54), u16_at(56))
    else {
        return Err("truncated ELF header");
    };
    Ok(ElfHeader {
        e_type,
        phoff,
        phentsize,
        phnum,
    })
}

/// Checks that `bytes` is an x86_64 ELF executable without a program interpreter: a dynamic
/// program cannot run in an initramfs that has no libc or loader.
pub fn check_static_elf(what: &str, bytes: &[u8]) -> Result<(), InitramfsError> {
    let bad = |why| {
        Err(InitramfsError::NotStaticElf {
            what: what.into(),
            why,
        })
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let h = match elf_header(bytes) {
        Ok(h) => h,
        Err(why) => return bad(why),
    };
    if !matches!(h.e_type, 2 | 3) {
        return bad("not an executable");
    }
    if h.phnum > 0 && h.phentsize < 56 {
        return bad("bad program header size");
    }
    for i in 0..h.phnum as u64 {
        let at = h
            .phoff
            .checked_add(i * h.phentsize as u64)
            .and_then(|a| usize::try_from(a).ok());
        match at.and_then(u32_at) {
            Some(3) => return bad("dynamically linked (has PT_INTERP); build it statically"),
            Some(_) => {}
            None => return bad("truncated program headers"),
        }
    }
    Ok(())
}

/// Checks that `bytes` is a loadable kernel module: an x86_64 relocatable ELF (`ET_REL`) with
/// the `.modinfo` section's `vermagic=` string that `insmod` checks against the kernel.
pub fn check_kernel_module(what: &str, bytes: &[u8]) -> Result<(), InitramfsError> {
    let bad = |why| {
        Err(InitramfsError::NotKernelModule {
            what: what.into(),
            why,
        })
    };
    match elf_header(bytes) {
        Err(why) => bad(why),
        Ok(h) if h.e_type != 1 => bad("not a relocatable object (ET_REL)"),
        Ok(_) if !bytes.windows(9).any(|w| w == b"vermagic=") => bad("no vermagic= in .modinfo"),
        Ok(_) => Ok(()),
    }
}

/// The busybox applets `/init` calls, each a link `/bin/NAME -> busybox`.
pub const APPLETS: &[&str] = &[
    "[", "cat", "cmp", "cp", "dd", "dmesg", "echo", "false", "grep", "head", "insmod", "kill",
    "ls", "lsmod", "md5sum", "mkdir", "mount", "poweroff", "printf", "rm", "rmmod", "seq", "sh",
    "sleep", "sync", "test", "true", "umount", "uname", "wc",
];

/// What goes into the project's initramfs.
pub struct ProjectInputs<'a> {
    /// A static busybox (Debian's busybox-static `/bin/busybox`).
    pub busybox: &'a [u8],
    /// The `/init` script (the repo's `linux/init.sh`).
    pub init: &'a [u8],
    /// More static programs, as (name in /bin, bytes), e.g. ("mmap-churn", ...).
    pub programs: &'a [(String, Vec<u8>)],
    /// Kernel modules, as (file name in /lib/modules, bytes), e.g. ("xfs_vmap.ko", ...).
    pub modules: &'a [(String, Vec<u8>)],
}

/// The project's initramfs: see the module documentation.
pub fn project(inp: &ProjectInputs) -> Result<Initramfs, InitramfsError> {
    check_static_elf("busybox", inp.busybox)?;
    if !inp.init.starts_with(b"#!/bin/sh") {
        return Err(InitramfsError::BadInit(
            "must start with #!/bin/sh (busybox is the only shell)",
        ));
    }
    let mut fs = Initramfs::new();
    for d in ["/bin", "/dev", "/proc", "/sys", "/tmp", "/root", "/etc"] {
        fs.dir(d, if d == "/tmp" { 0o1777 } else { 0o755 })?;
    }
    fs.char_dev("/dev/console", 0o600, 5, 1)?;
    fs.char_dev("/dev/null", 0o666, 1, 3)?;
    fs.file("/bin/busybox", 0o755, inp.busybox.to_vec())?;
    for a in APPLETS {
        fs.symlink(&format!("/bin/{a}"), "busybox")?;
    }
    for (name, bytes) in inp.programs {
        check_static_elf(name, bytes)?;
        fs.file(&format!("/bin/{name}"), 0o755, bytes.clone())?;
    }
    if !inp.modules.is_empty() {
        fs.dir("/lib", 0o755)?;
        fs.dir("/lib/modules", 0o755)?;
    }
    for (name, bytes) in inp.modules {
        check_kernel_module(name, bytes)?;
        fs.file(&format!("/lib/modules/{name}"), 0o644, bytes.clone())?;
    }
    fs.symlink("/sbin", "bin")?;
    fs.file("/init", 0o755, inp.init.to_vec())?;
    Ok(fs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A minimal static x86_64 ELF header with one PT_LOAD (or PT_INTERP) program header.
    fn elf(ph_type: u32) -> Vec<u8> {
        let mut f = vec![0u8; 64 + 56];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[16..18].copy_from_slice(&2u16.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&1u16.to_le_bytes());
        f[64..68].copy_from_slice(&ph_type.to_le_bytes());
        f
    }

    /// (name, mode, nlink, rdev, contents) of every entry, read back with the cpio crate's reader.
    type ReadEntry = (String, u32, u32, (u32, u32), Vec<u8>);

    fn read_back(mut cpio_bytes: &[u8]) -> Vec<ReadEntry> {
        let mut out = Vec::new();
        loop {
            let mut r = cpio::NewcReader::new(cpio_bytes).unwrap();
            if r.entry().is_trailer() {
                break;
            }
            let e = r.entry();
            let meta = (
                e.name().to_string(),
                e.mode(),
                e.nlink(),
                (e.rdev_major(), e.rdev_minor()),
            );
            let mut data = Vec::new();
            r.read_to_end(&mut data).unwrap();
            out.push((meta.0, meta.1, meta.2, meta.3, data));
            cpio_bytes = r.finish().unwrap();
        }
        out
    }

    #[test]
    fn entries_round_trip_through_a_cpio_reader() {
        let mut fs = Initramfs::new();
        fs.dir("/bin", 0o755).unwrap();
        fs.file("/bin/x", 0o755, b"hello".to_vec()).unwrap();
        fs.symlink("/bin/y", "x").unwrap();
        fs.dir("/dev", 0o755).unwrap();
        fs.char_dev("/dev/console", 0o600, 5, 1).unwrap();
        let bytes = fs.write_cpio(Vec::new()).unwrap();
        // newc: every header starts with the magic at a 4-byte boundary; the trailer ends it.
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(bytes.len() % 4, 0);
        let got = read_back(&bytes);
        assert_eq!(
            got,
            vec![
                ("bin".into(), S_IFDIR | 0o755, 2, (0, 0), vec![]),
                (
                    "bin/x".into(),
                    S_IFREG | 0o755,
                    1,
                    (0, 0),
                    b"hello".to_vec()
                ),
                ("bin/y".into(), S_IFLNK | 0o777, 1, (0, 0), b"x".to_vec()),
                ("dev".into(), S_IFDIR | 0o755, 2, (0, 0), vec![]),
                ("dev/console".into(), S_IFCHR | 0o600, 1, (5, 1), vec![]),
            ]
        );
    }

    #[test]
    fn gzip_is_deterministic_and_decompresses_to_the_cpio() {
        let mut fs = Initramfs::new();
        fs.file("/init", 0o755, b"#!/bin/sh\n".to_vec()).unwrap();
        let a = fs.to_gzip().unwrap();
        assert_eq!(a, fs.to_gzip().unwrap());
        assert_eq!(&a[..2], &[0x1f, 0x8b]);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, fs.write_cpio(Vec::new()).unwrap());
    }

    #[test]
    fn bad_paths_duplicates_and_missing_parents_are_errors() {
        let mut fs = Initramfs::new();
        for p in ["bin", "/", "/a//b", "/a/../b", "/./a", "/a\0"] {
            assert!(
                matches!(fs.dir(p, 0o755), Err(InitramfsError::BadPath(_))),
                "{p:?}"
            );
        }
        assert!(matches!(
            fs.file("/bin/sh", 0o755, vec![]),
            Err(InitramfsError::NoParent { .. })
        ));
        fs.dir("/bin", 0o755).unwrap();
        assert!(matches!(
            fs.dir("/bin", 0o755),
            Err(InitramfsError::Duplicate(_))
        ));
        // A parent that is a file, not a directory, does not count.
        fs.file("/f", 0o644, vec![]).unwrap();
        assert!(matches!(
            fs.file("/f/g", 0o644, vec![]),
            Err(InitramfsError::NoParent { .. })
        ));
        assert!(fs.len() == 2);
    }

    #[test]
    fn static_elf_check() {
        assert!(check_static_elf("x", &elf(1)).is_ok());
        let why = |b: &[u8]| match check_static_elf("x", b) {
            Err(InitramfsError::NotStaticElf { why, .. }) => why,
            other => panic!("{other:?}"),
        };
        assert!(why(&elf(3)).contains("PT_INTERP"));
        assert_eq!(why(b"#!/bin/sh\n"), "not an ELF file");
        assert_eq!(why(&elf(1)[..50]), "truncated ELF header");
        assert_eq!(why(&elf(1)[..66]), "truncated program headers");
        let mut e32 = elf(1);
        e32[4] = 1;
        assert!(why(&e32).contains("64-bit"));
        // The host's own test binary is dynamically linked (no crt-static for tests).
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(why(&exe).contains("PT_INTERP"));
    }

    /// A relocatable x86_64 ELF with a `.modinfo`-like vermagic string.
    fn module() -> Vec<u8> {
        let mut m = elf(1);
        m[16] = 1;
        m.extend_from_slice(b"vermagic=6.1.0-57-amd64 SMP mod_unload modversions \0");
        m
    }

    #[test]
    fn kernel_module_check() {
        assert!(check_kernel_module("m", &module()).is_ok());
        let why = |b: &[u8]| match check_kernel_module("m", b) {
            Err(InitramfsError::NotKernelModule { why, .. }) => why,
            other => panic!("{other:?}"),
        };
        assert!(why(&elf(1)).contains("ET_REL"));
        assert!(why(&module()[..64 + 56]).contains("vermagic"));
        assert_eq!(why(b"obj-m := x.o\n"), "not an ELF file");
        // A module cannot stand in for a program, nor a program for a module.
        assert!(check_static_elf("m", &module()).is_err());
    }

    #[test]
    fn project_layout() {
        let bb = elf(1);
        let churn = elf(1);
        let inp = ProjectInputs {
            busybox: &bb,
            init: b"#!/bin/sh\necho hi\n",
            programs: &[("mmap-churn".into(), churn)],
            modules: &[("xfs_vmap.ko".into(), module())],
        };
        let fs = project(&inp).unwrap();
        let got = read_back(&fs.write_cpio(Vec::new()).unwrap());
        let find = |n: &str| {
            got.iter()
                .find(|e| e.0 == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        assert_eq!(find("init").1, S_IFREG | 0o755);
        assert_eq!(find("init").4, inp.init);
        assert_eq!(find("dev/console").3, (5, 1));
        assert_eq!(find("bin/sh").4, b"busybox");
        assert_eq!(find("bin/mmap-churn").1, S_IFREG | 0o755);
        assert_eq!(find("tmp").1, S_IFDIR | 0o1777);
        assert_eq!(find("sbin").4, b"bin");
        assert_eq!(find("lib/modules/xfs_vmap.ko").1, S_IFREG | 0o644);
        for a in APPLETS {
            assert_eq!(find(&format!("bin/{a}")).1, S_IFLNK | 0o777);
        }
        // Wrong inputs are refused with the reason.
        let dynamic = elf(3);
        let bad = ProjectInputs {
            busybox: &dynamic,
            ..inp
        };
        assert!(matches!(
            project(&bad),
            Err(InitramfsError::NotStaticElf { .. })
        ));
        let bad = ProjectInputs {
            busybox: &bb,
            init: b"echo no shebang\n",
            programs: &[],
            modules: &[],
        };
        assert!(matches!(project(&bad), Err(InitramfsError::BadInit(_))));
    }
}
