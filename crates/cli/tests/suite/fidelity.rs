//! Round trip of a tree that holds every kind of entry Lifeboat promises to keep.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use crate::common::*;
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

fn set_mtime(p: &Path, s: i64, ns: i64) {
    let t = TimeSpec::new(s, ns);
    utimensat(None, p, &t, &t, UtimensatFlags::NoFollowSymlink).unwrap();
}

fn build_tree(root: &Path) {
    fs::create_dir_all(root.join("dir/sub")).unwrap();
    fs::write(root.join("dir/plain.txt"), "plain text\n").unwrap();
    fs::write(root.join("empty"), "").unwrap();
    fs::write(root.join("dir/sub/big.bin"), (0..3_000_000u32).map(|i| (i * 31 % 253) as u8).collect::<Vec<u8>>())
        .unwrap();
    // Sparse: 8 MiB of holes around 1 MiB of data.
    let f = fs::File::create(root.join("sparse.img")).unwrap();
    f.set_len(16 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&vec![7u8; 1 << 20], 8 << 20).unwrap();
    drop(f);
    symlink("dir/plain.txt", root.join("link-relative")).unwrap();
    symlink("/nonexistent/absolute/target", root.join("link-dangling")).unwrap();
    symlink(os(b"weird\xfftarget"), root.join("link-binary")).unwrap();
    fs::hard_link(root.join("dir/plain.txt"), root.join("hardlink-to-plain")).unwrap();
    fs::write(root.join("two-links-a"), "shared inode").unwrap();
    fs::hard_link(root.join("two-links-a"), root.join("dir/two-links-b")).unwrap();
    fs::write(root.join(os(b"not-utf8-\xff\xfe")), "binary name").unwrap();
    fs::write(root.join("new\nline"), "newline in name").unwrap();
    fs::write(root.join("setuid"), "s").unwrap();
    fs::set_permissions(root.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(root.join("setgid"), "g").unwrap();
    fs::set_permissions(root.join("setgid"), fs::Permissions::from_mode(0o2750)).unwrap();
    fs::create_dir(root.join("sticky")).unwrap();
    fs::set_permissions(root.join("sticky"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(root.join("readonly"), "r").unwrap();
    fs::set_permissions(root.join("readonly"), fs::Permissions::from_mode(0o400)).unwrap();
    fs::write(root.join("old"), "before 1970").unwrap();
    set_mtime(&root.join("old"), -1_234_567_890, 123_456_789);
    fs::write(root.join("future"), "after 2038").unwrap();
    set_mtime(&root.join("future"), 4_102_444_800 + 17, 999_999_999);
    set_mtime(&root.join("link-relative"), 1_000_000_000, 1);
    nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
    xattr::set(root.join("dir/plain.txt"), "user.lifeboat.test", b"value \x00 with nul").unwrap();
    xattr::set(root.join("dir"), "user.on-a-folder", b"yes").unwrap();
    if is_root() {
        std::os::unix::fs::lchown(root.join("dir/sub/big.bin"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(root.join("link-relative"), Some(4321), Some(8765)).unwrap();
        fs::set_permissions(root.join("setuid"), fs::Permissions::from_mode(0o4755)).unwrap();
    }
    set_mtime(&root.join("dir/sub"), 1_500_000_000, 42);
}

#[test]
fn every_kind_of_entry_round_trips() {
    let sb = Sandbox::new("");
    let src = sb.home.join("data");
    fs::create_dir_all(&src).unwrap();
    build_tree(&src);
    let cfg = format!("[unit.data]\ntitle = \"Data\"\npaths = [\"{}\"]\n", src.display());
    let mut text = fs::read_to_string(&sb.config).unwrap();
    text.push_str(&cfg);
    fs::write(&sb.config, text).unwrap();

    let before = dir_mtimes(&src);
    let b = sb.backup(&[]);
    assert_eq!(b["status"], "completed", "{b}");
    let slug = b["slug"].as_str().unwrap();

    let target = sb.dir.path().join("restore");
    sb.ok(&["backups", "restore", slug, "--target", target.to_str().unwrap(), "--quiet"]);
    let restored = rerooted(&target, &src);
    let diffs = compare_trees(&src, &restored);
    assert!(diffs.is_empty(), "differences after restore:\n{}", diffs.join("\n"));
    assert_eq!(dir_mtimes(&restored), before, "folder mtimes are restored");
    let sparse = fs::metadata(restored.join("sparse.img")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert!(sparse.blocks() * 512 < 4 << 20, "sparse file stays sparse: {} blocks", sparse.blocks());
}

#[test]
fn restore_in_place_replaces_only_what_the_backup_holds() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    let notes = sb.home.join("notes");
    fs::create_dir_all(&notes).unwrap();
    fs::write(notes.join("kept.txt"), "original").unwrap();
    fs::write(notes.join("changed.txt"), "original").unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();
    fs::write(notes.join("changed.txt"), "edited later").unwrap();
    fs::write(notes.join("added-later.txt"), "not in the backup").unwrap();
    fs::remove_file(notes.join("kept.txt")).unwrap();

    let dry = sb.ok(&["backups", "restore", &slug, "--dry-run"]);
    assert!(dry.contains("+ ") && dry.contains("kept.txt"), "{dry}");
    assert!(dry.contains("~ ") && dry.contains("changed.txt"), "{dry}");
    assert_eq!(fs::read_to_string(notes.join("changed.txt")).unwrap(), "edited later", "dry run changes nothing");

    sb.ok(&["backups", "restore", &slug, "--quiet"]);
    assert_eq!(fs::read_to_string(notes.join("kept.txt")).unwrap(), "original");
    assert_eq!(fs::read_to_string(notes.join("changed.txt")).unwrap(), "original");
    assert_eq!(fs::read_to_string(notes.join("added-later.txt")).unwrap(), "not in the backup");
}

#[test]
fn restore_does_not_follow_symlinks_planted_in_the_target() {
    let sb = Sandbox::new("[unit.notes]\npaths = [\"~/notes\"]\n");
    let notes = sb.home.join("notes");
    fs::create_dir_all(notes.join("sub")).unwrap();
    fs::write(notes.join("sub/file"), "from the backup").unwrap();
    fs::write(notes.join("top"), "from the backup").unwrap();
    let slug = sb.backup(&[])["slug"].as_str().unwrap().to_string();

    let outside = sb.dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("precious"), "must survive").unwrap();
    let target = sb.dir.path().join("target");
    let dest = rerooted(&target, &notes);
    fs::create_dir_all(&dest).unwrap();
    symlink(&outside, dest.join("sub")).unwrap();
    symlink(outside.join("precious"), dest.join("top")).unwrap();
    sb.ok(&["backups", "restore", &slug, "--target", target.to_str().unwrap(), "--quiet"]);
    assert_eq!(fs::read_to_string(outside.join("precious")).unwrap(), "must survive");
    assert!(!outside.join("file").exists(), "nothing was written through the planted link");
    assert_eq!(fs::read_to_string(dest.join("sub/file")).unwrap(), "from the backup");
    assert_eq!(fs::read_to_string(dest.join("top")).unwrap(), "from the backup");
    assert!(!fs::symlink_metadata(dest.join("sub")).unwrap().file_type().is_symlink());
}
