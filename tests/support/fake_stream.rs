//! An in-process fake SageMaker Runtime for `InvokeEndpointWithResponseStream`.
//!
//! No emulator serves the streaming API, so this answers
//! `POST /endpoints/<name>/invocations-response-stream` itself, over plain HTTP/1.1 on
//! a loopback port, with real AWS event-stream frames written by
//! `aws_smithy_eventstream::frame::write_message_to` (prelude, headers, payload and
//! both CRCs): `PayloadPart` events with raw bytes payloads, and `ModelStreamError` /
//! `InternalStreamFailure` exception frames. The SDK reads them as it reads
//! SageMaker's.
//!
//! ```ignore
//! use crate::support::fake_stream::{FakeStream, Script};
//!
//! let fake = FakeStream::start(|endpoint| Script::new().part(b"data: hi\n\n")).await;
//! let conf = fake.sdk_config().await; // region us-east-1, test credentials, its URL
//! ```
//!
//! Each endpoint name gets the [`Script`] the closure returns: parts to send, pauses,
//! an error frame, or "hang until the client goes away". The server records every
//! request (endpoint, body size) and notices when a client hangs up mid-stream.
//! HTTP/1.1 is written by hand (chunked transfer encoding, `Connection: close`) so
//! that pauses and broken streams are exact.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Region the fake's SDK config uses.
pub const REGION: &str = "us-east-1";
/// `X-Amzn-Invoked-Production-Variant` of every answer.
pub const VARIANT: &str = "AllTraffic";

/// What the fake does for one request, step by step.
#[derive(Debug, Clone, Default)]
pub struct Script {
    steps: Vec<Step>,
    initial_error: Option<InitialError>,
    content_type: Option<String>,
    answer_after: Option<Duration>,
}

#[derive(Debug, Clone)]
enum Step {
    Part(Vec<u8>),
    Pause(Duration),
    Exception { kind: &'static str, json: String },
    BreakConnection,
    HangUntilClientLeaves,
}

#[derive(Debug, Clone)]
struct InitialError {
    status: u16,
    error_type: &'static str,
    json: String,
}

impl Script {
    pub fn new() -> Self {
        Script::default()
    }

    /// A `PayloadPart` event carrying `bytes`.
    pub fn part(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.steps.push(Step::Part(bytes.as_ref().to_vec()));
        self
    }

    /// Several parts.
    pub fn parts<I: IntoIterator<Item = B>, B: AsRef<[u8]>>(mut self, parts: I) -> Self {
        for p in parts {
            self = self.part(p);
        }
        self
    }

    /// The stream's `Content-Type` as the model states it (default
    /// `text/event-stream`).
    pub fn content_type(mut self, content_type: &str) -> Self {
        self.content_type = Some(content_type.to_owned());
        self
    }

    /// Waits `d` after reading the request before answering anything (no status
    /// line, no headers): a model slow to start, for an SDK timeout to cut off.
    pub fn answer_after(mut self, d: Duration) -> Self {
        self.answer_after = Some(d);
        self
    }

    /// Waits before the next step.
    pub fn pause(mut self, d: Duration) -> Self {
        self.steps.push(Step::Pause(d));
        self
    }

    /// A `ModelStreamError` exception frame, which ends the stream.
    pub fn model_stream_error(mut self, error_code: &str) -> Self {
        self.steps.push(Step::Exception {
            kind: "ModelStreamError",
            json: format!(
                r#"{{"Message":"the model container broke off","ErrorCode":"{error_code}"}}"#
            ),
        });
        self
    }

    /// A `ModelStreamError` exception frame whose message is `message` (the
    /// model's own words), which ends the stream.
    pub fn model_stream_error_with_message(mut self, error_code: &str, message: &str) -> Self {
        self.steps.push(Step::Exception {
            kind: "ModelStreamError",
            json: serde_json::json!({"Message": message, "ErrorCode": error_code}).to_string(),
        });
        self
    }

