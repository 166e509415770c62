//! Round trip of the shared corpus of real files (a kernel tree, photos, music, a database).
//! Runs when LIFEBOAT_CORPUS names the folder `make-corpus` built (scripts/test sets it).

use std::path::PathBuf;

use crate::common::*;

#[test]
fn the_corpus_round_trips_exactly() {
    let Some(corpus) = std::env::var_os("LIFEBOAT_CORPUS").map(PathBuf::from) else {
        eprintln!("skipped: set LIFEBOAT_CORPUS to the corpus folder (scripts/test does)");
        return;
    };
    let parts: Vec<String> = std::env::var("LIFEBOAT_CORPUS_PARTS")
        .unwrap_or_else(|_| "kernel,photos,music,db".into())
        .split(',')
        .map(str::to_string)
        .collect();
    for p in &parts {
        assert!(corpus.join(p).is_dir(), "{} is missing: run ../shared/corpus/make-corpus", corpus.join(p).display());
    }
    let paths: Vec<String> = parts.iter().map(|p| format!("\"{}\"", corpus.join(p).display())).collect();
    let sb = Sandbox::new(&format!("[unit.corpus]\npaths = [{}]\n", paths.join(", ")));
    let b = sb.backup(&[]);
    assert_eq!(b["status"], "completed", "{b}");
    let target = sb.dir.path().join("restore");
    let restore = ["backups", "restore", b["slug"].as_str().unwrap(), "--target", target.to_str().unwrap(), "--quiet"];
    // Restored on a small device's budget, one core and 128 MiB, where this machine can make
    // one (as root): the plan of 84,000 entries and the data in flight must fit.
    match small_device::SmallDevice::new(128 << 20) {
        Ok(device) => {
            let mut c = sb.command();
            c.args(restore);
            let out = device.wrap(&c).output().expect("running lifeboat");
            assert!(
                out.status.success(),
                "the restore on one core in 128 MiB failed ({:?}; signal 9 is the kernel's out-of-memory kill):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(why) => {
            eprintln!("no small device here ({why}): restoring without a memory limit");
            sb.ok(&restore);
        }
    }
    for p in &parts {
        let src = corpus.join(p);
        let diffs = compare_trees(&src, &rerooted(&target, &src));
        assert!(diffs.is_empty(), "{p}: {} differences, first: {:?}", diffs.len(), &diffs[..diffs.len().min(5)]);
    }
    // The same backup as one file: written in bounded memory, and read back by GNU tar, age
    // and zstd alone into the same trees.
    let file = sb.dir.path().join("corpus.lifeboat.tar");
    let slug = b["slug"].as_str().unwrap();
    let (out, peak) = run_measuring_memory(&sb, &["backups", "export", slug, "-o", file.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let size = std::fs::metadata(&file).unwrap().len();
    eprintln!("export: {size} bytes, peak memory {} MiB", peak >> 20);
    assert!(peak < 200 << 20, "export's peak memory {} MiB is not under 200 MiB", peak >> 20);
    std::fs::remove_dir_all(&target).unwrap();
    let unpacked = unpack_with_standard_tools(&file, &sb.dir.path().join("unpacked"), "correct horse battery staple");
    std::fs::remove_file(&file).unwrap();
    for p in &parts {
        let src = corpus.join(p);
        let diffs = compare_trees(&src, &rerooted(&unpacked.join("tree"), &src));
        assert!(diffs.is_empty(), "{p} by tar: {} differences, first: {:?}", diffs.len(), &diffs[..diffs.len().min(5)]);
    }
    let check = sb.run(&["check", "--read-data", "--quiet"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}
