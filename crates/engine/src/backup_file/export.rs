//! Writing a backup file. Every length is computed before the first byte is written, from the
//! repository's index alone: tar headers are planned, each stored blob's zstd frame is
//! spliced into the unit's `.tar.zst` as it is (data is never compressed twice), and plain
//! bytes (headers, incompressible data) go in raw zstd frames of known length. So a file can
//! stream to a pipe or an HTTP response, with its length announced, in bounded memory.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use lifeboat_repository::{BlobPayload, Id, Node, NodeKind, RawBytes, Repository, Snapshot};
use rayon::prelude::*;

use super::frames;
use super::manifest::{self, Manifest, RootPath, UnitFile};
use super::tarfmt::{self, EntryKind, TarEntry};
use super::{age_len, passphrase_recipient, HashingWriter, SharedBuf};
use crate::progress::Progress;
use crate::{EngineError, EngineResult};

/// A blob read ahead of the writer is at most this many bytes of payload per batch.
const BATCH_BYTES: u64 = 4 << 20;
const BATCH_BLOBS: usize = 32;
/// Headers and small files are gathered into raw frames of up to this many bytes.
const RAW_FRAME: usize = 1 << 20;
/// Zero blobs of at least this length become holes of a sparse file.
const MIN_HOLE: u32 = 4096;

pub struct ExportRequest {
    /// Encrypts each unit's file with age under this passphrase.
    pub passphrase: Option<String>,
    /// Lifeboat's configuration (without secrets) to carry along.
    pub config: Option<String>,
}

/// A backup file ready to be written: its manifest and its exact length.
pub struct Export<'a> {
    repo: &'a Repository,
    manifest: Manifest,
    manifest_json: Vec<u8>,
    units: Vec<UnitPlan>,
    len: u64,
}

struct UnitPlan {
    entries: Vec<Planned>,
    /// Length of the `.tar.zst`, before any encryption.
    tar_zst: u64,
    age: Option<AgeStream>,
}

struct Planned {
    tar: TarEntry,
    /// The blobs whose content is stored, in order (holes left out).
    blobs: Vec<Id>,
}

impl Export<'_> {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The exact length of the file [`Export::write`] writes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

pub fn plan<'a>(repo: &'a Repository, snapshot: &Snapshot, req: ExportRequest) -> EngineResult<Export<'a>> {
    repo.load_index()?;
    // Each unit's age header first: its scrypt needs 128 MiB for a moment, better spent
    // before the entry lists are held than on top of them.
    let mut ages = Vec::new();
    for su in &snapshot.units {
        ages.push(match &req.passphrase {
            Some(p) => Some(AgeStream::new(p).map_err(|e| EngineError::io("starting the encryption of", &su.name, e))?),
            None => None,
        });
    }
    let mut ages = ages.into_iter();
    let mut zeros = ZeroIds::default();
    let mut units = Vec::new();
    let mut files = Vec::new();
    let mut backup = snapshot.clone();
    for su in &mut backup.units {
        let mut entries = Vec::new();
        let mut links = HashMap::new();
        let mut roots = Vec::new();
        for (i, root) in su.roots.iter_mut().enumerate() {
            let archive = archive_path(&su.kind, &su.name, i, &root.absolute.0);
            walk(repo, &root.node, archive.clone(), &mut entries, &mut links, &mut zeros)?;
            roots.push(RootPath { path: root.path.clone(), archive: RawBytes(archive) });
            // The repository's ids mean nothing outside it.
            root.node.content.clear();
            root.node.subtree = None;
        }
        let tar_zst = {
            let mut count = Count { repo, len: 0 };
            emit(&entries, &mut count)?;
            count.len
        };
        let age = ages.next().flatten();
        let size = match &age {
            Some(a) => age_len(a.header_len, tar_zst),
            None => tar_zst,
        };
        let file = format!("units/{}.tar.zst{}", su.name, if age.is_some() { ".age" } else { "" });
        files.push(UnitFile { name: su.name.clone(), file, size, encrypted: age.is_some(), roots });
        units.push(UnitPlan { entries, tar_zst, age });
    }
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        program: format!("lifeboat {}", env!("CARGO_PKG_VERSION")),
        created: jiff::Timestamp::now(),
        backup,
        units: files,
        config: req.config,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest).expect("manifests serialise");
    let when = manifest.created;
    let mut len = outer_len(manifest_json.len() as u64, manifest::MANIFEST_NAME, when);
    let mut names = vec![manifest::MANIFEST_NAME.to_string()];
    for u in &manifest.units {
        len += outer_len(u.size, &u.file, when);
        names.push(u.file.clone());
    }
    len += outer_len(manifest::sums_len(&names), manifest::SUMS_NAME, when) + 2 * tarfmt::BLOCK;
    Ok(Export { repo, manifest, manifest_json, units, len })
}

