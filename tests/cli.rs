//! Integration tests of the `sagemeter` command-line tool: each runs the built binary
//! as a subprocess (against the local emulator, an in-process fake, or nothing) and
//! checks its arguments, output, ledger files and exit codes. One test binary because
//! they all need the `cli` feature (`required-features` in Cargo.toml).
//! Run: `cargo test --features cli --test cli`.

pub mod support;

/// One module per file in `tests/cli/` (`cargo test --features cli --test cli cli_invoke::`).
mod cli {
    mod clean_env;
    #[cfg(feature = "account")]
    mod cli_account;
    mod cli_compare;
    mod cli_crash;
    #[cfg(feature = "fleet")]
    mod cli_fleet;
    mod cli_invoke;
    mod cli_invoke_fake;
    #[cfg(feature = "parquet")]
    mod cli_ledger;
    mod cli_price;
    mod cli_price_history;
    mod cli_stream;
}
