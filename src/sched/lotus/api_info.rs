//! `FULLNODE_API_INFO`: how Lotus and Forest tell a client where the node is and with which
//! token (`TOKEN:/ip4/127.0.0.1/tcp/1234/http`, as `lotus auth api-info --perm=sign` prints;
//! docs/chain.md#api-info). Parsed as Lotus's `ParseApiInfo` does: the split is at the first
//! `:` unless the text starts with `/` (a bare multiaddr) or the part after the colon starts
//! with `//` (a URL, no token). Several entries may be separated by `,`; the first is used.

use anyhow::{bail, ensure, Context, Result};

/// Where the node's JSON-RPC endpoint is, and its bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiInfo {
    /// `http://HOST:PORT/rpc/v1`.
    pub url: String,
    pub token: Option<String>,
}

impl ApiInfo {
    pub fn parse(text: &str) -> Result<ApiInfo> {
        let first = text.trim().split(',').next().unwrap_or_default();
        let entry = first.trim().trim_matches('"').trim();
        ensure!(!entry.is_empty(), "FULLNODE_API_INFO is empty");
        let (token, addr) = match entry.split_once(':') {
            Some((t, rest)) if !entry.starts_with('/') && !rest.starts_with("//") => {
                (Some(t.to_string()), rest)
            }
            _ => (None, entry),
        };
        let url = if addr.starts_with('/') {
            multiaddr_url(addr)?
        } else {
            let base = addr.trim_end_matches('/');
            ensure!(
                base.starts_with("http://"),
                "FULLNODE_API_INFO address {addr:?}: only http:// endpoints are supported (no TLS in this build)"
            );
            format!("{base}/rpc/v1")
        };
        Ok(ApiInfo {
            url,
            token: token.filter(|t| !t.is_empty()),
        })
    }
}

/// `/ip4/H/tcp/P/http`, `/ip6/…`, `/dns*/NAME/tcp/P[/http]` → `http://H:P/rpc/v1`.
fn multiaddr_url(addr: &str) -> Result<String> {
    let parts: Vec<&str> = addr.trim_start_matches('/').split('/').collect();
    let bad = |why: &str| anyhow::anyhow!("FULLNODE_API_INFO address {addr:?}: {why}");
    ensure!(parts.len() >= 4, bad("expected /ip4/HOST/tcp/PORT/http"));
    let host = match parts[0] {
        "ip4" | "dns" | "dns4" | "dns6" => parts[1].to_string(),
        "ip6" => format!("[{}]", parts[1]),
        p => bail!(bad(&format!("unsupported protocol /{p}"))),
    };
    ensure!(parts[2] == "tcp", bad("expected /tcp/PORT after the host"));
    let port: u16 = parts[3]
        .parse()
        .map_err(|_| bad("the port is not a number"))?;
    if parts[4..]
        .iter()
        .any(|p| matches!(*p, "wss" | "tls" | "https"))
    {
        bail!(bad(
            "TLS endpoints are not supported in this build; use the node's http address"
        ));
    }
    Ok(format!("http://{host}:{port}/rpc/v1"))
}

/// The node to use: `configured` (config `chain.api_info`) if set, else the environment's
/// `FULLNODE_API_INFO`.
pub fn locate(configured: &str) -> Result<ApiInfo> {
    if !configured.is_empty() {
        return ApiInfo::parse(configured).context("key chain.api_info");
    }
    let env = std::env::var("FULLNODE_API_INFO").context(
        "no full node configured: set chain.api_info in config.toml or FULLNODE_API_INFO \
         (`lotus auth api-info --perm=sign` prints it)",
    )?;
    ApiInfo::parse(&env).context("FULLNODE_API_INFO")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_lotus_does() {
        let a = ApiInfo::parse("eyJhbGc.x.y:/ip4/127.0.0.1/tcp/1234/http").unwrap();
        assert_eq!(a.url, "http://127.0.0.1:1234/rpc/v1");
        assert_eq!(a.token.as_deref(), Some("eyJhbGc.x.y"));
        // A bare multiaddr: no token.
        let a = ApiInfo::parse("/ip4/10.0.0.2/tcp/2345/http").unwrap();
        assert_eq!(
            (a.url.as_str(), a.token),
            ("http://10.0.0.2:2345/rpc/v1", None)
        );
        // A URL with and without a token; Forest's shell quotes; several entries.
        let a = ApiInfo::parse("http://node:1234").unwrap();
        assert_eq!((a.url.as_str(), a.token), ("http://node:1234/rpc/v1", None));
        let a = ApiInfo::parse("\"tok:http://node:1234/\",other:/ip4/1.2.3.4/tcp/1/http").unwrap();
        assert_eq!(a.url, "http://node:1234/rpc/v1");
        assert_eq!(a.token.as_deref(), Some("tok"));
        let a = ApiInfo::parse("t:/dns/lotus.lan/tcp/1234/http").unwrap();
        assert_eq!(a.url, "http://lotus.lan:1234/rpc/v1");
        let a = ApiInfo::parse("t:/ip6/::1/tcp/1234/http").unwrap();
        assert_eq!(a.url, "http://[::1]:1234/rpc/v1");
        for bad in [
            "",
            "tok:/ip4/1.2.3.4/udp/1/http",
            "tok:/ip4/1.2.3.4/tcp/x/http",
            "tok:/ip4/1.2.3.4/tcp/1/wss",
            "tok:https://node",
        ] {
            assert!(ApiInfo::parse(bad).is_err(), "{bad:?}");
        }
    }
}
