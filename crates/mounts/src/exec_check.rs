//! Whether execve(2) can run a file, told from its first bytes before any runtime runs it.
//!
//! The kernel reads the first [`HEAD_LEN`] bytes of the file (`BINPRM_BUF_SIZE`) and hands
//! them to its binary formats in turn: an ELF header, a script's `#!` line, then the handlers
//! registered in binfmt_misc. A file none of them takes fails with `ENOEXEC` (`exec format
//! error`), a script whose interpreter is missing with `ENOENT`. The runtimes report these
//! from the container's init after it started, each in its own words, and youki does not
//! report the first at all: it runs the command with `execvp`, whose C library falls back to
//! `/bin/sh FILE` on `ENOEXEC`. So ocirun tells these cases itself, before anything is
//! created, wherever it can be sure:
//!
//! - an ELF file whose header is cut short or is no executable's: `exec format error`;
//! - neither ELF nor `#!`: `exec format error`;
//! - `#!` with no interpreter: `exec format error`; with an interpreter that is not in the
//!   rootfs: `no such file or directory`; that is a directory or has no execute permission:
//!   `permission denied`.
//!
//! It leaves the file to the runtime when binfmt_misc has handlers (one may take any format),
//! when the interpreter is below a mount destination (a volume may provide it), and when the
//! file cannot be read (execute permission without read permission is allowed).

/// How many bytes the kernel reads to pick a binary format (`BINPRM_BUF_SIZE`).
pub(crate) const HEAD_LEN: usize = 256;

/// What the first bytes of a file are, as execve(2) sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Format {
    /// An ELF header of an executable or shared object.
    Elf,
    /// An ELF magic whose header the kernel refuses (short, or of another kind of file).
    BadElf,
    /// A `#!` line: the interpreter (empty when the line names none).
    Script(String),
    /// Neither: only a binfmt_misc handler could run it.
    Other,
}

/// The format of a file that starts with `head` (its first [`HEAD_LEN`] bytes, or all of a
/// shorter file).
pub(crate) fn format(head: &[u8]) -> Format {
    if let Some(rest) = head.strip_prefix(b"#!") {
        // The interpreter ends at a blank or the end of the line (fs/binfmt_script.c).
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        let interpreter = line
            .split(|&b| b == b' ' || b == b'\t')
            .find(|word| !word.is_empty())
            .unwrap_or_default();
        return Format::Script(String::from_utf8_lossy(interpreter).into_owned());
    }
    if !head.starts_with(b"\x7fELF") {
        return Format::Other;
    }
    // e_ident: class (1: 32-bit, 2: 64-bit), data (1: little, 2: big endian); then e_type
    // (2: executable, 3: shared object or position-independent executable).
    let header_len = match head.get(4) {
        Some(1) => 52,
        Some(2) => 64,
        _ => return Format::BadElf,
    };
    if head.len() < header_len {
        return Format::BadElf;
    }
    let e_type = match head[5] {
        1 => u16::from_le_bytes([head[16], head[17]]),
        2 => u16::from_be_bytes([head[16], head[17]]),
        _ => return Format::BadElf,
    };
    if matches!(e_type, 2 | 3) {
        Format::Elf
    } else {
        Format::BadElf
    }
}

/// Whether binfmt_misc has handlers registered (any entry of `/proc/sys/fs/binfmt_misc` but
/// `register` and `status`, while `status` says `enabled`); without that file system mounted,
/// none.
pub(crate) fn binfmt_misc_handlers() -> bool {
    let dir = std::path::Path::new("/proc/sys/fs/binfmt_misc");
    let enabled =
        std::fs::read_to_string(dir.join("status")).is_ok_and(|status| status.trim() == "enabled");
    enabled
        && std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| !matches!(e.file_name().to_str(), Some("register" | "status")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_of_first_bytes() {
        let script = |s: &str| Format::Script(s.to_owned());
        assert_eq!(format(b"#!/bin/sh\necho hi\n"), script("/bin/sh"));
        assert_eq!(
            format(b"#! /usr/bin/env python3 -u\n"),
            script("/usr/bin/env")
        );
        assert_eq!(format(b"#!\t/bin/sh"), script("/bin/sh"));
        assert_eq!(format(b"#!\n/bin/sh\n"), script(""));
        assert_eq!(format(b"#!"), script(""));
        assert_eq!(format(b"echo hi\n"), Format::Other);
        assert_eq!(format(b""), Format::Other);
        assert_eq!(format(b"\x7fELF\x02\x01\x01"), Format::BadElf);
        let mut elf64 = vec![0u8; 64];
        elf64[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        elf64[16] = 3;
        assert_eq!(format(&elf64), Format::Elf);
        elf64[16] = 1; // a relocatable object file
        assert_eq!(format(&elf64), Format::BadElf);
        let mut elf32be = vec![0u8; 52];
        elf32be[..7].copy_from_slice(b"\x7fELF\x01\x02\x01");
        elf32be[17] = 2;
        assert_eq!(format(&elf32be), Format::Elf);
        assert_eq!(format(&elf32be[..40]), Format::BadElf);
    }

    #[test]
    fn this_test_binary_is_elf() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        assert_eq!(format(&exe[..HEAD_LEN]), Format::Elf);
    }
}
