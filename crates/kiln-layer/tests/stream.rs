//! A 100 MB sparse-ish file goes through write_layer and unpack_layer with
//! bounded memory. Alone in its own test binary so peak-RSS readings are
//! not disturbed by other tests. No timing assertions.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use kiln_layer::{Compression, LayerOptions, UnpackOptions, unpack_layer, write_layer};

const SIZE: u64 = 100 * 1000 * 1000;

fn peak_rss_mib() -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the provided struct.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    usage.ru_maxrss / 1024
}

#[test]
fn big_file_is_streamed_both_ways() {
    let src = tempfile::tempdir().unwrap();
    let big = src.path().join("big.bin");
    let f = File::create(&big).unwrap();
    f.set_len(SIZE).unwrap();
    for i in 0..10u64 {
        f.write_at(&[i as u8 + 1; 4096], i * (SIZE / 10)).unwrap();
    }
    drop(f);

    let baseline = peak_rss_mib();
    let mut blob = tempfile::tempfile().unwrap();
    let opts = LayerOptions {
        compression: Compression::Zstd,
        ..Default::default()
    };
    let desc = write_layer(src.path(), &mut blob, &opts).unwrap();
    blob.flush().unwrap();
    assert!(desc.uncompressed_size > SIZE, "tar holds the whole file");
    assert_eq!(blob.metadata().unwrap().len(), desc.size);

    blob.seek(SeekFrom::Start(0)).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let stats = unpack_layer(&blob, dest.path(), &UnpackOptions::default()).unwrap();
    assert_eq!(stats.bytes, SIZE);
    assert_eq!(stats.diff_id, desc.diff_id);
    let grown = peak_rss_mib() - baseline;
    assert!(grown < 40, "peak RSS grew by {grown} MiB for a 100 MB file");

    let out = fs::read(dest.path().join("big.bin")).unwrap();
    assert_eq!(out.len() as u64, SIZE);
    assert_eq!(out[(SIZE / 10 * 3) as usize], 4);
}
