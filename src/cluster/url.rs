//! `redis://[user:pass@]host:port/db`: where a cluster's Redis is and how to
//! log in to it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// Redis' default port.
pub const DEFAULT_PORT: u16 = 6379;

/// A parsed `redis://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// The host as written: an IPv4 or IPv6 literal, or a name.
    pub host: String,
    /// The port (6379 when the URL has none).
    pub port: u16,
    /// The ACL user for `AUTH user pass` (Redis 6+), if any.
    pub user: Option<String>,
    /// The password for `AUTH`, if any.
    pub password: Option<String>,
    /// The database for `SELECT` (0 when the URL has none).
    pub db: u32,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `redis://`.
    #[error("unsupported scheme {0:?}: only redis://[user:pass@]host:port/db is supported")]
    Scheme(String),
    /// `rediss://`: TLS to Redis is not implemented.
    #[error(
        "rediss:// (TLS to Redis) is not supported: use redis:// (on loopback, or through a TLS tunnel)"
    )]
    Tls,
    /// No host.
    #[error("the Redis URL has no host")]
    NoHost,
    /// A port that is not a number from 1 to 65535.
    #[error("bad port {0:?} in the Redis URL")]
    Port(String),
    /// A database that is not a number.
    #[error("bad database {0:?} in the Redis URL (want /0, /1, ...)")]
    Db(String),
    /// `?options` or `#fragment`, which we do not interpret.
    #[error("the Redis URL has options ({0:?}), which are not supported")]
    Options(String),
    /// A `%` escape that is not two hex digits or not UTF-8.
    #[error("bad %-escape in the Redis URL's user or password")]
    Escape,
    /// A host that is not an IP address (and not `localhost`): resolving
    /// names would block the select() loop, so it is left to the host.
    #[error("{0:?} is not an IP address: resolve the name first (or use 127.0.0.1)")]
    NotAnAddress(String),
}

impl FromStr for RedisUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<Self, UrlError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(UrlError::Scheme(url.to_string()));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "redis" => {}
            "rediss" => return Err(UrlError::Tls),
            other => return Err(UrlError::Scheme(other.to_string())),
        }
        if let Some(at) = rest.find(['?', '#']) {
            return Err(UrlError::Options(rest[at..].to_string()));
        }
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, ""),
        };
        let db = match path {
            "" => 0,
            p => p.parse().map_err(|_| UrlError::Db(p.to_string()))?,
        };
        // The password may hold '@' only escaped; the last '@' ends it.
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (u, p) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let u = unescape(u)?;
                let p = p.map(unescape).transpose()?;
                // `redis://:pass@host` is a password alone; `redis://pass@host`
                // (no colon) is read the same way, as redis-cli does.
                match (u.is_empty(), p) {
                    (true, p) => (None, p),
                    (false, None) => (None, Some(u)),
                    (false, Some(p)) => (Some(u), Some(p)),
                }
            }
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        Ok(RedisUrl {
            host,
            port,
            user,
            password,
            db,
        })
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(s: &str) -> Result<(String, u16), UrlError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(UrlError::NoHost);
        };
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| UrlError::Port(p.to_string()))?),
        };
        (host, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(UrlError::Port(p.to_string())),
        },
    };
    Ok((host.to_string(), port))
}

/// Decodes `%XX` escapes.
fn unescape(s: &str) -> Result<String, UrlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(UrlError::Escape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| UrlError::Escape)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError::Escape)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::Escape)
}

impl RedisUrl {
    /// The socket address to connect to: the host must be an IP literal or
    /// `localhost` (127.0.0.1). Names are refused: resolving them blocks.
    pub fn socket_addr(&self) -> Result<SocketAddr, UrlError> {
        let ip = if self.host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            self.host
                .parse::<IpAddr>()
                .map_err(|_| UrlError::NotAnAddress(self.host.clone()))?
        };
        Ok(SocketAddr::new(ip, self.port))
    }
}

/// The URL without its password, for logs and stats.
impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("redis://")?;
        match (&self.user, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:***@")?,
            (None, Some(_)) => f.write_str(":***@")?,
            _ => {}
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            write!(f, "{}:{}/{}", self.host, self.port, self.db)
        }
    }
}

/// As `Display`: never shows the password.
impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> RedisUrl {
        s.parse().unwrap()
    }

    #[test]
    fn parses_every_part() {
        let u = url("redis://app:s%40cret@127.0.0.1:7000/3");
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref()),
            (Some("app"), Some("s@cret"))
        );
        assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", 7000, 3));
        assert_eq!(u.socket_addr().unwrap(), "127.0.0.1:7000".parse().unwrap());
        assert_eq!(u.to_string(), "redis://app:***@127.0.0.1:7000/3");
        let u = url("redis://:pw@localhost");
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref(), u.port, u.db),
            (None, Some("pw"), 6379, 0)
        );
        assert_eq!(u.socket_addr().unwrap(), "127.0.0.1:6379".parse().unwrap());
        let u = url("redis://[::1]:6380/");
        assert_eq!(u.socket_addr().unwrap(), "[::1]:6380".parse().unwrap());
        assert_eq!(u.to_string(), "redis://[::1]:6380/0");
    }

    #[test]
    fn refuses_what_it_cannot_do_with_a_clear_error() {
        let e = |s: &str| s.parse::<RedisUrl>().unwrap_err();
        assert_eq!(e("rediss://h:1"), UrlError::Tls);
        assert_eq!(e("unix:///tmp/redis.sock"), UrlError::Scheme("unix".into()));
        assert_eq!(e("127.0.0.1:6379"), UrlError::Scheme("127.0.0.1:6379".into()));
        assert_eq!(e("redis://h:0"), UrlError::Port("0".into()));
        assert_eq!(e("redis://h:99999"), UrlError::Port("99999".into()));
        assert_eq!(e("redis://h/x"), UrlError::Db("x".into()));
        assert_eq!(e("redis://h/0?timeout=1"), UrlError::Options("?timeout=1".into()));
        assert_eq!(e("redis://:pw@/0"), UrlError::NoHost);
        assert_eq!(e("redis://u:%zz@h"), UrlError::Escape);
        assert!(e("rediss://h").to_string().contains("TLS"));
        let name = url("redis://redis.example:6379");
        assert_eq!(
            name.socket_addr(),
            Err(UrlError::NotAnAddress("redis.example".into()))
        );
    }
}