/// Where a unit's root is inside its tar: its path on the device without the leading `/`
/// (so `tar -x -C DIR` gives what `restore --target DIR` gives); a command unit's data is
/// under `lifeboat-units/NAME`, as a restore with --target puts it.
fn archive_path(kind: &str, unit: &str, index: usize, absolute: &[u8]) -> Vec<u8> {
    if kind == "command" {
        let base = format!("lifeboat-units/{unit}");
        return if index == 0 { base.into_bytes() } else { format!("{base}-{index}").into_bytes() };
    }
    let trimmed: Vec<u8> = absolute.iter().copied().skip_while(|&b| b == b'/').collect();
    if trimmed.is_empty() {
        b".".to_vec()
    } else {
        trimmed
    }
}

fn outer_len(size: u64, name: &str, when: jiff::Timestamp) -> u64 {
    let header = tarfmt::encode_header(&outer_entry(name, size, when)).len() as u64;
    header + size + tarfmt::padding(size)
}

fn outer_entry(name: &str, size: u64, when: jiff::Timestamp) -> TarEntry {
    TarEntry {
        path: name.as_bytes().to_vec(),
        kind: EntryKind::File,
        mode: 0o600,
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        mtime: lifeboat_repository::Timestamp(when.as_second().max(0), 0),
        size,
        link: None,
        device: (0, 0),
        xattrs: Vec::new(),
        sparse: None,
    }
}

fn walk(
    repo: &Repository,
    node: &Node,
    path: Vec<u8>,
    out: &mut Vec<Planned>,
    links: &mut HashMap<(u64, u64), Vec<u8>>,
    zeros: &mut ZeroIds,
) -> EngineResult<()> {
    let kind = match node.kind {
        NodeKind::File => EntryKind::File,
        NodeKind::Dir => EntryKind::Dir,
        NodeKind::Symlink => EntryKind::Symlink,
        NodeKind::Fifo => EntryKind::Fifo,
        NodeKind::CharDevice => EntryKind::CharDevice,
        NodeKind::BlockDevice => EntryKind::BlockDevice,
        // tar has no sockets; a restore does not make them either.
        NodeKind::Socket => return Ok(()),
    };
    let rdev = node.rdev.unwrap_or(0);
    let mut tar = TarEntry {
        path: path.clone(),
        kind,
        mode: node.mode,
        uid: node.uid as u64,
        gid: node.gid as u64,
        user: node.user.clone(),
        group: node.group.clone(),
        mtime: node.mtime,
        size: if kind == EntryKind::File { node.size } else { 0 },
        link: node.target.as_ref().map(|t| t.0.clone()),
        device: (libc::major(rdev) as u32, libc::minor(rdev) as u32),
        xattrs: node.xattrs.iter().map(|x| (x.name.0.clone(), x.value.clone())).collect(),
        sparse: None,
    };
    let mut blobs = Vec::new();
    if kind == EntryKind::File {
        let first = (node.links > 1).then(|| links.get(&(node.device, node.inode)).cloned()).flatten();
        if let Some(first) = first {
            tar.kind = EntryKind::HardLink;
            tar.link = Some(first);
            tar.size = 0;
        } else {
            if node.links > 1 {
                links.insert((node.device, node.inode), path.clone());
            }
            let mut segments: Vec<(u64, u64)> = Vec::new();
            let mut at = 0u64;
            let mut holes = false;
            for id in &node.content {
                let raw = repo.blob_length(id).ok_or(lifeboat_repository::RepoError::MissingBlob(*id))?;
                if zeros.is_zero(repo, id, raw) {
                    holes = true;
                } else {
                    match segments.last_mut() {
                        Some((off, len)) if *off + *len == at => *len += raw,
                        _ => segments.push((at, raw)),
                    }
                    blobs.push(*id);
                }
                at += raw;
            }
            if holes {
                // A file ending in a hole gets an empty last stretch at its end, so readers
                // give it its full length.
                if segments.last().is_none_or(|(o, l)| o + l < node.size) {
                    segments.push((node.size, 0));
                }
                tar.sparse = Some(segments);
            }
        }
    }
    out.push(Planned { tar, blobs });
    if let (NodeKind::Dir, Some(sub)) = (node.kind, node.subtree) {
        let tree = repo.read_tree(&sub)?;
        for child in &tree.nodes {
            let name = &child.name.0;
            if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
                continue;
            }
            let child_path = if path == b"." { name.clone() } else { [path.as_slice(), b"/", name].concat() };
            walk(repo, child, child_path, out, links, zeros)?;
        }
    }
    Ok(())
}

