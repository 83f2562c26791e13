//! ToMaTo's `file` capture mode: a ring of N pcapng files of at most M
//! bytes each, merged into one time-ordered file on download.
//!
//! ToMaTo runs `tcpdump -C 10 -W 5` (5 files of 10 MB) and merges them with
//! `tcpslice`; with `limitSize` it binary-searches a start time so that
//! only the newest data that fits is kept. Here every ring file is a
//! complete pcapng section with the same interfaces, rotation happens
//! before a packet would push the current file past M bytes, and
//! [`Ring::merge`] picks the newest packets that fit directly by size. The
//! ring removes the files (and the directory, if it created it) when closed
//! or dropped: the owner removes what it created.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use pcap_file::pcapng::{Block, PcapNgReader};

use crate::pcapng::{Interface, PcapngError, PcapngWriter, epb_len, header_bytes};

/// ToMaTo's ring length (`tcpdump -W 5`).
pub const DEFAULT_RING_FILES: usize = 5;
/// ToMaTo's ring file size (`tcpdump -C 10`, in tcpdump's 1,000,000-byte megabytes).
pub const DEFAULT_RING_FILE_SIZE: u64 = 10_000_000;

/// Errors from the capture ring; each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// A file or directory operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing pcapng to a ring file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The ring file.
        path: PathBuf,
        /// The writer's error.
        source: PcapngError,
    },
    /// Reading back a ring file failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The ring file.
        path: PathBuf,
        /// The parser's error.
        source: pcap_file::PcapError,
    },
    /// The configuration cannot describe a ring.
    #[error("invalid ring configuration: {0}")]
    Config(&'static str),
}

/// Where and how big the ring is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingConfig {
    /// Directory holding the ring files (created if missing, and then removed on close).
    pub dir: PathBuf,
    /// Number of files kept (ToMaTo: 5).
    pub n_files: usize,
    /// Maximum size of one file in bytes (ToMaTo: 10 MB); a single larger packet gets a file of its own.
    pub file_size: u64,
    /// Bytes kept per frame (0 = whole frames).
    pub snaplen: u32,
}

impl RingConfig {
    /// ToMaTo's 5 x 10 MB ring in `dir` with the default snap length.
    pub fn tomato_default(dir: impl Into<PathBuf>) -> RingConfig {
        RingConfig {
            dir: dir.into(),
            n_files: DEFAULT_RING_FILES,
            file_size: DEFAULT_RING_FILE_SIZE,
            snaplen: crate::DEFAULT_SNAPLEN,
        }
    }
}

/// What [`Ring::merge`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MergeSummary {
    /// Packets written to the merged file.
    pub packets: u64,
    /// Size of the merged file in bytes.
    pub bytes: u64,
    /// Older packets left out to respect the size limit.
    pub left_out: u64,
}

/// A rotating ring of pcapng files; see the module documentation.
pub struct Ring {
    config: RingConfig,
    interfaces: Vec<Interface>,
    created_dir: bool,
    /// Paths of the ring files, oldest first; the last one is being written.
    files: VecDeque<PathBuf>,
    current: Option<PcapngWriter<BufWriter<File>>>,
    next_seq: u64,
}

impl Ring {
    /// Creates the directory if needed and opens the first ring file.
    pub fn create(config: RingConfig, interfaces: &[Interface]) -> Result<Ring, RingError> {
        if config.n_files == 0 {
            return Err(RingError::Config("n_files must be at least 1"));
        }
        let created_dir = !config.dir.exists();
        std::fs::create_dir_all(&config.dir).map_err(|source| RingError::Io {
            action: "creating capture directory",
            path: config.dir.clone(),
            source,
        })?;
        let mut ring = Ring {
            config,
            interfaces: interfaces.to_vec(),
            created_dir,
            files: VecDeque::new(),
            current: None,
            next_seq: 0,
        };
        ring.open_next()?;
        Ok(ring)
    }

