//! How an event goes on the wire: its JSON, inside the Server-Sent Events frame that
//! `GET /api/events` sends. A live event is encoded once here and the same bytes go to every
//! subscriber; a replay from the store writes many frames into one buffer.
//!
//! The frames are byte for byte what axum's `Sse` writes for the same fields (a test compares
//! them): `id: 42\nevent: step:started\ndata: {…}\n\n`, a multi-line `data` split into one
//! `data:` line per line, and `: \n\n` for the keep-alive comment.

use bytes::{BufMut, Bytes, BytesMut};

/// The keep-alive comment: an empty comment line, then the blank line that ends a frame.
pub const KEEP_ALIVE: &[u8] = b": \n\n";

/// Appends one frame to `out`. `id` is the event's sequence number; bus signals have none, so
/// they never move a client's Last-Event-ID.
pub fn write_frame(out: &mut BytesMut, id: Option<i64>, name: &str, data: &str) {
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(itoa::Buffer::new().format(id).as_bytes());
        out.put_u8(b'\n');
    }
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_u8(b'\n');
    if !data.is_empty() {
        // What axum does with line breaks in data: each one ends a `data:` line and starts the next.
        out.put_slice(b"data: ");
        let mut rest = data.as_bytes();
        while let Some(at) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            out.put_slice(&rest[..=at]);
            out.put_slice(b"data: ");
            rest = &rest[at + 1..];
        }
        out.put_slice(rest);
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
}

/// One frame on its own.
pub fn frame(id: Option<i64>, name: &str, data: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + name.len() + 40);
    write_frame(&mut out, id, name, data);
    out.freeze()
}
