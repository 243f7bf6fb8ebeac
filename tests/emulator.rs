//! Integration tests against the local AWS emulator (moto from `<repo>/.venv`, see
//! `support/emulator.rs`): the harness and the demo seeding themselves, the metered
//! client through the real SDK, and `InvokeEndpointAsync`. One test binary because
//! they need Python (and PyPI on the first run, to install moto) and share one seeded
//! server per binary (`Emulator::shared()`): it starts once, and these tests can be
//! run or skipped together (`cargo test --test emulator`).

pub mod support;

/// One module per file in `tests/emulator/`.
mod emulator {
    mod async_invoke;
    mod emulator_client;
    mod emulator_seed;
}
