//! A bounded pipe from a blocking writer (the workbook's zip, compressed on a
//! blocking thread) to the async upload, so a summary goes to the store while
//! it is being compressed instead of after, and never lands on local disk
//! whole.
//!
//! The reader only ends cleanly after [`PipeWriter::finish`]: a writer dropped
//! half-way (an error, a cancelled job) ends the reader with an error, so a
//! truncated file is never stored.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;

/// Bytes gathered before a chunk crosses the pipe.
const CHUNK: usize = 256 * 1024;
/// Chunks the pipe holds: at most `CHUNK * CHUNKS` (8 MiB) wait in it. The
/// S3 upload stops reading while it waits for its parts; with 2 MiB here the
/// compression stalled behind it (a 1M-order save took 3.7 s instead of
/// 2.9 s, bench/export.sh with `STORE=s3`).
const CHUNKS: usize = 32;

/// A pipe whose writer blocks (for `spawn_blocking` code) when the reader is
/// `CHUNK * CHUNKS` bytes behind.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = mpsc::channel(CHUNKS);
    let finished = Arc::new(AtomicBool::new(false));
    let writer = PipeWriter {
        tx,
        buf: BytesMut::with_capacity(CHUNK),
        finished: finished.clone(),
    };
    let chunks = Chunks {
        rx,
        finished,
        ended: false,
    };
    (writer, StreamReader::new(chunks))
}

/// The reading end: `AsyncRead` + `AsyncBufRead`.
pub type PipeReader = StreamReader<Chunks, Bytes>;

/// The blocking writing end. Must not be used on an async runtime thread.
#[derive(Debug)]
pub struct PipeWriter {
    tx: mpsc::Sender<Bytes>,
    buf: BytesMut,
    finished: Arc<AtomicBool>,
}

impl PipeWriter {
    /// Sends what is buffered and ends the stream cleanly.
    pub fn finish(mut self) -> io::Result<()> {
        self.send()?;
        self.finished.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, ReaderGone))
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The chunks of a pipe as a stream; an error where the writer gave up.
#[derive(Debug)]
pub struct Chunks {
    rx: mpsc::Receiver<Bytes>,
    finished: Arc<AtomicBool>,
    ended: bool,
}

impl Stream for Chunks {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => Poll::Ready(Some(Ok(chunk))),
            Poll::Ready(None) => {
                self.ended = true;
                if self.finished.load(Ordering::SeqCst) {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(io::Error::other(WriterGaveUp))))
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The reading end ended before the file was finished (the upload failed).
#[derive(Debug, thiserror::Error)]
#[error("the upload stopped reading")]
pub struct ReaderGone;

/// The writing end was dropped before the file was finished.
#[derive(Debug, thiserror::Error)]
#[error("the file being stored was abandoned before it was finished")]
pub struct WriterGaveUp;

/// Whether `err` is (or wraps) the pipe's "writer gave up" signal: the
/// failure is the writer's, not the store's.
pub(crate) fn is_writer_gave_up(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.is::<WriterGaveUp>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_finished_writer_delivers_every_byte_in_order() {
        let (mut writer, mut reader) = pipe();
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writing = tokio::task::spawn_blocking(move || {
            for piece in sent.chunks(1000) {
                writer.write_all(piece)?;
            }
            writer.finish()
        });
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.expect("read");
        writing.await.expect("join").expect("write");
        assert_eq!(got, data);
    }

    #[tokio::test]
    async fn a_writer_dropped_before_finishing_ends_the_reader_with_an_error() {
        let (mut writer, mut reader) = pipe();
        tokio::task::spawn_blocking(move || {
            writer.write_all(&[1; CHUNK]).expect("write");
            writer.write_all(&[2; 10]).expect("write");
            drop(writer);
        });
        let mut got = Vec::new();
        let err = reader
            .read_to_end(&mut got)
            .await
            .expect_err("no clean end");
        assert!(is_writer_gave_up(&err), "{err}");
        assert_eq!(got.len(), CHUNK, "the full chunk arrives before the error");
    }

    #[tokio::test]
    async fn the_writer_fails_once_the_reader_is_gone() {
        let (mut writer, reader) = pipe();
        drop(reader);
        let err = tokio::task::spawn_blocking(move || writer.write_all(&[0; 2 * CHUNK]))
            .await
            .expect("join")
            .expect_err("nobody reads");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
