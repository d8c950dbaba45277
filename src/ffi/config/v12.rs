//! The fields `ChatConfig` gained in 1.2 (TLS, WebSocket, the cluster,
//! resumable sessions), read as far as the host's `struct_size` covers
//! them. A zero or NULL field keeps the default.

use std::ffi::c_char;
// Used by `field_if_covered!`.
use std::mem::{offset_of, size_of};
use std::net::SocketAddr;
use std::time::Duration;

use super::{flag, ChatConfig};
use crate::config::TlsPem;
use crate::ffi::args;
use crate::ffi::error::{ErrorCode, Failure};
use crate::Config;

/// Reads the 1.2 fields into `out`.
///
/// # Safety
/// `cfg` points to a readable `ChatConfig` of at least `size` bytes whose
/// covered pointers are NULL or valid: PEM pointers for their lengths,
/// strings NUL-terminated.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
pub(super) unsafe fn read(cfg: *const ChatConfig, size: usize, out: &mut Config) -> Result<(), Failure> {
    let cert_ptr = field_if_covered!(cfg, size, tls_cert_pem: *const u8);
    let cert_len = field_if_covered!(cfg, size, tls_cert_len: usize);
    // SAFETY: the PEM pointers are NULL or valid for their lengths (caller).
    let cert = unsafe { bytes(cert_ptr, cert_len, "tls_cert_pem") }?;
    let key_ptr = field_if_covered!(cfg, size, tls_key_pem: *const u8);
    let key_len = field_if_covered!(cfg, size, tls_key_len: usize);
    // SAFETY: as above.
    let key = unsafe { bytes(key_ptr, key_len, "tls_key_pem") }?;
    out.tls = match (cert, key) {
        (None, None) => None,
        (Some(cert_chain), Some(private_key)) => Some(TlsPem {
            cert_chain,
            private_key,
        }),
        (Some(_), None) => return Err(tls_pair("tls_cert_pem is set but tls_key_pem is not")),
        (None, Some(_)) => return Err(tls_pair("tls_key_pem is set but tls_cert_pem is not")),
    };
    let ws_listen_addr = field_if_covered!(cfg, size, ws_listen_addr: *const c_char);
    // SAFETY: the strings are NULL or NUL-terminated (caller), here and below.
    if let Some(text) = unsafe { text(ws_listen_addr, "ws_listen_addr") }? {
        out.ws_listen_addr =
            Some(text.parse::<SocketAddr>().map_err(|_| {
                Failure::new(ErrorCode::Addr, format!("ws_listen_addr {text:?} is not IP:port"))
            })?);
    }
    let ws_path = field_if_covered!(cfg, size, ws_path: *const c_char);
    // SAFETY: as above.
    if let Some(path) = unsafe { text(ws_path, "ws_path") }? {
        out.ws_path = path.to_string();
    }
    let origins = field_if_covered!(cfg, size, ws_allowed_origins: *const c_char);
    // SAFETY: as above.
    if let Some(list) = unsafe { text(origins, "ws_allowed_origins") }? {
        out.ws_allowed_origins = Some(
            list.split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect(),
        );
    }
    let redis_url = field_if_covered!(cfg, size, redis_url: *const c_char);
    // SAFETY: as above.
    if let Some(url) = unsafe { text(redis_url, "redis_url") }? {
        out.redis_url = Some(
            url.parse()
                .map_err(|e| Failure::new(ErrorCode::Config, format!("redis_url: {e}")))?,
        );
    }
    let cluster_name = field_if_covered!(cfg, size, cluster_name: *const c_char);
    // SAFETY: as above.
    if let Some(name) = unsafe { text(cluster_name, "cluster_name") }? {
        out.cluster_name = name.to_string();
    }
    if let Some(ms) = field_if_covered!(cfg, size, node_timeout_ms: u32).filter(|&ms| ms > 0) {
        out.node_timeout = Duration::from_millis(ms.into());
    }
    if let Some(n) = field_if_covered!(cfg, size, reuse_port: u8) {
        out.reuse_port = flag(n.into(), "reuse_port")?;
    }
    if let Some(ms) = field_if_covered!(cfg, size, resume_window_ms: u32).filter(|&ms| ms > 0) {
        out.resume_window = Duration::from_millis(ms.into());
    }
    if let Some(n) = field_if_covered!(cfg, size, resume_retain_bytes: u64).filter(|&n| n > 0) {
        out.resume_retain_bytes = usize::try_from(n).map_err(|_| {
            Failure::new(
                ErrorCode::Config,
                format!("resume_retain_bytes {n} does not fit in this platform's size_t"),
            )
        })?;
    }
    Ok(())
}

fn tls_pair(why: &str) -> Failure {
    Failure::new(
        ErrorCode::Tls,
        format!("{why}: give both, or neither for plain TCP"),
    )
}

/// A PEM field: NULL (or not covered) is none; a pointer with a length is
/// copied out.
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
unsafe fn bytes(ptr: Option<*const u8>, len: Option<usize>, what: &str) -> Result<Option<Vec<u8>>, Failure> {
    let (Some(ptr), Some(len)) = (ptr, len) else {
        return Ok(None);
    };
    if ptr.is_null() {
        return Ok(None);
    }
    if len == 0 {
        return Err(Failure::new(
            ErrorCode::Tls,
            format!("{what} is set but its length is 0"),
        ));
    }
    // SAFETY: `ptr` points to `len` readable bytes (caller).
    Ok(Some(unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()))
}

/// A string field: NULL (or not covered) is none; otherwise UTF-8.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
// SAFETY: an unsafe fn: callers uphold its `# Safety` section above.
unsafe fn text<'a>(ptr: Option<*const c_char>, what: &str) -> Result<Option<&'a str>, Failure> {
    match ptr {
        Some(p) if !p.is_null() => {
            // SAFETY: `p` is a NUL-terminated string (caller).
            Ok(Some(unsafe { args::utf8(p, what) }?))
        }
        _ => Ok(None),
    }
}
