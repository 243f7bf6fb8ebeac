//! An HTTP proxy in front of the emulator that breaks it on demand: throttles
//! DynamoDB, answers slowly, refuses connections, applies a request and loses its
//! response (as a timeout after the write does), or refuses one operation as IAM
//! does when an action is not granted. Requests are forwarded one per upstream
//! connection (`Connection: close`), each in full: the JSON and CBOR protocols are
//! small POSTs with a `Content-Length`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the requests it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward every request.
    None,
    /// Answer every request `ProvisionedThroughputExceededException` (HTTP 400).
    Throttle,
    /// Answer the requests that hold each of these texts as [`Fault::Throttle`]
    /// does, and forward the others.
    ThrottleWhere(&'static [&'static str]),
    /// Forward every request after this delay.
    Slow(Duration),
    /// Forward the requests that hold each of these texts after this delay (a
    /// DynamoDB write of spend names `:spent`, and its item's key), the others
    /// at once.
    SlowWhere(&'static [&'static str], Duration),
    /// Close every connection at once (the table is unreachable).
    Down,
    /// Forward every request, then close the connection without its response.
    LoseResponses,
    /// Answer requests for this operation (its name in `X-Amz-Target` or in an RPC
    /// v2 path) with `AccessDenied`, in the request's protocol (JSON or CBOR), as
    /// AWS does for an IAM action not granted; forward the others.
    Deny(&'static str),
}

/// A running proxy; stopped when its runtime ends.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    upstream: Arc<Mutex<String>>,
    fault: Arc<Mutex<Fault>>,
    forwarded: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://host:port`) on a free port, forwarding.
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = Arc::new(Mutex::new(host_port(upstream)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fault = Arc::new(Mutex::new(Fault::None));
        let forwarded = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let counts = Counts {
            forwarded: forwarded.clone(),
            received: received.clone(),
        };
        let (u, f) = (upstream.clone(), fault.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (u, f, counts) = (u.clone(), f.clone(), counts.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &u, &f, &counts).await;
                });
            }
        });
        FaultProxy {
            url,
            upstream,
            fault,
            forwarded,
            received,
        }
    }

    /// From now on, forward to `upstream` (`http://host:port`).
    pub fn set_upstream(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = host_port(upstream);
    }

    /// From now on, do `fault`.
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// Requests that reached the emulator so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::SeqCst)
    }

    /// Requests that reached the proxy so far, whatever it did with them (held
    /// by [`Fault::Slow`], refused, forwarded).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }

    /// A DynamoDB client of `conf` that goes through the proxy, with short
    /// timeouts and the SDK's standard retries.
    #[cfg(feature = "fleet")]
    pub fn dynamodb_client(&self, conf: &aws_types::SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(conf)
            .endpoint_url(&self.url)
            .timeout_config(
                aws_smithy_types::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(2))
                    .connect_timeout(Duration::from_secs(1))
                    .build(),
            )
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// One request from `client`, with its headers and body.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    // One request per upstream connection: ask it to close after answering.
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut rewritten: String = head
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    rewritten.push_str("Connection: close\r\n\r\n");
    let mut request = rewritten.into_bytes();
    request.extend_from_slice(&buf[header_end..header_end + length]);
    Ok(Some(request))
}

