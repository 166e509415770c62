//! Paths and patterns as a person gives them, read into the backup's own namespace: a unit
//! root's path as written in the configuration (`~/notes`, `/etc/hosts`) and the entries
//! below it. A path typed with the home spelled out (`/home/nemo/notes`, what a shell makes of
//! `~/notes`) means the same as `~/notes`.

use std::path::Path;

use globset::{Glob, GlobMatcher};

use crate::{EngineError, EngineResult};

/// A path of the backup's namespace: `~`, `~/…` or `/…`, no empty, `.` or `..` component,
/// no trailing slash.
pub(crate) fn normalize(input: &str, homes: &[&Path]) -> EngineResult<String> {
    let bad = |detail: &str| EngineError::BadName { what: format!("path {input:?}"), detail: detail.to_string() };
    if input.contains('\0') || input.contains('\n') {
        return Err(bad("holds a NUL or a line break: give a path of the backup"));
    }
    let mut text = input.trim_end_matches('/').to_string();
    if text.is_empty() && input.starts_with('/') {
        text = "/".into();
    }
    for home in homes {
        let h = home.to_string_lossy();
        let h = h.trim_end_matches('/');
        if h.is_empty() {
            continue;
        }
        if text == h {
            text = "~".into();
        } else if let Some(rest) = text.strip_prefix(h).filter(|r| r.starts_with('/')) {
            text = format!("~{rest}");
        }
    }
    let body = if text == "~" || text == "/" {
        ""
    } else if let Some(r) = text.strip_prefix("~/") {
        r
    } else if let Some(r) = text.strip_prefix('/') {
        r
    } else {
        return Err(bad("is relative: give it as the backup shows it, from ~ or /, as `backups ls` lists it"));
    };
    let mut parts = Vec::new();
    for c in body.split('/') {
        match c {
            "" | "." => continue,
            ".." => return Err(bad("climbs with ..: give the path without it")),
            c => parts.push(c),
        }
    }
    let anchor = if text.starts_with('~') { "~" } else { "" };
    Ok(match (anchor, parts.is_empty()) {
        ("~", true) => "~".into(),
        (_, true) => "/".into(),
        (a, false) => format!("{a}/{}", parts.join("/")),
    })
}

/// `child` lies in `dir` (or is it), both normalized.
pub(crate) fn within(child: &str, dir: &str) -> bool {
    if dir == "/" {
        return child.starts_with('/');
    }
    child == dir || child.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// The path of an entry named `name` in folder `dir`.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// One pattern of `find` or of `restore --path`: without a `/` it matches the entry's name
/// (`*.jpg`), else the whole path (`~/photos/**/*.jpg`, `~/notes/todo.txt`). `*` stays within
/// one component, `**` crosses them.
#[derive(Debug, Clone)]
pub(crate) struct PathPattern {
    by_name: bool,
    matcher: GlobMatcher,
    /// The components before the first wildcard: only paths along it can match.
    literal: String,
}

impl PathPattern {
    pub fn new(input: &str, homes: &[&Path]) -> EngineResult<PathPattern> {
        let by_name = !input.contains('/') && input != "~";
        let text = if by_name { input.to_string() } else { normalize(input, homes)? };
        let matcher = globset::GlobBuilder::new(&text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map(|g: Glob| g.compile_matcher())
            .map_err(|e| EngineError::BadName {
                what: format!("pattern {input:?}"),
                detail: format!("is not a glob ({e}): use *, ?, [abc] and ** for any folders"),
            })?;
        let literal = if by_name {
            String::new()
        } else {
            let wild = text.find(['*', '?', '[', '{', '\\']).unwrap_or(text.len());
            match text[..wild].rfind('/') {
                _ if wild == text.len() => text.clone(),
                Some(0) => "/".into(),
                Some(i) => text[..i].to_string(),
                None => text[..wild].to_string(),
            }
        };
        Ok(PathPattern { by_name, matcher, literal })
    }

    /// Whether the entry at `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        if self.by_name {
            let name = path.rsplit('/').next().unwrap_or(path);
            self.matcher.is_match(name)
        } else {
            self.matcher.is_match(path)
        }
    }

    /// Whether anything at or below `path` can match: false only when `path` leaves the
    /// pattern's literal start, so a walk need not go there.
    pub fn may_match_below(&self, path: &str) -> bool {
        self.by_name || self.literal.is_empty() || within(path, &self.literal) || within(&self.literal, path)
    }
}

