//! The tar inside a unit's file: POSIX pax headers over ustar, written so GNU tar, bsdtar and
//! Python's tarfile read them (long names, nanosecond times, owner names, xattrs as
//! `SCHILY.xattr.*`, sparse files as GNU sparse 1.0), and a strict reader of the same.
//!
//! Hand-made on purpose: the `tar` crate neither writes nor reads pax sparse files, and a
//! backup file is hostile input until proven otherwise, so the reader bounds every size it
//! is told and leaves path checks to its caller with the raw bytes in hand.

mod read;
mod write;

use lifeboat_repository::Timestamp;

pub(crate) use read::{Content, TarError, TarReader};
pub(crate) use write::{encode_header, sparse_map, stored_size};

pub(crate) const BLOCK: u64 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Dir,
    Fifo,
}

/// One entry's metadata, as written and as read.
#[derive(Debug, Clone)]
pub(crate) struct TarEntry {
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub user: Option<String>,
    pub group: Option<String>,
    pub mtime: Timestamp,
    /// The file's length (a sparse file's length with its holes).
    pub size: u64,
    /// Symlink target, or the earlier path a hard link points to.
    pub link: Option<Vec<u8>>,
    pub device: (u32, u32),
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// For a sparse file, the (offset, length) of each stretch of data; the rest is holes.
    pub sparse: Option<Vec<(u64, u64)>>,
}

pub(crate) fn padding(len: u64) -> u64 {
    (BLOCK - len % BLOCK) % BLOCK
}

#[cfg(test)]
mod tests {
    use super::read::parse_time;
    use super::write::{pax_time, record};
    use super::*;
    use std::io::Read;

    fn entry(path: &str, kind: EntryKind, size: u64) -> TarEntry {
        TarEntry {
            path: path.as_bytes().to_vec(),
            kind,
            mode: 0o640,
            uid: 1000,
            gid: 100,
            user: Some("nemo".into()),
            group: Some("users".into()),
            mtime: Timestamp(1_700_000_000, 123_456_789),
            size,
            link: None,
            device: (0, 0),
            xattrs: vec![(b"user.note".to_vec(), b"\x00\xffbinary".to_vec())],
            sparse: None,
        }
    }

    #[test]
    fn entries_written_are_read_back_the_same() {
        let long = format!("home/nemo/{}/file-\u{e9}", "deep/".repeat(40));
        let mut file = entry(&long, EntryKind::File, 5);
        file.path.push(0xff); // not UTF-8
        let mut sparse = entry("home/nemo/disk.img", EntryKind::File, 3 * 4096 + 10);
        sparse.sparse = Some(vec![(4096, 3), (3 * 4096 + 10, 0)]);
        let mut link = entry("home/nemo/l", EntryKind::Symlink, 0);
        link.link = Some(b"/somewhere/far".to_vec());
        let mut archive = Vec::new();
        archive.extend(encode_header(&file));
        archive.extend(b"hello");
        archive.resize(archive.len() + padding(5) as usize, 0);
        archive.extend(encode_header(&sparse));
        archive.extend(sparse_map(sparse.sparse.as_ref().unwrap()));
        archive.extend(b"abc");
        archive.resize(archive.len() + padding(stored_size(&sparse)) as usize, 0);
        archive.extend(encode_header(&link));
        archive.extend([0u8; 1024]);

        let mut r = TarReader::new(&archive[..]);
        let e = r.next().unwrap().unwrap();
        assert_eq!(e.path, file.path);
        assert_eq!((e.mode, e.uid, e.gid, e.mtime, e.size), (0o640, 1000, 100, file.mtime, 5));
        assert_eq!((e.user.as_deref(), e.group.as_deref()), (Some("nemo"), Some("users")));
        assert_eq!(e.xattrs, file.xattrs);
        let mut content = Vec::new();
        Content::new(&mut r, e.size).read_to_end(&mut content).unwrap();
        assert_eq!(content, b"hello");
        let e = r.next().unwrap().unwrap();
        assert_eq!(e.path, b"home/nemo/disk.img");
        assert_eq!(e.size, 3 * 4096 + 10);
        let mut content = Vec::new();
        Content::new(&mut r, e.size).read_to_end(&mut content).unwrap();
        let mut want = vec![0u8; 3 * 4096 + 10];
        want[4096..4099].copy_from_slice(b"abc");
        assert_eq!(content, want);
        let e = r.next().unwrap().unwrap();
        assert_eq!((e.kind, e.link.as_deref()), (EntryKind::Symlink, Some(&b"/somewhere/far"[..])));
        assert!(r.next().unwrap().is_none());
    }

    #[test]
    fn a_truncated_archive_and_a_damaged_header_are_errors() {
        let mut archive = encode_header(&entry("a", EntryKind::File, 100));
        archive.extend([7u8; 50]);
        let mut r = TarReader::new(&archive[..]);
        r.next().unwrap().unwrap();
        assert!(matches!(r.next(), Err(TarError::Truncated)));
        let mut damaged = encode_header(&entry("a", EntryKind::Dir, 0));
        damaged[600] ^= 1;
        assert!(matches!(TarReader::new(&damaged[..]).next(), Err(TarError::Malformed(_))));
    }

    #[test]
    fn pax_times_and_record_lengths() {
        assert_eq!(parse_time("1.5").unwrap(), Timestamp(1, 500_000_000));
        assert_eq!(parse_time("-1.5").unwrap(), Timestamp(-2, 500_000_000));
        assert_eq!(parse_time("-0.25").unwrap(), Timestamp(-1, 750_000_000));
        for t in [Timestamp(-2, 500_000_000), Timestamp(-1, 750_000_000), Timestamp(5, 1), Timestamp(-3, 0)] {
            assert_eq!(parse_time(&pax_time(t)).unwrap(), t);
        }
        let mut r = Vec::new();
        record(&mut r, b"k", &[b'v'; 5]); // "11 k=vvvvv\n" is 11 bytes
        assert_eq!(r, b"11 k=vvvvv\n");
        let mut r = Vec::new();
        record(&mut r, b"k", &[b'v'; 4]); // "9 k=vvvv\n" is 9 bytes
        assert_eq!(r, b"9 k=vvvv\n");
    }
}
