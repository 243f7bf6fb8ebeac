//! Test support shared by every integration-test binary (`tests/accounting.rs`,
//! `tests/cli.rs`, `tests/emulator.rs`, `tests/metering.rs`), each of which declares
//! `pub mod support;` once.
//!
//! The module is `pub` in each binary, and so are the helpers below: a binary uses
//! only some of them, and public items are not reported as dead code, while a
//! private helper no test reaches still is.
//!
//! `fake_pricelist.rs`, `fake_sagemaker.rs` and `fake_stream.rs` are also included
//! by `benches/overhead.rs` and the examples: keep them free of `super::` paths.

pub mod emulator;
pub mod fake_pricelist;
pub mod fake_sagemaker;
pub mod fake_stream;
pub mod logs;
