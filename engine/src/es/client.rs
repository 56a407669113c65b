//! The HTTP side (the Vector split's `service`): one `ureq` agent whose keep-alive pool is
//! shared by every sender thread, TLS with a private CA, basic auth or API key, `_bulk` requests
//! with optional gzip, and the per-item results of the response classified the Vector way.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

/// How requests authenticate against the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP basic authentication.
    Basic { user: String, password: String },
    /// `Authorization: ApiKey <key>`, the key as Elasticsearch prints it (base64 of `id:key`).
    ApiKey(String),
}

/// Where and how `_bulk` requests are sent.
#[derive(Clone, Debug)]
pub struct EsSettings {
    /// Base URLs (`http://127.0.0.1:9200`); requests go round-robin, a failed one tries the next.
    pub urls: Vec<String>,
    pub auth: Auth,
    /// PEM file with the CA certificate(s) to trust for `https://` URLs (instead of the
    /// built-in web PKI roots).
    pub ca: Option<PathBuf>,
    /// Compress request bodies (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl Default for EsSettings {
    fn default() -> Self {
        EsSettings {
            urls: vec!["http://127.0.0.1:9200".to_string()],
            auth: Auth::None,
            ca: None,
            gzip: false,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why a request as a whole did not produce per-item results.
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// Connection refused or reset, timeout, TLS failure: nothing is known about the items.
    #[error("{url}: {message}")]
    Transport { url: String, message: String },
    /// The server answered the request with an error status.
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    /// A 200 whose body could not be read as a bulk response.
    #[error("{url}: unreadable bulk response: {message}")]
    Response { url: String, message: String },
    /// Configuration (CA file, URL) that cannot work.
    #[error("{0}")]
    Config(String),
    /// The TLS handshake failed (most often: the server's certificate is not signed by a CA
    /// that `--es-ca` or the built-in roots trust).
    #[error("{url}: TLS handshake failed: {message}")]
    Tls { url: String, message: String },
}

impl BulkError {
    /// Whether sending the same request again later may succeed. 429 and 5xx are; so are 401,
    /// 403 and 404 for the request as a whole (credentials or a path being fixed: giving the
    /// documents up to the dead-letter topic would be worse). 413 is handled by splitting.
    /// Other 4xx are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            BulkError::Transport { .. } | BulkError::Response { .. } | BulkError::Tls { .. } => {
                true
            }
            BulkError::Status { status, .. } => {
                matches!(status, 401 | 403 | 404 | 408 | 429) || *status >= 500
            }
            BulkError::Config(_) => false,
        }
    }

    /// At start, errors that waiting will not cure: a certificate that is not trusted, wrong
    /// credentials (401) or a user without the rights (403). Returns what to tell the operator
    /// (naming `ferroflow index`'s flags: only the indexer asks).
    pub fn fatal_at_start(&self) -> Option<String> {
        match self {
            BulkError::Tls { .. } => Some(format!(
                "{self}; the server's certificate is not trusted: give the PEM file of the CA \
                 that signed it with --es-ca (FERROFLOW_INDEX_ES_CA)"
            )),
            BulkError::Status {
                url, status: 401, ..
            } => Some(format!(
                "{url}: HTTP 401: authentication failed; check --es-user / --es-password or \
                 --es-api-key"
            )),
            BulkError::Status {
                url,
                status: 403,
                body,
            } => Some(format!(
                "{url}: HTTP 403: the user is not allowed to do this: {body}"
            )),
            _ => None,
        }
    }
}

/// A transport error as a [`BulkError`]; TLS handshake failures get their own kind.
fn transport_error(url: &str, e: ureq::Error) -> BulkError {
    let message = e.to_string();
    let tls = matches!(e, ureq::Error::Rustls(_))
        || message.contains("invalid peer certificate")
        || message.contains("rustls");
    if tls {
        BulkError::Tls {
            url: url.to_string(),
            message,
        }
    } else {
        BulkError::Transport {
            url: url.to_string(),
            message,
        }
    }
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Created (2xx).
    Written,
    /// 409 on `create`: the document with this id is already there (a replay).
    AlreadyWritten,
    /// 429 / 5xx: send it again.
    Retry { status: u16 },
    /// Any other error: final (the indexer sends it to the dead-letter topic with the reason).
    Rejected { status: u16, reason: String },
}

