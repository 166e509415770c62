//! zstd frames of stored (uncompressed) bytes, so a `.tar.zst` stream can mix the
//! repository's own compressed frames with tar headers and incompressible data, and its exact
//! length is known before any byte is written. RFC 8878: a frame is magic, a header, then
//! blocks; a raw block is a 3-byte header and the bytes.

use std::io::{self, Write};

/// The largest block a frame with a 128 KiB window may hold.
const MAX_BLOCK: usize = 128 * 1024;
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Frame header descriptor: no content size, no checksum, no dictionary, not single-segment
/// (so a window descriptor follows).
const DESCRIPTOR: u8 = 0x00;
/// Window descriptor: exponent 7, mantissa 0, i.e. 2^(10+7) = 128 KiB.
const WINDOW: u8 = 7 << 3;

fn blocks(len: u64) -> u64 {
    len.div_ceil(MAX_BLOCK as u64).max(1)
}

/// Length of the frame [`write_raw`] makes of `len` bytes.
pub(crate) fn raw_len(len: u64) -> u64 {
    MAGIC.len() as u64 + 2 + 3 * blocks(len) + len
}

/// Writes `data` as one zstd frame of raw blocks.
pub(crate) fn write_raw(out: &mut dyn Write, data: &[u8]) -> io::Result<()> {
    out.write_all(&MAGIC)?;
    out.write_all(&[DESCRIPTOR, WINDOW])?;
    let mut pieces = data.chunks(MAX_BLOCK).peekable();
    if pieces.peek().is_none() {
        return out.write_all(&block_header(true, 0));
    }
    while let Some(piece) = pieces.next() {
        out.write_all(&block_header(pieces.peek().is_none(), piece.len()))?;
        out.write_all(piece)?;
    }
    Ok(())
}

fn block_header(last: bool, len: usize) -> [u8; 3] {
    // Bit 0: last block; bits 1-2: block type (0 = raw); bits 3-23: size.
    let v = (len as u32) << 3 | last as u32;
    [v as u8, (v >> 8) as u8, (v >> 16) as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_frames_decode_with_zstd_and_have_the_announced_length() {
        for n in [0usize, 1, 1000, MAX_BLOCK, MAX_BLOCK + 1, 3 * MAX_BLOCK + 17] {
            let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
            let mut frame = Vec::new();
            write_raw(&mut frame, &data).unwrap();
            assert_eq!(frame.len() as u64, raw_len(n as u64), "length of a frame of {n} bytes");
            // Concatenated with an ordinary compressed frame, as in a backup file.
            frame.extend(zstd::bulk::compress(b"and more", 3).unwrap());
            let back = zstd::stream::decode_all(&frame[..]).unwrap();
            assert_eq!(&back[..n], &data[..]);
            assert_eq!(&back[n..], b"and more");
        }
    }
}
