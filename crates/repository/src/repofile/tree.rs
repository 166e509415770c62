use serde::{Deserialize, Serialize};

use crate::raw_bytes::base64_bytes;
use crate::{Id, RawBytes};

/// A folder's listing: one [`Node`] per entry, sorted by name bytes. Stored as a tree blob
/// holding this JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// What kind of file system entry a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// Seconds and nanoseconds since 1970 (negative before it), stored as `[s, ns]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Timestamp(pub i64, pub u32);

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    pub name: RawBytes,
    #[serde(with = "base64_bytes")]
    pub value: Vec<u8>,
}

/// One file system entry and everything needed to put it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: RawBytes,
    pub kind: NodeKind,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub size: u64,
    pub inode: u64,
    pub device: u64,
    /// Hard link count at backup time; above 1, entries with the same (device, inode) in one
    /// backup are restored as links to one file.
    pub links: u64,
    /// Data blobs whose concatenation is the file's content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Id>,
    /// The tree blob listing a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    /// A symlink's target, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<RawBytes>,
    /// Device number of character and block devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
}
