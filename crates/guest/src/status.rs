//! The status files of an executable archive and their checksummed format,
//! shared by the guest (which writes them) and the host (which reads them).
//!
//! `exec_status/` in the archive directory holds `running` (a timestamp the
//! monitor renews while the script runs), `done` (the script's exit code,
//! written when it ended), `custom` (set by the script through
//! `archive_setstatus`) and `out` (the script's stdout and stderr, plain).
//! The first three start with a header line `nlxtp-status 1 <crc32> <len>`
//! and then hold the payload, so a reader that catches a file half written
//! (in place on a shared disk, or torn by a cache) sees a length or CRC-32
//! mismatch and reads again a moment later, as the nlXTP paper asks. Files
//! without the header, written by hand by old archives, are taken as they
//! are once two reads in a row agree.

use std::io;
use std::time::Duration;

/// Where the archive directory appears in the guest.
pub const GUEST_DIR: &str = "/mnt/nlXTP";
/// The script the monitor runs.
pub const ENTRY: &str = "auto_exec.sh";
/// The status directory inside the archive directory.
pub const STATUS_DIR: &str = "exec_status";
/// Renewed timestamp (epoch seconds) while the script runs.
pub const RUNNING: &str = "running";
/// The script's exit code, once it ended.
pub const DONE: &str = "done";
/// The script's custom status.
pub const CUSTOM: &str = "custom";
/// The script's stdout and stderr.
pub const OUT: &str = "out";
/// The guest protocol version scripts see as `archive_version` (ToMaTo's
/// guest modules were 0.3; the contract is unchanged).
pub const VERSION: &str = "0.3";
/// The largest status file read (a custom status may hold a document).
pub const MAX_STATUS_BYTES: usize = 1 << 20;

const MAGIC: &[u8] = b"nlxtp-status 1 ";

/// CRC-32 (IEEE 802.3, as gzip and zlib use it) lookup table.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, &b| CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

/// A status file's bytes: header line, then `payload`.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("nlxtp-status 1 {:08x} {}\n", crc32(payload), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// What a status file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Complete and checked: the payload.
    Valid(&'a [u8]),
    /// Ours but not (yet) whole: empty, a partial header, or a length or
    /// checksum that does not match. Read again.
    Incomplete,
    /// Without our header: written by hand by an old archive.
    Foreign,
}

/// Classifies a status file's bytes.
pub fn decode(bytes: &[u8]) -> Decoded<'_> {
    if bytes.len() < MAGIC.len() {
        return if MAGIC.starts_with(bytes) { Decoded::Incomplete } else { Decoded::Foreign };
    }
    let Some(rest) = bytes.strip_prefix(MAGIC) else { return Decoded::Foreign };
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else { return Decoded::Incomplete };
    let header = std::str::from_utf8(&rest[..nl]).unwrap_or("");
    let payload = &rest[nl + 1..];
    let mut fields = header.split(' ');
    let crc = fields.next().and_then(|c| u32::from_str_radix(c, 16).ok());
    let len = fields.next().and_then(|l| l.parse::<usize>().ok());
    match (crc, len, fields.next()) {
        (Some(crc), Some(len), None) if len == payload.len() && crc == crc32(payload) => Decoded::Valid(payload),
        _ => Decoded::Incomplete,
    }
}

/// How often and how fast a reader tries again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Reads at most.
    pub tries: u32,
    /// Pause between reads.
    pub pause: Duration,
}

impl Retry {
    /// 50 reads 2 ms apart: a writer gets 100 ms to finish.
    pub const DEFAULT: Retry = Retry { tries: 50, pause: Duration::from_millis(2) };
}

/// Reads a status file through `read` (which returns `None` when the file
/// does not exist) until it is whole: the checked payload, or a file
/// without our header that read the same twice in a row. `Ok(None)`: no
/// such file. An error names the file: it stayed incomplete or too large.
pub fn read_with(
    name: &str,
    retry: Retry,
    mut read: impl FnMut() -> io::Result<Option<Vec<u8>>>,
) -> io::Result<Option<Vec<u8>>> {
    let mut last_foreign: Option<Vec<u8>> = None;
    for attempt in 0..retry.tries.max(1) {
        if attempt > 0 {
            std::thread::sleep(retry.pause);
        }
        let Some(bytes) = read()? else { return Ok(None) };
        if bytes.len() > MAX_STATUS_BYTES + 64 {
            return Err(io::Error::other(format!("status file {name} is larger than {MAX_STATUS_BYTES} bytes")));
        }
        match decode(&bytes) {
            Decoded::Valid(payload) => return Ok(Some(payload.to_vec())),
            Decoded::Incomplete => last_foreign = None,
            Decoded::Foreign if last_foreign.as_deref() == Some(bytes.as_slice()) => return Ok(Some(bytes)),
            Decoded::Foreign => last_foreign = Some(bytes),
        }
    }
    Err(io::Error::other(format!("status file {name} stayed incomplete over {} reads", retry.tries)))
}

/// Reads the status file at `path` (see [`read_with`]).
pub fn read_file(path: &std::path::Path, retry: Retry) -> io::Result<Option<Vec<u8>>> {
    read_with(&path.display().to_string(), retry, || match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    })
}

/// Writes status file `name` in directory `dir` whole: to a temporary
/// file first, then renamed over the old one.
pub fn write_file(dir: &std::path::Path, name: &str, payload: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, encode(payload))?;
    std::fs::rename(&tmp, dir.join(name)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn whole_files_decode_and_every_cut_or_flip_is_caught() {
        let payload = b"phase 2 of 3: fetching";
        let bytes = encode(payload);
        assert_eq!(decode(&bytes), Decoded::Valid(payload.as_slice()));
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Decoded::Incomplete, "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x20;
        assert_eq!(decode(&flipped), Decoded::Incomplete);
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"x");
        assert_eq!(decode(&longer), Decoded::Incomplete);
        assert_eq!(decode(b"done by hand\n"), Decoded::Foreign);
        assert_eq!(decode(&encode(b"")), Decoded::Valid(b"".as_slice()));
    }

    #[test]
    fn foreign_files_count_once_they_read_the_same_twice() {
        let reads = std::cell::RefCell::new(vec![b"abc".to_vec(), b"abcdef".to_vec(), b"abcdef".to_vec()]);
        let fast = Retry { tries: 5, pause: Duration::ZERO };
        let got = read_with("custom", fast, || Ok(Some(reads.borrow_mut().remove(0)))).expect("read");
        assert_eq!(got.as_deref(), Some(b"abcdef".as_slice()));
        let err = read_with("custom", fast, || Ok(Some(b"nlxtp-st".to_vec()))).expect_err("never whole");
        assert!(err.to_string().contains("custom"), "{err}");
        assert_eq!(read_with("custom", fast, || Ok(None)).expect("absent"), None);
    }
}
