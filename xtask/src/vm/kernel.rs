//! The guest kernel: Debian's current amd64 kernel, fetched without installing it.
//!
//! [`ensure`] gives a kernel ready to boot, cached in `target/vm/kernel/NAME_VERSION/`:
//!
//! 1. `apt-cache show --no-all-versions linux-image-amd64` names the image package that the
//!    metapackage depends on, with its exact version (`linux-image-6.1.0-57-amd64 (=
//!    6.1.192-3)`); nothing is hard-coded, so a security update brings a new kernel. Without
//!    package lists (a machine that never ran `apt-get update`), `apt-get update` runs first;
//!    offline with a cached kernel, the newest cached one is used;
//! 2. if that package's directory holds the `complete` marker, it is the cached kernel;
//! 3. otherwise `apt-get download` fetches the metapackage and the image package into
//!    `target/vm/kernel/.tmp-PID/`, and `dpkg -x` unpacks the image package there;
//! 4. the release (`6.1.0-57-amd64`) is read from the unpacked `boot/vmlinuz-RELEASE`;
//! 5. the bzImage's XZ payload is decompressed into `vmlinux`, the uncompressed ELF that QEMU
//!    boots directly through PVH, faster under TCG than the bzImage, which decompresses
//!    itself; a payload that is not XZ keeps the bzImage, with a warning;
//! 6. the modules that the guest needs ([`WANTED_MODULES`]) and the modules they depend on are
//!    copied into `modules/`, and their load order, dependencies first, into `modules.order`
//!    ([`modinfo`]); modules built into the kernel are left out;
//! 7. the marker is written, the directory renamed into place, and the download removed
//!    (the unpacked package is about 400 MB; the cache keeps about 70 MB).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::modinfo;
use crate::host;

/// The metapackage that always depends on Debian's current amd64 kernel image.
const METAPACKAGE: &str = "linux-image-amd64";

/// The modules the guest loads: virtio over PCI, the 9p filesystem over virtio (the host's `/`),
/// and overlayfs (a writable tmpfs layer over it). Their dependencies are found in the modules.
pub(crate) const WANTED_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p", "overlay"];

/// The marker file of a complete cache directory; it holds [`Kernel::describe`].
const MARKER: &str = "complete";

/// A kernel ready to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kernel {
    /// The cache directory.
    pub(crate) dir: PathBuf,
    /// `uname -r` of the kernel, e.g. `6.1.0-57-amd64`.
    pub(crate) release: String,
    /// The image to pass to `-kernel`: `vmlinux` (PVH) or `vmlinuz` (bzImage).
    pub(crate) image: PathBuf,
    /// The module files to `insmod`, in load order.
    pub(crate) modules: Vec<PathBuf>,
}

impl Kernel {
    /// What the marker holds: the release and the image's file name.
    fn describe(&self) -> String {
        let image = self
            .image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("release={}\nimage={image}\n", self.release)
    }

    /// Reads a complete cache directory back.
    fn load(dir: &Path) -> Result<Option<Self>> {
        let marker = match fs::read_to_string(dir.join(MARKER)) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot read {}", dir.join(MARKER).display()))
            }
        };
        let field = |key: &str| {
            marker
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
                .with_context(|| format!("{} has no {key}=", dir.join(MARKER).display()))
        };
        let order_file = dir.join("modules.order");
        let order = fs::read_to_string(&order_file)
            .with_context(|| format!("cannot read {}", order_file.display()))?;
        let kernel = Kernel {
            dir: dir.to_owned(),
            release: field("release")?,
            image: dir.join(field("image")?),
            modules: order
                .lines()
                .filter(|l| !l.is_empty())
                .map(|name| dir.join("modules").join(format!("{name}.ko")))
                .collect(),
        };
        for file in std::iter::once(&kernel.image).chain(&kernel.modules) {
            if !file.is_file() {
                bail!(
                    "the cached kernel in {} lacks {}",
                    dir.display(),
                    file.display()
                );
            }
        }
        Ok(Some(kernel))
    }
}

