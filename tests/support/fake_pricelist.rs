//! An in-process fake of the AWS Price List Query API, for tests.
//!
//! It speaks what `aws-sdk-pricing` sends: awsJson1.1, `POST /` with
//! `X-Amz-Target: AWSPriceListService.GetProducts` and a JSON body with `ServiceCode`,
//! `FormatVersion`, `Filters` (`TERM_MATCH` only), `NextToken`, `MaxResults`. It answers
//! `{"FormatVersion":"aws_v1","PriceList":["<document as a JSON string>",...],"NextToken":..}`
//! from the documents it was given, filtered and paginated like the real service.
//!
//! ```ignore
//! use crate::support::fake_pricelist::{self, FakePriceList, Fault, docs};
//!
//! let server = FakePriceList::start().await;             // 127.0.0.1, a free port
//! server.add_documents([
//!     docs::hosting("us-east-1", "ml.m5.xlarge", "0.2300000000"),
//!     docs::training("us-east-1", "ml.m5.xlarge", "0.2300000000"),
//!     docs::serverless("us-east-1", 3, "0.0000600000"),
//! ]);
//! let sdk_config = server.sdk_config("eu-west-1");       // endpoint = the fake, creds test/test
//! // ... use sdk_config with sagemeter ...
//! server.set_fault(Some(Fault::Throttle));               // every request from now on
//! server.set_page_size(1);                               // paginate 1 document per page
//! assert_eq!(server.request_count(), 1);
//! assert_eq!(server.requests()[0].filter("instanceName"), Some("ml.m5.xlarge"));
//! let nothing_there = fake_pricelist::refused_url();     // connection refused
//! ```
//!
//! [`Fault`]s: `Throttle` (HTTP 400 `ThrottlingException`), `ServerError` (HTTP 500
//! `InternalErrorException`), `Slow(d)` (answer normally after `d`), `GarbageBody` (HTTP
//! 200, not JSON), `TruncatedJson` (HTTP 200, a response cut in half), `EmptyPriceList`,
//! `GarbageDocuments` (HTTP 200, `PriceList` entries that are not documents),
//! `AccessDenied` (HTTP 400 `AccessDeniedException`, every operation).
//!
//! It also serves price list versions, as the bulk API does: `ListPriceLists` (the
//! version in effect on the `EffectiveDate` asked for, per region),
//! `GetPriceListFileUrl` (a URL on this server with a fake signature in its query),
//! and the files themselves (`GET /offers/<version>/<region>.json`):
//!
//! ```ignore
//! server.add_version("us-east-1", "20250301000000", date(2025, 3, 1),
//!     offer_file("20250301000000", &[docs::hosting("us-east-1", "ml.c5.2xlarge", "0.4080000000")]));
//! server.set_file_delay(Some(Duration::from_secs(5)));   // files answer late
//! assert_eq!(server.file_downloads(), 1);
//! ```
//!
//! [`docs`] builds realistic SageMaker product documents (shape as in
//! `price-document-shape.md`): hosting, training, notebook, upfront fee, serverless
//! (with or without its free first tier), both provisioned-concurrency charges under
//! either usagetype name, data in/out, hosting and notebook storage, and `docs::custom` /
//! `docs::custom_described` for anything else.

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the fake does instead of answering normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 400 `{"__type":"ThrottlingException"}`.
    Throttle,
    /// HTTP 500 `{"__type":"InternalErrorException"}`.
    ServerError,
    /// Sleep this long, then answer normally (to outlast a client timeout).
    Slow(Duration),
    /// HTTP 200 with a body that is not JSON.
    GarbageBody,
    /// HTTP 200 with a normal response cut in half.
    TruncatedJson,
    /// HTTP 200 with `"PriceList": []`.
    EmptyPriceList,
    /// HTTP 200 with `PriceList` strings that are not product documents.
    GarbageDocuments,
    /// HTTP 400 `{"__type":"AccessDeniedException"}`, for every operation.
    AccessDenied,
    /// HTTP 403 `{"__type":"UnrecognizedClientException"}`, for every operation: what
    /// credentials of another partition (GovCloud's) meet.
    UnrecognizedClient,
}

/// One request as the fake received it.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// `X-Amz-Target`.
    pub target: Option<String>,
    /// `ServiceCode`.
    pub service_code: Option<String>,
    /// `FormatVersion`.
    pub format_version: Option<String>,
    /// `Filters` as `(Type, Field, Value)`.
    pub filters: Vec<(String, String, String)>,
    /// `NextToken`.
    pub next_token: Option<String>,
    /// `MaxResults`.
    pub max_results: Option<i64>,
    /// The region in the SigV4 credential scope (`.../<region>/pricing/aws4_request`);
    /// nothing else of the signature is kept.
    pub signing_region: Option<String>,
}

