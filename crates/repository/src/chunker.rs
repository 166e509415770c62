//! Content-defined chunking with FastCDC (2020), its gear table keyed by a per-repository
//! secret seed so that chunk boundaries do not fingerprint known files.

use std::io::Read;

use fastcdc::v2020::{FastCDC, Normalization, StreamCDC};

use crate::repofile::config::ChunkerParams;

/// Files up to this size are read whole and cut in memory; larger ones are streamed.
pub const WHOLE_READ_LIMIT: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Chunker {
    params: ChunkerParams,
    seed: u64,
}

impl Chunker {
    pub(crate) fn new(params: ChunkerParams, seed: u64) -> Self {
        Chunker { params, seed }
    }

    /// Below this size a file is one chunk.
    pub fn min_size(&self) -> usize {
        self.params.min_size as usize
    }

    /// No chunk is larger than this.
    pub fn max_size(&self) -> usize {
        self.params.max_size as usize
    }

    /// Cuts a buffer held in memory; yields byte ranges.
    pub fn cut<'a>(&self, data: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let small = data.len() <= self.min_size();
        let mut single = small.then_some(data);
        let mut cdc = (!small).then(|| {
            FastCDC::with_level_and_seed(
                data,
                self.params.min_size,
                self.params.avg_size,
                self.params.max_size,
                Normalization::Level1,
                self.seed,
            )
        });
        std::iter::from_fn(move || {
            if let Some(s) = single.take() {
                return Some(s);
            }
            let c = cdc.as_mut()?.next()?;
            Some(&data[c.offset..c.offset + c.length])
        })
    }

    /// Cuts a stream; yields owned chunks.
    pub fn stream<R: Read>(&self, reader: R) -> impl Iterator<Item = std::io::Result<Vec<u8>>> {
        StreamCDC::with_level_and_seed(
            reader,
            self.params.min_size,
            self.params.avg_size,
            self.params.max_size,
            Normalization::Level1,
            self.seed,
        )
        .map(|r| {
            r.map(|c| c.data).map_err(|e| match e {
                fastcdc::v2020::Error::IoError(e) => e,
                other => std::io::Error::other(other.to_string()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_cover_the_input_and_streaming_agrees() {
        let chunker = Chunker::new(ChunkerParams::default(), 42);
        let mut x = 0x9e3779b97f4a7c15u64;
        let data: Vec<u8> = (0..5_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let cut: Vec<&[u8]> = chunker.cut(&data).collect();
        assert!(cut.len() > 2);
        assert_eq!(cut.concat(), data);
        let streamed: Vec<Vec<u8>> = chunker.stream(&data[..]).map(|c| c.unwrap()).collect();
        assert_eq!(streamed.len(), cut.len());
        assert_eq!(chunker.cut(b"tiny").collect::<Vec<_>>(), vec![b"tiny".as_slice()]);
        assert_eq!(chunker.cut(b"").count(), 1);
    }
}
