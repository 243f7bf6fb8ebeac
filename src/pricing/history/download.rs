//! Downloading one offer file into the disk cache.
//!
//! The file is streamed to `<name>.part` next to its place in the cache and renamed
//! only once it has been read whole and understood, so the cache never holds a
//! partial or unreadable version (the `.part` file is deleted however the read ends,
//! also when it is dropped at the time limit). When the cache cannot be written, the
//! file goes to the temporary directory instead and is deleted once read. Versions
//! never change once published, so a cached file is used as it is, forever.

use aws_smithy_runtime_api::client::http::{HttpConnector, SharedHttpConnector};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::byte_stream::ByteStream;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The cache directory sagemeter uses when none is set: `SAGEMETER_CACHE_DIR`, else
/// the platform's user cache directory (`$XDG_CACHE_HOME` or `~/.cache` on Linux,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows) with `sagemeter` below.
/// `None` when the environment names no home.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("SAGEMETER_CACHE_DIR") {
        return Some(dir);
    }
    let base = if cfg!(windows) {
        var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|home| home.join("Library").join("Caches"))
    } else {
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|home| home.join(".cache")))
    };
    base.map(|dir| dir.join("sagemeter"))
}

/// Where a URL points, without its query or user information: file URLs are
/// presigned, and neither a signature nor a password has a place in an error
/// message.
pub(crate) fn url_without_query(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Streams `url` into `file` (new, made for it; `to` is its path, for messages), at
/// most `max_bytes` of it. Returns the bytes written.
pub(crate) async fn download(
    connector: &SharedHttpConnector,
    url: &str,
    mut file: std::fs::File,
    to: &Path,
    max_bytes: u64,
) -> Result<u64, String> {
    let shown = url_without_query(url);
    let request =
        HttpRequest::get(url).map_err(|e| format!("`{shown}` is not a usable URL ({e})"))?;
    let response = connector.call(request).await.map_err(|e| {
        format!(
            "downloading {shown} failed: {}",
            crate::redact::error_chain(&e)
        )
    })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(format!("downloading {shown} failed: HTTP {status}"));
    }
    let mut body = ByteStream::new(response.into_body());
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            format!(
                "downloading {shown} broke off after {written} bytes: {}",
                crate::redact::error_chain(&e)
            )
        })?;
        if written.saturating_add(chunk.len() as u64) > max_bytes {
            return Err(format!(
                "downloading {shown} stopped: the file is larger than {max_bytes} bytes, \
                 more than any price list"
            ));
        }
        // Chunks are small (tens of KB) and go to the page cache: a plain write is
        // shorter than handing each one to a blocking thread.
        file.write_all(&chunk)
            .map_err(|e| format!("cannot write {}: {e}", to.display()))?;
        written += chunk.len() as u64;
    }
    file.flush()
        .map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presigned_url_loses_its_signature_in_messages() {
        assert_eq!(
            url_without_query(
                "https://pricing.example/offers/AmazonSageMaker/20250301000000/us-east-1/index.json\
                 ?X-Amz-Signature=abc&X-Amz-Credential=AKIA"
            ),
            "https://pricing.example/offers/AmazonSageMaker/20250301000000/us-east-1/index.json"
        );
        assert_eq!(url_without_query("http://h/p#frag"), "http://h/p");
        assert_eq!(
            url_without_query("https://user:secret@h.example:8443/offers/x.json?sig=1"),
            "https://h.example:8443/offers/x.json"
        );
        assert_eq!(url_without_query("https://h.example"), "https://h.example");
    }
}