/// A Debian package at an exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) version: String,
}

/// From `apt-cache show --no-all-versions linux-image-amd64`: the metapackage's own version and
/// the image package it depends on (`Depends: linux-image-6.1.0-57-amd64 (= 6.1.192-3)`).
pub(crate) fn parse_metapackage(show: &str) -> Result<(Package, Package)> {
    let field = |key: &str| {
        show.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .map(str::trim)
            .with_context(|| format!("no {key} field"))
    };
    let meta = Package {
        name: METAPACKAGE.to_owned(),
        version: field("Version")?.to_owned(),
    };
    let depends = field("Depends")?;
    let image = depends
        .split(',')
        .filter_map(|dep| {
            // `NAME (= VERSION)`; alternatives (`a | b`) do not occur here.
            let (name, rest) = dep.trim().split_once(' ')?;
            let version = rest.trim().strip_prefix("(=")?.strip_suffix(')')?.trim();
            (name.starts_with("linux-image-") && !version.is_empty()).then(|| Package {
                name: name.to_owned(),
                version: version.to_owned(),
            })
        })
        .next()
        .with_context(|| format!("no `linux-image-* (= VERSION)` in Depends: {depends}"))?;
    Ok((meta, image))
}

/// Returns the kernel, downloading and preparing it unless it is cached under `cache`
/// (`target/vm`). See the module docs for the steps.
pub(crate) fn ensure(sh: &Shell, cache: &Path) -> Result<Kernel> {
    let kernels = cache.join("kernel");
    let (meta, image) = match resolve(sh) {
        Ok(found) => found,
        Err(err) => {
            if let Some(kernel) = newest_cached(&kernels)? {
                eprintln!(
                    "warning: cannot find Debian's current kernel ({err:#}); using the cached {}",
                    kernel.dir.display()
                );
                return Ok(kernel);
            }
            return Err(err);
        }
    };
    let dir = kernels.join(dir_name(&image));
    if let Some(kernel) = Kernel::load(&dir)? {
        eprintln!(
            "kernel: {} {} is cached in {}",
            image.name,
            image.version,
            dir.display()
        );
        return Ok(kernel);
    }
    host::require_root("downloading the guest kernel runs apt-get")?;
    fs::create_dir_all(&kernels).with_context(|| format!("cannot create {}", kernels.display()))?;
    let tmp = kernels.join(format!(".tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    let result = prepare(sh, &meta, &image, &tmp, &dir);
    // The download and the unpacked package are not needed any more, whatever happened.
    if tmp.exists() {
        if let Err(err) = fs::remove_dir_all(&tmp) {
            eprintln!("warning: cannot remove {}: {err}", tmp.display());
        }
    }
    result
}

/// `linux-image-6.1.0-57-amd64_6.1.192-3`, with characters other than `[A-Za-z0-9.+~_-]`
/// replaced (an epoch's `:`).
fn dir_name(image: &Package) -> String {
    format!("{}_{}", image.name, image.version)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._+~-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Asks apt which kernel is current, running `apt-get update` first when it does not know.
fn resolve(sh: &Shell) -> Result<(Package, Package)> {
    let show = || {
        cmd!(sh, "apt-cache show --no-all-versions {METAPACKAGE}")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()
            .filter(|out| !out.trim().is_empty())
    };
    let text = match show() {
        Some(text) => text,
        None => {
            host::require_root("apt knows no linux-image-amd64: `apt-get update` must run")?;
            eprintln!("kernel: apt knows no {METAPACKAGE}; updating the package lists");
            cmd!(sh, "apt-get update")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .run()
                .context("apt-get update failed")?;
            show().with_context(|| {
                format!("apt-cache show {METAPACKAGE} finds nothing, even after apt-get update")
            })?
        }
    };
    parse_metapackage(&text).with_context(|| format!("cannot read apt-cache show {METAPACKAGE}"))
}

/// The most recently prepared complete kernel under `kernels`, if any.
fn newest_cached(kernels: &Path) -> Result<Option<Kernel>> {
    let Ok(entries) = fs::read_dir(kernels) else {
        return Ok(None);
    };
    let mut best: Option<(std::time::SystemTime, Kernel)> = None;
    for entry in entries.flatten() {
        let marker = entry.path().join(MARKER);
        let Ok(modified) = fs::metadata(&marker).and_then(|m| m.modified()) else {
            continue;
        };
        if best.as_ref().is_some_and(|(t, _)| *t >= modified) {
            continue;
        }
        if let Some(kernel) = Kernel::load(&entry.path())? {
            best = Some((modified, kernel));
        }
    }
    Ok(best.map(|(_, kernel)| kernel))
}

/// Steps 3 to 7 of the module docs, working in `tmp` and ending with `tmp/out` renamed to
/// `dir`.
fn prepare(sh: &Shell, meta: &Package, image: &Package, tmp: &Path, dir: &Path) -> Result<Kernel> {
    let download = tmp.join("download");
    fs::create_dir_all(&download)
        .with_context(|| format!("cannot create {}", download.display()))?;
    let wanted = [
        format!("{}={}", meta.name, meta.version),
        format!("{}={}", image.name, image.version),
    ];
    eprintln!("kernel: downloading {} and {}", wanted[0], wanted[1]);
    {
        let _cd = sh.push_dir(&download);
        // As root, apt hands the download to the `_apt` user, who cannot write here.
        cmd!(
            sh,
            "apt-get download -o APT::Sandbox::User=root {wanted...}"
        )
        .run()
        .context("apt-get download failed")?;
    }
    let deb = find_one(&download, &format!("{}_", image.name), ".deb")?;
    let unpacked = tmp.join("root");
    eprintln!("kernel: unpacking {}", deb.display());
    cmd!(sh, "dpkg -x {deb} {unpacked}")
        .run()
        .context("dpkg -x failed")?;

    let boot = unpacked.join("boot");
    let vmlinuz = find_one(&boot, "vmlinuz-", "")?;
    let release = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .filter(|r| !r.is_empty())
        .with_context(|| format!("cannot read the release from {}", vmlinuz.display()))?
        .to_owned();
    let module_root = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|base| unpacked.join(base).join(&release))
        .find(|dir| dir.is_dir())
        .with_context(|| format!("the package has no lib/modules/{release}"))?;

    let out = tmp.join("out");
    fs::create_dir_all(out.join("modules"))
        .with_context(|| format!("cannot create {}", out.display()))?;
    let bzimage =
        fs::read(&vmlinuz).with_context(|| format!("cannot read {}", vmlinuz.display()))?;
    let image_path = match extract_vmlinux(&bzimage)
        .with_context(|| format!("cannot extract vmlinux from {}", vmlinuz.display()))?
    {
        Some(elf) => {
            eprintln!(
                "kernel: extracted vmlinux ({} MB) for a PVH boot",
                elf.len() >> 20
            );
            write(&out.join("vmlinux"), &elf)?;
            out.join("vmlinux")
        }
        None => {
            eprintln!(
                "warning: the payload of {} is not XZ; booting the bzImage (slower under TCG)",
                vmlinuz.display()
            );
            write(&out.join("vmlinuz"), &bzimage)?;
            out.join("vmlinuz")
        }
    };

    let order = module_order(&module_root)?;
    let mut modules = Vec::new();
    for (name, file) in &order {
        let target = out.join("modules").join(format!("{name}.ko"));
        fs::copy(file, &target)
            .with_context(|| format!("cannot copy {} to {}", file.display(), target.display()))?;
        modules.push(dir.join("modules").join(format!("{name}.ko")));
    }
    let names: Vec<&str> = order.iter().map(|(name, _)| name.as_str()).collect();
    eprintln!(
        "kernel: {release}, modules in load order: {}",
        names.join(" ")
    );
    write(
        &out.join("modules.order"),
        format!("{}\n", names.join("\n")).as_bytes(),
    )?;

    let kernel = Kernel {
        dir: dir.to_owned(),
        release,
        image: dir.join(image_path.file_name().context("image has a file name")?),
        modules,
    };
    write(&out.join(MARKER), kernel.describe().as_bytes())?;
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    fs::rename(&out, dir)
        .with_context(|| format!("cannot rename {} to {}", out.display(), dir.display()))?;
    Ok(kernel)
}

/// The wanted modules and their dependencies in load order, each with its file, from the
/// unpacked `lib/modules/RELEASE`; modules listed in its `modules.builtin` are skipped.
fn module_order(module_root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut files = std::collections::BTreeMap::new();
    collect_modules(&module_root.join("kernel"), &mut files)?;
    let builtin_file = module_root.join("modules.builtin");
    let builtin: Vec<String> = fs::read_to_string(&builtin_file)
        .with_context(|| format!("cannot read {}", builtin_file.display()))?
        .lines()
        .filter_map(|line| {
            let name = line.rsplit('/').next()?.strip_suffix(".ko")?;
            Some(modinfo::normalize(name))
        })
        .collect();
    let order = modinfo::load_order(WANTED_MODULES, |name| {
        if builtin.iter().any(|b| b == name) {
            return Ok(None);
        }
        let file: &PathBuf = files.get(name).with_context(|| {
            format!(
                "module {name} is neither in {} nor built in",
                module_root.display()
            )
        })?;
        let image = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        modinfo::depends(&image)
            .with_context(|| format!("cannot read the dependencies of {}", file.display()))
            .map(Some)
    })?;
    order
        .into_iter()
        .map(|name| {
            let file = files.get(&name).cloned().context("module file vanished")?;
            Ok((name, file))
        })
        .collect()
}

/// Every `*.ko` below `dir`, by normalized module name.
fn collect_modules(
    dir: &Path,
    files: &mut std::collections::BTreeMap<String, PathBuf>,
) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if kind.is_dir() {
            collect_modules(&path, files)?;
        } else if let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ko"))
        {
            files.insert(modinfo::normalize(name), path);
        }
    }
    Ok(())
}

