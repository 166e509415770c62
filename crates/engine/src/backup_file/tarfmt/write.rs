//! Writing entries: pax extended headers over ustar.

use super::{padding, EntryKind, TarEntry, BLOCK};
use lifeboat_repository::Timestamp;

/// A sparse file's map, the start of its stored data: the count, then offset and length of
/// each stretch, one decimal number a line, padded to a block.
pub(crate) fn sparse_map(segments: &[(u64, u64)]) -> Vec<u8> {
    let mut text = format!("{}\n", segments.len());
    for (off, len) in segments {
        text.push_str(&format!("{off}\n{len}\n"));
    }
    let mut out = text.into_bytes();
    out.resize(out.len() + padding(out.len() as u64) as usize, 0);
    out
}

/// Bytes stored after the header: a sparse file's map and stretches, or the whole content.
pub(crate) fn stored_size(e: &TarEntry) -> u64 {
    match (&e.sparse, e.kind) {
        (Some(segs), _) => sparse_map(segs).len() as u64 + segs.iter().map(|s| s.1).sum::<u64>(),
        (None, EntryKind::File) => e.size,
        _ => 0,
    }
}

/// The header blocks of an entry: a pax extended header, then the ustar header. Its data
/// (of [`stored_size`] bytes) and padding to a block follow.
pub(crate) fn encode_header(e: &TarEntry) -> Vec<u8> {
    let stored = stored_size(e);
    let mut pax = Vec::new();
    match &e.sparse {
        Some(_) => {
            record(&mut pax, b"GNU.sparse.major", b"1");
            record(&mut pax, b"GNU.sparse.minor", b"0");
            record(&mut pax, b"GNU.sparse.name", &e.path);
            record(&mut pax, b"GNU.sparse.realsize", e.size.to_string().as_bytes());
        }
        None => record(&mut pax, b"path", &e.path),
    }
    if let Some(l) = &e.link {
        record(&mut pax, b"linkpath", l);
    }
    record(&mut pax, b"mtime", pax_time(e.mtime).as_bytes());
    if stored > OCTAL_11 {
        record(&mut pax, b"size", stored.to_string().as_bytes());
    }
    if e.uid > OCTAL_7 {
        record(&mut pax, b"uid", e.uid.to_string().as_bytes());
    }
    if e.gid > OCTAL_7 {
        record(&mut pax, b"gid", e.gid.to_string().as_bytes());
    }
    if let Some(u) = &e.user {
        record(&mut pax, b"uname", u.as_bytes());
    }
    if let Some(g) = &e.group {
        record(&mut pax, b"gname", g.as_bytes());
    }
    for (name, value) in &e.xattrs {
        record(&mut pax, &[b"SCHILY.xattr.", name.as_slice()].concat(), value);
    }
    let binary = std::str::from_utf8(&pax).is_err();
    if binary {
        // Names that are not UTF-8 are kept as the bytes they are.
        let mut tagged = Vec::new();
        record(&mut tagged, b"hdrcharset", b"BINARY");
        tagged.extend(pax);
        pax = tagged;
    }

    let short = short_name(&e.path, e.sparse.is_some());
    let mut out = ustar(&[b"PaxHeaders/".as_slice(), &short].concat(), b'x', 0o644, pax.len() as u64, e, b"");
    let padded = pax.len() + padding(pax.len() as u64) as usize;
    pax.resize(padded, 0);
    out.extend(pax);
    let flag = match e.kind {
        EntryKind::File => b'0',
        EntryKind::HardLink => b'1',
        EntryKind::Symlink => b'2',
        EntryKind::CharDevice => b'3',
        EntryKind::BlockDevice => b'4',
        EntryKind::Dir => b'5',
        EntryKind::Fifo => b'6',
    };
    let link = e.link.as_deref().unwrap_or(b"");
    out.extend(ustar(&short, flag, e.mode, stored, e, link));
    out
}

const OCTAL_11: u64 = 0o77777777777;
const OCTAL_7: u64 = 0o7777777;

/// A name for the ustar field, for readers that ignore pax: the path's last 99 bytes (a sparse
/// file's carries GNU's marker folder, as GNU tar writes it).
fn short_name(path: &[u8], sparse: bool) -> Vec<u8> {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let name = if sparse { [b"GNUSparseFile.0/".as_slice(), base].concat() } else { path.to_vec() };
    let start = name.len().saturating_sub(99);
    name[start..].to_vec()
}

fn ustar(name: &[u8], flag: u8, mode: u32, size: u64, e: &TarEntry, link: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; BLOCK as usize];
    put(&mut h[0..100], name);
    octal(&mut h[100..108], (mode & 0o7777) as u64);
    octal(&mut h[108..116], e.uid.min(OCTAL_7));
    octal(&mut h[116..124], e.gid.min(OCTAL_7));
    octal(&mut h[124..136], if size > OCTAL_11 { 0 } else { size });
    octal(&mut h[136..148], e.mtime.0.clamp(0, OCTAL_11 as i64) as u64);
    h[156] = flag;
    put(&mut h[157..257], &link[link.len().saturating_sub(100)..]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put(&mut h[265..297], e.user.as_deref().unwrap_or("").as_bytes());
    put(&mut h[297..329], e.group.as_deref().unwrap_or("").as_bytes());
    octal(&mut h[329..337], e.device.0 as u64 & OCTAL_7);
    octal(&mut h[337..345], e.device.1 as u64 & OCTAL_7);
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    octal(&mut h[148..155], sum);
    h
}

fn put(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Zero-padded octal filling the field but its last byte, which stays NUL.
fn octal(field: &mut [u8], v: u64) {
    let digits = format!("{v:0width$o}", width = field.len() - 1);
    put(field, digits.as_bytes());
}

/// One pax record: `LEN key=value\n`, where LEN counts the whole record, itself included.
pub(super) fn record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Seconds with nine decimals; before 1970 the text is the signed value ("-1.5" is
/// `Timestamp(-2, 500_000_000)`).
pub(super) fn pax_time(t: Timestamp) -> String {
    if t.0 < 0 && t.1 > 0 {
        format!("-{}.{:09}", -(t.0 + 1), 1_000_000_000 - t.1)
    } else {
        format!("{}.{:09}", t.0, t.1)
    }
}
