//! Just enough ELF parsing to tell a statically linked executable from a dynamically linked one.
//!
//! A dynamically linked executable names its program interpreter (the dynamic loader, such as
//! `/lib64/ld-linux-x86-64.so.2`) in a `PT_INTERP` program header; a static one, including a
//! static PIE, has none (System V ABI, "Program Header", and `elf(5)`). Both ELF classes and both
//! byte orders are understood.

use anyhow::{bail, Context, Result};

/// `p_type` of the program header that names the interpreter.
const PT_INTERP: u32 = 3;
/// `e_phnum` value meaning "too many program headers, see section header 0" (not supported).
const PN_XNUM: u16 = 0xffff;

/// How an ELF executable is linked.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Linkage {
    /// No `PT_INTERP`: runs without a dynamic loader.
    Static,
    /// Has a `PT_INTERP` naming this loader.
    Dynamic {
        /// The loader path, as stored in the file (without its NUL).
        interpreter: String,
    },
}

/// Reads the program headers of the ELF image `elf` and reports how it is linked.
///
/// Errors: not an ELF file, an unknown class or byte order, headers that lie outside the file.
pub(super) fn linkage(elf: &[u8]) -> Result<Linkage> {
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        bail!("not an ELF file (bad magic)");
    }
    let wide = match elf.get(4) {
        Some(1) => false,
        Some(2) => true,
        other => bail!("unknown ELF class {other:?}"),
    };
    let big_endian = match elf.get(5) {
        Some(1) => false,
        Some(2) => true,
        other => bail!("unknown ELF byte order {other:?}"),
    };
    let r = Reader { elf, big_endian };

    let (phoff, phentsize, phnum) = if wide {
        (r.u64(0x20)?, r.u16(0x36)?, r.u16(0x38)?)
    } else {
        (u64::from(r.u32(0x1c)?), r.u16(0x2a)?, r.u16(0x2c)?)
    };
    if phnum == PN_XNUM {
        bail!("more than {PN_XNUM} program headers are not supported");
    }
    let phoff = usize::try_from(phoff).context("program header offset out of range")?;
    for index in 0..usize::from(phnum) {
        let header = phoff
            .checked_add(index * usize::from(phentsize))
            .context("program header offset out of range")?;
        if r.u32(header)? != PT_INTERP {
            continue;
        }
        let (offset, size) = if wide {
            (r.u64(header + 0x08)?, r.u64(header + 0x20)?)
        } else {
            (
                u64::from(r.u32(header + 0x04)?),
                u64::from(r.u32(header + 0x10)?),
            )
        };
        let interpreter = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(offset, size)| elf.get(offset..offset.checked_add(size)?))
            .context("PT_INTERP points outside the file")?;
        let interpreter = interpreter.split(|&b| b == 0).next().unwrap_or_default();
        return Ok(Linkage::Dynamic {
            interpreter: String::from_utf8_lossy(interpreter).into(),
        });
    }
    Ok(Linkage::Static)
}

/// Reads fixed-size integers of the file's byte order at byte offsets.
struct Reader<'a> {
    elf: &'a [u8],
    big_endian: bool,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&self, offset: usize) -> Result<[u8; N]> {
        offset
            .checked_add(N)
            .and_then(|end| self.elf.get(offset..end))
            .and_then(|bytes| bytes.try_into().ok())
            .with_context(|| format!("truncated ELF file: no {N} bytes at offset {offset:#x}"))
    }

    fn u16(&self, offset: usize) -> Result<u16> {
        let b = self.bytes(offset)?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&self, offset: usize) -> Result<u32> {
        let b = self.bytes(offset)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&self, offset: usize) -> Result<u64> {
        let b = self.bytes(offset)?;
        Ok(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian ELF64 image: header, then `types.len()` program headers at 0x40, then
    /// the interpreter string at 0x100.
    fn elf64(types: &[u32]) -> Vec<u8> {
        let mut elf = vec![0u8; 0x140];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for (i, &p_type) in types.iter().enumerate() {
            let h = 0x40 + i * 56;
            elf[h..h + 4].copy_from_slice(&p_type.to_le_bytes());
            elf[h + 0x08..h + 0x10].copy_from_slice(&0x100u64.to_le_bytes());
            elf[h + 0x20..h + 0x28].copy_from_slice(&11u64.to_le_bytes());
        }
        elf[0x100..0x10b].copy_from_slice(b"/lib/ld.so\0");
        elf
    }

    /// A big-endian ELF32 image with one program header of type `p_type`.
    fn elf32_be(p_type: u32) -> Vec<u8> {
        let mut elf = vec![0u8; 0x80];
        elf[..6].copy_from_slice(b"\x7fELF\x01\x02");
        elf[0x1c..0x20].copy_from_slice(&0x34u32.to_be_bytes());
        elf[0x2a..0x2c].copy_from_slice(&32u16.to_be_bytes());
        elf[0x2c..0x2e].copy_from_slice(&1u16.to_be_bytes());
        elf[0x34..0x38].copy_from_slice(&p_type.to_be_bytes());
        elf[0x38..0x3c].copy_from_slice(&0x60u32.to_be_bytes());
        elf[0x44..0x48].copy_from_slice(&4u32.to_be_bytes());
        elf[0x60..0x64].copy_from_slice(b"/ld\0");
        elf
    }

    #[test]
    fn static_without_interp() {
        // PT_LOAD, PT_DYNAMIC (a static PIE has one), PT_GNU_STACK.
        assert_eq!(
            linkage(&elf64(&[1, 2, 0x6474_e551])).unwrap(),
            Linkage::Static
        );
        assert_eq!(linkage(&elf32_be(1)).unwrap(), Linkage::Static);
    }

    #[test]
    fn dynamic_with_interp() {
        assert_eq!(
            linkage(&elf64(&[6, 3, 1])).unwrap(),
            Linkage::Dynamic {
                interpreter: "/lib/ld.so".into()
            }
        );
        assert_eq!(
            linkage(&elf32_be(3)).unwrap(),
            Linkage::Dynamic {
                interpreter: "/ld".into()
            }
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(linkage(b"#!/bin/sh\n").is_err());
        assert!(linkage(b"\x7fELF\x03\x01").is_err());
        let mut truncated = elf64(&[1, 3]);
        truncated.truncate(0x60);
        assert!(linkage(&truncated).is_err());
        let mut outside = elf64(&[3]);
        outside[0x40 + 0x08..0x40 + 0x10].copy_from_slice(&0x1000u64.to_le_bytes());
        assert!(linkage(&outside).is_err());
    }
}
