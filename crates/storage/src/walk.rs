//! The recursive listing every backend with folders does the same way: from a prefix's
//! folder down, objects by their full names, temporary objects apart from the rest, and a
//! folder that vanished meanwhile taken as empty. The backend only reads folders (blocking or
//! not, which is why this is a cursor and not a function taking a callback).

use crate::store::is_temporary;
use crate::ObjectInfo;

/// A listing in progress. `D` is how the backend names a folder (a path), `M` what it keeps
/// of each object besides its size (its modification time, to age temporaries).
pub(crate) struct Walk<D, M> {
    stack: Vec<(D, String)>,
    temporaries: bool,
    found: Vec<(ObjectInfo, M)>,
}

impl<D, M> Walk<D, M> {
    /// Lists the objects under `prefix`, whose folder the backend calls `root`; the temporary
    /// objects instead when `temporaries` is set.
    pub(crate) fn new(root: D, prefix: &str, temporaries: bool) -> Self {
        Walk { stack: vec![(root, prefix.to_string())], temporaries, found: Vec::new() }
    }

    /// The next folder to read, and the object name it stands for.
    pub(crate) fn next_folder(&mut self) -> Option<(D, String)> {
        self.stack.pop()
    }

    /// Every folder waiting to be read (a level, for backends that read folders at once).
    pub(crate) fn take_folders(&mut self) -> Vec<(D, String)> {
        std::mem::take(&mut self.stack)
    }

    /// A folder found in the folder named `parent`.
    pub(crate) fn folder(&mut self, folder: D, parent: &str, file_name: &str) {
        if !is_dot(file_name) {
            self.stack.push((folder, format!("{parent}/{file_name}")));
        }
    }

    /// Whether a file of this name is listed (so whether to ask for its size).
    pub(crate) fn wants_file(&self, file_name: &str) -> bool {
        !is_dot(file_name) && is_temporary(file_name) == self.temporaries
    }

    /// A file found in the folder named `parent`; left out unless [`Walk::wants_file`].
    pub(crate) fn file(&mut self, parent: &str, file_name: &str, size: u64, meta: M) {
        if self.wants_file(file_name) {
            self.found.push((ObjectInfo { name: format!("{parent}/{file_name}"), size }, meta));
        }
    }

    /// Everything found, by name.
    pub(crate) fn finish(mut self) -> Vec<(ObjectInfo, M)> {
        self.found.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        self.found
    }
}

fn is_dot(file_name: &str) -> bool {
    file_name == "." || file_name == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_names_objects_by_their_full_names_and_keeps_temporaries_apart() {
        let tree = |dir: &str| -> Vec<(&'static str, bool)> {
            match dir {
                "/r/data" => vec![(".", true), ("..", true), ("ab", true), (".tmp-1", false), ("x", false)],
                "/r/data/ab" => vec![("abc", false)],
                _ => vec![],
            }
        };
        for (temporaries, want) in [(false, vec!["data/ab/abc", "data/x"]), (true, vec!["data/.tmp-1"])] {
            let mut walk: Walk<String, ()> = Walk::new("/r/data".to_string(), "data", temporaries);
            while let Some((dir, name)) = walk.next_folder() {
                for (entry, is_dir) in tree(&dir) {
                    if is_dir {
                        walk.folder(format!("{dir}/{entry}"), &name, entry);
                    } else {
                        walk.file(&name, entry, 1, ());
                    }
                }
            }
            let names: Vec<String> = walk.finish().into_iter().map(|(o, _)| o.name).collect();
            assert_eq!(names, want);
        }
    }
}
