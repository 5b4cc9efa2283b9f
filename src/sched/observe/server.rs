//! The read-only HTTP listener of `seal-sched run --metrics ADDR` and `seal-sched serve`:
//! `/` (the web view), `/metrics`, `/api/state.json` and `/sector/N.svg`. GET and HEAD only;
//! no request changes anything. One thread, blocking on accept, so an unwatched daemon
//! spends nothing on it; each request reads a fresh snapshot through the server's own
//! read-only connection.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{Context, Result};
use rusqlite::Connection;

use super::{gantt, metrics, page, Snapshot};
use crate::sched::config::Config;
use crate::sched::db::{stats, TaskRow};
use crate::sched::engine::resource_table;
use crate::sched::repo::Repo;
use crate::sched::resources::ResourceTable;

/// Seconds between the web view's reloads.
const REFRESH: u32 = 5;

/// The address to listen on: loopback only, unless `[metrics] allow_remote = true`.
pub fn check_listen(addr: &str, allow_remote: bool) -> Result<SocketAddr> {
    let resolved: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .with_context(|| {
            format!("{addr:?} is not a listen address (HOST:PORT, e.g. 127.0.0.1:9268)")
        })?
        .collect();
    let first = *resolved
        .first()
        .with_context(|| format!("{addr:?} resolves to no address"))?;
    anyhow::ensure!(
        allow_remote || resolved.iter().all(|a| a.ip().is_loopback()),
        "{addr} is not a loopback address: the pages name sectors, paths and hosts, so they are \
         served to this machine only unless config.toml says [metrics] allow_remote = true"
    );
    Ok(first)
}

/// What a listener needs to answer.
pub struct Ctx {
    repo: PathBuf,
    db_path: PathBuf,
    cfg: Config,
    table: ResourceTable,
    conn: Option<Connection>,
}

impl Ctx {
    pub fn new(repo: &Repo) -> Result<Ctx> {
        let cfg = repo.config()?;
        // Creates any table this version adds, so the read-only connection finds them.
        drop(repo.open_db()?);
        Ok(Ctx {
            table: resource_table(&cfg)?,
            repo: repo.root.clone(),
            db_path: repo.db_path(),
            cfg,
            conn: None,
        })
    }

    fn snapshot(&mut self) -> Result<Snapshot> {
        if self.conn.is_none() {
            self.conn = Some(stats::open_reader(&self.db_path)?);
        }
        let conn = self.conn.as_ref().expect("opened");
        let r = Snapshot::take(&self.repo, &self.cfg, &self.table, conn, true);
        if r.is_err() {
            // Opened afresh next time (the file may have been replaced).
            self.conn = None;
        }
        r
    }

    /// The status, content type and body for a GET of `url`.
    pub fn answer(&mut self, url: &str) -> (u16, &'static str, Vec<u8>) {
        let path = url.split('?').next().unwrap_or("");
        let r = match path {
            "/" | "/index.html" => self
                .snapshot()
                .map(|s| ("text/html; charset=utf-8", page::render(&s, Some(REFRESH)))),
            "/metrics" => self
                .snapshot()
                .and_then(|s| metrics::render(&s))
                .map(|t| (metrics::CONTENT_TYPE, t)),
            "/api/state.json" => self
                .snapshot()
                .map(|s| ("application/json", s.to_json().to_string())),
            p => match p
                .strip_prefix("/sector/")
                .and_then(|r| r.strip_suffix(".svg"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                Some(n) => self.snapshot().map(|s| {
                    let tasks: Vec<&TaskRow> = s.tasks.iter().filter(|t| t.sector == n).collect();
                    (
                        "image/svg+xml",
                        gantt::sector_svg(n, &s.timeline(n), &tasks, s.at, true),
                    )
                }),
                None => return (404, "text/plain; charset=utf-8", b"not found\n".to_vec()),
            },
        };
        match r {
            Ok((ct, body)) => (200, ct, body.into_bytes()),
            Err(e) => (
                500,
                "text/plain; charset=utf-8",
                format!("cannot read the state: {e:#}\n").into_bytes(),
            ),
        }
    }
}

fn header(k: &str, v: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("valid header")
}

/// Binds `addr` (the address actually bound is returned: port 0 picks one).
pub fn bind(addr: SocketAddr) -> Result<(tiny_http::Server, SocketAddr)> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    Ok((server, bound))
}