/// Classifies an item's status (and error object, as JSON text) the Vector way.
pub fn classify(status: u16, error: Option<&serde_json::Value>) -> ItemOutcome {
    match status {
        200..=299 => ItemOutcome::Written,
        409 => ItemOutcome::AlreadyWritten,
        429 => ItemOutcome::Retry { status },
        s if s >= 500 => ItemOutcome::Retry { status },
        _ => ItemOutcome::Rejected {
            status,
            reason: error.map_or_else(|| "no error object".to_string(), |e| e.to_string()),
        },
    }
}

#[derive(Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct BulkResponseBody {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Vec<std::collections::HashMap<String, ItemResult>>,
}

/// The per-item results of a bulk response (`n` items sent). `None` in the outcome list means
/// the response says `"errors":false`, so every item was written.
pub fn parse_bulk_response(body: &[u8], n: usize) -> Result<Option<Vec<ItemOutcome>>, String> {
    // Fast path: `{"errors":false,...}` (filter_path keeps that key first).
    let head = &body[..body.len().min(64)];
    if head.windows(16).any(|w| w == b"\"errors\":false,") || head == b"{\"errors\":false}" {
        return Ok(None);
    }
    let r: BulkResponseBody = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if !r.errors {
        return Ok(None);
    }
    if r.items.len() != n {
        return Err(format!("{} items in the response, {n} sent", r.items.len()));
    }
    Ok(Some(
        r.items
            .iter()
            .map(|m| match m.values().next() {
                Some(it) => classify(it.status, it.error.as_ref()),
                None => ItemOutcome::Retry { status: 0 },
            })
            .collect(),
    ))
}

/// Sends `_bulk` requests and installs templates. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct EsClient {
    inner: Arc<Inner>,
}

struct Inner {
    agent: ureq::Agent,
    urls: Vec<String>,
    next: AtomicUsize,
    auth: Option<String>,
    gzip: bool,
}

