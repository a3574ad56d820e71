//! bzImage kernels, unpacked the way Xen's dom0 builder does (`xen/arch/x86/bzimage.c`):
//! a file with the setup header magic "HdrS" at 0x202 and boot protocol >= 2.08 carries its
//! kernel as a payload at `(setup_sects + 1) * 512 + payload_offset`, `payload_length` bytes
//! long. The payload is an ELF as is, or compressed (Debian: XZ with the x86 BCJ filter;
//! gzip is also common); the last 4 bytes of a compressed payload give the decompressed size.
//! A file without "HdrS" is taken as the kernel itself: an ELF (returned as is, borrowed), or,
//! as in Xen, a gzip/XZ-compressed ELF.
//!
//! The result goes to [`KernelImage::parse`](super::elf::KernelImage::parse). Every bad input
//! is a [`BzImageError`]; nothing here panics on a hostile file, and decompression stops at the
//! size the payload announces (or [`MAX_KERNEL`]).

use std::borrow::Cow;
use std::io::Read;
use thiserror::Error;

/// `sizeof(struct setup_header)` in Xen's bzimage.c: the header fields up to payload_length.
const SETUP_HEADER_END: usize = 0x250;
const OFF_SETUP_SECTS: usize = 0x1f1;
const OFF_HEADER: usize = 0x202;
const OFF_VERSION: usize = 0x206;
const OFF_PAYLOAD_OFFSET: usize = 0x248;
const OFF_PAYLOAD_LENGTH: usize = 0x24c;
/// The first boot protocol with payload_offset/payload_length.
const MIN_VERSION: u16 = 0x0208;
/// The largest kernel ELF we decompress (Debian's is ~63 MiB).
pub const MAX_KERNEL: u64 = 512 << 20;
/// liblzma's memory limit for one decoder (XZ's dictionary; Linux uses 32 MiB at most).
const XZ_MEMLIMIT: u64 = 256 << 20;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BzImageError {
    #[error("truncated bzImage: its setup header ends at {need:#x}, the file has {have:#x} bytes")]
    TruncatedHeader { need: usize, have: usize },
    #[error("bzImage boot protocol {}.{:02}: at least 2.08 is needed (payload_offset/payload_length)", .0 >> 8, .0 & 0xff)]
    OldProtocol(u16),
    #[error("bzImage payload {start:#x}+{len:#x} lies outside the file ({file:#x} bytes)")]
    PayloadOutside { start: u64, len: u64, file: usize },
    #[error("bzImage payload of {0} bytes is too short to be a compressed kernel")]
    PayloadTooShort(usize),
    #[error("the kernel is {0}-compressed; this loader decompresses gzip and XZ only")]
    UnsupportedCompression(&'static str),
    #[error(
        "bzImage payload is neither an ELF nor compressed in a known format (starts {0:02x?})"
    )]
    UnknownPayload(Vec<u8>),
    #[error("corrupt {format} payload: {msg}")]
    Corrupt { format: &'static str, msg: String },
    #[error("{format} payload decompresses to {got} bytes, its trailer says {want}")]
    SizeMismatch {
        format: &'static str,
        got: u64,
        want: u64,
    },
    #[error("{format} payload would decompress to more than {limit} bytes")]
    TooLarge { format: &'static str, limit: u64 },
    #[error("the {format}-decompressed kernel is not an ELF file (starts {head:02x?})")]
    NotElf { format: &'static str, head: Vec<u8> },
}

/// What [`kernel_elf`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelFormat {
    /// A plain ELF (or a file that is neither a bzImage nor compressed: left to the ELF parser).
    Elf,
    /// A bzImage; `compression` is "none" when the payload is an uncompressed ELF.
    BzImage {
        version: u16,
        compression: &'static str,
    },
    /// A compressed ELF without a bzImage around it.
    Compressed(&'static str),
}

impl std::fmt::Display for KernelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelFormat::Elf => write!(f, "ELF"),
            KernelFormat::BzImage {
                version,
                compression,
            } => write!(
                f,
                "bzImage (boot protocol {}.{:02}, {compression} payload)",
                version >> 8,
                version & 0xff
            ),
            KernelFormat::Compressed(c) => write!(f, "{c}-compressed ELF"),
        }
    }
}

