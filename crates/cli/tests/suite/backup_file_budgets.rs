//! Backup files made to cost: memory, time and disk a small hostile file asks for is refused
//! before it is spent (issue 43). Each file is built here by hand, as an attacker would.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::backup_files::{plain_backup_file, read_entry, wrap};
use crate::common::*;

/// A unit's tar written block by block and compressed as it goes: a gigabyte of repeated
/// headers becomes a few hundred KiB, as in the reported attacks.
struct HandMadeTar(zstd::stream::write::Encoder<'static, Vec<u8>>);

impl HandMadeTar {
    fn new() -> Self {
        HandMadeTar(zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap())
    }

    /// A header of type `flag` for `name` announcing `size` bytes, then `body` (which may be
    /// shorter than `size`: a sparse file's map only), padded to a block.
    fn entry(&mut self, flag: u8, name: &str, size: u64, body: &[u8]) {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(tar::EntryType::new(flag));
        h.set_size(size);
        h.set_mode(if flag == b'5' { 0o755 } else { 0o644 });
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        self.0.write_all(h.as_bytes()).unwrap();
        self.0.write_all(body).unwrap();
        self.0.write_all(&vec![0u8; (512 - body.len() % 512) % 512]).unwrap();
    }

    /// A file of `size` zeros.
    fn zeros(&mut self, name: &str, size: usize) {
        self.entry(b'0', name, size as u64, &vec![0u8; size]);
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.write_all(&[0u8; 1024]).unwrap();
        self.0.finish().unwrap()
    }
}

/// One pax record of exactly `len` bytes.
fn pax_record(key: &str, value_fill: u8, len: usize) -> Vec<u8> {
    let mut r = format!("{len} {key}=").into_bytes();
    r.resize(len - 1, value_fill);
    r.push(b'\n');
    r
}

fn pax_records(records: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body = format!(" {k}={v}\n");
        let mut len = body.len() + 1;
        while len.to_string().len() + body.len() != len {
            len += 1;
        }
        out.extend(format!("{len}{body}").into_bytes());
    }
    out
}

