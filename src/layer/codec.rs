//! Layer compression codecs: one streaming encoder and decoder per
//! [`Compression`], configured so the same input always gives the same bytes.

use std::io::{self, BufRead, BufReader, Read, Write};

use crate::compression::Compression;
pub use crate::compression::{DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL};

/// Input buffer for decoders that are handed a plain `Read`: large enough
/// that a syscall or a channel hop is amortised over many bytes.
pub(crate) const IO_BUFFER: usize = 256 * 1024;

/// A streaming compressor. Call [`Encoder::finish`] to write the trailer and
/// get the inner writer back; dropping it leaves a truncated stream.
pub enum Encoder<W: Write> {
    Gzip(Box<flate2::write::GzEncoder<W>>),
    Zstd(Box<zstd::stream::write::Encoder<'static, W>>),
    Plain(W),
}

impl<W: Write> Encoder<W> {
    /// Ends the stream (gzip trailer, last zstd frame) and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Plain(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Plain(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(buf),
            Encoder::Zstd(e) => e.write_all(buf),
            Encoder::Plain(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Plain(w) => w.flush(),
        }
    }
}

/// A compressor for `compression` writing into `w`.
///
/// gzip: deterministic header (mtime 0, no file name, OS "unknown"), so the
/// blob digest depends on the content only. zstd: always multithreaded with
/// one worker, with a content checksum; see [`compress_writer_with_workers`].
pub fn compress_writer<W: Write + Send>(
    w: W,
    compression: Compression,
    level: Option<u32>,
) -> io::Result<Encoder<W>> {
    compress_writer_with_workers(w, compression, level, 1)
}

/// Like [`compress_writer`], with `zstd_workers` threads for zstd (ignored by
/// the other codecs).
///
/// zstd is always run in its multithreaded mode, even with one worker: that
/// mode's output does not depend on the worker count (a unit test below
/// checks this), while single-threaded mode frames the data differently. So
/// the digest stays the same whatever parallelism a machine gets.
pub fn compress_writer_with_workers<W: Write + Send>(
    w: W,
    compression: Compression,
    level: Option<u32>,
    zstd_workers: u32,
) -> io::Result<Encoder<W>> {
    check_level(compression, level)?;
    match compression {
        Compression::Gzip => {
            let level = level.unwrap_or(DEFAULT_GZIP_LEVEL);
            let encoder = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(255)
                .write(w, flate2::Compression::new(level));
            Ok(Encoder::Gzip(Box::new(encoder)))
        }
        Compression::Zstd => {
            let level = level.unwrap_or(DEFAULT_ZSTD_LEVEL);
            // check_level bounded it to 0..=22.
            let level = i32::try_from(level).unwrap_or(i32::MAX);
            let mut encoder = zstd::stream::write::Encoder::new(w, level)?;
            encoder.multithread(zstd_workers.max(1))?;
            // A content checksum, as the zstd CLI and BuildKit's encoder
            // write: corruption is caught by the codec too, not only by the
            // blob digest, and it costs next to nothing.
            encoder.include_checksum(true)?;
            Ok(Encoder::Zstd(Box::new(encoder)))
        }
        Compression::Estargz => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "estargz cannot be written as a plain stream: it needs the tar entry boundaries (use layer::estargz)",
        )),
        Compression::Uncompressed => Ok(Encoder::Plain(w)),
    }
}

pub(crate) fn check_level(compression: Compression, level: Option<u32>) -> io::Result<()> {
    let (Some(level), Some(range)) = (level, compression.level_range()) else {
        return Ok(());
    };
    if range.contains(&level) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "compression level {level} is out of range for {compression} ({}-{})",
            range.start(),
            range.end()
        ),
    ))
}

/// A streaming decompressor over an already buffered reader. It is `Send`
/// exactly when `R` is, which lets the restorer decode a reader that is not.
pub(crate) enum Decoder<R: BufRead> {
    Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, R>>),
    Plain(R),
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
            Decoder::Plain(r) => r.read(buf),
        }
    }
}

/// A decoder for `compression` over `r`.
///
/// gzip and estargz use a multi-member decoder: estargz (and pigz, and
/// concatenated gzip files) are several gzip members back to back, and a
/// single-member decoder would silently stop after the first.
pub(crate) fn decoder<R: BufRead>(r: R, compression: Compression) -> io::Result<Decoder<R>> {
    Ok(match compression {
        Compression::Gzip | Compression::Estargz => {
            Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
        }
        // The default window limit (128 MiB) stays: a blob asking for more
        // is refused rather than allowed to claim gigabytes of memory.
        Compression::Zstd => Decoder::Zstd(Box::new(zstd::stream::read::Decoder::with_buffer(r)?)),
        Compression::Uncompressed => Decoder::Plain(r),
    })
}