    /// An `InternalStreamFailure` exception frame, which ends the stream.
    pub fn internal_stream_failure(mut self) -> Self {
        self.steps.push(Step::Exception {
            kind: "InternalStreamFailure",
            json: r#"{"Message":"internal stream failure"}"#.to_owned(),
        });
        self
    }

    /// Closes the connection without ending the chunked body.
    pub fn break_connection(mut self) -> Self {
        self.steps.push(Step::BreakConnection);
        self
    }

    /// Keeps the stream open (sending nothing) until the client hangs up.
    pub fn hang_until_client_leaves(mut self) -> Self {
        self.steps.push(Step::HangUntilClientLeaves);
        self
    }

    /// Answers 503 `ServiceUnavailable` (before the model) instead of a stream.
    pub fn service_unavailable(mut self) -> Self {
        self.initial_error = Some(InitialError {
            status: 503,
            error_type: "ServiceUnavailable",
            json: r#"{"Message":"the service is unavailable, try again"}"#.to_owned(),
        });
        self
    }

    /// Answers with a `ModelError` (HTTP 424) whose message is `message` (as
    /// SageMaker's quotes the model's body) instead of a stream.
    pub fn model_error_with_message(mut self, message: &str) -> Self {
        self.initial_error = Some(InitialError {
            status: 424,
            error_type: "ModelError",
            json: serde_json::json!({
                "Message": message,
                "OriginalStatusCode": 400,
                "OriginalMessage": message
            })
            .to_string(),
        });
        self
    }

    /// Answers `ModelStreamError` before any stream (HTTP 400, as SageMaker
    /// Runtime's model makes it a client error) instead of a stream.
    pub fn model_stream_error_at_start(mut self) -> Self {
        self.initial_error = Some(InitialError {
            status: 400,
            error_type: "ModelStreamError",
            json: r#"{"Message":"the model's stream failed","ErrorCode":"ModelFailure"}"#
                .to_owned(),
        });
        self
    }

