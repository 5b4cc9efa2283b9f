//! A blocking JSON-RPC 2.0 client for a Lotus/Forest full node: HTTP POST to `/rpc/v1`,
//! by-position parameters, methods named `Filecoin.*`, bearer-token auth. Optionally writes
//! every request and response to a transcript file (`--record`), so a session against a
//! real node can be kept and replayed as test data.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::api_info::ApiInfo;

/// An error the node returned (JSON-RPC `error`), with its code: Lotus's API codes start at
/// 2 (`EOutOfGas`), 3 (`EExecutionReverted`), 11 (`EActorNotFound`), 12 (`ENullRound`).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub method: String,
    pub code: i64,
    pub message: String,
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed on the node (code {}): {}",
            self.method, self.code, self.message
        )
    }
}

impl std::error::Error for RpcError {}

pub struct Client {
    info: ApiInfo,
    agent: ureq::Agent,
    next_id: AtomicU64,
    record: Option<Mutex<std::fs::File>>,
}

/// How long one call may take: the node answers state queries in milliseconds; a minute
/// covers a busy node without hanging the daemon.
const TIMEOUT: Duration = Duration::from_secs(60);

impl Client {
    pub fn new(info: ApiInfo) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            info,
            agent,
            next_id: AtomicU64::new(1),
            record: None,
        }
    }

    /// Appends every request and response, one JSON object per line, to `path`.
    pub fn record_to(mut self, path: &std::path::Path) -> Result<Client> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open transcript {}", path.display()))?;
        self.record = Some(Mutex::new(f));
        Ok(self)
    }

    pub fn url(&self) -> &str {
        &self.info.url
    }

    /// Calls `Filecoin.<method>` with `params` and returns its `result`.
    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let full = format!("Filecoin.{method}");
        let req = json!({"jsonrpc": "2.0", "id": id, "method": full, "params": params});
        let mut r = self
            .agent
            .post(&self.info.url)
            .header("Content-Type", "application/json");
        if let Some(t) = &self.info.token {
            r = r.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = r
            .send(req.to_string())
            .with_context(|| format!("{full}: cannot reach the node at {}", self.info.url))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .with_context(|| format!("{full}: cannot read the node's answer"))?;
        self.write_record(&req, status, &body);
        if status == 401 || status == 403 {
            bail!("{full}: the node refused the token (HTTP {status}); a token with --perm=sign is needed");
        }
        let v: Value = serde_json::from_str(&body).with_context(|| {
            format!(
                "{full}: the node's answer (HTTP {status}) is not JSON: {:.200}",
                body
            )
        })?;
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(RpcError {
                method: full,
                code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_string(),
            }
            .into());
        }
        v.get("result")
            .cloned()
            .with_context(|| format!("{full}: the node's answer has no result: {:.200}", body))
    }

    fn write_record(&self, req: &Value, status: u16, body: &str) {
        if let Some(f) = &self.record {
            let resp: Value = serde_json::from_str(body).unwrap_or_else(|_| Value::from(body));
            let line = json!({"request": req, "status": status, "response": resp});
            if let Ok(mut f) = f.lock() {
                // A transcript is a diagnostic: a failed write never fails the call.
                let _ = crate::fsutil::append_line(&mut f, &line.to_string());
            }
        }
    }
}
