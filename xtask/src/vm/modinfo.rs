//! Kernel modules: their dependencies, read from the modules themselves, and a load order.
//!
//! A module (`.ko`, an ELF relocatable file) carries a `.modinfo` section of NUL-separated
//! `key=value` strings, written by modpost; `depends=a,b` names the modules that must be loaded
//! before it (what `modinfo -F depends` prints and what `depmod` turns into `modules.dep`).
//! The kernel package that `cargo xtask vm` unpacks has no `modules.dep` (depmod runs in its
//! postinst), and the guest's busybox `insmod` resolves nothing, so the load order is computed
//! here: dependencies first, each module once.
//!
//! Only 64-bit little-endian ELF is read: the modules of Debian's amd64 kernel.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

/// Module names use `_` where file names may use `-` (`kmod`'s `modname_normalize`).
pub(crate) fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The `depends=` entry of the module image `elf`: the module names it needs, normalized.
///
/// Errors: not a 64-bit little-endian ELF file, headers outside the file, no `.modinfo`.
pub(crate) fn depends(elf: &[u8]) -> Result<Vec<String>> {
    let modinfo = section(elf, ".modinfo")?.context("no .modinfo section")?;
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

/// The contents of the section called `name`, if the file has one.
fn section<'a>(elf: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        bail!("not an ELF file (bad magic)");
    }
    if elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        bail!("not a 64-bit little-endian ELF file");
    }
    let shoff = usize::try_from(u64_at(elf, 0x28)?).context("section header offset too large")?;
    let shentsize = usize::from(u16_at(elf, 0x3a)?);
    let shnum = usize::from(u16_at(elf, 0x3c)?);
    let shstrndx = usize::from(u16_at(elf, 0x3e)?);
    let header = |index: usize| -> Result<usize> {
        index
            .checked_mul(shentsize)
            .and_then(|off| off.checked_add(shoff))
            .context("section header offset out of range")
    };
    let contents = |index: usize| -> Result<&'a [u8]> {
        let at = header(index)?;
        let offset = usize::try_from(u64_at(elf, at + 0x18)?).context("section offset")?;
        let size = usize::try_from(u64_at(elf, at + 0x20)?).context("section size")?;
        offset
            .checked_add(size)
            .and_then(|end| elf.get(offset..end))
            .with_context(|| format!("section {index} lies outside the file"))
    };
    let names = contents(shstrndx)?;
    for index in 0..shnum {
        let name_at = usize::try_from(u32_at(elf, header(index)?)?).context("section name")?;
        let section_name = names
            .get(name_at..)
            .and_then(|rest| rest.split(|&b| b == 0).next())
            .with_context(|| format!("section {index} has its name outside the string table"))?;
        if section_name == name.as_bytes() {
            return contents(index).map(Some);
        }
    }
    Ok(None)
}

fn bytes_at<const N: usize>(elf: &[u8], at: usize) -> Result<[u8; N]> {
    at.checked_add(N)
        .and_then(|end| elf.get(at..end))
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("ELF header field at {at:#x} lies outside the file"))
}

fn u16_at(elf: &[u8], at: usize) -> Result<u16> {
    bytes_at(elf, at).map(u16::from_le_bytes)
}

fn u32_at(elf: &[u8], at: usize) -> Result<u32> {
    bytes_at(elf, at).map(u32::from_le_bytes)
}

fn u64_at(elf: &[u8], at: usize) -> Result<u64> {
    bytes_at(elf, at).map(u64::from_le_bytes)
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

    /// A minimal ELF64 LE file with sections: null, .modinfo, .shstrtab.
    fn module_with_modinfo(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        let modinfo_off = elf.len() as u64;
        elf.extend_from_slice(modinfo);
        let shstrtab_off = elf.len() as u64;
        elf.extend_from_slice(shstrtab);
        let shoff = elf.len() as u64;
        let mut header = |name: u32, offset: u64, size: u64| {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&offset.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            elf.extend_from_slice(&h);
        };
        header(0, 0, 0);
        header(1, modinfo_off, modinfo.len() as u64);
        header(10, shstrtab_off, shstrtab.len() as u64);
        elf[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
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
        let mut big_endian = module_with_modinfo(b"depends=a\0");
        big_endian[5] = 2;
        assert!(depends(&big_endian).is_err());
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
