//! Kernel modules: their dependencies, read from the modules themselves, and a load order.
//!
//! A module (`.ko`, an ELF relocatable file) carries a `.modinfo` section of NUL-separated
//! `key=value` strings, written by modpost; `depends=a,b` names the modules that must be loaded
//! before it (what `modinfo -F depends` prints and what `depmod` turns into `modules.dep`).
//! The kernel package that `cargo xtask vm` unpacks has no `modules.dep` (depmod runs in its
//! postinst), and the guest's busybox `insmod` resolves nothing, so the load order is computed
//! here: dependencies first, each module once. The sections are read with the `object` crate.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection};

/// Module names use `_` where file names may use `-` (`kmod`'s `modname_normalize`).
pub(crate) fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The `depends=` entry of the module image `elf`: the module names it needs, normalized.
///
/// Errors: not an ELF file, headers outside the file, no `.modinfo`.
pub(crate) fn depends(elf: &[u8]) -> Result<Vec<String>> {
    let file = object::File::parse(elf).context("not a valid ELF file")?;
    let modinfo = file
        .section_by_name(".modinfo")
        .context("no .modinfo section")?
        .data()
        .context("the .modinfo section lies outside the file")?;
    Ok(modinfo
        .split(|&b| b == 0)
        .filter_map(|entry| entry.strip_prefix(b"depends="))
        .flat_map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .map(normalize)
                .collect::<Vec<_>>()
        })
        .filter(|name| !name.is_empty())
        .collect())
}

