//! ToMaTo's `net` capture mode: a TCP server streaming live pcapng to
//! every connected client.
//!
//! ToMaTo runs `tcpserver ... tcpdump -w -` so users can run
//! `wireshark -k -i <(nc host port)`. A [`LiveStream`] listens on a TCP
//! address; each client first gets the section header and interface blocks,
//! then every packet encoded after it connected. Nothing here blocks: the
//! listener and client sockets are non-blocking and driven by
//! [`LiveStream::poll`], each client has a bounded queue of encoded
//! batches, and a batch that does not fit in a slow client's queue is
//! dropped for that client (whole blocks only, so its stream stays valid)
//! and counted, never pushed back to the producer.

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pcapng::{Interface, PcapngError, PcapngWriter, header_bytes};

/// Errors from the live stream server.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Could not listen on the address.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Encoding a packet failed (for example an unknown interface).
    #[error(transparent)]
    Encode(#[from] PcapngError),
}

/// Limits of a live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStreamConfig {
    /// Bytes of encoded packets queued per client before new ones are dropped for it.
    pub client_queue_bytes: usize,
    /// Bytes kept per frame (0 = whole frames).
    pub snaplen: u32,
}

impl Default for LiveStreamConfig {
    fn default() -> Self {
        LiveStreamConfig { client_queue_bytes: 4 << 20, snaplen: crate::DEFAULT_SNAPLEN }
    }
}

/// Counters of a live stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// Clients connected now.
    pub clients: usize,
    /// Clients accepted so far.
    pub accepted: u64,
    /// Packets encoded for the stream.
    pub packets: u64,
    /// Packets dropped for slow clients (counted once per client).
    pub dropped: u64,
}

/// One connected client, as seen by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientStats {
    /// The client's address.
    pub peer: SocketAddr,
    /// Encoded packet bytes waiting for the client's socket.
    pub queued_bytes: usize,
    /// Packets dropped for this client because its queue was full.
    pub dropped: u64,
}

struct Client {
    stream: TcpStream,
    peer: SocketAddr,
    dropped: u64,
    /// Encoded batches still to send, with the number of packets in each.
    queue: VecDeque<(Arc<[u8]>, u64)>,
    /// Bytes of the front batch already sent.
    offset: usize,
    queued_bytes: usize,
}

/// A non-blocking TCP server streaming pcapng; call [`LiveStream::write_packet`]
/// for each packet, then [`LiveStream::poll`] to accept clients and send.
pub struct LiveStream {
    listener: TcpListener,
    local_addr: SocketAddr,
    config: LiveStreamConfig,
    header: Arc<[u8]>,
    encoder: PcapngWriter<Vec<u8>>,
    batch_packets: u64,
    clients: Vec<Client>,
    stats: StreamStats,
}

impl LiveStream {
    /// Listens on `addr` (port 0 picks a free port) for a stream of the given interfaces.
    pub fn bind(
        addr: SocketAddr,
        interfaces: &[Interface],
        config: LiveStreamConfig,
    ) -> Result<LiveStream, StreamError> {
        let bind_err = |source| StreamError::Bind { addr, source };
        let listener = TcpListener::bind(addr).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let header: Arc<[u8]> = header_bytes(interfaces, config.snaplen).into();
        let mut encoder = PcapngWriter::new(Vec::new(), interfaces, config.snaplen)?;
        // The encoder's own header bytes are sent per client from `header`.
        encoder.get_mut().clear();
        Ok(LiveStream {
            listener,
            local_addr,
            config,
            header,
            encoder,
            batch_packets: 0,
            clients: Vec::new(),
            stats: StreamStats::default(),
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Encodes one packet into the current batch (sent on the next [`LiveStream::poll`]).
    pub fn write_packet(
        &mut self,
        timestamp_ns: u64,
        iface: u32,
        original_len: u32,
        captured: &[u8],
    ) -> Result<(), StreamError> {
        if self.clients.is_empty() {
            // Nobody would see it; like tcpdump under tcpserver, a client
            // sees only what is captured after it connects.
            self.stats.packets += 1;
            return Ok(());
        }
        self.encoder.write_captured(timestamp_ns, iface, original_len, captured)?;
        self.batch_packets += 1;
        self.stats.packets += 1;
        Ok(())
    }

    /// Accepts waiting clients, hands the current batch to every client
    /// queue (dropping it for clients whose queue is full) and sends what
    /// each socket takes without blocking. Returns true while some client
    /// still has queued bytes, so the caller polls again soon.
    pub fn poll(&mut self) -> bool {
        self.accept_clients();
        self.publish_batch();
        let mut pending = false;
        self.clients.retain_mut(|client| match client.send() {
            Ok(()) => {
                pending |= client.queued_bytes > 0;
                true
            }
            Err(_) => false,
        });
        self.stats.clients = self.clients.len();
        pending
    }

    fn accept_clients(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    // Accepted sockets do not inherit O_NONBLOCK on Linux.
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let mut queue = VecDeque::new();
                    // The header is never dropped: without it the stream is unreadable.
                    queue.push_back((self.header.clone(), 0));
                    self.clients.push(Client { stream, peer, dropped: 0, queue, offset: 0, queued_bytes: 0 });
                    self.stats.accepted += 1;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // WouldBlock means no more waiting clients; other accept
                // errors (such as EMFILE) are retried on the next poll.
                Err(_) => break,
            }
        }
    }

    fn publish_batch(&mut self) {
        if self.batch_packets == 0 {
            return;
        }
        let batch: Arc<[u8]> = std::mem::take(self.encoder.get_mut()).into();
        let n_packets = std::mem::take(&mut self.batch_packets);
        for client in &mut self.clients {
            if client.queued_bytes > 0 && client.queued_bytes + batch.len() > self.config.client_queue_bytes {
                self.stats.dropped += n_packets;
                client.dropped += n_packets;
            } else {
                client.queued_bytes += batch.len();
                client.queue.push_back((batch.clone(), n_packets));
            }
        }
    }

    /// Ends the stream: sends what the clients' queues hold for at most
    /// `timeout` (blocking the caller, never a producer), then closes every
    /// connection. A client still behind after that gets a cut-off last
    /// block, as when tcpdump is stopped.
    pub fn finish(mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.poll() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// The connected clients, in the order they were accepted.
    pub fn clients(&self) -> Vec<ClientStats> {
        self.clients
            .iter()
            .map(|c| ClientStats { peer: c.peer, queued_bytes: c.queued_bytes, dropped: c.dropped })
            .collect()
    }
}

impl Client {
    /// Sends queued bytes until the socket would block; an error means the client is gone.
    fn send(&mut self) -> std::io::Result<()> {
        while let Some((chunk, _)) = self.queue.front() {
            match self.stream.write(&chunk[self.offset..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.offset += n;
                    if self.offset == chunk.len() {
                        let (chunk, n_packets) = self.queue.pop_front().expect("front exists");
                        if n_packets > 0 {
                            self.queued_bytes -= chunk.len();
                        }
                        self.offset = 0;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for LiveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStream")
            .field("local_addr", &self.local_addr)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
