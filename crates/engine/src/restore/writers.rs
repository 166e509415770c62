//! Which processes have a file open for writing, from `/proc/*/fd` and `/proc/*/fdinfo`: a
//! database restored under its application would be written on by it as a file no longer
//! there, and every later write lost.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A process, as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: u32,
    pub command: String,
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.command)
    }
}

/// The processes that have any of `paths` open for writing, and whether some processes could
/// not be looked into (those of other users, when not root): one of them may write too.
pub(crate) fn writers(paths: &[PathBuf]) -> (Vec<Process>, bool) {
    let files: HashSet<(u64, u64)> =
        paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| (m.dev(), m.ino())).collect();
    if files.is_empty() {
        return (Vec::new(), false);
    }
    let me = std::process::id();
    let mut found = Vec::new();
    let mut unchecked = false;
    let Ok(procs) = std::fs::read_dir("/proc") else { return (found, true) };
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let dir = e.path();
        let fds = match std::fs::read_dir(dir.join("fd")) {
            Ok(fds) => fds,
            // Gone meanwhile: it writes nothing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => {
                unchecked = true;
                continue;
            }
        };
        let writes = fds.flatten().any(|fd| {
            std::fs::metadata(fd.path()).is_ok_and(|m| files.contains(&(m.dev(), m.ino())))
                && writable(&dir.join("fdinfo").join(fd.file_name()))
        });
        if writes {
            let command = std::fs::read_to_string(dir.join("comm")).unwrap_or_default().trim_end().to_string();
            found.push(Process { pid, command });
        }
    }
    found.sort_by_key(|p| p.pid);
    (found, unchecked)
}

/// Whether the descriptor whose `/proc/PID/fdinfo/N` this is was opened for writing.
fn writable(fdinfo: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(fdinfo) else { return false };
    text.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| matches!(flags & 0o3, 0o1 | 0o2))
}

/// A database file and the journals SQLite writes beside it.
pub(crate) fn database_files(db: &Path) -> Vec<PathBuf> {
    let mut out = vec![db.to_path_buf()];
    for suffix in ["-wal", "-journal"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        out.push(PathBuf::from(side));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_open_for_writing_here_is_found_and_one_open_for_reading_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"x").unwrap();
        // This process is left out, so a child holds the files.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 3>>\"$1\" 4<\"$2\"; echo ready; read x")
            .arg("sh")
            .arg(&a)
            .arg(&b)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut ready).unwrap();
        let (on_a, _) = writers(&database_files(&a));
        assert_eq!(on_a, vec![Process { pid: child.id(), command: "sh".into() }]);
        assert!(writers(&database_files(&b)).0.is_empty());
        drop(child.stdin.take());
        child.wait().unwrap();
    }
}