    fn open_next(&mut self) -> Result<(), RingError> {
        self.finish_current()?;
        if self.files.len() == self.config.n_files {
            let oldest = self.files.pop_front().expect("n_files >= 1");
            std::fs::remove_file(&oldest).map_err(|source| RingError::Io {
                action: "removing old ring file",
                path: oldest.clone(),
                source,
            })?;
        }
        let path = self.config.dir.join(format!("capture-{:06}.pcapng", self.next_seq));
        self.next_seq += 1;
        let file = File::create(&path).map_err(|source| RingError::Io {
            action: "creating ring file",
            path: path.clone(),
            source,
        })?;
        let writer = PcapngWriter::new(BufWriter::new(file), &self.interfaces, self.config.snaplen)
            .map_err(|source| RingError::Write { path: path.clone(), source })?;
        self.files.push_back(path);
        self.current = Some(writer);
        Ok(())
    }

    fn finish_current(&mut self) -> Result<(), RingError> {
        if let Some(mut writer) = self.current.take() {
            let path = self.files.back().expect("current file is listed").clone();
            writer.get_mut().flush().map_err(|source| RingError::Io { action: "flushing", path, source })?;
        }
        Ok(())
    }

    fn current_path(&self) -> PathBuf {
        self.files.back().expect("ring always has a current file").clone()
    }

    /// Appends one packet (`captured` already holds at most the snap
    /// length), rotating first if it would push the current file past the size limit.
    pub fn write_packet(
        &mut self,
        timestamp_ns: u64,
        iface: u32,
        original_len: u32,
        captured: &[u8],
    ) -> Result<(), RingError> {
        let snaplen = self.config.snaplen as usize;
        let kept = if snaplen == 0 { captured.len() } else { captured.len().min(snaplen) };
        let current = self.current.as_ref().expect("ring always has a current file");
        if current.packets_written() > 0 && current.bytes_written() + epb_len(kept) > self.config.file_size {
            self.open_next()?;
        }
        let path_on_error = || self.files.back().cloned().unwrap_or_default();
        let current = self.current.as_mut().expect("ring always has a current file");
        current
            .write_captured(timestamp_ns, iface, original_len, captured)
            .map(|_| ())
            .map_err(|source| RingError::Write { path: path_on_error(), source })
    }

    /// Pushes buffered packets of the current file to the OS.
    pub fn flush(&mut self) -> Result<(), RingError> {
        let path = self.current_path();
        let writer = self.current.as_mut().expect("ring always has a current file");
        writer.get_mut().flush().map_err(|source| RingError::Io { action: "flushing", path, source })
    }

