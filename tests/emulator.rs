//! Integration tests against the local AWS emulator (moto from `<repo>/.venv`, see
//! `support/emulator.rs`): the harness and the demo seeding themselves, the metered
//! client through the real SDK, and `InvokeEndpointAsync`. One test binary because
//! they need Python (and PyPI on the first run, to install moto) and share a seeded
//! server (`Emulator::shared()`, started once; `emulator_client` keeps its own, see
//! there), and can be run or skipped together (`cargo test --test emulator`).

pub mod support;

/// One module per file in `tests/emulator/`.
mod emulator {
    #[cfg(feature = "account")]
    mod account;
    mod async_invoke;
    mod emulator_client;
    mod emulator_seed;
}