/// A decompressor for `compression` reading compressed bytes from `r`.
pub fn decompress_reader<'a, R: Read + Send + 'a>(
    r: R,
    compression: Compression,
) -> io::Result<Box<dyn Read + Send + 'a>> {
    let buffered = BufReader::with_capacity(IO_BUFFER, r);
    Ok(Box::new(decoder(buffered, compression)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compressible but not trivial: text-like lines with varying numbers.
    fn sample(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut i: u64 = 0;
        while out.len() < len {
            let line = format!(
                "line {i} value {} name file-{}.rs\n",
                i.wrapping_mul(2654435761) % 100_000,
                i % 977
            );
            out.extend_from_slice(line.as_bytes());
            i += 1;
        }
        out.truncate(len);
        out
    }

    fn compress(
        data: &[u8],
        compression: Compression,
        level: Option<u32>,
        workers: u32,
    ) -> Vec<u8> {
        let mut enc =
            compress_writer_with_workers(Vec::new(), compression, level, workers).unwrap();
        // Feed in uneven pieces, as the tar writer does.
        for chunk in data.chunks(100_003) {
            enc.write_all(chunk).unwrap();
        }
        enc.finish().unwrap()
    }

    fn decompress(blob: &[u8], compression: Compression) -> Vec<u8> {
        let mut out = Vec::new();
        decompress_reader(blob, compression)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample(3 << 20);
        for compression in [
            Compression::Gzip,
            Compression::Zstd,
            Compression::Uncompressed,
        ] {
            let blob = compress(&data, compression, None, 1);
            assert_eq!(decompress(&blob, compression), data, "{compression}");
            if compression != Compression::Uncompressed {
                assert!(
                    blob.len() < data.len() / 2,
                    "{compression} did not compress"
                );
            }
        }
    }

    #[test]
    fn levels_are_honoured() {
        let data = sample(1 << 20);
        let fast = compress(&data, Compression::Gzip, Some(1), 1);
        let best = compress(&data, Compression::Gzip, Some(9), 1);
        assert_ne!(fast, best);
        assert_eq!(decompress(&best, Compression::Gzip), data);
        let z1 = compress(&data, Compression::Zstd, Some(1), 1);
        let z19 = compress(&data, Compression::Zstd, Some(19), 1);
        assert_ne!(z1, z19);
        assert_eq!(decompress(&z19, Compression::Zstd), data);
        // The defaults are BuildKit's: gzip 6, zstd 3.
        assert_eq!(
            compress(&data, Compression::Gzip, None, 1),
            compress(&data, Compression::Gzip, Some(6), 1)
        );
        assert_eq!(
            compress(&data, Compression::Zstd, None, 1),
            compress(&data, Compression::Zstd, Some(3), 1)
        );
        assert_ne!(compress(&data, Compression::Zstd, None, 1), z1);
    }

    #[test]
    fn out_of_range_level_is_refused() {
        let err = compress_writer(Vec::new(), Compression::Gzip, Some(10))
            .err()
            .expect("level 10");
        assert!(err.to_string().contains("out of range"), "{err}");
        assert!(compress_writer(Vec::new(), Compression::Zstd, Some(23)).is_err());
    }

    #[test]
    fn gzip_output_is_deterministic_and_has_a_neutral_header() {
        let data = sample(200_000);
        let a = compress(&data, Compression::Gzip, None, 1);
        let b = compress(&data, Compression::Gzip, None, 1);
        assert_eq!(a, b);
        // RFC 1952: magic, CM, FLG (no name/comment), MTIME = 0, XFL, OS = 255.
        assert_eq!(&a[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        assert_eq!(a[9], 255);
    }

    /// The premise the pack parallelism rests on: zstd's multithreaded mode
    /// gives the same bytes with one worker as with two. The input spans
    /// several zstd jobs so the workers really split it.
    #[test]
    fn zstd_multithreaded_output_does_not_depend_on_worker_count() {
        let data = sample(24 << 20);
        let one = compress(&data, Compression::Zstd, None, 1);
        let two = compress(&data, Compression::Zstd, None, 2);
        let four = compress(&data, Compression::Zstd, None, 4);
        assert!(one == two, "zstd output differs between 1 and 2 workers");
        assert!(one == four, "zstd output differs between 1 and 4 workers");
        assert_eq!(decompress(&one, Compression::Zstd), data);
    }

    #[test]
    fn gzip_decoder_reads_every_member() {
        let mut blob = compress(b"first member\n", Compression::Gzip, None, 1);
        blob.extend(compress(b"second member\n", Compression::Gzip, None, 1));
        assert_eq!(
            decompress(&blob, Compression::Gzip),
            b"first member\nsecond member\n"
        );
        assert_eq!(
            decompress(&blob, Compression::Estargz),
            b"first member\nsecond member\n"
        );
    }

    #[test]
    fn estargz_writing_is_refused_clearly() {
        let err = compress_writer(Vec::new(), Compression::Estargz, None)
            .err()
            .expect("estargz");
        assert!(err.to_string().contains("estargz"), "{err}");
    }

    #[test]
    fn corrupt_input_is_an_error_not_garbage() {
        let mut blob = compress(&sample(100_000), Compression::Zstd, None, 1);
        let mid = blob.len() / 2;
        blob[mid] ^= 0xff;
        let mut out = Vec::new();
        let result = decompress_reader(&blob[..], Compression::Zstd)
            .unwrap()
            .read_to_end(&mut out);
        assert!(result.is_err());
    }
}
