//! # sagemeter
//!
//! Every Amazon SageMaker endpoint call carries its own cost.
//!
//! `sagemeter` wraps the SageMaker Runtime client of the AWS SDK for Rust. Each
//! invocation is **measured** (latency, bytes, tokens), **priced** with live AWS
//! Price List prices (falling back to a cache, then to a bundled snapshot, and
//! saying so), **billed** according to how the endpoint is deployed (instance
//! hours, serverless seconds, data processed, ...) and **recorded** (running
//! totals, one `tracing` cost line per receipt: an async invocation's
//! settlement has its own). The SDK's own output comes back
//! with a [`Cost`] receipt attached.
//!
//! ```no_run
//! # async fn run() -> Result<(), sagemeter::Error> {
//! use aws_sdk_sagemakerruntime::primitives::Blob;
//!
//! let sdk_config = aws_config::load_from_env().await;
//! let client = sagemeter::Client::builder(&sdk_config).build()?;
//!
//! let response = client
//!     .invoke_endpoint()
//!     .endpoint_name("my-endpoint")
//!     .content_type("application/json")
//!     .body(Blob::new(r#"{"inputs":"hello"}"#))
//!     .send()
//!     .await?;
//!
//! // `response` derefs to the SDK's `InvokeEndpointOutput` ...
//! let _body = response.body();
//! // ... and carries what this call cost, how, and where the price came from.
//! println!("{}", response.cost());
//! // Priced lines only: a lower bound while some calls could not be priced.
//! let totals = client.meter().totals();
//! println!("spent so far: ${} ({} calls unpriced)", totals.client_usd, totals.unpriced_calls);
//! # Ok(()) }
//! ```
//!
//!
//! The flow of one call, one stage a module, each using only the ones before it:
//! [`usage`] (what the call used), [`pricing`] (what a unit costs) and
//! [`endpoint`] (how the endpoint is billed) → [`billing`] (usage × rates =
//! [`Cost`]) → [`totals`] (running sums, accrual) and [`sink`] (the cost log line,
//! metrics, EMF, the [`ledger`] file) → [`client`] (ties it together).
//! [`budget`] limits spending; [`report`] summarises a ledger: where the money
//! went; [`compare`] prices the same work under other billing plans. With feature
//! `account`, `account` sees every endpoint's burn and reconciles ledgers with the bill.

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
// On docs.rs (nightly), each item behind a feature says which.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "account")]
pub mod account;
pub mod billing;
pub mod budget;
pub mod client;
pub mod compare;
pub mod endpoint;
#[cfg(feature = "fleet")]
pub mod fleet;
pub mod ledger;
pub mod pricing;
pub mod redact;
pub mod report;
pub mod sink;
pub mod totals;
pub mod usage;

mod background;
#[cfg(feature = "charts")]
mod chart;
mod config_error;
mod error;
#[cfg(test)]
mod test_alloc;
mod util;

/// The maps looked up on every call (endpoint names, price keys): a fast,
/// per-process seeded hasher instead of SipHash, and `entry_ref` (one look-up,
/// the key copied only when it is inserted).
pub(crate) type FastMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;

pub use billing::Cost;
pub use client::{Client, ClientBuilder, Meter, Metered, SendMeteredExt};
pub use config_error::ConfigError;
pub use error::{Error, Result};

/// The module's old name: it clashed with the [`Meter`] type.
#[deprecated(since = "0.1.0", note = "renamed to `sagemeter::usage`")]
#[doc(hidden)]
pub mod meter {
    pub use crate::usage::*;
}

/// Re-exported so that users and examples name the exact decimal type sagemeter uses.
pub use rust_decimal::Decimal;

/// The README's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The library guide's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/library.md")]
pub struct LibraryGuideDoctests;

/// The account view's Rust examples, compiled as doctests.
#[cfg(all(doctest, feature = "account"))]
#[doc = include_str!("../docs/account.md")]
pub struct AccountGuideDoctests;

/// The fleet reference's Rust examples, compiled as doctests.
#[cfg(all(doctest, feature = "fleet"))]
#[doc = include_str!("../docs/fleet.md")]
pub struct FleetGuideDoctests;

/// The price history guide's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/price-history.md")]
pub struct PriceHistoryGuideDoctests;

/// The Parquet ledger guide's Rust examples, compiled as doctests.
#[cfg(all(doctest, feature = "parquet"))]
#[doc = include_str!("../docs/ledger-parquet.md")]
pub struct ParquetLedgerGuideDoctests;