/// Recognises blobs of zeros by their id, without reading them: only blobs that compressed
/// extremely well are candidates, and the id of zeros of each such length is computed once.
#[derive(Default)]
struct ZeroIds(HashMap<u64, Id>);

impl ZeroIds {
    fn is_zero(&mut self, repo: &Repository, id: &Id, raw: u64) -> bool {
        if raw < MIN_HOLE as u64 {
            return false;
        }
        match repo.blob_payload_len(id) {
            Some((true, payload)) if payload * 64 < raw => {
                *self.0.entry(raw).or_insert_with(|| repo.blob_id(&vec![0u8; raw as usize])) == *id
            }
            _ => false,
        }
    }
}

/// Where a unit's stream goes: raw frames and spliced blob frames.
trait FrameOut {
    fn raw_frame(&mut self, data: &[u8]) -> EngineResult<()>;
    fn blob(&mut self, id: &Id) -> EngineResult<()>;
}

/// Lays out a unit's `.tar.zst`: the same calls whether counting or writing, so the length
/// counted is the length written.
fn emit(entries: &[Planned], out: &mut dyn FrameOut) -> EngineResult<()> {
    let mut pending: Vec<u8> = Vec::new();
    let flush = |pending: &mut Vec<u8>, out: &mut dyn FrameOut| -> EngineResult<()> {
        if !pending.is_empty() {
            out.raw_frame(pending)?;
            pending.clear();
        }
        Ok(())
    };
    for p in entries {
        pending.extend(tarfmt::encode_header(&p.tar));
        if let Some(segs) = &p.tar.sparse {
            pending.extend(tarfmt::sparse_map(segs));
        }
        for id in &p.blobs {
            flush(&mut pending, out)?;
            out.blob(id)?;
        }
        pending.resize(pending.len() + tarfmt::padding(tarfmt::stored_size(&p.tar)) as usize, 0);
        if pending.len() >= RAW_FRAME {
            flush(&mut pending, out)?;
        }
    }
    pending.extend([0u8; 2 * tarfmt::BLOCK as usize]);
    flush(&mut pending, out)
}

struct Count<'a> {
    repo: &'a Repository,
    len: u64,
}

impl FrameOut for Count<'_> {
    fn raw_frame(&mut self, data: &[u8]) -> EngineResult<()> {
        self.len += frames::raw_len(data.len() as u64);
        Ok(())
    }

    fn blob(&mut self, id: &Id) -> EngineResult<()> {
        let (zstd, payload) = self.repo.blob_payload_len(id).ok_or(lifeboat_repository::RepoError::MissingBlob(*id))?;
        self.len += if zstd { payload } else { frames::raw_len(payload) };
        Ok(())
    }
}

/// An age stream made at planning time (so its header's length is known), writing into a
/// buffer that the writer drains into the file.
struct AgeStream {
    header_len: u64,
    buf: Arc<Mutex<Vec<u8>>>,
    stream: age::stream::StreamWriter<SharedBuf>,
}

impl AgeStream {
    fn new(passphrase: &str) -> io::Result<AgeStream> {
        let recipient = passphrase_recipient(passphrase);
        let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(io::Error::other)?;
        let buf = Arc::new(Mutex::new(Vec::new()));
        let stream = enc.wrap_output(SharedBuf(buf.clone()))?;
        let header_len = buf.lock().expect("age buffer").len() as u64;
        Ok(AgeStream { header_len, buf, stream })
    }
}

/// The bytes of a unit's file: through age when encrypted, then hashed and counted.
struct UnitSink<'w> {
    out: HashingWriter<&'w mut dyn Write>,
    age: Option<AgeStream>,
}