/// Whether a request's `Host` names this machine (an IP address, `localhost`): a page a
/// browser fetched under another name came through DNS rebinding, from a site that must not
/// read the farm. Only checked while the listener is loopback-only.
pub fn local_host_header(host: Option<&str>) -> bool {
    let Some(h) = host else {
        return true; // HTTP/1.0 without Host: not a browser
    };
    let name = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        h.rsplit_once(':').map_or(h, |(n, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                n
            } else {
                h
            }
        })
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// Answers requests until the listener fails; never returns otherwise. The answer is
/// computed here, one at a time, and written on a thread of its own, so a client that
/// does not read cannot hold up the others.
pub fn serve(server: tiny_http::Server, mut ctx: Ctx) {
    for req in server.incoming_requests() {
        let method = req.method().clone();
        let host = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Host"))
            .map(|h| h.value.as_str().to_string());
        let (status, ct, body) = match method {
            _ if !ctx.cfg.metrics.allow_remote && !local_host_header(host.as_deref()) => (
                421,
                "text/plain; charset=utf-8",
                b"this listener answers to its address only\n".to_vec(),
            ),
            tiny_http::Method::Get | tiny_http::Method::Head => ctx.answer(req.url()),
            _ => (
                405,
                "text/plain; charset=utf-8",
                b"read-only: GET and HEAD only\n".to_vec(),
            ),
        };
        let body = if method == tiny_http::Method::Head {
            Vec::new()
        } else {
            body
        };
        let resp = tiny_http::Response::from_data(body)
            .with_status_code(status)
            .with_header(header("Content-Type", ct))
            .with_header(header("Cache-Control", "no-store"))
            .with_header(header("X-Content-Type-Options", "nosniff"))
            // Nothing the page could load comes from anywhere but here.
            .with_header(header(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'none'; frame-ancestors 'none'",
            ))
            .with_header(header("Allow", "GET, HEAD"));
        std::thread::spawn(move || {
            let _ = req.respond(resp);
        });
    }
}

/// Starts the listener on its own thread (the daemon's `--metrics`).
pub fn spawn(repo: &Repo, addr: SocketAddr) -> Result<SocketAddr> {
    let ctx = Ctx::new(repo)?;
    let (server, bound) = bind(addr)?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || serve(server, ctx))
        .context("cannot start the metrics thread")?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machines_names_are_hosts() {
        for ok in [
            None,
            Some("127.0.0.1:9268"),
            Some("localhost:9268"),
            Some("LOCALHOST"),
            Some("[::1]:9268"),
            Some("10.0.0.5:80"),
        ] {
            assert!(local_host_header(ok), "{ok:?}");
        }
        for bad in [
            Some("evil.example:9268"),
            Some("evil.example"),
            Some("127.0.0.1.evil:1"),
        ] {
            assert!(!local_host_header(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_listen_address_is_loopback_unless_allowed() {
        assert_eq!(
            check_listen("127.0.0.1:9268", false).unwrap(),
            "127.0.0.1:9268".parse().unwrap()
        );
        assert!(check_listen("[::1]:9268", false).is_ok());
        let e = check_listen("0.0.0.0:9268", false).unwrap_err().to_string();
        assert!(
            e.starts_with("0.0.0.0:9268 is not a loopback address"),
            "{e}"
        );
        assert!(check_listen("0.0.0.0:9268", true).is_ok());
        assert!(check_listen("9268", false).is_err());
    }
}
