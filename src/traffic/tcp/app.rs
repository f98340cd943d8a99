//! The applications on the two hosts: what they write into their sockets and
//! read out of them. Payload bytes follow a fixed pattern per direction (byte
//! `i` of the stream is `i mod 251`), so the receiver checks every byte it
//! reads.

use smoltcp::socket::tcp::{Socket, State};

use super::config::TcpFlowKind;
use super::metrics::TcpMetrics;
use crate::units::SimTime;

const PATTERN: u64 = 251;

/// Per-direction stream offsets and the application state.
pub(super) struct App {
    kind: TcpFlowKind,
    stop: SimTime,
    /// Bytes written by `[client, server]`.
    written: [u64; 2],
    /// Bytes read by `[client, server]`.
    read: [u64; 2],
    /// The client has closed its side (bulk: all sent, or stop).
    pub closed: bool,
    /// Request/response: when the current transaction started.
    txn_start: Option<SimTime>,
    /// Request/response: request bytes not yet written by the client.
    request_left: u64,
    /// Request/response: response bytes the server still owes.
    response_owed: u64,
}

/// Writes up to `max` pattern bytes continuing at `*offset`; returns how many.
fn write(sock: &mut Socket, offset: &mut u64, max: u64) -> u64 {
    let mut total = 0;
    while total < max && sock.can_send() {
        let n = sock
            .send(|buf| {
                let n = (buf.len() as u64).min(max - total) as usize;
                for (i, b) in buf[..n].iter_mut().enumerate() {
                    *b = ((*offset + i as u64) % PATTERN) as u8;
                }
                (n, n)
            })
            .unwrap_or(0) as u64;
        if n == 0 {
            break;
        }
        *offset += n;
        total += n;
    }
    total
}

/// Reads everything available, checking the pattern from `*offset`; returns
/// the count.
fn read(sock: &mut Socket, offset: &mut u64, corrupt: &mut u64) -> u64 {
    let mut total = 0;
    while sock.can_recv() {
        let n = sock
            .recv(|buf| {
                for (i, b) in buf.iter().enumerate() {
                    if *b != ((*offset + i as u64) % PATTERN) as u8 {
                        *corrupt += 1;
                    }
                }
                (buf.len(), buf.len())
            })
            .unwrap_or(0) as u64;
        if n == 0 {
            break;
        }
        *offset += n;
        total += n;
    }
    total
}

impl App {
    pub fn new(kind: TcpFlowKind, stop: SimTime) -> Self {
        App {
            kind,
            stop,
            written: [0; 2],
            read: [0; 2],
            closed: false,
            txn_start: None,
            request_left: 0,
            response_owed: 0,
        }
    }

    /// Data is owed: written and not yet read, or still to be written.
    pub fn outstanding(&self) -> bool {
        let in_flight = self.written[0] > self.read[1] || self.written[1] > self.read[0];
        in_flight
            || match self.kind {
                TcpFlowKind::Bulk { .. } => !self.closed,
                TcpFlowKind::RequestResponse { .. } => self.txn_start.is_some(),
            }
    }

    /// Runs both applications at `now`; true if either read or wrote.
    pub fn run(
        &mut self,
        now: SimTime,
        client: &mut Socket<'static>,
        server: &mut Socket<'static>,
        m: &mut TcpMetrics,
    ) -> bool {
        let stopping = now >= self.stop;
        let before = (self.written, self.read);
        match self.kind {
            TcpFlowKind::Bulk { bytes } => {
                if !self.closed {
                    let limit = bytes.unwrap_or(u64::MAX);
                    if !stopping && client.may_send() {
                        let left = limit - self.written[0];
                        write(client, &mut self.written[0], left);
                    }
                    if stopping || self.written[0] == limit {
                        client.close();
                        self.closed = true;
                    }
                }
                let n = read(server, &mut self.read[1], &mut m.corrupt_bytes);
                m.bytes_to_server += n;
                if n > 0 && bytes == Some(self.read[1]) {
                    m.completed = Some(now);
                }
                // The client's application reads nothing; drain anyway.
                m.bytes_to_client += read(client, &mut self.read[0], &mut m.corrupt_bytes);
            }
            TcpFlowKind::RequestResponse { request, response } => {
                let (request, response) = (request as u64, response as u64);
                if !self.closed && stopping {
                    client.close();
                    self.closed = true;
                }
                if !self.closed && self.txn_start.is_none() && client.may_send() {
                    self.txn_start = Some(now);
                    self.request_left = request;
                }
                if self.request_left > 0 {
                    let n = write(client, &mut self.written[0], self.request_left);
                    self.request_left -= n;
                }
                // Server: answer each complete request.
                let before_req = self.read[1] / request;
                m.bytes_to_server += read(server, &mut self.read[1], &mut m.corrupt_bytes);
                self.response_owed += (self.read[1] / request - before_req) * response;
                if self.response_owed > 0 {
                    let n = write(server, &mut self.written[1], self.response_owed);
                    self.response_owed -= n;
                }
                // Client: a transaction ends with its response's last byte.
                let n = read(client, &mut self.read[0], &mut m.corrupt_bytes);
                m.bytes_to_client += n;
                if n > 0 && self.read[0] >= m.transactions.saturating_add(1) * response {
                    if let Some(t0) = self.txn_start.take() {
                        m.transactions += 1;
                        m.transaction_ns
                            .record(now.saturating_since(t0).as_nanos())
                            .expect("auto-resizing histogram");
                    }
                }
            }
        }
        // A peer's FIN with everything read: close once nothing is owed.
        for (sock, owes) in [(client, false), (server, self.response_owed > 0)] {
            if sock.state() == State::CloseWait && !sock.can_recv() && !owes {
                sock.close();
            }
        }
        (self.written, self.read) != before
    }

    /// Bytes both applications have read so far.
    pub fn read_total(&self) -> u64 {
        self.read[0] + self.read[1]
    }
}
