//! An entry of a backup as a restore holds it: what it compares with the device and writes.
//! A restore holds one per entry of the backup until its end (300,000 on a device with many
//! small files), so this keeps 88 bytes of a node's 270: no name (the destination has it), no
//! owner names (the plan's name table has them once), no change time or folder tree, and the
//! fields only links, special files and extended attributes carry behind one pointer.

use lifeboat_repository::{Id, Node, NodeKind, RawBytes, Timestamp, Xattr};

#[derive(Clone)]
pub(crate) struct Entry {
    pub kind: NodeKind,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub mtime: Timestamp,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub inode: u64,
    pub device: u64,
    /// Hard link count at backup time.
    pub links: u64,
    /// Data blobs whose concatenation is the file's content.
    pub content: Box<[Id]>,
    rare: Option<Box<Rare>>,
}

/// What few entries have.
#[derive(Clone)]
struct Rare {
    target: Option<RawBytes>,
    rdev: Option<u64>,
    xattrs: Box<[Xattr]>,
}

impl Entry {
    /// A symlink's target.
    pub fn target(&self) -> Option<&RawBytes> {
        self.rare.as_ref().and_then(|r| r.target.as_ref())
    }

    /// A device node's number.
    pub fn rdev(&self) -> Option<u64> {
        self.rare.as_ref().and_then(|r| r.rdev)
    }

    pub fn xattrs(&self) -> &[Xattr] {
        self.rare.as_ref().map_or(&[], |r| &r.xattrs)
    }
}

impl From<Node> for Entry {
    fn from(node: Node) -> Entry {
        let rare = (node.target.is_some() || node.rdev.is_some() || !node.xattrs.is_empty())
            .then(|| Box::new(Rare { target: node.target, rdev: node.rdev, xattrs: node.xattrs.into_boxed_slice() }));
        Entry {
            kind: node.kind,
            mode: node.mode,
            mtime: node.mtime,
            uid: node.uid,
            gid: node.gid,
            size: node.size,
            inode: node.inode,
            device: node.device,
            links: node.links,
            content: node.content.into_boxed_slice(),
            rare,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_keeps_what_a_restore_writes_in_a_third_of_a_node() {
        assert!(std::mem::size_of::<Entry>() <= 88, "{}", std::mem::size_of::<Entry>());
        assert!(std::mem::size_of::<Entry>() * 3 <= std::mem::size_of::<Node>());
        let node = Node {
            name: RawBytes(b"link".to_vec()),
            kind: NodeKind::Symlink,
            mode: 0o777,
            mtime: Timestamp(5, 6),
            ctime: Timestamp(7, 8),
            uid: 1,
            gid: 2,
            user: None,
            group: None,
            size: 0,
            inode: 9,
            device: 10,
            links: 1,
            content: Vec::new(),
            subtree: None,
            target: Some(RawBytes(b"there".to_vec())),
            rdev: None,
            xattrs: vec![Xattr { name: RawBytes(b"user.a".to_vec()), value: b"b".to_vec() }],
        };
        let entry = Entry::from(node.clone());
        assert_eq!(entry.target(), node.target.as_ref());
        assert_eq!(entry.xattrs(), &node.xattrs[..]);
        assert_eq!((entry.rdev(), entry.mtime, entry.inode, entry.device), (None, node.mtime, 9, 10));
        let plain = Entry::from(Node { target: None, xattrs: Vec::new(), ..node });
        assert!(plain.rare.is_none() && plain.target().is_none() && plain.xattrs().is_empty());
    }
}
