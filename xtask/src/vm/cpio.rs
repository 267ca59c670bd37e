//! A writer for the cpio "newc" format, the format of a Linux initramfs.
//!
//! Each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hexadecimal fields:
//! ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
//! namesize, check), the NUL-terminated name, padding to a multiple of 4 bytes, the data, and
//! padding to a multiple of 4 again. The archive ends with an entry named `TRAILER!!!`
//! (the kernel's `Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! The kernel unpacks archives that follow one another in the same file, so a cached archive
//! and a small per-run one can simply be concatenated. Entries are owned by root with mtime 0,
//! so the same input gives the same bytes.

/// An archive being written, in memory.
#[derive(Debug, Default)]
pub(crate) struct Archive {
    bytes: Vec<u8>,
    next_ino: u32,
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

impl Archive {
    /// A directory `name` (relative, no leading `/`) with permission bits `mode`.
    pub(crate) fn dir(&mut self, name: &str, mode: u32) {
        self.entry(name, S_IFDIR | mode, 2, (0, 0), &[]);
    }

    /// A regular file `name` with permission bits `mode` and contents `data`.
    pub(crate) fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, S_IFREG | mode, 1, (0, 0), data);
    }

    /// A symbolic link `name` pointing to `target`.
    pub(crate) fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes());
    }

    /// A character device `name` with permission bits `mode` and device number
    /// `major:minor`.
    pub(crate) fn char_device(&mut self, name: &str, mode: u32, major: u32, minor: u32) {
        self.entry(name, S_IFCHR | mode, 1, (major, minor), &[]);
    }

    /// Ends the archive with its trailer and returns its bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.next_ino = 0;
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[]);
        self.bytes
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        // Names and files here are a few MB at most; the format's fields are 32 bits.
        let namesize = u32::try_from(name.len() + 1).expect("cpio name longer than 4 GiB");
        let filesize = u32::try_from(data.len()).expect("cpio member larger than 4 GiB");
        let ino = if name == "TRAILER!!!" {
            0
        } else {
            self.next_ino += 1;
            self.next_ino
        };
        let fields = [
            ino, mode, 0, 0, nlink, 0, filesize, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits an archive back into (name, mode, data) entries, checking the layout.
    fn entries(mut bytes: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            assert_eq!(offset % 4, 0, "entry not aligned");
            assert_eq!(&bytes[..6], b"070701");
            let field = |i: usize| {
                let text = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(text, 16).unwrap() as usize
            };
            let (mode, filesize, namesize) = (field(1), field(6), field(11));
            let name = std::str::from_utf8(&bytes[110..110 + namesize - 1])
                .unwrap()
                .to_owned();
            assert_eq!(bytes[110 + namesize - 1], 0);
            let data_start = (110 + namesize).next_multiple_of(4);
            let data = bytes[data_start..data_start + filesize].to_vec();
            let end = (data_start + filesize).next_multiple_of(4);
            offset += end;
            bytes = &bytes[end..];
            if name == "TRAILER!!!" {
                assert!(bytes.is_empty(), "bytes after the trailer");
                return out;
            }
            out.push((name, mode as u32, data));
        }
    }

    #[test]
    fn writes_aligned_newc_entries_and_a_trailer() {
        let mut archive = Archive::default();
        archive.dir("bin", 0o755);
        archive.file("bin/busybox", 0o755, b"\x7fELF123");
        archive.symlink("bin/sh", "busybox");
        archive.file("init", 0o700, b"");
        archive.char_device("dev/console", 0o600, 5, 1);
        let bytes = archive.finish();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(
            entries(&bytes),
            vec![
                ("bin".to_owned(), 0o040_755, vec![]),
                ("bin/busybox".to_owned(), 0o100_755, b"\x7fELF123".to_vec()),
                ("bin/sh".to_owned(), 0o120_777, b"busybox".to_vec()),
                ("init".to_owned(), 0o100_700, vec![]),
                ("dev/console".to_owned(), 0o020_600, vec![]),
            ]
        );
    }

    #[test]
    fn the_header_is_110_bytes_of_hex_fields() {
        let mut archive = Archive::default();
        archive.file("a", 0o644, b"xy");
        let bytes = archive.finish();
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert_eq!(
            header,
            "070701\
             00000001000081a4000000000000000000000001000000000000000200000000\
             0000000000000000000000000000000200000000"
        );
        // name "a\0" ends at 112, already aligned; data "xy" is padded to 116.
        assert_eq!(&bytes[110..116], b"a\0xy\0\0");
    }

    #[test]
    fn archives_are_deterministic() {
        let build = || {
            let mut archive = Archive::default();
            archive.dir("d", 0o755);
            archive.file("d/f", 0o644, b"data");
            archive.finish()
        };
        assert_eq!(build(), build());
    }
}