fn le_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn le_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// The compression format of `data` by its magic, as Xen's decompress() tries them.
fn compression(data: &[u8]) -> Option<&'static str> {
    const MAGICS: &[(&[u8], &str)] = &[
        (&[0x1f, 0x8b], "gzip"),
        (&[0x1f, 0x9e], "gzip"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
        (b"BZh", "bzip2"),
        (&[0x5d, 0x00, 0x00], "lzma"),
        (&[0x89, b'L', b'Z', b'O'], "lzo"),
        (&[0x02, 0x21, 0x4c, 0x18], "lz4"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
    ];
    MAGICS
        .iter()
        .find(|(m, _)| data.starts_with(m))
        .map(|&(_, name)| name)
}

fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

/// Decompresses `data` (`format` from [`compression`]) to at most `limit` bytes.
fn decompress(format: &'static str, data: &[u8], limit: u64) -> Result<Vec<u8>, BzImageError> {
    let corrupt = |e: std::io::Error| BzImageError::Corrupt {
        format,
        msg: e.to_string(),
    };
    let mut out = Vec::new();
    // One byte more than allowed tells "too large" from "exactly the limit".
    let n = match format {
        "gzip" => flate2::bufread::GzDecoder::new(data)
            .take(limit + 1)
            .read_to_end(&mut out),
        "xz" => {
            let stream =
                liblzma::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, 0).map_err(|e| {
                    BzImageError::Corrupt {
                        format,
                        msg: e.to_string(),
                    }
                })?;
            liblzma::bufread::XzDecoder::new_stream(data, stream)
                .take(limit + 1)
                .read_to_end(&mut out)
        }
        other => return Err(BzImageError::UnsupportedCompression(other)),
    }
    .map_err(corrupt)?;
    if n as u64 > limit {
        return Err(BzImageError::TooLarge { format, limit });
    }
    Ok(out)
}

