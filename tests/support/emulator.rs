//! Test harness: a private, seeded moto server (local AWS) per test binary.
//!
//! Every integration-test binary has it as `support::emulator`:
//!
//! ```ignore
//! use crate::support::emulator::Emulator;
//! ```
//!
//! and then either share one server across the binary's tests (cheapest: one server,
//! started on first use; it exits by itself when the test process ends)
//!
//! ```ignore
//! let emu = Emulator::shared();
//! let conf = emu.sdk_config().await;
//! let client = aws_sdk_sagemakerruntime::Client::new(&conf);
//! ```
//!
//! or own one (`Emulator::start()`; stopped on drop) when a test needs fresh state.
//!
//! What it does, and never assumes:
//! * no server is assumed to be running; each `start()` launches its own
//!   `moto_server` from `<repo>/.venv` on a free loopback port chosen by the OS;
//! * if the venv is missing or stale it runs `localstack/install.sh` first, under a lock
//!   file (`<repo>/target/localstack/install.lock`) so parallel test binaries install once;
//! * it seeds the server with `localstack/seed.py` (demo-realtime, demo-serverless and a
//!   queue of canned OpenAI-style chat completions, see that script's docstring);
//! * every wait is bounded; failures panic with the server's log tail.
//!
//! The server watches its stdin (a pipe from this process) and exits when the pipe
//! closes, so even a killed or aborted test binary leaves no server behind.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Region the demo endpoints and canned results are seeded in.
pub const REGION: &str = "us-east-1";
/// Static credentials the harness uses (moto maps them to account 123456789012).
pub const ACCESS_KEY_ID: &str = "test";
pub const SECRET_ACCESS_KEY: &str = "test";
/// Real-time demo endpoint: variant `AllTraffic`, `ml.m5.xlarge` x 2.
pub const REALTIME_ENDPOINT: &str = "demo-realtime";
/// Serverless demo endpoint: variant `AllTraffic`, 3072 MB, max concurrency 5.
pub const SERVERLESS_ENDPOINT: &str = "demo-serverless";
/// Variant name of both demo endpoints (and `InvokedProductionVariant` of every canned result).
pub const VARIANT: &str = "AllTraffic";

const INSTALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const START_TIMEOUT: Duration = Duration::from_secs(60);
const SEED_TIMEOUT: Duration = Duration::from_secs(120);

/// Started by the server process: exit as soon as stdin closes (the test process is gone),
/// then run `localstack/moto_server.py` (moto's server, one request at a time: see
/// there why) on an OS-chosen port. `argv[1]` is that script's path.
const SERVER_BOOT: &str = r#"
import os, runpy, sys, threading
def _watch_parent():
    try:
        while sys.stdin.buffer.read(1):
            pass
    finally:
        os._exit(0)
threading.Thread(target=_watch_parent, daemon=True).start()
script = sys.argv[1]
sys.argv = [script, "-H", "127.0.0.1", "-p", "0"]
runpy.run_path(script, run_name="__main__")
"#;

