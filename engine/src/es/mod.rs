//! Elasticsearch / OpenSearch: what `ferroflow index` (Kafka -> ES) and the collector's direct
//! sink (`--output elasticsearch`) share. [`client`] (the HTTP client: keep-alive pool, TLS
//! with a private CA, basic auth / API key, gzip, per-item results), [`retry`] (backoff, the
//! start-up requests), [`template`] (the index template), [`naming`] (index names by day) and
//! [`deliver`] (the one delivery loop, [`BulkSender::deliver`]: per-item retry, 413 split, a
//! [`Report`] told of every outcome and of the items rejected for good).

pub mod client;
pub mod deliver;
pub mod naming;
pub mod retry;
pub mod template;
#[cfg(test)]
pub(crate) mod testing;

pub use client::{Auth, BulkError, EsClient, EsSettings, ItemOutcome, Reply};
pub use deliver::{BulkItems, BulkSender, RateLimited, Rejected, Report};
pub use naming::{DailyName, Naming};
pub use retry::{Backoff, RetryPolicy};
pub use template::TemplateSettings;