/// The one file in `dir` whose name starts with `prefix` and ends with `suffix`.
fn find_one(dir: &Path, prefix: &str, suffix: &str) -> Result<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(prefix) && name.ends_with(suffix) {
            found.push(entry.path());
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no {prefix}*{suffix} in {}", dir.display()),
        _ => bail!(
            "more than one {prefix}*{suffix} in {}: {found:?}",
            dir.display()
        ),
    }
}

fn write(path: &Path, data: &[u8]) -> Result<()> {
    fs::write(path, data).with_context(|| format!("cannot write {}", path.display()))
}

/// The uncompressed kernel ELF inside a bzImage, or `None` when its payload is not XZ.
///
/// The x86 boot protocol (the kernel's `Documentation/arch/x86/boot.rst`): the setup code is
/// `setup_sects` sectors (byte 0x1f1; 0 means 4) after the 512-byte boot sector; the compressed
/// payload is at `payload_offset` (0x248) from the end of the setup code, `payload_length`
/// (0x24c) bytes long. Both need boot protocol 2.08 or later (`HdrS` at 0x202, version at 0x206).
/// The XZ stream is followed by the uncompressed size (4 bytes), which the decoder leaves.
///
/// Errors: not a bzImage, a payload outside the file, a corrupt XZ stream, or a result that is
/// not an ELF file.
pub(crate) fn extract_vmlinux(bzimage: &[u8]) -> Result<Option<Vec<u8>>> {
    let u16_at = |at: usize| {
        bzimage
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bzimage
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bzimage.get(0x202..0x206) != Some(b"HdrS".as_slice()) {
        bail!("not a bzImage (no HdrS signature at 0x202)");
    }
    let version = u16_at(0x206).context("truncated setup header")?;
    if version < 0x208 {
        bail!("boot protocol {version:#x} is older than 2.08 and has no payload fields");
    }
    let setup_sects = match bzimage
        .get(0x1f1)
        .copied()
        .context("truncated setup header")?
    {
        0 => 4,
        n => usize::from(n),
    };
    let offset = u32_at(0x248).context("truncated setup header")?;
    let length = u32_at(0x24c).context("truncated setup header")?;
    let start = (setup_sects + 1) * 512 + usize::try_from(offset)?;
    let payload = start
        .checked_add(usize::try_from(length)?)
        .and_then(|end| bzimage.get(start..end))
        .context("the payload lies outside the file")?;
    if !payload.starts_with(b"\xfd7zXZ\0") {
        return Ok(None);
    }
    let mut elf = Vec::new();
    liblzma::read::XzDecoder::new(payload)
        .read_to_end(&mut elf)
        .context("cannot decompress the XZ payload")?;
    if !elf.starts_with(b"\x7fELF") {
        bail!("the decompressed payload is not an ELF file");
    }
    Ok(Some(elf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_the_image_package_from_the_metapackage() {
        let show = "Package: linux-image-amd64\n\
                    Source: linux-signed-amd64 (6.1.192+3)\n\
                    Version: 6.1.192-3\n\
                    Installed-Size: 14\n\
                    Depends: linux-image-6.1.0-57-amd64 (= 6.1.192-3)\n\
                    Description: Linux for 64-bit PCs (meta-package)\n";
        let (meta, image) = parse_metapackage(show).unwrap();
        assert_eq!(
            meta,
            Package {
                name: "linux-image-amd64".into(),
                version: "6.1.192-3".into()
            }
        );
        assert_eq!(
            image,
            Package {
                name: "linux-image-6.1.0-57-amd64".into(),
                version: "6.1.192-3".into()
            }
        );
        assert_eq!(dir_name(&image), "linux-image-6.1.0-57-amd64_6.1.192-3");
        assert_eq!(
            dir_name(&Package {
                name: "linux-image-x".into(),
                version: "1:2/3".into()
            }),
            "linux-image-x_1_2_3"
        );
    }

    #[test]
    fn rejects_a_metapackage_without_an_exact_image_dependency() {
        assert!(parse_metapackage("Version: 1\n").is_err());
        assert!(parse_metapackage("Version: 1\nDepends: linux-image-6.1.0-57-amd64\n").is_err());
        assert!(parse_metapackage("Version: 1\nDepends: initramfs-tools (= 1)\n").is_err());
        assert!(parse_metapackage("Depends: linux-image-6.1 (= 1)\n").is_err());
    }

    /// A fake bzImage: boot sector and 2 setup sectors, then the payload.
    fn bzimage(payload: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; 3 * 512];
        image[0x1f1] = 2;
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        image[0x248..0x24c].copy_from_slice(&16u32.to_le_bytes());
        image[0x24c..0x250].copy_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
        image.extend_from_slice(&[0u8; 16]);
        image.extend_from_slice(payload);
        image.extend_from_slice(b"tail");
        image
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn extracts_the_xz_payload() {
        let elf = b"\x7fELF\x02\x01 the kernel".repeat(100);
        let mut payload = xz(&elf);
        payload.extend_from_slice(&u32::try_from(elf.len()).unwrap().to_le_bytes());
        assert_eq!(extract_vmlinux(&bzimage(&payload)).unwrap(), Some(elf));
    }

    #[test]
    fn keeps_other_payloads_and_rejects_non_kernels() {
        assert_eq!(extract_vmlinux(&bzimage(b"\x1f\x8bgzip")).unwrap(), None);
        assert!(extract_vmlinux(b"not a kernel").is_err());
        assert!(extract_vmlinux(&bzimage(&xz(b"no elf here"))).is_err());
        let mut short = bzimage(&xz(b"\x7fELF"));
        short.truncate(3 * 512 + 20);
        assert!(extract_vmlinux(&short).is_err());
    }
}
