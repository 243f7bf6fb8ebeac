//! Integration tests of the metered `sagemeter::Client`, driven through the real AWS
//! SDK stack against in-process fakes (SageMaker control plane and runtime, Price
//! List, event streams): receipts, pricing faults, budgets, streaming, metrics and
//! the end-to-end guarantees. One test binary because they all link the same SDK
//! crates and need nothing outside the process, so they run fast and anywhere.

pub mod support;

/// One module per file in `tests/metering/` (`cargo test --test metering budget::`).
mod metering {
    mod accrual;
    mod budget;
    mod client;
    mod client_pricing;
    mod components;
    mod fakes;
    mod guarantees;
    mod interceptor_async;
    mod metrics;
    mod privacy;
    mod props;
    mod regions;
    mod scale_to_zero;
    mod stream_props;
    mod streaming;
}