/// Several patterns; an entry is chosen when any matches it or a folder it lies in.
#[derive(Debug, Clone, Default)]
pub(crate) struct Choice {
    patterns: Vec<PathPattern>,
}

impl Choice {
    pub fn new(inputs: &[String], homes: &[&Path]) -> EngineResult<Choice> {
        let mut patterns = Vec::new();
        for input in inputs {
            let mapped = PathPattern::new(input, homes)?;
            // A path typed with the home spelled out also means a unit configured so.
            let plain = PathPattern::new(input, &[])?;
            if plain.literal != mapped.literal {
                patterns.push(plain);
            }
            patterns.push(mapped);
        }
        Ok(Choice { patterns })
    }

    pub fn matches(&self, path: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(path))
    }

    pub fn may_match_below(&self, path: &str) -> bool {
        self.patterns.iter().any(|p| p.may_match_below(path))
    }

    /// Whether a pattern matches `path` or a folder it lies in.
    pub fn chooses(&self, path: &str) -> bool {
        let mut p = path;
        loop {
            if self.matches(p) {
                return true;
            }
            match p.rfind('/') {
                Some(0) if p.len() > 1 => p = "/",
                Some(i) if i > 0 => p = &p[..i],
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_into_the_backups_namespace() {
        let home = Path::new("/home/nemo");
        let n = |s: &str| normalize(s, &[home]);
        assert_eq!(n("~/notes/").unwrap(), "~/notes");
        assert_eq!(n("/home/nemo/notes//a.txt").unwrap(), "~/notes/a.txt");
        assert_eq!(n("/home/nemo").unwrap(), "~");
        assert_eq!(n("/home/nemonet/x").unwrap(), "/home/nemonet/x");
        assert_eq!(n("/etc/./hosts").unwrap(), "/etc/hosts");
        assert_eq!(n("/").unwrap(), "/");
        assert!(n("notes").is_err());
        assert!(n("~/a/../../etc").is_err());
        assert!(within("~/a/b", "~/a") && within("~/a", "~/a") && !within("~/ab", "~/a") && within("/x", "/"));
    }

    #[test]
    fn patterns_match_names_or_paths_and_know_where_to_look() {
        let home = Path::new("/home/nemo");
        let p = PathPattern::new("*.jpg", &[home]).unwrap();
        assert!(p.matches("~/photos/a.jpg") && !p.matches("~/photos.jpg/a.png"));
        let p = PathPattern::new("~/photos/*.jpg", &[home]).unwrap();
        assert!(p.matches("~/photos/a.jpg") && !p.matches("~/photos/x/a.jpg"));
        assert!(p.may_match_below("~") && p.may_match_below("~/photos") && !p.may_match_below("~/music"));
        let p = PathPattern::new("/home/nemo/photos/**/*.jpg", &[home]).unwrap();
        assert!(p.matches("~/photos/x/y/a.jpg"));
        let p = PathPattern::new("~/notes/todo.txt", &[home]).unwrap();
        assert!(p.matches("~/notes/todo.txt") && p.may_match_below("~/notes") && !p.may_match_below("~/notesx"));
        assert!(PathPattern::new("~/[x", &[home]).is_err());
        // The home spelled out means `~`, and also a unit configured with it spelled out.
        let c = Choice::new(&["/home/nemo/notes".to_string()], &[home]).unwrap();
        assert!(c.matches("~/notes") && c.matches("/home/nemo/notes") && c.chooses("/home/nemo/notes/a"));
        assert!(!c.matches("/home/nemonet/notes"));
    }
}
