//! Streaming a step's output to the caller while keeping a bounded tail for error messages.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Child;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::error::{IoContext, Result};

/// How much of the end of the output [`ExitStatus::tail`] keeps.
pub const TAIL_BYTES: usize = 16 * 1024;

/// Which of the process's output streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

/// Receives the step's output as the process writes it.
pub trait StepIo: Send {
    /// One chunk as read from the pipe: a line may span chunks and a chunk may hold many lines.
    fn output(&mut self, stream: Stream, data: &[u8]);
}

/// How the step's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    code: i32,
    tail: Vec<u8>,
}

impl ExitStatus {
    pub(crate) fn new(code: i32, tail: Vec<u8>) -> Self {
        Self { code, tail }
    }

    /// The exit code; a process killed by signal N reports 128+N, as shells do.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// Whether the process exited with code 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// The last [`TAIL_BYTES`] of stdout and stderr, interleaved as they arrived.
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }
}

/// The end of a byte stream, at most `limit` bytes.
struct Tail {
    buf: Vec<u8>,
    limit: usize,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.len() > 2 * self.limit {
            self.trim();
        }
    }

    fn trim(&mut self) {
        let excess = self.buf.len().saturating_sub(self.limit);
        self.buf.drain(..excess);
    }

    fn into_bytes(mut self) -> Vec<u8> {
        self.trim();
        self.buf
    }
}

/// Forwards both pipes to `io` until both reach end of file; returns the output's tail.
///
/// One poll loop on the calling thread keeps chunks in the order the process wrote them as far
/// as two pipes allow, and needs no extra threads.
pub(crate) fn pump(stdout: OwnedFd, stderr: OwnedFd, io: &mut dyn StepIo) -> Result<Vec<u8>> {
    let mut pipes = [
        (Stream::Stdout, Some(File::from(stdout))),
        (Stream::Stderr, Some(File::from(stderr))),
    ];
    let mut tail = Tail {
        buf: Vec::new(),
        limit: TAIL_BYTES,
    };
    let mut buf = vec![0u8; 64 * 1024];
    while pipes.iter().any(|(_, f)| f.is_some()) {
        for index in ready(&pipes)? {
            let (stream, slot) = &mut pipes[index];
            let Some(file) = slot else { continue };
            match file.read(&mut buf) {
                Ok(0) => *slot = None,
                Ok(n) => {
                    io.output(*stream, &buf[..n]);
                    tail.push(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).at("reading output of", "step process"),
            }
        }
    }
    Ok(tail.into_bytes())
}

/// Indices of the open pipes that can be read without blocking (or have hung up).
fn ready(pipes: &[(Stream, Option<File>); 2]) -> Result<Vec<usize>> {
    let open: Vec<(usize, &File)> = pipes
        .iter()
        .enumerate()
        .filter_map(|(i, (_, f))| f.as_ref().map(|f| (i, f)))
        .collect();
    let mut fds: Vec<PollFd<'_>> = open
        .iter()
        .map(|(_, f)| PollFd::new(f.as_fd(), PollFlags::POLLIN))
        .collect();
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) => {}
        Err(nix::Error::EINTR) => return Ok(Vec::new()),
        Err(e) => return Err(e).at("polling output of", "step process"),
    }
    Ok(fds
        .iter()
        .zip(&open)
        .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
        .map(|(_, (i, _))| *i)
        .collect())
}

/// Streams a spawned process's piped stdout and stderr to `io`, then reaps it.
pub(crate) fn stream_and_wait(mut child: Child, io: &mut dyn StepIo) -> Result<ExitStatus> {
    let pipes = child.stdout.take().zip(child.stderr.take());
    let tail = match pipes {
        Some((out, err)) => pump(out.into(), err.into(), io),
        None => Ok(Vec::new()),
    };
    if tail.is_err() {
        // Nobody reads the pipes any more: stop the process rather than let it block forever.
        let _ = child.kill();
    }
    let status = child.wait().at("waiting for", "step process")?;
    Ok(ExitStatus::new(exit_code(status), tail?))
}

/// The shell convention: the exit code, or 128+N for death by signal N.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_only_the_last_bytes() {
        let mut tail = Tail {
            buf: Vec::new(),
            limit: 4,
        };
        for chunk in [b"abc".as_slice(), b"defgh", b"ij"] {
            tail.push(chunk);
        }
        assert_eq!(tail.into_bytes(), b"ghij");
    }
}