impl Recorded {
    /// The value of the filter on `field`, if one was sent.
    pub fn filter(&self, field: &str) -> Option<&str> {
        self.filters
            .iter()
            .find(|(_, f, _)| f == field)
            .map(|(_, _, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Inner {
    documents: Vec<Value>,
    page_size: Option<usize>,
    fault: Option<Fault>,
    requests: Vec<Recorded>,
    versions: Vec<Version>,
    file_delay: Option<Duration>,
    file_downloads: usize,
    /// `EffectiveDate`s asked of `ListPriceLists`, in order.
    list_dates: Vec<NaiveDate>,
    /// `ListPriceLists` about a date before this one fails (HTTP 500).
    list_fails_before: Option<NaiveDate>,
}

/// One published price list version of one region.
#[derive(Debug, Clone)]
struct Version {
    region: String,
    version: String,
    effective: NaiveDate,
    file: Arc<Vec<u8>>,
    /// `FileFormats` of its `ListPriceLists` entry.
    formats: Vec<String>,
}

/// The running fake server. Stops when dropped.
#[derive(Debug)]
pub struct FakePriceList {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakePriceList {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakePriceList {
    /// Starts serving on 127.0.0.1 at a free port, with no documents.
    pub async fn start() -> FakePriceList {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/", post(handle))
            .route("/offers/{version}/{file}", get(offer_file_body))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake price list server");
        });
        FakePriceList { addr, inner, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An SDK config as an application would have it: `region`, static credentials
    /// `test`/`test`, and `endpoint_url` pointing at this server.
    pub fn sdk_config(&self, region: &'static str) -> aws_types::SdkConfig {
        sdk_config_for(&self.url(), region)
    }

    /// Adds documents to serve.
    pub fn add_documents(&self, docs: impl IntoIterator<Item = Value>) {
        self.lock().documents.extend(docs);
    }

    /// Replaces the documents served.
    pub fn set_documents(&self, docs: impl IntoIterator<Item = Value>) {
        self.lock().documents = docs.into_iter().collect();
    }

    /// At most `n` documents per page (default: as many as `MaxResults`, else 100).
    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = Some(n.max(1));
    }

    /// The fault for every request from now on (`None`: answer normally).
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.lock().fault = fault;
    }

    /// Publishes a version of `region`'s price list, in effect from `effective`, whose
    /// file is `file` (see [`offer_file`]; any bytes, e.g. a file cut short).
    pub fn add_version(
        &self,
        region: &str,
        version: &str,
        effective: NaiveDate,
        file: impl Into<Vec<u8>>,
    ) {
        self.add_version_in_formats(region, version, effective, file, &["json", "csv"]);
    }

    /// [`add_version`](Self::add_version), listed by `ListPriceLists` with these
    /// `FileFormats` (e.g. `["csv"]`: a version whose JSON file is not offered).
    pub fn add_version_in_formats(
        &self,
        region: &str,
        version: &str,
        effective: NaiveDate,
        file: impl Into<Vec<u8>>,
        formats: &[&str],
    ) {
        self.lock().versions.push(Version {
            region: region.to_owned(),
            version: version.to_owned(),
            effective,
            file: Arc::new(file.into()),
            formats: formats.iter().map(|f| (*f).to_owned()).collect(),
        });
    }

    /// `ListPriceLists` asked about a date before `date` answers HTTP 500
    /// `InternalErrorException` (each retry too); `None`: every date is answered.
    pub fn set_list_fails_before(&self, date: Option<NaiveDate>) {
        self.lock().list_fails_before = date;
    }

    /// Files are sent after this delay (`None`: at once).
    pub fn set_file_delay(&self, delay: Option<Duration>) {
        self.lock().file_delay = delay;
    }

    /// How many files were sent (whole or not).
    pub fn file_downloads(&self) -> usize {
        self.lock().file_downloads
    }

    /// The `EffectiveDate`s `ListPriceLists` was asked for, in order.
    pub fn list_dates(&self) -> Vec<NaiveDate> {
        self.lock().list_dates.clone()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An SDK config with static `test`/`test` credentials and the given endpoint.
pub fn sdk_config_for(endpoint_url: &str, region: &'static str) -> aws_types::SdkConfig {
    use aws_sdk_pricing::config::{
        BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
    };
    aws_types::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::from_static(region))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "static",
        )))
        .endpoint_url(endpoint_url)
        .build()
}

/// A URL where nothing listens (connection refused): port 1, which no test server
/// can take (binding it needs privileges), unlike a port 0 handed back, which a
/// test running alongside may be given next.
pub fn refused_url() -> String {
    "http://127.0.0.1:1".to_owned()
}

fn aws_json(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    headers.insert(
        "x-amzn-requestid",
        HeaderValue::from_static("00000000-0000-0000-0000-000000000000"),
    );
    response
}

fn aws_error(status: StatusCode, code: &str, message: &str) -> Response {
    aws_json(
        status,
        json!({ "__type": code, "message": message }).to_string(),
    )
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let recorded = Recorded {
        target: headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        service_code: text(&request["ServiceCode"]),
        format_version: text(&request["FormatVersion"]),
        filters: request["Filters"]
            .as_array()
            .map(|filters| {
                filters
                    .iter()
                    .map(|f| {
                        (
                            f["Type"].as_str().unwrap_or_default().to_owned(),
                            f["Field"].as_str().unwrap_or_default().to_owned(),
                            f["Value"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        next_token: text(&request["NextToken"]),
        max_results: request["MaxResults"].as_i64(),
        signing_region: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(signing_region),
    };

    let (fault, documents, page_size) = {
        let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.requests.push(recorded.clone());
        (
            inner.fault.clone(),
            inner.documents.clone(),
            inner.page_size,
        )
    };

    if fault == Some(Fault::AccessDenied) {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "AccessDeniedException",
            "User is not authorized to perform this action",
        );
    }
    if fault == Some(Fault::UnrecognizedClient) {
        return aws_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    match recorded.target.as_deref() {
        Some("AWSPriceListService.GetProducts") => {}
        Some("AWSPriceListService.ListPriceLists") => {
            return list_price_lists(&inner, &request, &headers);
        }
        Some("AWSPriceListService.GetPriceListFileUrl") => {
            return price_list_file_url(&inner, &request, &headers);
        }
        _ => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                "unknown operation",
            );
        }
    }
    match fault {
        Some(Fault::Throttle) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "Rate exceeded",
            );
        }
        Some(Fault::ServerError) => {
            return aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalErrorException",
                "An internal error occurred",
            );
        }
        Some(Fault::GarbageBody) => {
            return aws_json(
                StatusCode::OK,
                "<html><body>Service Unavailable</body></html>".into(),
            );
        }
        Some(Fault::EmptyPriceList) => {
            return aws_json(
                StatusCode::OK,
                json!({"FormatVersion": "aws_v1", "PriceList": []}).to_string(),
            );
        }
        Some(Fault::GarbageDocuments) => {
            let list = ["not a document", "{\"product\":", "{\"terms\":{}}"];
            return aws_json(
                StatusCode::OK,
                json!({"FormatVersion": "aws_v1", "PriceList": list}).to_string(),
            );
        }
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::TruncatedJson)
        | Some(Fault::AccessDenied)
        | Some(Fault::UnrecognizedClient)
        | None => {}
    }

    if let Some(bad) = recorded.filters.iter().find(|(t, _, _)| t != "TERM_MATCH") {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            &format!("unsupported filter type {}", bad.0),
        );
    }
    let matching: Vec<&Value> = documents
        .iter()
        .filter(|doc| recorded.service_code.as_deref() == doc["serviceCode"].as_str())
        .filter(|doc| {
            recorded
                .filters
                .iter()
                .all(|(_, field, value)| field_value(doc, field) == Some(value.as_str()))
        })
        .collect();

    let start = match recorded.next_token.as_deref() {
        None => 0,
        Some(token) => match token
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n <= matching.len() => n,
            _ => {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidNextTokenException",
                    "bad token",
                );
            }
        },
    };
    let max = recorded
        .max_results
        .and_then(|m| usize::try_from(m).ok())
        .filter(|&m| m > 0)
        .unwrap_or(100);
    let per_page = page_size.unwrap_or(max).min(max);
    let end = (start + per_page).min(matching.len());
    let page: Vec<String> = matching[start..end].iter().map(|d| d.to_string()).collect();
    let mut response = json!({ "FormatVersion": "aws_v1", "PriceList": page });
    if end < matching.len() {
        response["NextToken"] = json!(format!("page-{end}"));
    }
    let mut body = response.to_string();
    if fault == Some(Fault::TruncatedJson) {
        body.truncate(body.len() / 2);
    }
    aws_json(StatusCode::OK, body)
}

