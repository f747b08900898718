//! The `--target` URL: `ws://HOST[:PORT][/PATH]` or `wss://…`.

use super::{ExitStatus, ReplayError};

/// A parsed `--target` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `wss://`: connect with TLS.
    pub tls: bool,
    /// Host as written, without IPv6 brackets.
    pub host: String,
    /// Port as written, or 80 (`ws://`) / 443 (`wss://`).
    pub port: u16,
    /// Path and query, when the URL has one (`/` counts).
    pub path: Option<String>,
}

impl Target {
    /// Parses `ws://HOST[:PORT][/PATH]` or `wss://...`; a bad URL is a usage error.
    pub fn parse(url: &str) -> Result<Target, ReplayError> {
        let usage = |why: &str| {
            ReplayError::new(
                ExitStatus::Usage,
                format!("--target {url:?}: {why} (expected ws://HOST:PORT/PATH or wss://…)"),
            )
        };
        let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "ws://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(url, "wss://") {
            (true, r)
        } else {
            return Err(usage("scheme must be ws or wss"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], Some(rest[i..].to_string())),
            None => (rest, None),
        };
        let path = path.map(|p| {
            if p.starts_with('?') {
                format!("/{p}")
            } else {
                p
            }
        });
        if authority.contains('@') {
            return Err(usage(
                "credentials in the URL are not supported; use -H 'Authorization: …'",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| usage("unclosed '['"))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(usage("no host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| usage("bad port"))?,
            None if tls => 443,
            None => 80,
        };
        Ok(Target {
            tls,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// The `Host` header value: the port only when not the scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let t = Target::parse("ws://127.0.0.1:9000/chat?x=1").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (false, "127.0.0.1", 9000));
        assert_eq!(t.path.as_deref(), Some("/chat?x=1"));
        assert_eq!(t.host_header(), "127.0.0.1:9000");
        let t = Target::parse("WSS://example.org").unwrap();
        assert_eq!((t.tls, t.port, t.path.clone()), (true, 443, None));
        assert_eq!(t.host_header(), "example.org");
        let t = Target::parse("ws://[::1]:81?q").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 81));
        assert_eq!(t.path.as_deref(), Some("/?q"));
        assert_eq!(t.host_header(), "[::1]:81");
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "http://x/",
            "ws://",
            "ws://h:99999/",
            "ws://u:p@h/",
            "ws://[::1/",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert_eq!(e.status, ExitStatus::Usage, "{bad}");
        }
    }
}