/// The modules to load for `wanted`, dependencies first, each once.
///
/// `depends_of(name)` gives a module's dependencies, or `None` when the module is built into
/// the kernel (nothing to load, and nothing it needs either).
///
/// Errors: a dependency cycle, or whatever `depends_of` fails with (an unknown module).
pub(crate) fn load_order(
    wanted: &[&str],
    mut depends_of: impl FnMut(&str) -> Result<Option<Vec<String>>>,
) -> Result<Vec<String>> {
    #[derive(PartialEq)]
    enum State {
        Visiting,
        Done,
    }
    fn visit(
        name: &str,
        depends_of: &mut dyn FnMut(&str) -> Result<Option<Vec<String>>>,
        state: &mut BTreeMap<String, State>,
        order: &mut Vec<String>,
        path: &mut Vec<String>,
    ) -> Result<()> {
        match state.get(name) {
            Some(State::Done) => return Ok(()),
            Some(State::Visiting) => {
                bail!("module dependency cycle: {} -> {name}", path.join(" -> "))
            }
            None => {}
        }
        let Some(deps) = depends_of(name)? else {
            state.insert(name.to_owned(), State::Done);
            return Ok(());
        };
        state.insert(name.to_owned(), State::Visiting);
        path.push(name.to_owned());
        for dep in &deps {
            visit(dep, depends_of, state, order, path)
                .with_context(|| format!("needed by module {name}"))?;
        }
        path.pop();
        state.insert(name.to_owned(), State::Done);
        order.push(name.to_owned());
        Ok(())
    }
    let mut state = BTreeMap::new();
    let mut order = Vec::new();
    for name in wanted {
        visit(
            &normalize(name),
            &mut depends_of,
            &mut state,
            &mut order,
            &mut Vec::new(),
        )?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 LE relocatable file with sections: null, .modinfo, .shstrtab.
    fn module_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        module_with_section(".modinfo", modinfo)
    }

    /// A minimal ELF64 LE relocatable file with sections: null, `name` (`SHT_PROGBITS`)
    /// holding `contents`, .shstrtab; the section headers come last.
    fn module_with_section(name: &str, contents: &[u8]) -> Vec<u8> {
        const SHT_PROGBITS: u32 = 1;
        const SHT_STRTAB: u32 = 3;
        let shstrtab = format!("\0{name}\0.shstrtab\0");
        let mut elf = vec![0u8; 64];
        elf[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        // e_type ET_REL.
        elf[0x10..0x12].copy_from_slice(&1u16.to_le_bytes());
        let contents_at = elf.len() as u64;
        elf.extend_from_slice(contents);
        let shstrtab_at = elf.len() as u64;
        elf.extend_from_slice(shstrtab.as_bytes());
        let shoff = elf.len() as u64;
        let mut header = |name: usize, kind: u32, offset: u64, size: usize| {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&u32::try_from(name).unwrap().to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&offset.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&h);
        };
        header(0, 0, 0, 0);
        header(1, SHT_PROGBITS, contents_at, contents.len());
        header(name.len() + 2, SHT_STRTAB, shstrtab_at, shstrtab.len());
        elf[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        // e_shentsize, e_shnum, e_shstrndx.
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        elf
    }

    #[test]
    fn reads_depends_from_modinfo() {
        let elf = module_with_modinfo(
            b"license=GPL\0depends=virtio_pci_modern_dev,virtio-pci-legacy-dev\0name=virtio_pci\0",
        );
        assert_eq!(
            depends(&elf).unwrap(),
            vec!["virtio_pci_modern_dev", "virtio_pci_legacy_dev"]
        );
        let none = module_with_modinfo(b"depends=\0name=virtio_ring\0");
        assert_eq!(depends(&none).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn rejects_what_is_not_a_module() {
        assert!(depends(b"#!/bin/sh\n").is_err());
        let mut truncated = module_with_modinfo(b"depends=a\0");
        truncated.truncate(100);
        assert!(depends(&truncated).is_err());
        let err = depends(&module_with_section(".comment", b"depends=a\0")).unwrap_err();
        assert!(format!("{err:#}").contains("no .modinfo"), "{err:#}");
        let mut outside = module_with_modinfo(b"depends=a\0");
        // The .modinfo section header's sh_offset (header 1 of 3, at the end of the file).
        let at = outside.len() - 2 * 64 + 0x18;
        outside[at..at + 8].copy_from_slice(&0x10_0000u64.to_le_bytes());
        assert!(depends(&outside).is_err());
    }

    fn table<'a>(
        deps: &'a [(&'a str, &'a [&'a str])],
    ) -> impl FnMut(&str) -> Result<Option<Vec<String>>> + 'a {
        move |name| match deps.iter().find(|(n, _)| *n == name) {
            Some((_, d)) => Ok(Some(d.iter().map(|s| (*s).to_owned()).collect())),
            None if name == "builtin" => Ok(None),
            None => bail!("unknown module {name}"),
        }
    }

    #[test]
    fn orders_dependencies_first_and_once() {
        let deps: &[(&str, &[&str])] = &[
            ("virtio_ring", &[]),
            ("virtio", &["virtio_ring"]),
            (
                "virtio_pci",
                &["virtio_pci_modern_dev", "virtio", "virtio_ring"],
            ),
            ("virtio_pci_modern_dev", &[]),
            ("9pnet", &["netfs"]),
            ("netfs", &[]),
            ("9pnet_virtio", &["9pnet", "virtio", "virtio_ring"]),
            ("9p", &["9pnet", "netfs", "builtin"]),
        ];
        assert_eq!(
            load_order(
                &["virtio-pci", "9pnet_virtio", "9p", "builtin"],
                table(deps)
            )
            .unwrap(),
            vec![
                "virtio_pci_modern_dev",
                "virtio_ring",
                "virtio",
                "virtio_pci",
                "netfs",
                "9pnet",
                "9pnet_virtio",
                "9p"
            ]
        );
    }

    #[test]
    fn reports_cycles_and_unknown_modules() {
        let deps: &[(&str, &[&str])] = &[("a", &["b"]), ("b", &["a"])];
        let err = load_order(&["a"], table(deps)).unwrap_err();
        assert!(format!("{err:#}").contains("cycle"), "{err:#}");
        let err = load_order(&["nope"], table(deps)).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown module nope"),
            "{err:#}"
        );
    }
}
