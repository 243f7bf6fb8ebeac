//! The fleet (feature `fleet`) against the local emulator: its DynamoDB holds the
//! fleet table, several clients in one test stand for several processes, and a
//! proxy breaks the table on demand (`support/fault_proxy.rs`). A test binary of
//! its own: its tests keep many clients, calls and a second emulator busy, and the
//! `emulator` binary's tests time calls. The CLI's multi-process tests are in
//! `tests/cli/cli_fleet.rs`. Run: `cargo test --all-features --test fleet`.

pub mod support;

/// One module per file in `tests/fleet/`.
mod fleet {
    mod library;
}
