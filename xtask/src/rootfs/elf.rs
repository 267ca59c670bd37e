//! Tells a statically linked executable from a dynamically linked one, with the `object` crate.
//!
//! A dynamically linked executable names its program interpreter (the dynamic loader, such as
//! `/lib64/ld-linux-x86-64.so.2`) in a `PT_INTERP` program header; a static one, including a
//! static PIE, has none (System V ABI, "Program Header", and `elf(5)`). Both ELF classes and both
//! byte orders are understood.

use anyhow::{bail, Context, Result};
use object::elf::{FileHeader32, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, FileKind};

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
    match FileKind::parse(elf).context("not an ELF file")? {
        FileKind::Elf32 => linkage_of::<FileHeader32<Endianness>>(elf),
        FileKind::Elf64 => linkage_of::<FileHeader64<Endianness>>(elf),
        kind => bail!("not an ELF file but {kind:?}"),
    }
}

fn linkage_of<Elf: FileHeader<Endian = Endianness>>(elf: &[u8]) -> Result<Linkage> {
    let header = Elf::parse(elf).context("invalid ELF header")?;
    let endian = header.endian().context("invalid ELF byte order")?;
    let headers = header
        .program_headers(endian, elf)
        .context("invalid ELF program headers")?;
    for program_header in headers {
        let interpreter = program_header
            .interpreter(endian, elf)
            .context("invalid PT_INTERP")?;
        if let Some(interpreter) = interpreter {
            return Ok(Linkage::Dynamic {
                interpreter: String::from_utf8_lossy(interpreter).into(),
            });
        }
    }
    Ok(Linkage::Static)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian ELF64 image: header, then `types.len()` program headers at 0x40, then
    /// the interpreter string at 0x100.
    fn elf64(types: &[u32]) -> Vec<u8> {
        let mut elf = vec![0u8; 0x140];
        elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
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
        elf[..7].copy_from_slice(b"\x7fELF\x01\x02\x01");
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
    fn reads_the_machines_own_shell() {
        // Debian's /bin/sh (dash) is dynamically linked, like every program but the static ones.
        let sh = std::fs::read("/bin/sh").unwrap();
        let Linkage::Dynamic { interpreter } = linkage(&sh).unwrap() else {
            panic!("/bin/sh is not dynamically linked");
        };
        assert!(interpreter.contains("/ld-linux"), "{interpreter}");
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
