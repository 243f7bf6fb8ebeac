//! `sagemeter price`, run as a process against an in-process fake of the AWS Price
//! List Query API (`AWS_ENDPOINT_URL_PRICING` points at it): live prices with their
//! SKU, serverless sizes, unknown instance types, and the fallback to the bundled
//! snapshot when the Price List cannot be reached.
//!
//! Run: `cargo test --features cli --test cli cli_price::`.

use super::clean_env::{self, refused_url};
use assert_cmd::Command;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use predicates::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The effective date of every fake on-demand term.
const EFFECTIVE_DATE: &str = "2026-05-01T00:00:00Z";

/// A minimal Price List API: awsJson1.1 `POST /` with
/// `X-Amz-Target: AWSPriceListService.GetProducts`; answers the documents whose
/// attributes match every `TERM_MATCH` filter, in one page.
struct FakePriceList {
    url: String,
    requests: Arc<Mutex<u32>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakePriceList {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Served {
    docs: Arc<Vec<Value>>,
    requests: Arc<Mutex<u32>>,
}

impl FakePriceList {
    async fn start(docs: Vec<Value>) -> FakePriceList {
        let requests = Arc::new(Mutex::new(0));
        let state = Served {
            docs: Arc::new(docs),
            requests: requests.clone(),
        };
        let app = Router::new()
            .route("/", post(get_products))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakePriceList {
            url,
            requests,
            task,
        }
    }

    fn request_count(&self) -> u32 {
        *self.requests.lock().unwrap()
    }
}

async fn get_products(State(served): State<Served>, headers: HeaderMap, body: Bytes) -> Response {
    *served.requests.lock().unwrap() += 1;
    let aws_json = |status: StatusCode, body: Value| {
        let mut response = (status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            "application/x-amz-json-1.1".parse().unwrap(),
        );
        response
    };
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    if target != Some("AWSPriceListService.GetProducts") {
        return aws_json(
            StatusCode::BAD_REQUEST,
            json!({"__type": "UnknownOperationException", "message": "unknown operation"}),
        );
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let filters: Vec<(String, String)> = request["Filters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["Field"].as_str().unwrap_or_default().to_owned(),
                f["Value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let page: Vec<String> = served
        .docs
        .iter()
        .filter(|doc| request["ServiceCode"] == doc["serviceCode"])
        .filter(|doc| {
            filters.iter().all(|(field, value)| {
                let product = &doc["product"];
                let actual = match field.as_str() {
                    "productFamily" => product["productFamily"].as_str(),
                    _ => product["attributes"][field].as_str(),
                };
                actual == Some(value.as_str())
            })
        })
        .map(Value::to_string)
        .collect();
    aws_json(
        StatusCode::OK,
        json!({"FormatVersion": "aws_v1", "PriceList": page}),
    )
}

/// An `AmazonSageMaker` product document in the Price List's `aws_v1` shape.
fn product(sku: &str, family: &str, attributes: Value, unit: &str, usd: &str) -> Value {
    let term = format!("{sku}.JRTCKXETXF");
    let rate_code = format!("{term}.6YS6EN2CT7");
    let mut attrs = attributes;
    attrs["servicecode"] = json!("AmazonSageMaker");
    attrs["locationType"] = json!("AWS Region");
    json!({
        "product": {"productFamily": family, "attributes": attrs, "sku": sku},
        "serviceCode": "AmazonSageMaker",
        "terms": {"OnDemand": {term.clone(): {
            "priceDimensions": {rate_code.clone(): {
                "unit": unit, "beginRange": "0", "endRange": "Inf", "appliesTo": [],
                "description": format!("${usd} per {unit}"), "rateCode": rate_code,
                "pricePerUnit": {"USD": usd},
            }},
            "sku": sku, "effectiveDate": EFFECTIVE_DATE, "offerTermCode": "JRTCKXETXF",
            "termAttributes": {},
        }}},
        "version": "20260501000000",
        "publicationDate": "2026-05-01T00:00:00Z",
    })
}

fn hosting(sku: &str, region: &str, prefix: &str, instance: &str, usd: &str) -> Value {
    product(
        sku,
        "ML Instance",
        json!({
            "regionCode": region, "instanceName": instance, "component": "Hosting",
            "instanceType": format!("{instance}-Hosting"), "operation": "RunInstance",
            "usagetype": format!("{prefix}-Host:{instance}"),
        }),
        "Hrs",
        usd,
    )
}

fn training(sku: &str, region: &str, prefix: &str, instance: &str, usd: &str) -> Value {
    product(
        sku,
        "ML Instance",
        json!({
            "regionCode": region, "instanceName": instance, "component": "Training",
            "instanceType": format!("{instance}-Training"), "operation": "RunInstance",
            "usagetype": format!("{prefix}-Train:{instance}"),
        }),
        "Hrs",
        usd,
    )
}

fn serverless(sku: &str, region: &str, prefix: &str, memory_gb: u32, usd: &str) -> Value {
    product(
        sku,
        "ML Serverless",
        json!({
            "regionCode": region, "operation": "RunInstance",
            "usagetype": format!("{prefix}-ServerlessInf:Mem-{memory_gb}GB"),
        }),
        "Second",
        usd,
    )
}

/// Serverless compute as AWS tiers it: `0`..`free_seconds` at $0 (the monthly free
/// allowance), then `usd` per second.
fn serverless_with_free_tier(
    sku: &str,
    region: &str,
    prefix: &str,
    memory_gb: u32,
    free_seconds: &str,
    usd: &str,
) -> Value {
    let mut doc = serverless(sku, region, prefix, memory_gb, usd);
    let term = format!("{sku}.JRTCKXETXF");
    let dims = &mut doc["terms"]["OnDemand"][&term]["priceDimensions"];
    // The one dimension `product` made becomes the paid tier from `free_seconds` ...
    dims[format!("{term}.6YS6EN2CT7")]["beginRange"] = json!(free_seconds);
    // ... after a $0 first tier.
    let free = format!("{term}.8EEUB22XNJ");
    dims[&free] = json!({
        "unit": "Second", "beginRange": "0", "endRange": free_seconds, "appliesTo": [],
        "description": "$0.00 per Second", "rateCode": free,
        "pricePerUnit": {"USD": "0.0000000000"},
    });
    doc
}

/// Prices deliberately different from the bundled snapshot (ml.m5.xlarge $0.23/h,
/// 2 GB $0.00004/s, 3 GB $0.00006/s), so that a live answer cannot be mistaken for the
/// snapshot.
fn documents() -> Vec<Value> {
    vec![
        hosting(
            "HOSTM5XLUSE1AAAA",
            "us-east-1",
            "USE1",
            "ml.m5.xlarge",
            "0.2990000000",
        ),
        training(
            "TRAINM5XLUSE1AAA",
            "us-east-1",
            "USE1",
            "ml.m5.xlarge",
            "0.5000000000",
        ),
        hosting(
            "HOSTM5XLEU1AAAAA",
            "eu-west-1",
            "EU",
            "ml.m5.xlarge",
            "0.3110000000",
        ),
        serverless("SRVLESS3GBUSE1AA", "us-east-1", "USE1", 3, "0.0000700000"),
        serverless("SRVLESS4GBUSE1AA", "us-east-1", "USE1", 4, "0.0000900000"),
        serverless_with_free_tier(
            "SRVLESS2GBUSE1AA",
            "us-east-1",
            "USE1",
            2,
            "150000",
            "0.0000450000",
        ),
    ]
}

/// `sagemeter` with a clean AWS environment: static test credentials, us-east-1,
/// no profile files, the Price List at `pricing_url`, everything else unreachable.
fn sagemeter(pricing_url: &str) -> Command {
    let mut cmd = Command::from_std(clean_env::sagemeter(&refused_url(), pricing_url));
    cmd.timeout(Duration::from_secs(60));
    cmd
}

fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.assert().success().get_output().stdout.clone();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.lines().count(), 1, "one JSON object: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("decimal string: {v}"))
        .parse()
        .unwrap()
}

// The fake server runs on the runtime's worker threads while the test thread waits
// for the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_type_is_priced_live_with_its_sku() {
    let server = FakePriceList::start(documents()).await;
    let price = json_of(sagemeter(&server.url).args(["price", "ml.m5.xlarge", "--json"]));

    assert_eq!(price["source"], "live", "{price}");
    // The Hosting product, not the Training one of the same instance.
    assert_eq!(dec(&price["usd_per_unit"]), "0.299".parse().unwrap());
    assert_eq!(price["unit"], "hour");
    assert_eq!(price["currency"], "USD");
    assert_eq!(price["sku"], "HOSTM5XLUSE1AAAA");
    assert_eq!(price["effective_date"], EFFECTIVE_DATE);
    assert!(price["as_of"].is_null(), "{price}");
    assert!(price["fetched_at"].is_string(), "{price}");
    assert_eq!(price["key"]["kind"], "hosting");
    assert_eq!(price["key"]["region"], "us-east-1");
    assert_eq!(price["key"]["instance_type"], "ml.m5.xlarge");
    assert!(
        server.request_count() >= 1,
        "AWS_ENDPOINT_URL_PRICING was used"
    );

    sagemeter(&server.url)
        .args(["price", "ml.m5.xlarge"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("hosting ml.m5.xlarge in us-east-1")
                .and(predicate::str::contains("$0.299 USD per instance-hour"))
                .and(predicate::str::contains("source      live"))
                .and(predicate::str::contains("SKU         HOSTM5XLUSE1AAAA"))
                .and(predicate::str::contains(EFFECTIVE_DATE)),
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serverless_memory_size_is_priced_per_second_at_its_gigabytes() {
    let server = FakePriceList::start(documents()).await;
    // 3072 MB = 3 GB: usagetype ...ServerlessInf:Mem-3GB.
    let price = json_of(sagemeter(&server.url).args(["price", "serverless:3072", "--json"]));

    assert_eq!(price["source"], "live", "{price}");
    assert_eq!(dec(&price["usd_per_unit"]), "0.00007".parse().unwrap());
    assert_eq!(price["unit"], "second");
    assert_eq!(price["sku"], "SRVLESS3GBUSE1AA");
    assert_eq!(price["key"]["kind"], "serverless");
    assert_eq!(price["key"]["memory_gb"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serverless_free_tier_is_not_taken_for_the_price() {
    let server = FakePriceList::start(documents()).await;
    // 2048 MB = 2 GB: $0 for the first 150000 s, then $0.000045 a second.
    let price = json_of(sagemeter(&server.url).args(["price", "serverless:2048", "--json"]));

    assert_eq!(price["source"], "live", "{price}");
    assert_eq!(dec(&price["usd_per_unit"]), "0.000045".parse().unwrap());
    assert_eq!(price["sku"], "SRVLESS2GBUSE1AA");
    assert_eq!(
        price["note"],
        "free tier of 150000 second(s) per month not applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_region_comes_from_the_flag_or_the_aws_configuration() {
    let server = FakePriceList::start(documents()).await;
    let by_flag = json_of(sagemeter(&server.url).args([
        "price",
        "ml.m5.xlarge",
        "--region",
        "eu-west-1",
        "--json",
    ]));
    assert_eq!(by_flag["key"]["region"], "eu-west-1");
    assert_eq!(dec(&by_flag["usd_per_unit"]), "0.311".parse().unwrap());

    let by_env = json_of(sagemeter(&server.url).env("AWS_REGION", "eu-west-1").args([
        "price",
        "ml.m5.xlarge",
        "--json",
    ]));
    assert_eq!(by_env["key"]["region"], "eu-west-1");
    assert_eq!(by_env["sku"], "HOSTM5XLEU1AAAAA");
}

/// An empty `AWS_REGION` is an unset one, as the AWS CLI takes it: the profile's
/// region answers, not the us-east-1 fallback (which the SDK alone would give,
/// taking the empty value for a region and looking no further).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_aws_region_is_passed_over_for_the_profiles_region() {
    let server = FakePriceList::start(documents()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "[default]\nregion = eu-west-1\n").unwrap();
    let price = json_of(
        sagemeter(&server.url)
            .env("AWS_REGION", "")
            .env("AWS_CONFIG_FILE", &config)
            .args(["price", "ml.m5.xlarge", "--json"]),
    );
    assert_eq!(price["key"]["region"], "eu-west-1", "{price}");
    assert_eq!(price["sku"], "HOSTM5XLEU1AAAAA");
    // And AWS_DEFAULT_REGION, when set, before the profile.
    std::fs::write(&config, "[default]\nregion = ap-south-1\n").unwrap();
    let price = json_of(
        sagemeter(&server.url)
            .env("AWS_REGION", "")
            .env("AWS_DEFAULT_REGION", "eu-west-1")
            .env("AWS_CONFIG_FILE", &config)
            .args(["price", "ml.m5.xlarge", "--json"]),
    );
    assert_eq!(price["key"]["region"], "eu-west-1", "{price}");
}

/// An empty or blank `RUST_LOG` is an unset one: the default level (warn) logs,
/// as the docs say, not a filter that turns every line off. Here the warning that
/// the config file is not UTF-8 (one Latin-1 byte in a comment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_rust_log_keeps_the_default_warnings() {
    let server = FakePriceList::start(documents()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let mut file = b"[default]\n# caf".to_vec();
    file.extend_from_slice(&[0xE9, b'\n']);
    std::fs::write(&config, &file).unwrap();
    for rust_log in ["", "  "] {
        let output = sagemeter(&server.url)
            .env("RUST_LOG", rust_log)
            .env("AWS_CONFIG_FILE", &config)
            .args(["price", "ml.m5.xlarge", "--json"])
            .assert()
            .success()
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("WARN") && stderr.contains("the AWS config file is not UTF-8"),
            "RUST_LOG={rust_log:?}: {stderr}"
        );
    }
}

/// Credentials the Price List endpoint does not know (another partition's, such as
/// GovCloud's) are refused with HTTP 403: the fallback's note says so, and does
/// not send the user to add an IAM permission that would not help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_of_another_partition_are_not_taken_for_a_missing_permission() {
    use crate::support::fake_pricelist::{FakePriceList, Fault, docs};
    let server = FakePriceList::start().await;
    server.add_documents([docs::hosting("us-east-1", "ml.m5.xlarge", "0.2300000000")]);
    server.set_fault(Some(Fault::UnrecognizedClient));
    let price = json_of(sagemeter(&server.url()).args(["price", "ml.m5.xlarge", "--json"]));
    assert_eq!(price["source"], "snapshot", "{price}");
    let note = price["note"].as_str().unwrap();
    assert!(
        note.contains("UnrecognizedClientException, HTTP 403")
            && note.contains("not valid at the Price List endpoint")
            && !note.contains("pricing:GetProducts"),
        "{note}"
    );
}

#[test]
fn a_mistyped_region_is_named_with_the_one_it_likely_means() {
    sagemeter(&refused_url())
        .args(["price", "ml.m5.xlarge", "--region", "us-east1"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`us-east1` is not an AWS region: did you mean `us-east-1`?",
        ));
}

/// The AWS European Sovereign Cloud's region, and an ISO partition's, are
/// regions: not called typos, and priced by nothing the CLI can reach (their
/// partitions' Price Lists are not ones sagemeter knows, the bundled snapshot has
/// none of their rates).
#[test]
fn the_european_sovereign_clouds_and_iso_regions_are_known_and_said_to_be_out_of_reach() {
    for region in ["eusc-de-east-1", "us-iso-east-1"] {
        let out = sagemeter(&refused_url())
            .args(["price", "ml.m5.xlarge", "--region", region])
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("not among the AWS regions"),
            "{region}: {stderr}"
        );
        assert!(
            stderr.contains(
                "its partition's Price List is out of sagemeter's reach: the CLI cannot price it"
            ),
            "{region}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_instance_type_exits_1_with_a_clear_message() {
    let server = FakePriceList::start(documents()).await;
    sagemeter(&server.url)
        .args(["price", "ml.nosuch.xlarge"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            predicate::str::contains(
                "error: no on-demand price for hosting ml.nosuch.xlarge in us-east-1",
            )
            .and(predicate::str::contains("check the instance type")),
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_pricing_falls_back_to_the_bundled_snapshot_and_says_so() {
    let nowhere = refused_url();
    let price = json_of(sagemeter(&nowhere).args(["price", "ml.m5.xlarge", "--json"]));
    assert_eq!(price["source"], "snapshot", "{price}");
    // The bundled snapshot's us-east-1 ml.m5.xlarge rate.
    assert_eq!(dec(&price["usd_per_unit"]), "0.23".parse().unwrap());
    assert!(price["sku"].is_null());
    assert!(price["fetched_at"].is_null());
    // The snapshot's date is when its public source was observed (the bundled
    // file's `as_of` column: 2026-05-20 for this row), not AWS's effectiveDate.
    assert!(price["effective_date"].is_null(), "{price}");
    assert_eq!(price["as_of"], "2026-05-20", "{price}");
    let note = price["note"]
        .as_str()
        .unwrap_or_else(|| panic!("a fallback note: {price}"));
    assert!(note.contains("primary price source failed"), "{note}");

    sagemeter(&nowhere)
        .args(["price", "serverless:3072"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("$0.00006 USD per second")
                .and(predicate::str::contains(
                    "snapshot (bundled with sagemeter, NOT live)",
                ))
                .and(predicate::str::contains(
                    "note        primary price source failed",
                )),
        );
    sagemeter(&nowhere)
        .args(["price", "ml.m5.xlarge"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains(
                "  as of       2026-05-20 (the snapshot's date, not an AWS effective date)",
            )
            .and(predicate::str::contains("effective   ").not()),
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_price_anywhere_exits_1() {
    // Pricing unreachable and the snapshot has no such instance type either.
    sagemeter(&refused_url())
        .args(["price", "ml.nosuch.xlarge"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            predicate::str::contains("error: no ")
                .and(predicate::str::contains("ml.nosuch.xlarge")),
        );
}

/// The library advises a program to set a price override; the CLI has no such
/// option, so its errors say what a CLI user can do.
#[test]
fn no_price_says_what_a_cli_user_can_do_not_to_set_an_override() {
    for (args, says) in [
        (
            ["price", "ml.m5.xlarge", "--region", "cn-north-1"],
            "China's regions are priced in CNY only, which sagemeter does not convert: the \
             CLI cannot price them",
        ),
        (
            ["price", "data-in", "--region", "ap-south-1"],
            "the live AWS Price List is needed: run with credentials allowed \
             pricing:GetProducts",
        ),
    ] {
        let out = sagemeter(&refused_url())
            .args(args)
            .assert()
            .code(1)
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("set a"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rate_a_receipt_uses_is_priced_live_by_its_name() {
    use crate::support::fake_pricelist::{self as shared, docs};
    let server = shared::FakePriceList::start().await;
    // Rates unlike the bundled snapshot's (data $0.016/GB, storage $0.14/GB-month,
    // provisioned 2 GB $0.00001/s standing and $0.0000233/s of inference), so that a
    // live answer cannot be the snapshot. The two provisioned-concurrency products
    // carry the usage-type names swapped: their group says which charge each is.
    server.set_documents([
        docs::data_in("us-east-1", "0.0170000000"),
        docs::data_out("us-east-1", "0.0180000000"),
        docs::hosting_storage("us-east-1", "0.1500000000"),
        docs::provisioned_concurrency_standing("us-east-1", 2, docs::PcName::Usage, "0.0000110000"),
        docs::provisioned_concurrency_inference("us-east-1", 2, docs::PcName::Mem, "0.0000250000"),
    ]);
    for (what, kind, usd, unit) in [
        ("data-in", "data_in", "0.017", "gigabyte"),
        ("data-out", "data_out", "0.018", "gigabyte"),
        ("storage", "storage", "0.15", "gigabyte_month"),
        (
            "provisioned:2048",
            "provisioned_concurrency",
            "0.000011",
            "second",
        ),
        (
            "provisioned-usage:2048",
            "provisioned_concurrency_usage",
            "0.000025",
            "second",
        ),
    ] {
        let price = json_of(sagemeter(&server.url()).args(["price", what, "--json"]));
        assert_eq!(price["source"], "live", "{what}: {price}");
        assert_eq!(price["key"]["kind"], kind, "{what}: {price}");
        assert_eq!(price["key"]["region"], "us-east-1", "{what}: {price}");
        assert_eq!(
            dec(&price["usd_per_unit"]),
            usd.parse::<Decimal>().unwrap(),
            "{what}: {price}"
        );
        assert_eq!(price["unit"], unit, "{what}: {price}");
    }
    sagemeter(&server.url())
        .args(["price", "storage"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "hosting ML storage in us-east-1\n  price       $0.15 USD per GB-month\n",
        ));
}

#[test]
fn invalid_targets_are_usage_errors() {
    let nowhere = refused_url();
    for (arg, says) in [
        ("serverless:3000", "whole number of GB"),
        ("serverless:8192", "whole number of GB"),
        ("serverless:big", "not a memory size"),
        ("m5.xlarge", "is none of an instance type"),
        ("gpu:ml.g5.xlarge", "is none of an instance type"),
        ("provisioned:1000", "whole number of GB"),
    ] {
        sagemeter(&nowhere)
            .args(["price", arg])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(says));
    }
    sagemeter(&nowhere)
        .args(["price"])
        .assert()
        .code(2)
        .stdout("");
}
