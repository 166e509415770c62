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
pub(crate) mod tests {
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

    /// A raw header block of type `flag` announcing `body`, then the body padded to a block:
    /// what a hostile writer makes by hand.
    pub(crate) fn raw_entry(flag: u8, name: &[u8], body: &[u8]) -> Vec<u8> {
        let mut h = [0u8; BLOCK as usize];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", body.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = flag;
        h[257..265].copy_from_slice(b"ustar\x0000");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut out = h.to_vec();
        out.extend_from_slice(body);
        out.resize(out.len() + padding(body.len() as u64) as usize, 0);
        out
    }

    /// One pax record of exactly `len` bytes (a comment, which readers ignore).
    pub(crate) fn pax_record_of(len: usize) -> Vec<u8> {
        let digits = len.to_string().len();
        let value = len - digits - " comment=\n".len();
        let mut r = format!("{len} comment=").into_bytes();
        r.resize(r.len() + value, b'v');
        r.push(b'\n');
        assert_eq!(r.len(), len);
        r
    }

    fn error_of(archive: &[u8]) -> String {
        let mut r = TarReader::new(archive);
        loop {
            match r.next() {
                Ok(Some(_)) => continue,
                Ok(None) => return String::new(),
                Err(e) => return e.to_string(),
            }
        }
    }

    #[test]
    fn extended_headers_before_one_entry_are_bounded_in_all() {
        let pax = pax_record_of(600 * 1024);
        let name = vec![b'n'; 60 * 1024];
        let file = raw_entry(b'0', b"home/a", b"x");
        // Each header is within its own limit, and one of each is fine.
        let mut one = raw_entry(b'x', b"PaxHeader", &pax);
        one.extend(raw_entry(b'L', b"././@LongLink", &name));
        one.extend(raw_entry(b'K', b"././@LongLink", &name));
        one.extend(&file);
        one.extend([0u8; 1024]);
        assert_eq!(error_of(&one), "");
        let piled: [(u8, &[u8]); 3] = [(b'x', &pax), (b'L', &name), (b'K', &name)];
        for (flag, body) in piled {
            let mut archive = Vec::new();
            for _ in 0..20 {
                archive.extend(raw_entry(flag, b"PaxHeader", body));
            }
            archive.extend(&file);
            archive.extend([0u8; 1024]);
            let err = error_of(&archive);
            assert!(err.contains("KiB of extended headers before one entry"), "{}: {err}", flag as char);
        }
    }

    #[test]
    fn global_headers_are_bounded_in_the_whole_archive() {
        let pax = pax_record_of(600 * 1024);
        let mut archive = Vec::new();
        for i in 0..4 {
            archive.extend(raw_entry(b'g', b"GlobalHead", &pax));
            archive.extend(raw_entry(b'0', format!("home/{i}").as_bytes(), b"x"));
        }
        archive.extend([0u8; 1024]);
        assert!(error_of(&archive).contains("KiB of global headers in one archive"), "{}", error_of(&archive));
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