/// The kernel ELF inside `data` (see the module documentation) and what `data` was.
pub fn kernel_elf(data: &[u8]) -> Result<(Cow<'_, [u8]>, KernelFormat), BzImageError> {
    let is_bzimage = data.get(OFF_HEADER..OFF_HEADER + 4) == Some(b"HdrS");
    if !is_bzimage {
        if is_elf(data) {
            return Ok((Cow::Borrowed(data), KernelFormat::Elf));
        }
        return match compression(data) {
            Some(format) => {
                let elf = decompress(format, data, MAX_KERNEL)?;
                if !is_elf(&elf) {
                    return Err(BzImageError::NotElf {
                        format,
                        head: elf.iter().take(8).copied().collect(),
                    });
                }
                Ok((Cow::Owned(elf), KernelFormat::Compressed(format)))
            }
            // Neither: the ELF parser says why ("not an ELF file").
            None => Ok((Cow::Borrowed(data), KernelFormat::Elf)),
        };
    }
    if data.len() < SETUP_HEADER_END {
        return Err(BzImageError::TruncatedHeader {
            need: SETUP_HEADER_END,
            have: data.len(),
        });
    }
    let version = le_u16(data, OFF_VERSION);
    if version < MIN_VERSION {
        return Err(BzImageError::OldProtocol(version));
    }
    // As Xen: setup_sects as is (the boot protocol's "0 means 4" predates 2.08 kernels).
    let start = (data[OFF_SETUP_SECTS] as u64 + 1) * 512 + le_u32(data, OFF_PAYLOAD_OFFSET) as u64;
    let len = le_u32(data, OFF_PAYLOAD_LENGTH) as u64;
    let payload = data
        .get(start as usize..)
        .and_then(|p| p.get(..len as usize))
        .ok_or(BzImageError::PayloadOutside {
            start,
            len,
            file: data.len(),
        })?;
    if is_elf(payload) {
        let fmt = KernelFormat::BzImage {
            version,
            compression: "none",
        };
        return Ok((Cow::Borrowed(payload), fmt));
    }
    let format = compression(payload)
        .ok_or_else(|| BzImageError::UnknownPayload(payload.iter().take(8).copied().collect()))?;
    if payload.len() < 8 {
        return Err(BzImageError::PayloadTooShort(payload.len()));
    }
    // The build appends the decompressed size (scripts/Makefile.lib: size_append).
    let want = le_u32(payload, payload.len() - 4) as u64;
    if want > MAX_KERNEL {
        return Err(BzImageError::TooLarge {
            format,
            limit: MAX_KERNEL,
        });
    }
    let elf = decompress(format, payload, want)?;
    if elf.len() as u64 != want {
        return Err(BzImageError::SizeMismatch {
            format,
            got: elf.len() as u64,
            want,
        });
    }
    if !is_elf(&elf) {
        return Err(BzImageError::NotElf {
            format,
            head: elf.iter().take(8).copied().collect(),
        });
    }
    Ok((
        Cow::Owned(elf),
        KernelFormat::BzImage {
            version,
            compression: format,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Stand-in for a kernel ELF: the magic, then bytes that compress (and BCJ-filter) like code.
    fn fake_elf(n: usize) -> Vec<u8> {
        let mut v = b"\x7fELF\x02\x01\x01\0".to_vec();
        let mut x = 1u32;
        while v.len() < n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            // Some e8/e9 (call/jmp rel32) bytes for the BCJ filter to rewrite.
            v.push(if x.is_multiple_of(7) {
                0xe8
            } else {
                (x >> 16) as u8 % 32
            });
        }
        v
    }

    fn xz(data: &[u8], bcj: bool) -> Vec<u8> {
        use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
        let opts = LzmaOptions::new_preset(6).unwrap();
        let mut f = Filters::new();
        if bcj {
            f.x86();
        }
        f.lzma2(&opts);
        let stream = Stream::new_stream_encoder(&f, Check::Crc32).unwrap();
        let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Compressed payload + the 4-byte decompressed size, as the kernel build appends it.
    fn with_size(mut c: Vec<u8>, size: usize) -> Vec<u8> {
        c.extend_from_slice(&(size as u32).to_le_bytes());
        c
    }

    /// A bzImage: 2 setup sectors + boot sector, then 0x40 bytes before the payload.
    fn bzimage(payload: &[u8], version: u16) -> Vec<u8> {
        let setup_sects = 2u8;
        let poff = 0x40u32;
        let start = (setup_sects as usize + 1) * 512 + poff as usize;
        let mut f = vec![0u8; start];
        f[OFF_SETUP_SECTS] = setup_sects;
        f[OFF_HEADER..OFF_HEADER + 4].copy_from_slice(b"HdrS");
        f[OFF_VERSION..OFF_VERSION + 2].copy_from_slice(&version.to_le_bytes());
        f[OFF_PAYLOAD_OFFSET..OFF_PAYLOAD_OFFSET + 4].copy_from_slice(&poff.to_le_bytes());
        f[OFF_PAYLOAD_LENGTH..OFF_PAYLOAD_LENGTH + 4]
            .copy_from_slice(&(payload.len() as u32).to_le_bytes());
        f.extend_from_slice(payload);
        f.extend_from_slice(&[0xaa; 100]); // trailing data after the payload (e.g. a signature)
        f
    }

    #[test]
    fn plain_elf_is_borrowed_unchanged() {
        let e = fake_elf(1000);
        let (out, fmt) = kernel_elf(&e).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(&*out, &e[..]);
        assert_eq!(fmt, KernelFormat::Elf);
        // Neither bzImage, ELF nor compressed: handed on for the ELF parser's own error.
        let (out, fmt) = kernel_elf(b"#!/bin/sh\n").unwrap();
        assert_eq!((&*out, fmt), (&b"#!/bin/sh\n"[..], KernelFormat::Elf));
    }

    #[test]
    fn xz_bcj_gzip_and_uncompressed_payloads() {
        let e = fake_elf(300_000);
        for (payload, compression) in [
            (with_size(xz(&e, true), e.len()), "xz"),
            (with_size(xz(&e, false), e.len()), "xz"),
            (with_size(gzip(&e), e.len()), "gzip"),
            (e.clone(), "none"),
        ] {
            let img = bzimage(&payload, 0x020f);
            let (out, fmt) = kernel_elf(&img).unwrap();
            assert_eq!(out.len(), e.len(), "{compression}");
            assert!(out[..] == e[..], "{compression}: wrong bytes");
            assert_eq!(
                fmt,
                KernelFormat::BzImage {
                    version: 0x020f,
                    compression
                }
            );
        }
        // A compressed ELF without a bzImage around it (Xen accepts that too).
        let gz = gzip(&e);
        let (out, fmt) = kernel_elf(&gz).unwrap();
        assert!(out[..] == e[..]);
        assert_eq!(fmt, KernelFormat::Compressed("gzip"));
    }

    #[test]
    fn bad_headers_are_errors() {
        let e = fake_elf(5000);
        let good = bzimage(&with_size(xz(&e, true), e.len()), 0x0208);
        assert!(kernel_elf(&good).is_ok());
        // Truncated inside the setup header (the magic is there, payload_length is not).
        assert_eq!(
            kernel_elf(&good[..0x240]).unwrap_err(),
            BzImageError::TruncatedHeader {
                need: 0x250,
                have: 0x240
            }
        );
        // Boot protocol 2.07 has no payload fields.
        let mut old = good.clone();
        old[OFF_VERSION..OFF_VERSION + 2].copy_from_slice(&0x0207u16.to_le_bytes());
        assert_eq!(
            kernel_elf(&old).unwrap_err(),
            BzImageError::OldProtocol(0x0207)
        );
        assert!(kernel_elf(&old).unwrap_err().to_string().contains("2.07"));
        // Payload running past the end of the file; offsets that overflow.
        let start = 3 * 512 + 0x40;
        let cut = &good[..start + 100];
        assert!(matches!(
            kernel_elf(cut).unwrap_err(),
            BzImageError::PayloadOutside { .. }
        ));
        for (off, val) in [
            (OFF_PAYLOAD_OFFSET, u32::MAX),
            (OFF_PAYLOAD_LENGTH, u32::MAX),
        ] {
            let mut b = good.clone();
            b[off..off + 4].copy_from_slice(&val.to_le_bytes());
            assert!(
                matches!(
                    kernel_elf(&b).unwrap_err(),
                    BzImageError::PayloadOutside { .. }
                ),
                "{off:#x}"
            );
        }
        let mut b = good.clone();
        b[OFF_SETUP_SECTS] = 0xff;
        assert!(matches!(
            kernel_elf(&b).unwrap_err(),
            BzImageError::PayloadOutside { .. }
        ));
    }

    #[test]
    fn bad_payloads_are_errors() {
        let e = fake_elf(50_000);
        let c = xz(&e, true);
        // Unknown payload format.
        assert!(matches!(
            kernel_elf(&bzimage(&[0x42; 64], 0x020f)).unwrap_err(),
            BzImageError::UnknownPayload(_)
        ));
        // Known but unsupported format.
        assert_eq!(
            kernel_elf(&bzimage(b"BZh91AY&SY\0\0\0\0", 0x020f)).unwrap_err(),
            BzImageError::UnsupportedCompression("bzip2")
        );
        // Too short for a size trailer.
        assert_eq!(
            kernel_elf(&bzimage(&[0x1f, 0x8b, 8], 0x020f)).unwrap_err(),
            BzImageError::PayloadTooShort(3)
        );
        // Corrupt stream: flipped bytes in the middle (XZ's CRC or the LZMA decoder objects).
        let mut bad = c.clone();
        let mid = bad.len() / 2;
        for b in &mut bad[mid..mid + 16] {
            *b ^= 0x5a;
        }
        let err = kernel_elf(&bzimage(&with_size(bad, e.len()), 0x020f)).unwrap_err();
        assert!(
            matches!(err, BzImageError::Corrupt { format: "xz", .. }),
            "{err:?}"
        );
        // Cut short.
        let err = kernel_elf(&bzimage(
            &with_size(c[..c.len() / 2].to_vec(), e.len()),
            0x020f,
        ))
        .unwrap_err();
        assert!(
            matches!(err, BzImageError::Corrupt { format: "xz", .. }),
            "{err:?}"
        );
        // The trailer's size does not match: too small (output capped) and too large.
        assert_eq!(
            kernel_elf(&bzimage(&with_size(c.clone(), e.len() - 1), 0x020f)).unwrap_err(),
            BzImageError::TooLarge {
                format: "xz",
                limit: e.len() as u64 - 1
            }
        );
        assert_eq!(
            kernel_elf(&bzimage(&with_size(c.clone(), e.len() + 1), 0x020f)).unwrap_err(),
            BzImageError::SizeMismatch {
                format: "xz",
                got: e.len() as u64,
                want: e.len() as u64 + 1
            }
        );
        // An absurd trailer is refused before decompressing.
        assert!(matches!(
            kernel_elf(&bzimage(&with_size(c.clone(), u32::MAX as usize), 0x020f)).unwrap_err(),
            BzImageError::TooLarge { .. }
        ));
        // Decompresses fine, but to something that is not an ELF.
        let text = b"not a kernel, just text ".repeat(100);
        let err =
            kernel_elf(&bzimage(&with_size(xz(&text, true), text.len()), 0x020f)).unwrap_err();
        assert_eq!(
            err,
            BzImageError::NotElf {
                format: "xz",
                head: b"not a ke".to_vec()
            }
        );
        assert!(matches!(
            kernel_elf(&gzip(&text)).unwrap_err(),
            BzImageError::NotElf { format: "gzip", .. }
        ));
    }

    /// Random corruption of a bzImage's header and payload never panics.
    #[test]
    fn corrupted_bzimages_never_panic() {
        let e = fake_elf(20_000);
        let good = bzimage(&with_size(xz(&e, true), e.len()), 0x020f);
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..300 {
            let mut b = good.clone();
            for _ in 0..1 + next() % 4 {
                // Mostly the header fields, sometimes the payload.
                let at = if next().is_multiple_of(2) {
                    0x1f0 + (next() % 0x60) as usize
                } else {
                    (next() % b.len() as u64) as usize
                };
                b[at] = next() as u8;
            }
            if next().is_multiple_of(8) {
                b.truncate((next() % b.len() as u64) as usize);
            }
            let _ = kernel_elf(&b);
        }
    }
}
