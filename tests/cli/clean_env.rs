//! The `sagemeter` binary with a clean AWS environment, for every CLI test.

use crate::support::emulator;
use std::process::Command;

pub(crate) use crate::support::fake_pricelist::refused_url;

/// `sagemeter` with nothing of the caller's environment but `PATH`: static test
/// credentials, us-east-1, no profile files, no instance metadata, every service
/// at `endpoint_url` and the Price List at `pricing_url`.
pub(crate) fn sagemeter(endpoint_url: &str, pricing_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sagemeter"));
    let no_file = std::env::temp_dir().join("sagemeter-cli-test-no-such-aws-file");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", endpoint_url)
        .env("AWS_ENDPOINT_URL_PRICING", pricing_url)
        .env("AWS_REGION", emulator::REGION)
        .env("AWS_ACCESS_KEY_ID", emulator::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", emulator::SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", &no_file)
        .env("AWS_SHARED_CREDENTIALS_FILE", &no_file);
    cmd
}

/// A pipe whose reader has already left, for a child's stdout or stderr: every write
/// to it fails (EPIPE), as to `| head` once head has exited.
#[cfg(unix)]
pub(crate) fn closed_pipe() -> std::process::Stdio {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe(2) fills `fds` with two new descriptors this function owns.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe(2)");
    // SAFETY: the read end is ours, closed once; the write end is handed over whole.
    unsafe {
        libc::close(fds[0]);
        std::process::Stdio::from(std::os::fd::OwnedFd::from_raw_fd(fds[1]))
    }
}
