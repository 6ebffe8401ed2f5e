//! ADD of `http(s)://` URLs: streamed to a private temporary file while
//! hashing, verified against `--checksum`, and only then written to the
//! destination (so a mismatch writes nothing), with BuildKit's HTTP-source
//! defaults: mode 0600, owner 0:0 (both overridable), mtime from
//! `Last-Modified`, name from the URL path's last element.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};

/// What was downloaded, ready to be placed.
pub(crate) struct Download {
    /// The content, rewound.
    pub file: File,
    /// Name BuildKit gives the file: last URL path element or `__unnamed__`.
    pub name: String,
    /// `Last-Modified`, when the server sent one.
    pub mtime: Option<SystemTime>,
}

/// Whether an ADD source is a remote URL rather than a context path.
pub(crate) fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// Downloads `url`, checking `checksum` (`sha256:<hex>`) when given.
pub(crate) fn download(url: &str, checksum: Option<&str>) -> Result<Download> {
    let expected = checksum.map(parse_checksum).transpose()?;
    let http_err = |message: String| Error::Http {
        url: url.to_owned(),
        message,
    };
    let resp = ureq::get(url).call().map_err(|e| http_err(e.to_string()))?;
    let mtime = resp
        .header("Last-Modified")
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let tmp_dir = std::env::temp_dir();
    let mut file = tempfile_in(&tmp_dir)?;
    let actual =
        copy_hashing(&mut resp.into_reader(), &mut file).map_err(|e| http_err(e.to_string()))?;
    if let Some(expected) = expected.filter(|e| *e != actual) {
        return Err(Error::ChecksumMismatch {
            url: url.to_owned(),
            expected: format!("sha256:{expected}"),
            actual: format!("sha256:{actual}"),
        });
    }
    file.rewind().at("rewinding", &tmp_dir)?;
    Ok(Download {
        file,
        name: url_file_name(url),
        mtime,
    })
}

fn tempfile_in(dir: &std::path::Path) -> Result<File> {
    tempfile::tempfile_in(dir).at("creating a temporary file in", dir)
}

/// Streams `src` to `dst`, returning the hex sha256 of what passed.
fn copy_hashing(src: &mut dyn Read, dst: &mut File) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The hex digest of a `sha256:<64 hex>` checksum.
fn parse_checksum(text: &str) -> Result<String> {
    let hex = text.strip_prefix("sha256:").unwrap_or("");
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(Error::InvalidChecksum(text.to_owned()))
    }
}

/// BuildKit's name for a downloaded file: the URL path's base, unless that
/// is empty or `/`.
pub(crate) fn url_file_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(base) if !base.is_empty() => base.to_owned(),
        _ => "__unnamed__".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::url_file_name;

    #[test]
    fn names_come_from_the_url_path() {
        assert_eq!(url_file_name("https://h/a/b.tgz?x=1"), "b.tgz");
        assert_eq!(url_file_name("http://h:8080/dir/"), "dir");
        assert_eq!(url_file_name("http://h"), "__unnamed__");
        assert_eq!(url_file_name("http://h/"), "__unnamed__");
    }
}