impl UnitSink<'_> {
    fn drain(&mut self) -> io::Result<()> {
        if let Some(a) = &self.age {
            let bytes = std::mem::take(&mut *a.buf.lock().expect("age buffer"));
            self.out.write_all(&bytes)?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<(u64, [u8; 32])> {
        self.drain()?;
        if let Some(a) = self.age.take() {
            a.stream.finish()?;
            let bytes = std::mem::take(&mut *a.buf.lock().expect("age buffer"));
            self.out.write_all(&bytes)?;
        }
        Ok(self.out.finish())
    }
}

impl Write for UnitSink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.age {
            Some(a) => {
                a.stream.write_all(data)?;
                self.drain()?;
                Ok(data.len())
            }
            None => self.out.write(data),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes frames, taking blob payloads from the read-ahead thread in order.
struct Writing<'s, 'w> {
    sink: &'s mut UnitSink<'w>,
    ahead: &'s std::sync::mpsc::Receiver<EngineResult<Vec<BlobPayload>>>,
    batch: VecDeque<BlobPayload>,
    progress: &'s Progress,
}

impl FrameOut for Writing<'_, '_> {
    fn raw_frame(&mut self, data: &[u8]) -> EngineResult<()> {
        frames::write_raw(self.sink, data).map_err(write_error)?;
        self.progress.add(0, 0);
        Ok(())
    }

    fn blob(&mut self, _id: &Id) -> EngineResult<()> {
        lifeboat_storage::faults::crash_point();
        if self.progress.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        lifeboat_storage::faults::pause_point(|| "export: a blob to write".to_string());
        if self.batch.is_empty() {
            let next = self.ahead.recv().map_err(|_| EngineError::Cancelled)??;
            self.batch = next.into();
        }
        match self.batch.pop_front().ok_or(EngineError::Cancelled)? {
            BlobPayload::Zstd(frame) => {
                self.sink.write_all(&frame).map_err(write_error)?;
                self.progress.add(0, frame.len() as u64);
            }
            BlobPayload::Raw(plain) => {
                frames::write_raw(self.sink, &plain).map_err(write_error)?;
                self.progress.add(0, plain.len() as u64);
            }
        }
        Ok(())
    }
}

fn write_error(e: io::Error) -> EngineError {
    EngineError::io("writing", "the backup file", e)
}

impl Export<'_> {
    /// Writes the whole file to `out`. Progress counts bytes written against [`Export::len`].
    pub fn write(self, out: &mut dyn Write, progress: &Progress) -> EngineResult<()> {
        let Export { repo, manifest, manifest_json, units, len } = self;
        let files: u64 = units.iter().map(|u| u.entries.len() as u64).sum();
        progress.set_totals(files, len, true);
        progress.set_phase("writing the backup file");
        let when = manifest.created;
        let mut sums = Vec::new();
        let put = |out: &mut dyn Write, name: &str, data: &[u8]| -> io::Result<()> {
            out.write_all(&tarfmt::encode_header(&outer_entry(name, data.len() as u64, when)))?;
            out.write_all(data)?;
            out.write_all(&vec![0u8; tarfmt::padding(data.len() as u64) as usize])
        };
        put(out, manifest::MANIFEST_NAME, &manifest_json).map_err(write_error)?;
        sums.push((manifest::MANIFEST_NAME.to_string(), *blake3::hash(&manifest_json).as_bytes()));
        for (plan, file) in units.into_iter().zip(&manifest.units) {
            progress.set_phase(format!("writing unit {}", file.name));
            out.write_all(&tarfmt::encode_header(&outer_entry(&file.file, file.size, when))).map_err(write_error)?;
            let ids: Vec<Id> = plan.entries.iter().flat_map(|p| p.blobs.iter().copied()).collect();
            let (written, hash) = std::thread::scope(|s| -> EngineResult<(u64, [u8; 32])> {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                s.spawn(move || read_ahead(repo, &ids, tx));
                let mut sink = UnitSink { out: HashingWriter::new(&mut *out), age: plan.age };
                let mut w = Writing { sink: &mut sink, ahead: &rx, batch: VecDeque::new(), progress };
                let result = emit(&plan.entries, &mut w);
                drop(rx);
                result?;
                sink.finish().map_err(write_error)
            })?;
            if written != file.size {
                return Err(EngineError::BackupFile {
                    file: file.file.clone(),
                    detail: format!(
                        "came out {written} bytes long instead of the {} planned (tar.zst {}): please report this",
                        file.size, plan.tar_zst
                    ),
                });
            }
            progress.add(plan.entries.len() as u64, 0);
            out.write_all(&vec![0u8; tarfmt::padding(written) as usize]).map_err(write_error)?;
            sums.push((file.file.clone(), hash));
        }
        put(out, manifest::SUMS_NAME, manifest::sums_text(&sums).as_bytes()).map_err(write_error)?;
        out.write_all(&[0u8; 2 * tarfmt::BLOCK as usize]).map_err(write_error)?;
        out.flush().map_err(write_error)
    }
}

/// Reads blob payloads in the order they are written, a batch at a time, each batch in
/// parallel; the bounded channel keeps at most a few batches in memory.
fn read_ahead(repo: &Repository, ids: &[Id], tx: std::sync::mpsc::SyncSender<EngineResult<Vec<BlobPayload>>>) {
    let mut start = 0;
    while start < ids.len() {
        let mut end = start;
        let mut bytes = 0u64;
        while end < ids.len() && end - start < BATCH_BLOBS && bytes < BATCH_BYTES {
            bytes += repo.blob_payload_len(&ids[end]).map(|(_, l)| l).unwrap_or(0);
            end += 1;
        }
        let batch: EngineResult<Vec<BlobPayload>> =
            ids[start..end].par_iter().map(|id| repo.read_blob_payload(id).map_err(EngineError::from)).collect();
        let failed = batch.is_err();
        if tx.send(batch).is_err() || failed {
            return;
        }
        start = end;
    }
}