    /// Answers with a `ModelError` (HTTP 424) instead of a stream.
    pub fn model_error(mut self) -> Self {
        self.initial_error = Some(InitialError {
            status: 424,
            error_type: "ModelError",
            json:
                r#"{"Message":"Received server error (500) from model","OriginalStatusCode":500}"#
                    .to_owned(),
        });
        self
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub endpoint: String,
    pub body_bytes: usize,
}

type Scripts = dyn Fn(&str) -> Script + Send + Sync;

/// A running fake; stops when dropped.
pub struct FakeStream {
    /// `http://127.0.0.1:<port>`: the SDK's endpoint URL.
    pub endpoint_url: String,
    received: Arc<Mutex<Vec<Received>>>,
    hang_ups: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeStream {
    /// Starts the fake on a free loopback port; `scripts` says what each endpoint does.
    pub async fn start(scripts: impl Fn(&str) -> Script + Send + Sync + 'static) -> FakeStream {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("fake stream: bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let scripts: Arc<Scripts> = Arc::new(scripts);
        let received = Arc::new(Mutex::new(Vec::new()));
        let hang_ups = Arc::new(AtomicUsize::new(0));
        let task = {
            let received = received.clone();
            let hang_ups = hang_ups.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        return;
                    };
                    let (scripts, received, hang_ups) =
                        (scripts.clone(), received.clone(), hang_ups.clone());
                    tokio::spawn(async move {
                        let _ = serve(socket, &*scripts, &received, &hang_ups).await;
                    });
                }
            })
        };
        FakeStream {
            endpoint_url: format!("http://127.0.0.1:{port}"),
            received,
            hang_ups,
            task,
        }
    }

    /// SDK config for this fake: region us-east-1, static test credentials, its URL,
    /// no retries (a broken stream must stay broken).
    pub async fn sdk_config(&self) -> aws_types::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_sagemakerruntime::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "fake-stream",
            ))
            .endpoint_url(&self.endpoint_url)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// How many clients hung up while a stream was still open.
    pub fn hang_ups(&self) -> usize {
        self.hang_ups.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until `n` clients have hung up mid-stream.
    pub async fn wait_for_hang_ups(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.hang_ups() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fake stream: expected {n} hang-ups, saw {}",
                self.hang_ups()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// One event-stream frame.
pub fn frame(headers: Vec<Header>, payload: impl Into<bytes::Bytes>) -> Vec<u8> {
    let message = Message::new_from_parts(headers, payload);
    let mut buf = Vec::new();
    write_message_to(&message, &mut buf).expect("fake stream: encode a frame");
    buf
}

fn header(name: &'static str, value: &'static str) -> Header {
    Header::new(name, HeaderValue::String(value.into()))
}

/// A `PayloadPart` event frame.
pub fn payload_part(bytes: &[u8]) -> Vec<u8> {
    frame(
        vec![
            header(":message-type", "event"),
            header(":event-type", "PayloadPart"),
            header(":content-type", "application/octet-stream"),
        ],
        bytes.to_vec(),
    )
}

/// An exception frame (`ModelStreamError`, `InternalStreamFailure`).
pub fn exception(kind: &'static str, json: &str) -> Vec<u8> {
    frame(
        vec![
            header(":message-type", "exception"),
            header(":exception-type", kind),
            header(":content-type", "application/json"),
        ],
        json.as_bytes().to_vec(),
    )
}

async fn serve(
    socket: TcpStream,
    scripts: &Scripts,
    received: &Mutex<Vec<Received>>,
    hang_ups: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(socket);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).await?;
    let mut socket = reader.into_inner();

    let endpoint = path
        .strip_prefix("/endpoints/")
        .and_then(|rest| rest.strip_suffix("/invocations-response-stream"))
        .map(str::to_owned);
    let Some(endpoint) = endpoint else {
        let json = r#"{"message":"fake stream: only InvokeEndpointWithResponseStream is served"}"#;
        let head = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            json.len()
        );
        socket.write_all(head.as_bytes()).await?;
        socket.write_all(json.as_bytes()).await?;
        return socket.shutdown().await;
    };
    received.lock().unwrap().push(Received {
        endpoint: endpoint.clone(),
        body_bytes: body.len(),
    });
    let script = scripts(&endpoint);
    let request_id = format!("fake-{}", received.lock().unwrap().len());
    if let Some(d) = script.answer_after {
        tokio::time::sleep(d).await;
    }

    if let Some(err) = script.initial_error {
        let head = format!(
            "HTTP/1.1 {} Error\r\nContent-Type: application/json\r\nx-amzn-RequestId: {request_id}\r\n\
             x-amzn-ErrorType: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            err.status,
            err.error_type,
            err.json.len()
        );
        socket.write_all(head.as_bytes()).await?;
        socket.write_all(err.json.as_bytes()).await?;
        return socket.shutdown().await;
    }

    let content_type = script
        .content_type
        .as_deref()
        .unwrap_or("text/event-stream");
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\n\
         X-Amzn-Invoked-Production-Variant: {VARIANT}\r\n\
         X-Amzn-SageMaker-Content-Type: {content_type}\r\n\
         x-amzn-RequestId: {request_id}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await?;
    socket.flush().await?;
    for step in script.steps {
        let written = match step {
            Step::Part(bytes) => write_chunk(&mut socket, &payload_part(&bytes)).await,
            Step::Pause(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Step::Exception { kind, json } => {
                write_chunk(&mut socket, &exception(kind, &json)).await
            }
            Step::BreakConnection => return Ok(()),
            Step::HangUntilClientLeaves => {
                // Nothing more is sent; a read returns when the client closes.
                let mut buf = [0u8; 64];
                let _ = tokio::time::timeout(Duration::from_secs(60), socket.read(&mut buf)).await;
                hang_ups.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
        };
        if written.is_err() {
            hang_ups.fetch_add(1, Ordering::SeqCst);
            return written;
        }
    }
    socket.write_all(b"0\r\n\r\n").await?;
    socket.flush().await?;
    socket.shutdown().await
}

async fn write_chunk(socket: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    socket
        .write_all(format!("{:x}\r\n", bytes.len()).as_bytes())
        .await?;
    socket.write_all(bytes).await?;
    socket.write_all(b"\r\n").await?;
    socket.flush().await
}
