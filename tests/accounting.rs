//! Integration tests of what a bill is made of once calls are metered: the live
//! Price List source (cache, backoff, fallbacks), the JSONL ledger (durability,
//! crash and corruption handling), reports over ledgers, and billing-plan comparison.
//! One test binary because they exercise the library's pricing and accounting parts
//! rather than the client's calls, and need at most an in-process fake.

pub mod support;

/// One module per file in `tests/accounting/`.
mod accounting {
    mod compare_plans;
    mod compare_trend;
    mod ledger;
    #[cfg(feature = "parquet")]
    mod ledger_parquet;
    mod ledger_rolling;
    mod price_history;
    mod pricing_live;
    mod report;
}
