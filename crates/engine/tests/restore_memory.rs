//! A restore's memory grows with the number of entries it writes, and that growth must stay
//! small: a Raspberry Pi with 512 MiB restores a tree of hundreds of thousands of files, and
//! a restore killed for memory leaves a person with nothing. This binary counts every byte
//! the process allocates (its own global allocator), so it holds this one test only.

use lifeboat_storage::counting_alloc::Counting;
use std::path::Path;

use lifeboat_engine::app::{BackupOrder, RestoreOrder};
use lifeboat_engine::credentials::Credentials;
use lifeboat_engine::{Dirs, Lifeboat, LoadedConfig, Progress, RunLog};

#[global_allocator]
static ALLOCATOR: Counting = Counting::new();

/// Files in the tree: enough that what each entry costs outweighs everything fixed.
const FILES: usize = 30_000;

/// What a restore may hold per entry of the backup, beyond its fixed costs. The plan keeps
/// one destination path and the backup's node per entry, and the writer a little state per
/// file and per blob (about 990 bytes in all for names like these); a plan that kept copies
/// of each path for its steps and staging decisions held 1,345.
const PER_ENTRY_CEILING: usize = 1_100;

fn make_tree(root: &Path) {
    for i in 0..FILES {
        let dir = root.join(format!("project-{:03}", i / 300)).join(format!("module-{:02}", (i / 30) % 10));
        if i % 30 == 0 {
            std::fs::create_dir_all(&dir).expect("folder");
        }
        std::fs::write(dir.join(format!("source-file-{i:06}.c")), format!("int f{i}(void) {{ return {i}; }}\n"))
            .expect("file");
    }
}

#[test]
fn restore_memory_per_entry_is_bounded() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = tmp.path();
    let data = base.join("data");
    make_tree(&data);
    let dirs = Dirs {
        home: base.join("home"),
        config: base.join("config"),
        data: base.join("state"),
        logs: base.join("logs"),
        cache: None,
        root: false,
    };
    std::fs::create_dir_all(&dirs.home).expect("home");
    let config_file = base.join("lifeboat.toml");
    let config = format!(
        "[location.here]\npath = {:?}\n[unit.tree]\npaths = [{:?}]\n",
        base.join("repo").display().to_string(),
        data.display().to_string()
    );
    std::fs::write(&config_file, config).expect("config");
    let loaded = LoadedConfig::load(Some(&config_file), &dirs).expect("configuration");
    let app = Lifeboat::new(dirs, loaded, Credentials { password_file: None, prompt: None });
    let progress = Progress::default();
    let made = app.back_up(BackupOrder::default(), &progress, |_| RunLog::none()).expect("backup");
    let found = app.find_backup(&made.info.slug, None, None).expect("the backup");
    let target = base.join("restored");
    std::fs::create_dir(&target).expect("target");
    let order = RestoreOrder { target: Some(target.clone()), ..RestoreOrder::default() };

    let before = ALLOCATOR.live();
    ALLOCATOR.restart_peak();
    let report = app.restore(&found, order, &Progress::default(), |_| RunLog::none()).expect("restore");
    let peak = ALLOCATOR.peak() - before;

    assert_eq!(report.files as usize, FILES, "every file restored: {:?}", report.problems);
    let restored =
        target.join(data.strip_prefix("/").expect("absolute")).join("project-099/module-09/source-file-029999.c");
    assert_eq!(std::fs::read_to_string(&restored).expect("restored file"), "int f29999(void) { return 29999; }\n");
    // Fixed costs (the index, read-ahead of packs, thread pools) come on top of the entries.
    let fixed = 4 << 20;
    let per_entry = peak.saturating_sub(fixed) / FILES;
    assert!(
        per_entry <= PER_ENTRY_CEILING,
        "the restore held {peak} bytes at its peak for {FILES} files: {per_entry} bytes per entry, above {PER_ENTRY_CEILING}"
    );
}