/// The proxy's counts of requests (see [`FaultProxy::forwarded`] and
/// [`FaultProxy::received`]).
#[derive(Clone)]
struct Counts {
    forwarded: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

async fn serve(
    mut client: TcpStream,
    upstream: &Mutex<String>,
    fault: &Mutex<Fault>,
    counts: &Counts,
) -> std::io::Result<()> {
    loop {
        if *fault.lock().unwrap() == Fault::Down {
            return Ok(()); // dropped: connection closed
        }
        let Some(request) = read_request(&mut client).await? else {
            return Ok(());
        };
        counts.received.fetch_add(1, Ordering::SeqCst);
        let now = *fault.lock().unwrap();
        match now {
            Fault::Down => return Ok(()),
            Fault::Throttle => {
                client.write_all(&throttled()).await?;
                continue;
            }
            Fault::ThrottleWhere(texts) if texts.iter().all(|t| holds(&request, t)) => {
                client.write_all(&throttled()).await?;
                continue;
            }
            Fault::Deny(operation) if names_operation(&request, operation) => {
                client
                    .write_all(&access_denied(&request, operation))
                    .await?;
                return Ok(());
            }
            Fault::Slow(delay) => tokio::time::sleep(delay).await,
            Fault::SlowWhere(texts, delay) if texts.iter().all(|t| holds(&request, t)) => {
                tokio::time::sleep(delay).await;
            }
            Fault::None
            | Fault::SlowWhere(..)
            | Fault::ThrottleWhere(_)
            | Fault::LoseResponses
            | Fault::Deny(_) => {}
        }
        let to = upstream.lock().unwrap().clone();
        let mut up = TcpStream::connect(to).await?;
        up.write_all(&request).await?;
        let mut response = Vec::new();
        up.read_to_end(&mut response).await?;
        counts.forwarded.fetch_add(1, Ordering::SeqCst);
        if now == Fault::LoseResponses {
            return Ok(()); // applied upstream; the client never hears of it
        }
        client.write_all(&response).await?;
        // The upstream answered `Connection: close`: so does this connection.
        return Ok(());
    }
}

/// The request's head (request line and headers).
fn head(request: &[u8]) -> String {
    let end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(request.len());
    String::from_utf8_lossy(&request[..end]).into_owned()
}

/// DynamoDB's answer to a throttled request.
fn throttled() -> Vec<u8> {
    let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded (fault proxy)"}"#;
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.0\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Whether the request (its head or body) holds `text`.
fn holds(request: &[u8], text: &str) -> bool {
    request
        .windows(text.len().max(1))
        .any(|w| w == text.as_bytes())
}

/// Whether the request calls `operation`: `X-Amz-Target: <Service>.<operation>`
/// (JSON protocols) or `POST /service/<Service>/operation/<operation>` (RPC v2 CBOR).
fn names_operation(request: &[u8], operation: &str) -> bool {
    let head = head(request);
    let request_line = head.lines().next().unwrap_or_default();
    request_line.contains(&format!("/operation/{operation} "))
        || head.lines().any(|l| {
            l.to_ascii_lowercase().starts_with("x-amz-target:")
                && l.trim_end().ends_with(&format!(".{operation}"))
        })
}

/// AWS's answer to an action not granted, in the request's protocol.
fn access_denied(request: &[u8], operation: &str) -> Vec<u8> {
    let message = format!(
        "User: arn:aws:iam::123456789012:user/sagemeter-test is not authorized to perform: \
         {operation} because no identity-based policy allows the action (fault proxy)"
    );
    let cbor = head(request)
        .to_ascii_lowercase()
        .contains("application/cbor");
    let (content_type, body, extra) = if cbor {
        let mut body = vec![0xa2]; // a map of two text pairs
        for text in ["__type", "AccessDenied", "message", message.as_str()] {
            cbor_text(&mut body, text);
        }
        (
            "application/cbor",
            body,
            "smithy-protocol: rpc-v2-cbor\r\nx-amzn-query-error: AccessDenied;Sender\r\n",
        )
    } else {
        let body = serde_json::json!({"__type": "AccessDeniedException", "message": message});
        (
            "application/x-amz-json-1.1",
            body.to_string().into_bytes(),
            "x-amzn-ErrorType: AccessDeniedException\r\n",
        )
    };
    let mut response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: {content_type}\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

/// A CBOR text string (major type 3) of up to 65,535 bytes.
fn cbor_text(out: &mut Vec<u8>, text: &str) {
    let len = text.len();
    match len {
        0..=23 => out.push(0x60 | len as u8),
        24..=255 => out.extend_from_slice(&[0x78, len as u8]),
        _ => {
            out.push(0x79);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(text.as_bytes());
}