/// A running moto server, seeded with the demo endpoints.
pub struct Emulator {
    /// `http://127.0.0.1:<port>`: pass it as the SDK's endpoint URL.
    pub endpoint_url: String,
    /// The loopback port the server listens on.
    pub port: u16,
    child: Mutex<Option<(Child, Option<ChildStdin>)>>,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Emulator {
    /// Starts a private moto server on a free loopback port, seeded with the demo
    /// endpoints and canned InvokeEndpoint results. Installs the venv first if needed.
    /// Panics with a clear message (and the server log tail) on any failure.
    pub fn start() -> Emulator {
        let emu = Self::start_unseeded();
        emu.seed();
        emu
    }

    /// Like [`Emulator::start`] but without running `seed.py`: an empty moto.
    pub fn start_unseeded() -> Emulator {
        ensure_installed();
        let root = repo_root();
        let log_dir = tempfile::Builder::new()
            .prefix("sagemeter-moto-")
            .tempdir()
            .unwrap_or_else(|e| {
                panic!("emulator: cannot create a temp dir for the server log: {e}")
            });
        let log_path = log_dir.path().join("moto.log");
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("emulator: cannot create {}: {e}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("emulator: cannot clone log handle: {e}"));

        let python = venv_python(&root);
        let mut child = Command::new(&python)
            .arg("-c")
            .arg(SERVER_BOOT)
            .arg(root.join("localstack").join("moto_server.py"))
            .current_dir(log_dir.path())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("emulator: cannot start {}: {e}", python.display()));
        let stdin = child.stdin.take();

        let mut emu = Emulator {
            endpoint_url: String::new(),
            port: 0,
            child: Mutex::new(Some((child, stdin))),
            log_path,
            _log_dir: log_dir,
        };

        // moto prints " * Running on http://127.0.0.1:<port>" once it is listening.
        let deadline = Instant::now() + START_TIMEOUT;
        let port = loop {
            if let Some(port) = parse_port(&read_lossy(&emu.log_path)) {
                break port;
            }
            if let Some(status) = emu.try_wait() {
                emu.fail(&format!("moto server exited ({status}) before listening"));
            }
            if Instant::now() >= deadline {
                emu.fail(&format!(
                    "moto server did not listen within {START_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        emu.port = port;
        emu.endpoint_url = format!("http://127.0.0.1:{port}");

        while !emu.answers() {
            if let Some(status) = emu.try_wait() {
                emu.fail(&format!("moto server exited ({status}) before answering"));
            }
            if Instant::now() >= deadline {
                emu.fail(&format!(
                    "moto server on port {port} did not answer GET /moto-api/data.json within {START_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        emu
    }

    /// One seeded server for the whole test binary, started on first use. Statics are
    /// never dropped: the server exits when the test process ends (it watches its stdin).
    pub fn shared() -> &'static Emulator {
        static SHARED: OnceLock<Emulator> = OnceLock::new();
        SHARED.get_or_init(Emulator::start)
    }

    /// Runs `localstack/seed.py` against this server (idempotent: creates what is
    /// missing and queues another batch of canned results). Panics if it fails.
    pub fn seed(&self) -> String {
        self.seed_with_args(&[])
    }

    /// Runs `seed.py` with extra arguments (e.g. `["--results", "50"]`); returns its stdout.
    pub fn seed_with_args(&self, extra: &[&str]) -> String {
        let root = repo_root();
        let mut cmd = Command::new(venv_python(&root));
        cmd.arg(root.join("localstack/seed.py"))
            .args([
                "--endpoint-url",
                &self.endpoint_url,
                "--region",
                REGION,
                "--quiet",
            ])
            .args(extra);
        aws_test_env(&mut cmd);
        let out = run_bounded(cmd, SEED_TIMEOUT, "seed.py");
        if !out.status.success() {
            self.fail(&format!(
                "seed.py failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
                out.status, out.stdout, out.stderr
            ));
        }
        out.stdout
    }

    /// Loader preset for this emulator: region us-east-1, static test credentials,
    /// endpoint URL = this server. Customise (timeouts, retries, ...) then `.load().await`.
    pub fn config_loader(&self) -> aws_config::ConfigLoader {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_sagemakerruntime::config::Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "sagemeter-test-emulator",
            ))
            .endpoint_url(&self.endpoint_url)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
    }

    /// SDK config for this emulator (see [`Emulator::config_loader`]).
    pub async fn sdk_config(&self) -> aws_types::SdkConfig {
        self.config_loader().load().await
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&read_lossy(&self.log_path), lines)
    }

    /// Panics with `msg`, the server's log tail, after stopping the server.
    fn fail(&self, msg: &str) -> ! {
        let tail = self.log_tail(40);
        self.stop();
        panic!(
            "emulator: {msg}\n--- moto server log ({}) ---\n{tail}",
            self.log_path.display()
        );
    }

    fn try_wait(&self) -> Option<ExitStatus> {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_mut()
            .and_then(|(c, _)| c.try_wait().ok().flatten())
    }

    /// True when GET /moto-api/data.json answers 200.
    fn answers(&self) -> bool {
        http_get_ok(self.port, "/moto-api/data.json")
    }

    fn stop(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((mut child, stdin)) = guard.take() {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The repository root (where Cargo.toml, localstack/ and .venv/ live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv_python(root: &Path) -> PathBuf {
    root.join(".venv/bin/python")
}

/// Makes sure `<repo>/.venv` has moto: runs `localstack/install.sh` (a no-op when the venv
/// is up to date) under a cross-process lock so parallel test binaries install once.
fn ensure_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let root = repo_root();
        let state = root.join("target/localstack");
        fs::create_dir_all(&state)
            .unwrap_or_else(|e| panic!("emulator: cannot create {}: {e}", state.display()));
        let _lock = InstallLock::acquire(&state.join("install.lock"), INSTALL_TIMEOUT);
        let mut cmd = Command::new("bash");
        cmd.arg(root.join("localstack/install.sh"));
        let out = run_bounded(cmd, INSTALL_TIMEOUT, "localstack/install.sh");
        if !out.status.success() {
            panic!(
                "emulator: localstack/install.sh failed ({}); the local AWS emulator (moto) \
                 needs python3 with venv and access to PyPI.\n--- stdout ---\n{}\n--- stderr ---\n{}",
                out.status, out.stdout, out.stderr
            );
        }
        for bin in [".venv/bin/python", ".venv/bin/moto_server"] {
            if !root.join(bin).exists() {
                panic!("emulator: {bin} is missing after localstack/install.sh");
            }
        }
    });
}

/// Exclusive lock by create-new of a file holding our pid; a lock whose pid is gone is
/// stale and taken over. Released (file removed) on drop.
struct InstallLock(PathBuf);

impl InstallLock {
    fn acquire(path: &Path, timeout: Duration) -> InstallLock {
        let deadline = Instant::now() + timeout;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return InstallLock(path.to_path_buf());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(path).unwrap_or_default();
                    let holder = holder.trim();
                    // Empty = the holder is between create and write; give it a moment.
                    if !holder.is_empty() && !pid_alive(holder) {
                        let _ = fs::remove_file(path);
                        continue;
                    }
                }
                Err(e) => panic!("emulator: cannot create lock {}: {e}", path.display()),
            }
            if Instant::now() >= deadline {
                panic!(
                    "emulator: waited {timeout:?} for {} (held by pid {}); remove it if no install is running",
                    path.display(),
                    fs::read_to_string(path).unwrap_or_default().trim()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn pid_alive(pid: &str) -> bool {
    if pid.parse::<u32>().is_err() {
        return false;
    }
    if Path::new("/proc/self").exists() {
        return Path::new("/proc").join(pid).exists();
    }
    Command::new("kill")
        .args(["-0", pid])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(true)
}

/// The environment seed.py runs with: the same static credentials and region the
/// SDK config uses, nothing inherited that could point it elsewhere.
fn aws_test_env(cmd: &mut Command) {
    for var in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("PYTHONUNBUFFERED", "1")
        // The emulator is on loopback: never through a proxy the caller set.
        .env("no_proxy", "127.0.0.1,localhost")
        .env("NO_PROXY", "127.0.0.1,localhost");
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with stdout/stderr to temp files (no pipe deadlocks), killing it at `timeout`.
fn run_bounded(mut cmd: Command, timeout: Duration, what: &str) -> Output {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("emulator: temp dir: {e}"));
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let out = File::create(&out_path).unwrap_or_else(|e| panic!("emulator: {e}"));
    let err = File::create(&err_path).unwrap_or_else(|e| panic!("emulator: {e}"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("emulator: cannot run {what}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "emulator: {what} did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    tail(&read_lossy(&out_path), 40),
                    tail(&read_lossy(&err_path), 40)
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("emulator: waiting for {what}: {e}"),
        }
    };
    Output {
        status,
        stdout: read_lossy(&out_path),
        stderr: read_lossy(&err_path),
    }
}

fn read_lossy(path: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn parse_port(log: &str) -> Option<u16> {
    const MARK: &str = "Running on http://127.0.0.1:";
    let rest = &log[log.find(MARK)? + MARK.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok().filter(|p| *p != 0)
}

/// A minimal HTTP/1.0 GET on loopback; true on a 200 answer.
fn http_get_ok(port: u16, path: &str) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(3)));
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 32];
    let mut n = 0;
    while n < head.len() {
        match stream.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..n]);
    status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200")
}