/// `arn:aws:pricing:::price-list/aws/AmazonSageMaker/USD/<version>/<region>`.
pub fn version_arn(version: &str, region: &str) -> String {
    format!("arn:aws:pricing:::price-list/aws/AmazonSageMaker/USD/{version}/{region}")
}

/// `ListPriceLists`: per region asked (or every region), the version in effect on
/// `EffectiveDate` (epoch seconds): the latest whose effective date is not after it.
fn list_price_lists(inner: &Arc<Mutex<Inner>>, request: &Value, headers: &HeaderMap) -> Response {
    let _ = headers;
    if request["ServiceCode"].as_str() != Some("AmazonSageMaker")
        || request["CurrencyCode"].as_str() != Some("USD")
    {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            "ServiceCode AmazonSageMaker and CurrencyCode USD are served here",
        );
    }
    let Some(date) = request["EffectiveDate"]
        .as_f64()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs as i64, 0))
        .map(|t| t.date_naive())
    else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            "EffectiveDate is required",
        );
    };
    let region = request["RegionCode"].as_str();
    let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
    inner.list_dates.push(date);
    if inner.list_fails_before.is_some_and(|before| date < before) {
        return aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalErrorException",
            "An internal error occurred",
        );
    }
    let mut in_effect: Vec<&Version> = Vec::new();
    for v in &inner.versions {
        if v.effective > date || region.is_some_and(|r| r != v.region) {
            continue;
        }
        match in_effect.iter_mut().find(|e| e.region == v.region) {
            Some(e) if e.effective < v.effective => *e = v,
            Some(_) => {}
            None => in_effect.push(v),
        }
    }
    let lists: Vec<Value> = in_effect
        .iter()
        .map(|v| {
            json!({
                "PriceListArn": version_arn(&v.version, &v.region),
                "RegionCode": v.region,
                "CurrencyCode": "USD",
                "FileFormats": v.formats,
            })
        })
        .collect();
    aws_json(StatusCode::OK, json!({ "PriceLists": lists }).to_string())
}