/// A response: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl EsClient {
    pub fn new(s: &EsSettings, pool: usize) -> Result<EsClient, BulkError> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &s.ca {
            let pem = std::fs::read(ca)
                .map_err(|e| BulkError::Config(format!("--es-ca {}: {e}", ca.display())))?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(BulkError::Config(format!("--es-ca {}: {e}", ca.display())))
                    }
                }
            }
            if certs.is_empty() {
                return Err(BulkError::Config(format!(
                    "--es-ca {}: no certificate in the file",
                    ca.display()
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(s.timeout))
            .timeout_connect(Some(Duration::from_secs(5)))
            .max_idle_connections(pool.max(1) * 2)
            .max_idle_connections_per_host(pool.max(1) * 2)
            .max_idle_age(Duration::from_secs(50))
            .tls_config(tls.build())
            .user_agent(concat!("ferroflow/", env!("CARGO_PKG_VERSION")))
            .build();
        let auth = match &s.auth {
            Auth::None => None,
            Auth::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            Auth::ApiKey(k) => Some(format!("ApiKey {k}")),
        };
        Ok(EsClient {
            inner: Arc::new(Inner {
                agent: config.into(),
                urls: s
                    .urls
                    .iter()
                    .map(|u| u.trim_end_matches('/').to_string())
                    .collect(),
                next: AtomicUsize::new(0),
                auth,
                gzip: s.gzip,
            }),
        })
    }

    /// The first base URL (for messages).
    pub fn first_url(&self) -> &str {
        self.inner.urls.first().map(String::as_str).unwrap_or("")
    }

    /// Round-robin over the URLs; a transport failure moves to the next.
    fn base(&self, attempt: usize) -> &str {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) + attempt;
        &self.inner.urls[i % self.inner.urls.len()]
    }

    /// One request; `body` gzipped when configured (and `gzip_ok`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&[u8]>,
        gzip_ok: bool,
    ) -> Result<Reply, BulkError> {
        let url = format!("{}{}", self.base(0), path);
        let transport = |e: ureq::Error| transport_error(&url, e);
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Content-Type", content_type);
        if let Some(a) = &self.inner.auth {
            builder = builder.header("Authorization", a);
        }
        let gz: Vec<u8>;
        let payload: &[u8] = match body {
            Some(b) if self.inner.gzip && gzip_ok => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(b.len() / 6),
                    flate2::Compression::fast(),
                );
                gz = enc.write_all(b).and_then(|_| enc.finish()).map_err(|e| {
                    BulkError::Transport {
                        url: url.clone(),
                        message: format!("gzip: {e}"),
                    }
                })?;
                builder = builder.header("Content-Encoding", "gzip");
                &gz
            }
            Some(b) => b,
            None => &[],
        };
        let req = builder
            .body(payload)
            .map_err(|e| BulkError::Config(e.to_string()))?;
        let mut resp = self.inner.agent.run(req).map_err(transport)?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_vec()
            .map_err(transport)?;
        Ok(Reply { status, body })
    }

    /// One request whose answer must be a 2xx: any other status is a [`BulkError::Status`]
    /// (with the first 2 KiB of the body).
    pub fn request_ok(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, BulkError> {
        let r = self.request(method, path, "application/json", body, false)?;
        if (200..300).contains(&r.status) {
            return Ok(r);
        }
        Err(BulkError::Status {
            url: format!("{}{path}", self.first_url()),
            status: r.status,
            body: String::from_utf8_lossy(&r.body[..r.body.len().min(2048)]).into_owned(),
        })
    }

    /// POST a `_bulk` body of `n` items; per-item outcomes or a whole-request error.
    pub fn bulk(&self, body: &[u8], n: usize) -> Result<Option<Vec<ItemOutcome>>, BulkError> {
        let path = "/_bulk?filter_path=errors,items.*.status,items.*.error";
        let r = self.request("POST", path, "application/x-ndjson", Some(body), true)?;
        let url = || format!("{}{}", self.inner.urls[0], "/_bulk");
        if r.status != 200 {
            return Err(BulkError::Status {
                url: url(),
                status: r.status,
                body: String::from_utf8_lossy(&r.body[..r.body.len().min(2048)]).into_owned(),
            });
        }
        parse_bulk_response(&r.body, n).map_err(|message| BulkError::Response {
            url: url(),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_false_fast_path() {
        let b = br#"{"errors":false,"items":[{"create":{"status":201}}]}"#;
        assert_eq!(parse_bulk_response(b, 1).unwrap(), None);
    }

    #[test]
    fn per_item_outcomes() {
        let b = br#"{"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception"}}},
            {"create":{"status":503,"error":{"type":"unavailable_shards_exception"}}},
            {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [source.ip]"}}}
        ]}"#;
        let o = parse_bulk_response(b, 5).unwrap().unwrap();
        assert_eq!(o[0], ItemOutcome::Written);
        assert_eq!(o[1], ItemOutcome::AlreadyWritten);
        assert_eq!(o[2], ItemOutcome::Retry { status: 429 });
        assert_eq!(o[3], ItemOutcome::Retry { status: 503 });
        match &o[4] {
            ItemOutcome::Rejected {
                status: 400,
                reason,
            } => {
                assert!(reason.contains("mapper_parsing_exception"))
            }
            x => panic!("{x:?}"),
        }
        assert!(parse_bulk_response(b, 4).is_err());
    }

    #[test]
    fn whole_request_retryability() {
        let st = |status| BulkError::Status {
            url: String::new(),
            status,
            body: String::new(),
        };
        assert!(st(429).is_retryable());
        assert!(st(503).is_retryable());
        assert!(st(401).is_retryable());
        assert!(!st(400).is_retryable());
        assert!(BulkError::Transport {
            url: String::new(),
            message: String::new()
        }
        .is_retryable());
    }
}
