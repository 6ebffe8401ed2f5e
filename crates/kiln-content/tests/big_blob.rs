//! A 64 MiB blob streamed from a generator must never be held in memory.
//! Alone in its own test binary so peak-RSS readings are not disturbed.

use std::io::{self, Read};

use kiln_content::{ContentStore, Sha256Writer};

/// Endless deterministic bytes, `remaining` long; never materialised.
struct Generator {
    remaining: u64,
    state: u32,
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        for b in &mut buf[..n] {
            self.state = self
                .state
                .wrapping_mul(1_664_525)
                .wrapping_add(1_013_904_223);
            *b = (self.state >> 24) as u8;
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn peak_rss_kib() -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the provided struct.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    usage.ru_maxrss
}

#[test]
fn big_blob_is_streamed() {
    const SIZE: u64 = 64 << 20;
    let gen_ = || Generator {
        remaining: SIZE,
        state: 1,
    };
    let mut hasher = Sha256Writer::new(io::sink());
    io::copy(&mut gen_(), &mut hasher).unwrap();
    let (_, expected, _) = hasher.finish();

    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let before = peak_rss_kib();
    let (d, n) = store.ingest(gen_(), Some(&expected)).unwrap();
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert_eq!((d.clone(), n), (expected, SIZE));
    assert_eq!(store.size(&d).unwrap(), SIZE);
    store.verify(&d).unwrap();
    assert!(
        grown_mib < 16,
        "peak RSS grew by {grown_mib} MiB while ingesting"
    );
}