    /// The ring files, oldest first.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(PathBuf::as_path)
    }

    /// The ring's configuration.
    pub fn config(&self) -> &RingConfig {
        &self.config
    }

    /// Merges the ring into one pcapng file at `out`; see [`Ring::merge_to`].
    pub fn merge(&mut self, limit_size: Option<u64>, out: &Path) -> Result<MergeSummary, RingError> {
        let file = File::create(out).map_err(|source| RingError::Io {
            action: "creating merged capture",
            path: out.to_owned(),
            source,
        })?;
        let mut writer = BufWriter::new(file);
        let summary = self.merge_to(limit_size, &mut writer)?;
        writer.flush().map_err(|source| RingError::Io { action: "writing", path: out.to_owned(), source })?;
        Ok(summary)
    }

    /// Writes every packet of the ring, in time order, as one pcapng section.
    ///
    /// With `limit_size`, keeps only the newest packets such that the whole
    /// output (headers included) is at most that many bytes; if not even
    /// the headers fit, the output is the headers alone. Packets with equal
    /// timestamps keep the order they were written in. Memory: the selected
    /// packets are held in memory to sort them (at most the ring's size, or
    /// the limit).
    pub fn merge_to<W: Write>(&mut self, limit_size: Option<u64>, out: W) -> Result<MergeSummary, RingError> {
        self.flush()?;
        let header_len = header_bytes(&self.interfaces, self.config.snaplen).len() as u64;
        // Pass 1 (only with a limit): find the oldest (time, sequence) key to keep.
        let mut cutoff: Option<(u64, u64)> = None;
        let mut left_out = 0;
        if let Some(limit) = limit_size {
            let mut keys = Vec::new();
            self.for_each_packet(|timestamp_ns, seq, _, _, data| keys.push((timestamp_ns, seq, epb_len(data.len()))))?;
            keys.sort_unstable();
            let mut budget = limit.saturating_sub(header_len);
            let mut kept = 0;
            for &(timestamp_ns, seq, len) in keys.iter().rev() {
                if len > budget {
                    break;
                }
                budget -= len;
                kept += 1;
                cutoff = Some((timestamp_ns, seq));
            }
            left_out = (keys.len() - kept) as u64;
            if kept == 0 {
                cutoff = Some((u64::MAX, u64::MAX));
            }
        }
        // Pass 2: load the kept packets, sort them and write them out.
        let mut packets = Vec::new();
        self.for_each_packet(|timestamp_ns, seq, iface, original_len, data| {
            if cutoff.is_none_or(|c| (timestamp_ns, seq) >= c) {
                packets.push((timestamp_ns, seq, iface, original_len, data.to_vec()));
            }
        })?;
        packets.sort_unstable_by_key(|p| (p.0, p.1));
        let out_path = PathBuf::from("<merged capture>");
        let write_err = |source| RingError::Write { path: out_path.clone(), source };
        let mut writer = PcapngWriter::new(out, &self.interfaces, self.config.snaplen).map_err(write_err)?;
        for (timestamp_ns, _, iface, original_len, data) in &packets {
            writer.write_captured(*timestamp_ns, *iface, *original_len, data).map_err(write_err)?;
        }
        Ok(MergeSummary { packets: writer.packets_written(), bytes: writer.bytes_written(), left_out })
    }

    /// Calls `f(timestamp_ns, sequence, iface, original_len, data)` for each
    /// packet in every ring file, oldest file first.
    fn for_each_packet(&self, mut f: impl FnMut(u64, u64, u32, u32, &[u8])) -> Result<(), RingError> {
        let mut seq = 0u64;
        for path in &self.files {
            let read_err = |source| RingError::Read { path: path.clone(), source };
            let file = File::open(path).map_err(|source| RingError::Io {
                action: "opening ring file",
                path: path.clone(),
                source,
            })?;
            let mut reader = PcapNgReader::new(BufReader::new(file)).map_err(read_err)?;
            while let Some(block) = reader.next_block() {
                if let Block::EnhancedPacket(epb) = block.map_err(read_err)? {
                    // pcap-file reads EPB timestamps as nanoseconds, which is
                    // what our files declare (if_tsresol = 9).
                    let timestamp_ns = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
                    f(timestamp_ns, seq, epb.interface_id, epb.original_len, &epb.data);
                    seq += 1;
                }
            }
        }
        Ok(())
    }

    /// Removes the ring files (and the directory if the ring created it).
    pub fn close(mut self) -> Result<(), RingError> {
        self.remove_files()
    }

    fn remove_files(&mut self) -> Result<(), RingError> {
        self.current = None;
        let mut first_error = None;
        for path in self.files.drain(..) {
            if let Err(source) = std::fs::remove_file(&path) {
                first_error.get_or_insert(RingError::Io { action: "removing ring file", path, source });
            }
        }
        if self.created_dir {
            self.created_dir = false;
            if let Err(source) = std::fs::remove_dir(&self.config.dir) {
                first_error.get_or_insert(RingError::Io {
                    action: "removing capture directory",
                    path: self.config.dir.clone(),
                    source,
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // Best effort: close() reports errors, drop cannot.
        let _ = self.remove_files();
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring").field("config", &self.config).field("files", &self.files).finish_non_exhaustive()
    }
}