/// `GetPriceListFileUrl`: a URL on this server, with a query that looks like a
/// presigned URL's (it must never be shown).
fn price_list_file_url(
    inner: &Arc<Mutex<Inner>>,
    request: &Value,
    headers: &HeaderMap,
) -> Response {
    let arn = request["PriceListArn"].as_str().unwrap_or_default();
    if request["FileFormat"].as_str() != Some("json")
        && request["FileFormat"].as_str() != Some("csv")
    {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            "FileFormat must be json or csv",
        );
    }
    let inner = inner.lock().unwrap_or_else(|e| e.into_inner());
    let Some(v) = inner
        .versions
        .iter()
        .find(|v| version_arn(&v.version, &v.region) == arn)
    else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "no such price list",
        );
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let url = format!(
        "http://{host}/offers/{}/{}.json?X-Amz-Signature=fake-signature-never-shown",
        v.version, v.region
    );
    aws_json(StatusCode::OK, json!({ "Url": url }).to_string())
}

/// `GET /offers/<version>/<region>.json`: the version's file.
async fn offer_file_body(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((version, file)): Path<(String, String)>,
) -> Response {
    let (found, delay) = {
        let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
        let found = inner
            .versions
            .iter()
            .find(|v| v.version == version && format!("{}.json", v.region) == file)
            .map(|v| v.file.clone());
        if found.is_some() {
            inner.file_downloads += 1;
        }
        (found, inner.file_delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match found {
        Some(body) => (StatusCode::OK, body.as_ref().clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// An offer file as AWS writes one (pretty-printed, products before terms), holding
/// `docs` (built with [`docs`]): each document's product under `products`, its
/// on-demand terms under `terms.OnDemand.<SKU>`, and one reserved term to skip.
pub fn offer_file(version: &str, docs: &[Value]) -> String {
    let mut products = serde_json::Map::new();
    let mut on_demand = serde_json::Map::new();
    for doc in docs {
        let sku = docs::sku_of(doc);
        products.insert(sku.clone(), doc["product"].clone());
        on_demand.insert(sku, doc["terms"]["OnDemand"].clone());
    }
    let reserved = json!({ "NOTASKU0000000000": { "NOTASKU0000000000.4NA7Y494T4": {
        "offerTermCode": "4NA7Y494T4", "priceDimensions": {} } } });
    let published = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &version[0..4],
        &version[4..6],
        &version[6..8],
        &version[8..10],
        &version[10..12],
        &version[12..14]
    );
    serde_json::to_string_pretty(&json!({
        "formatVersion": "v1.0",
        "disclaimer": "This pricing list is for informational purposes only.",
        "offerCode": "AmazonSageMaker",
        "version": version,
        "publicationDate": published,
        "products": products,
        "terms": { "OnDemand": on_demand, "Reserved": reserved },
    }))
    .expect("serialisable")
}

/// `Credential=test/20260101/us-east-1/pricing/aws4_request` → `us-east-1`.
fn signing_region(authorization: &str) -> Option<String> {
    let scope = authorization.split("Credential=").nth(1)?;
    let scope = scope.split([',', ' ']).next()?;
    scope.split('/').nth(2).map(str::to_owned)
}

/// What a `TERM_MATCH` filter on `field` compares against: a product attribute, or the
/// product fields the service also lets you filter on.
fn field_value<'a>(doc: &'a Value, field: &str) -> Option<&'a str> {
    let product = &doc["product"];
    match field {
        "productFamily" => product["productFamily"].as_str(),
        "sku" => product["sku"].as_str(),
        _ => product["attributes"][field].as_str(),
    }
}

/// The price list versions the history tests publish (us-east-1, and one eu-west-1
/// version that must never be read for us-east-1):
///
/// | version        | in effect  | what changes                                            |
/// |----------------|------------|---------------------------------------------------------|
/// | 20240101000000 | 2024-01-01 | first: c5.xlarge 0.204, c5.2xlarge 0.408 (and its training product), g5.xlarge 1.408, g5.12xlarge 7.09, serverless 3 GB 0.00006 after 150,000 free s |
/// | 20240615000000 | 2024-06-15 | nothing (a new version with the same rates)             |
/// | 20250301000000 | 2025-03-01 | c5.2xlarge 0.3672 (−10 %), g5.xlarge 1.1264 (−20 %), c5.4xlarge added at 0.816 |
/// | 20251001000000 | 2025-10-01 | serverless 3 GB 0.000054 (−10 %), c5.xlarge delisted    |
///
/// The tests ask from [`since`] (2024-01-01) to [`until`] (2026-01-01).
pub mod published {
    use super::{FakePriceList, docs, offer_file};
    use chrono::NaiveDate;
    use serde_json::Value;

    /// The region of the versions.
    pub const REGION: &str = "us-east-1";
    /// Effective dates of the terms.
    pub const JAN_2024: &str = "2024-01-01T00:00:00Z";
    /// See [`JAN_2024`].
    pub const MAR_2025: &str = "2025-03-01T00:00:00Z";
    /// See [`JAN_2024`].
    pub const OCT_2025: &str = "2025-10-01T00:00:00Z";

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    /// 2024-01-01.
    pub fn since() -> NaiveDate {
        date(2024, 1, 1)
    }

    /// 2026-01-01.
    pub fn until() -> NaiveDate {
        date(2026, 1, 1)
    }

    /// A c5 hosting product with its vCPUs, effective on `effective`.
    pub fn c5(size: &str, vcpu: &str, usd: &str, effective: &str) -> Value {
        docs::effective(
            docs::with_attributes(
                docs::hosting(REGION, &format!("ml.c5.{size}"), usd),
                &[("vCpu", vcpu), ("gpu", "0")],
            ),
            effective,
        )
    }

    /// A g5 hosting product with its vCPUs and GPUs.
    pub fn g5(size: &str, vcpu: &str, gpu: &str, usd: &str, effective: &str) -> Value {
        docs::effective(
            docs::with_attributes(
                docs::hosting(REGION, &format!("ml.g5.{size}"), usd),
                &[("vCpu", vcpu), ("gpu", gpu)],
            ),
            effective,
        )
    }

    /// Serverless 3 GB with its 150,000 free seconds a month.
    pub fn serverless_3gb(usd: &str, effective: &str) -> Value {
        docs::effective(
            docs::serverless_with_free_tier(REGION, 3, "150000", usd),
            effective,
        )
    }

    /// The documents of each us-east-1 version, oldest first.
    pub fn versions() -> Vec<(&'static str, NaiveDate, Vec<Value>)> {
        let training = docs::effective(
            docs::training(REGION, "ml.c5.2xlarge", "0.4080000000"),
            JAN_2024,
        );
        let first = vec![
            c5("xlarge", "4", "0.2040000000", JAN_2024),
            c5("2xlarge", "8", "0.4080000000", JAN_2024),
            training.clone(),
            g5("xlarge", "4", "1", "1.4080000000", JAN_2024),
            g5("12xlarge", "48", "4", "7.0900000000", JAN_2024),
            serverless_3gb("0.0000600000", JAN_2024),
        ];
        let third = vec![
            c5("xlarge", "4", "0.2040000000", JAN_2024),
            c5("2xlarge", "8", "0.3672000000", MAR_2025),
            c5("4xlarge", "16", "0.8160000000", MAR_2025),
            training.clone(),
            g5("xlarge", "4", "1", "1.1264000000", MAR_2025),
            g5("12xlarge", "48", "4", "7.0900000000", JAN_2024),
            serverless_3gb("0.0000600000", JAN_2024),
        ];
        let fourth = vec![
            c5("2xlarge", "8", "0.3672000000", MAR_2025),
            c5("4xlarge", "16", "0.8160000000", MAR_2025),
            training,
            g5("xlarge", "4", "1", "1.1264000000", MAR_2025),
            g5("12xlarge", "48", "4", "7.0900000000", JAN_2024),
            serverless_3gb("0.0000540000", OCT_2025),
        ];
        vec![
            ("20240101000000", date(2024, 1, 1), first.clone()),
            ("20240615000000", date(2024, 6, 15), first),
            ("20250301000000", date(2025, 3, 1), third),
            ("20251001000000", date(2025, 10, 1), fourth),
        ]
    }

    /// A fake publishing [`versions`], with `cut` (a version) served cut short.
    pub async fn publish(cut: Option<&str>) -> FakePriceList {
        let server = FakePriceList::start().await;
        for (version, effective, documents) in versions() {
            let mut file = offer_file(version, &documents);
            if cut == Some(version) {
                file.truncate(file.len() / 2);
            }
            server.add_version(REGION, version, effective, file);
        }
        server.add_version(
            "eu-west-1",
            "20240101000000",
            date(2024, 1, 1),
            offer_file(
                "20240101000000",
                &[docs::hosting("eu-west-1", "ml.c5.2xlarge", "0.4580000000")],
            ),
        );
        server
    }
}

/// Builders for realistic `AmazonSageMaker` product documents (format `aws_v1`).
///
/// Prices are strings with 10 decimals, as the Price List writes them. SKUs are
/// derived from the usage type and region, so each product has a stable, distinct SKU;
/// use [`sku_of`] to read it back. Every term is effective `2026-05-01T00:00:00Z`.
pub mod docs {
    use serde_json::{Map, Value, json};

    /// The effective date of every term built here.
    pub const EFFECTIVE_DATE: &str = "2026-05-01T00:00:00Z";

    /// The usagetype prefix AWS uses for a region (a few known ones; others are
    /// made up from the region code, which sagemeter does not rely on).
    pub fn usage_prefix(region: &str) -> String {
        match region {
            "us-east-1" => "USE1".into(),
            "us-east-2" => "USE2".into(),
            "us-west-1" => "USW1".into(),
            "us-west-2" => "USW2".into(),
            "eu-west-1" => "EU".into(),
            "eu-central-1" => "EUC1".into(),
            "eu-west-3" => "EUW3".into(),
            "ap-northeast-1" => "APN1".into(),
            other => other.replace('-', "").to_uppercase(),
        }
    }

    fn location(region: &str) -> &'static str {
        match region {
            "us-east-1" => "US East (N. Virginia)",
            "us-east-2" => "US East (Ohio)",
            "us-west-2" => "US West (Oregon)",
            "eu-west-1" => "EU (Ireland)",
            "eu-central-1" => "EU (Frankfurt)",
            "ap-northeast-1" => "Asia Pacific (Tokyo)",
            _ => "Somewhere",
        }
    }

    /// A stable 16-character SKU for a usage type in a region.
    pub fn sku_for(region: &str, usagetype: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        // FNV-1a, then base-32 digits.
        let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
        for b in region.bytes().chain([0]).chain(usagetype.bytes()) {
            hash ^= u128::from(b);
            hash = hash.wrapping_mul(0x0000000001000000000000000000013B);
        }
        (0..16)
            .map(|i| ALPHABET[((hash >> (i * 5)) & 31) as usize] as char)
            .collect()
    }

    /// `doc` with every on-demand term's `effectiveDate` set to `date`
    /// (e.g. `2025-03-01T00:00:00Z`), as when AWS publishes a new rate.
    pub fn effective(mut doc: Value, date: &str) -> Value {
        if let Some(terms) = doc["terms"]["OnDemand"].as_object_mut() {
            for term in terms.values_mut() {
                term["effectiveDate"] = json!(date);
            }
        }
        doc
    }

    /// `doc` with attributes set (e.g. `vCpu`, `gpu` of an instance product).
    pub fn with_attributes(mut doc: Value, attributes: &[(&str, &str)]) -> Value {
        for (name, value) in attributes {
            doc["product"]["attributes"][*name] = json!(value);
        }
        doc
    }

    /// The SKU of a document built here (or any `aws_v1` document).
    pub fn sku_of(doc: &Value) -> String {
        doc["product"]["sku"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Any product: `attributes` (an object; `servicecode`, `regionCode` and `location`
    /// are added) and one on-demand term with one dimension per
    /// `(unit, beginRange, endRange, USD)`.
    pub fn custom(
        region: &str,
        product_family: &str,
        usagetype: &str,
        attributes: Value,
        dimensions: &[(&str, &str, &str, &str)],
    ) -> Value {
        let descriptions: Vec<String> = dimensions
            .iter()
            .map(|(unit, _, _, usd)| {
                format!("${usd} per {unit} for {usagetype} in {}", location(region))
            })
            .collect();
        let dimensions: Vec<_> = dimensions
            .iter()
            .zip(&descriptions)
            .map(|(&(unit, begin, end, usd), description)| {
                (unit, begin, end, usd, description.as_str())
            })
            .collect();
        custom_described(region, product_family, usagetype, attributes, &dimensions)
    }

    /// As [`custom`], with each dimension's `description` given:
    /// `(unit, beginRange, endRange, USD, description)`.
    pub fn custom_described(
        region: &str,
        product_family: &str,
        usagetype: &str,
        attributes: Value,
        dimensions: &[(&str, &str, &str, &str, &str)],
    ) -> Value {
        let sku = sku_for(region, usagetype);
        let mut attrs = match attributes {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        attrs.insert("servicecode".into(), json!("AmazonSageMaker"));
        attrs.insert("servicename".into(), json!("Amazon SageMaker"));
        attrs.insert("regionCode".into(), json!(region));
        attrs.insert("location".into(), json!(location(region)));
        attrs.insert("locationType".into(), json!("AWS Region"));
        attrs.insert("usagetype".into(), json!(usagetype));
        let term_key = format!("{sku}.JRTCKXETXF");
        let mut price_dimensions = Map::new();
        for (i, (unit, begin, end, usd, description)) in dimensions.iter().enumerate() {
            let rate_code = format!(
                "{term_key}.{}",
                ["6YS6EN2CT7", "8EEUB22XNJ", "PGHJ3S3EYE"][i % 3]
            );
            price_dimensions.insert(
                rate_code.clone(),
                json!({
                    "unit": unit,
                    "endRange": end,
                    "description": description,
                    "appliesTo": [],
                    "rateCode": rate_code,
                    "beginRange": begin,
                    "pricePerUnit": { "USD": usd },
                }),
            );
        }
        json!({
            "product": { "productFamily": product_family, "attributes": attrs, "sku": sku },
            "serviceCode": "AmazonSageMaker",
            "terms": { "OnDemand": { term_key: {
                "priceDimensions": price_dimensions,
                "sku": sku,
                "effectiveDate": EFFECTIVE_DATE,
                "offerTermCode": "JRTCKXETXF",
                "termAttributes": {},
            } } },
            "version": "20260501000000",
            "publicationDate": "2026-05-01T00:00:00Z",
        })
    }

    fn instance_product(
        region: &str,
        instance: &str,
        component: &str,
        kind: &str,
        usd: &str,
    ) -> Value {
        let usagetype = format!("{}-{kind}:{instance}", usage_prefix(region));
        custom(
            region,
            "ML Instance",
            &usagetype,
            json!({
                "instanceName": instance,
                "instanceType": format!("{instance}-{component}"),
                "component": component,
                "operation": "RunInstance",
                "platoinstancetype": component,
                "platoinstancename": instance.trim_start_matches("ml.").split('.').next().unwrap_or(""),
                "vCpu": "4",
                "memory": "16 GiB",
                "gpu": "0",
                "instanceFamily": "General purpose",
                "currentGeneration": "Yes",
            }),
            &[("Hrs", "0", "Inf", usd)],
        )
    }

    /// Real-time hosting: `component=Hosting`, usagetype `<PFX>-Host:<instance>`, `Hrs`.
    pub fn hosting(region: &str, instance: &str, usd: &str) -> Value {
        instance_product(region, instance, "Hosting", "Host", usd)
    }

    /// Training: `component=Training`, usagetype `<PFX>-Train:<instance>`.
    pub fn training(region: &str, instance: &str, usd: &str) -> Value {
        instance_product(region, instance, "Training", "Train", usd)
    }

    /// Notebook instance: `component=Notebook`, usagetype `<PFX>-Notebk:<instance>`.
    pub fn notebook(region: &str, instance: &str, usd: &str) -> Value {
        instance_product(region, instance, "Notebook", "Notebk", usd)
    }

    /// Training-plan upfront fee: no `component`, usagetype
    /// `<PFX>-TrainingPlanUpfrontFee:<instance>`, unit `Quantity`.
    pub fn upfront_fee(region: &str, instance: &str, usd: &str) -> Value {
        let usagetype = format!("{}-TrainingPlanUpfrontFee:{instance}", usage_prefix(region));
        custom(
            region,
            "ML Instance",
            &usagetype,
            json!({ "instanceName": instance, "operation": "RunInstance" }),
            &[("Quantity", "0", "Inf", usd)],
        )
    }

    /// Serverless inference compute: productFamily `ML Serverless`, usagetype
    /// `<PFX>-ServerlessInf:Mem-<N>GB`, per second.
    pub fn serverless(region: &str, memory_gb: u32, usd: &str) -> Value {
        let usagetype = format!("{}-ServerlessInf:Mem-{memory_gb}GB", usage_prefix(region));
        custom(
            region,
            "ML Serverless",
            &usagetype,
            json!({ "operation": "RunInstance" }),
            &[("Second", "0", "Inf", usd)],
        )
    }

    /// Serverless inference compute as AWS tiers it: a first tier from 0 to
    /// `free_seconds` at $0 (the monthly free allowance), then `usd` per second.
    pub fn serverless_with_free_tier(
        region: &str,
        memory_gb: u32,
        free_seconds: &str,
        usd: &str,
    ) -> Value {
        let usagetype = format!("{}-ServerlessInf:Mem-{memory_gb}GB", usage_prefix(region));
        let place = location(region);
        custom_described(
            region,
            "ML Serverless",
            &usagetype,
            json!({ "operation": "RunInstance" }),
            &[
                (
                    "Second",
                    "0",
                    free_seconds,
                    "0.0000000000",
                    &format!(
                        "$0.00 per second for the first {free_seconds} seconds of Serverless \
                         Inference {memory_gb}GB per month in {place}"
                    ),
                ),
                (
                    "Second",
                    free_seconds,
                    "Inf",
                    usd,
                    &format!("${usd} per second of Serverless Inference {memory_gb}GB in {place}"),
                ),
            ],
        )
    }

    /// Which usagetype name a provisioned-concurrency product carries:
    /// `<PFX>-ProvisionedConcurrency:Mem-<N>GB` or `…:Usage-<N>GB`. Public tools disagree
    /// which name is which charge; the documents built here say the charge in their
    /// `group` and description whatever name they carry.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PcName {
        Mem,
        Usage,
    }

    fn provisioned_concurrency(
        region: &str,
        memory_gb: u32,
        name: PcName,
        group: &str,
        description: &str,
        usd: &str,
    ) -> Value {
        let detail = match name {
            PcName::Mem => "Mem",
            PcName::Usage => "Usage",
        };
        let usagetype = format!(
            "{}-ProvisionedConcurrency:{detail}-{memory_gb}GB",
            usage_prefix(region)
        );
        custom_described(
            region,
            "ML Serverless",
            &usagetype,
            json!({ "operation": "RunInstance", "group": group }),
            &[("Second", "0", "Inf", usd, description)],
        )
    }

    /// The provisioned-concurrency standing charge, per second provisioned: group
    /// `ServerlessProvisionedConcurrency-Usage`, "per second of Provisioned Concurrency".
    pub fn provisioned_concurrency_standing(
        region: &str,
        memory_gb: u32,
        name: PcName,
        usd: &str,
    ) -> Value {
        let description = format!(
            "${usd} per second of Provisioned Concurrency for Serverless Inference \
             {memory_gb}GB in {}",
            location(region)
        );
        provisioned_concurrency(
            region,
            memory_gb,
            name,
            "ServerlessProvisionedConcurrency-Usage",
            &description,
            usd,
        )
    }

    /// Inference duration of calls served by provisioned concurrency: group
    /// `ServerlessProvisionedConcurrency-Duration`, "per second of inference duration".
    pub fn provisioned_concurrency_inference(
        region: &str,
        memory_gb: u32,
        name: PcName,
        usd: &str,
    ) -> Value {
        let description = format!(
            "${usd} per second of inference duration with Provisioned Concurrency for \
             Serverless Inference {memory_gb}GB in {}",
            location(region)
        );
        provisioned_concurrency(
            region,
            memory_gb,
            name,
            "ServerlessProvisionedConcurrency-Duration",
            &description,
            usd,
        )
    }

    fn storage(region: &str, use_: &str, kind: &str, label: &str, usd: &str) -> Value {
        let usagetype = format!("{}-{kind}:VolumeUsage.gp2", usage_prefix(region));
        custom_described(
            region,
            "Storage",
            &usagetype,
            json!({
                "volumeType": format!("General Purpose-{use_}"),
                "platoclassificationtype": format!("{kind}:VolumeUsage"),
                "operation": "CreateVolume-Gp2",
            }),
            &[(
                "GB-Mo",
                "0",
                "Inf",
                usd,
                &format!("${usd} per GB-Mo of {label} ML storage"),
            )],
        )
    }

    /// Hosting ML storage: productFamily `Storage`, volumeType `General Purpose-Hosting`,
    /// usagetype `<PFX>-Host:VolumeUsage.gp2`, per `GB-Mo`.
    pub fn hosting_storage(region: &str, usd: &str) -> Value {
        storage(region, "Hosting", "Host", "Endpoint", usd)
    }

    /// Notebook instance ML storage: volumeType `General Purpose-Notebook`, usagetype
    /// `<PFX>-Notebk:VolumeUsage.gp2`.
    pub fn notebook_storage(region: &str, usd: &str) -> Value {
        storage(region, "Notebook", "Notebk", "Notebook Instance", usd)
    }

    fn data(region: &str, direction: &str, group: &str, usd: &str) -> Value {
        let usagetype = format!("{}-Hst:Data-Bytes-{direction}", usage_prefix(region));
        // The productFamily of data rows is not documented publicly; sagemeter does not
        // rely on it (it filters on operation and matches the usagetype).
        custom(
            region,
            "ML Data Processing",
            &usagetype,
            json!({ "operation": "Invoke-Endpoint", "group": group }),
            &[("GB", "0", "Inf", usd)],
        )
    }

    /// Data processed in: usagetype `<PFX>-Hst:Data-Bytes-In`, operation `Invoke-Endpoint`, per GB.
    pub fn data_in(region: &str, usd: &str) -> Value {
        data(region, "In", "Hosting:IN", usd)
    }

    /// Data processed out: usagetype `<PFX>-Hst:Data-Bytes-Out`, per GB.
    pub fn data_out(region: &str, usd: &str) -> Value {
        data(region, "Out", "Hosting:OUT", usd)
    }

    /// `doc` (one on-demand term) with a second term AWS announced ahead: `usd` per
    /// unit from `date`, as the Price List lists it beside the one in effect.
    pub fn with_term_announced(mut doc: Value, date: &str, usd: &str) -> Value {
        let terms = doc["terms"]["OnDemand"].as_object_mut().unwrap();
        let (code, term) = terms.iter().next().unwrap();
        let sku = term["sku"].as_str().unwrap().to_owned();
        let mut announced = term.clone();
        let new_code = format!("{sku}.ANNOUNCED1");
        announced["offerTermCode"] = json!("ANNOUNCED1");
        announced["effectiveDate"] = json!(date);
        let dims = announced["priceDimensions"].as_object_mut().unwrap();
        let renamed: Map<String, Value> = dims
            .iter()
            .map(|(rate_code, dim)| {
                let rate_code = rate_code.replace(code.as_str(), &new_code);
                let mut dim = dim.clone();
                dim["rateCode"] = json!(rate_code);
                dim["pricePerUnit"]["USD"] = json!(usd);
                (rate_code, dim)
            })
            .collect();
        *dims = renamed;
        terms.insert(new_code, announced);
        doc
    }
}