/// Runs a restore into a fresh target and an import into the empty location, each measured;
/// both must be refused with `words` in their message, under 200 MiB, leaving nothing.
fn refused_by_restore_and_import(sb: &Sandbox, file: &Path, case: &str, words: &str) {
    let target = sb.dir.path().join(format!("target-{case}"));
    std::fs::create_dir_all(&target).unwrap();
    let f = file.to_str().unwrap();
    let restore = ["backups", "restore", "--from-file", f, "--target", target.to_str().unwrap()];
    let import = ["backups", "import", f, "--location", "empty"];
    for args in [&restore[..], &import[..]] {
        let (out, peak) = run_measuring_memory(sb, args);
        let err = stderr(&out);
        assert!(peak < 200 << 20, "{case} {}: peak memory {} MiB is not under 200 MiB", args[1], peak >> 20);
        assert!(!out.status.success(), "{case} {}: accepted: {}", args[1], stdout(&out));
        // (An import into an empty location first says it made a repository there.)
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("lifeboat: ")).collect();
        assert!(errors.len() == 1 && errors[0].contains(words) && errors[0].contains(f), "{case} {}: {err}", args[1]);
    }
    let written: Vec<PathBuf> = walkdir(&target).into_iter().filter(|p| !p.is_dir()).collect();
    assert!(written.is_empty(), "{case}: left files in the target: {written:?}");
    let listed = sb.run(&["backups", "list", "--location", "empty", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap_or_default();
    assert!(listed.as_array().is_none_or(|a| a.is_empty()), "{case}: imported: {listed}");
}

/// 600 pax headers of 1 MiB each (each within the reader's limit for one header) before one
/// file: on main they were all kept, 600 MiB for a file of a few hundred KiB.
#[test]
fn a_backup_file_of_piled_up_pax_headers_is_refused_within_200_mib() {
    let (sb, _, manifest) = plain_backup_file();
    let root = manifest["units"][0]["roots"][0]["archive"].as_str().unwrap().to_string();
    let mut tar = HandMadeTar::new();
    tar.entry(b'5', &root, 0, &[]);
    let record = pax_record("comment", b'v', 1 << 20);
    for _ in 0..600 {
        tar.entry(b'x', "PaxHeader", record.len() as u64, &record);
    }
    tar.entry(b'0', &format!("{root}/a.txt"), 1, b"a");
    let unit = tar.finish();
    assert!(unit.len() < 1 << 20, "the attack is small: {} bytes", unit.len());
    let file = sb.dir.path().join("piled.lifeboat.tar");
    wrap(&manifest, &unit, &file);
    refused_by_restore_and_import(&sb, &file, "piled pax headers", "extended headers before one entry");
}

/// A unit that declares 1 MiB and holds eight files of 1 MiB each (each within the unit's
/// size): the room check counted 1 MiB, on main 8 MiB were written. Sparse files count their
/// whole length: eight of 1 MiB, all hole, pass the same declaration.
#[test]
fn a_unit_whose_files_hold_more_than_it_declares_is_refused_and_nothing_is_written() {
    let (sb, _, manifest) = plain_backup_file();
    let root = manifest["units"][0]["roots"][0]["archive"].as_str().unwrap().to_string();
    let mut m = manifest.clone();
    m["backup"]["units"][0]["size"] = (1u64 << 20).into();
    m["backup"]["units"][0]["files"] = 8.into();
    for sparse in [false, true] {
        let mut tar = HandMadeTar::new();
        tar.entry(b'5', &root, 0, &[]);
        for i in 0..8 {
            let name = format!("{root}/f{i}");
            if sparse {
                let real = (1u64 << 20).to_string();
                let pax = pax_records(&[
                    ("GNU.sparse.major", "1"),
                    ("GNU.sparse.minor", "0"),
                    ("GNU.sparse.name", &name),
                    ("GNU.sparse.realsize", &real),
                ]);
                tar.entry(b'x', "PaxHeader", pax.len() as u64, &pax);
                // The map: one stretch of no data at the end; the rest is a hole.
                let map = format!("1\n{real}\n0\n");
                tar.entry(b'0', &format!("{root}/GNUSparseFile.0/f{i}"), 512, map.as_bytes());
            } else {
                tar.zeros(&name, 1 << 20);
            }
        }
        let case = if sparse { "sparse" } else { "full" };
        let file = sb.dir.path().join(format!("{case}.lifeboat.tar"));
        wrap(&m, &tar.finish(), &file);
        refused_by_restore_and_import(&sb, &file, case, "its files hold more than the 1048576 bytes");
    }
    // The same files under an honest declaration restore.
    let mut honest = manifest.clone();
    honest["backup"]["units"][0]["size"] = (8u64 << 20).into();
    let mut tar = HandMadeTar::new();
    tar.entry(b'5', &root, 0, &[]);
    for i in 0..8 {
        tar.zeros(&format!("{root}/f{i}"), 1 << 20);
    }
    let file = sb.dir.path().join("honest.lifeboat.tar");
    wrap(&honest, &tar.finish(), &file);
    let target = sb.dir.path().join("target-honest");
    sb.ok(&["backups", "restore", "--from-file", file.to_str().unwrap(), "--target", target.to_str().unwrap()]);
    let files: Vec<PathBuf> = walkdir(&target).into_iter().filter(|p| p.is_file()).collect();
    assert_eq!(files.len(), 8, "{files:?}");
}

/// A password-protected export whose unit asks scrypt for 2^22 (4 GiB, half a minute) instead
/// of Lifeboat's 2^17: refused before the password is tried.
#[test]
fn an_encrypted_backup_file_asking_for_4_gib_to_open_is_refused_before_its_password_is_tried() {
    let sb = Sandbox::new("[unit.docs]\npaths = [\"~/docs\"]\n");
    std::fs::create_dir_all(sb.home.join("docs")).unwrap();
    std::fs::write(sb.home.join("docs/a.txt"), "a").unwrap();
    sb.add_local_location("empty");
    let b = sb.backup(&[]);
    let file = sb.dir.path().join("protected.lifeboat.tar");
    sb.ok(&["backups", "export", b["slug"].as_str().unwrap(), "-o", file.to_str().unwrap(), "--quiet"]);
    let mut bytes = std::fs::read(&file).unwrap();
    let unit = read_entry(&file, "units/docs.tar.zst.age");
    assert!(unit.starts_with(b"age-encryption.org/v1\n-> scrypt "), "a protected unit is an age file");
    let stanza = bytes.windows(10).position(|w| w == b"-> scrypt ").unwrap();
    let line_end = stanza + bytes[stanza..].iter().position(|&b| b == b'\n').unwrap();
    assert_eq!(&bytes[line_end - 3..line_end], b" 17", "Lifeboat's own work factor");
    bytes[line_end - 2..line_end].copy_from_slice(b"22");
    std::fs::write(&file, &bytes).unwrap();
    refused_by_restore_and_import(&sb, &file, "scrypt 22", "this file asks for 4096 MiB of memory to open");
}
