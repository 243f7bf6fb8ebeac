//! A model's own words stay with the caller. SageMaker's `ModelError` quotes the
//! model's output (or the input it choked on) in its message, its `OriginalMessage`
//! and the response body, and a `ModelStreamError` in its message. The caller gets
//! the SDK error whole; nothing sagemeter writes (logs at every level, ledger, EMF,
//! metric labels, receipts, its errors' `Display` and `Debug`) repeats it.

use crate::support::fake_sagemaker::{FakeSageMaker, FakeVariant};
use crate::support::fake_stream::{FakeStream, REGION, Script, VARIANT};
use crate::support::{MemoryWriter, logs};
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamError;
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_sdk_sagemakerruntime::types::error::ResponseStreamError;
use metrics_util::debugging::DebuggingRecorder;
use sagemeter::endpoint::{EndpointProfile, VariantProfile};
use sagemeter::ledger::JsonlLedger;
use sagemeter::pricing::PriceKey;
use sagemeter::sink::EmfSink;
use sagemeter::{Client, Error};

/// The model's words, in every error it sends.
const MARKER: &str = "SECRET-PAYLOAD-42";

/// SageMaker's `ModelError` message: it quotes the model's response body.
fn model_message() -> String {
    format!(
        "Received client error (400) from primary with message \"{{\"error\":\"{MARKER}\"}}\". \
         See https://us-east-1.console.aws.amazon.com/cloudwatch/home for more information."
    )
}

/// Everything sagemeter wrote for the calls of one test.
struct Outputs {
    recorder: DebuggingRecorder,
    ledger: tempfile::TempDir,
    emf: MemoryWriter,
}

impl Outputs {
    fn new() -> Outputs {
        Outputs {
            recorder: DebuggingRecorder::new(),
            ledger: tempfile::tempdir().unwrap(),
            emf: MemoryWriter::default(),
        }
    }

    /// `builder` with a ledger and an EMF sink writing here.
    fn sinks(&self, builder: sagemeter::ClientBuilder) -> sagemeter::ClientBuilder {
        let emf = EmfSink::builder()
            .writer("memory", self.emf.clone())
            .build()
            .unwrap();
        builder
            .sink(JsonlLedger::open(self.ledger.path().join("calls.jsonl")).unwrap())
            .sink(emf)
    }

    /// Asserts that the marker is in none of them, nor in `more`; that each was
    /// written to (the call was recorded); returns the ledger's text.
    fn assert_no_marker(&self, more: &[(&str, String)]) -> String {
        let ledger = std::fs::read_to_string(self.ledger.path().join("calls.jsonl")).unwrap();
        let metric_labels: Vec<String> = self
            .recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, ..)| format!("{:?}", key.key()))
            .collect();
        let mut outputs = vec![
            ("logs, every level and thread", logs::everything()),
            ("ledger", ledger.clone()),
            ("EMF", self.emf.text()),
            ("metric labels", metric_labels.join("\n")),
        ];
        outputs.extend(more.iter().cloned());
        for (what, text) in outputs {
            assert!(!text.is_empty(), "nothing in {what}");
            assert!(
                !text.contains(MARKER),
                "the model's words leaked into {what}:\n{text}"
            );
        }
        ledger
    }
}

#[tokio::test]
async fn a_model_errors_message_reaches_the_caller_and_nothing_sagemeter_writes() {
    let logs = logs::capture();
    let outputs = Outputs::new();
    let _metrics = metrics::set_default_local_recorder(&outputs.recorder);
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    fake.fail_invocations(424, "ModelError", &model_message());
    let client = outputs
        .sinks(crate::support::rt_priced_by_overrides(&fake).await)
        .build()
        .unwrap();

    let err = client
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new(r#"{"inputs":"hi"}"#))
        .send()
        .await
        .unwrap_err();
    client.shutdown().await.unwrap();

    // The caller has the SDK error whole: the model's words, its status, the request id.
    let Error::Invoke { source, cost, .. } = &err else {
        panic!("expected Error::Invoke, got {err}")
    };
    let Some(InvokeEndpointError::ModelError(model)) = source.as_service_error() else {
        panic!("expected a ModelError")
    };
    assert!(model.message().unwrap().contains(MARKER));
    assert_eq!(model.original_message(), Some(model_message().as_str()));
    let cost = cost.as_deref().expect("the model ran: the call is billed");
    assert_eq!(cost.usage.outcome, sagemeter::usage::Outcome::Error);
    assert!(
        logs.lines()
            .iter()
            .any(|l| l["fields"]["outcome"] == "error"),
        "the failed call's cost line is logged"
    );

    // What sagemeter says about it names the code, the status and the request id.
    let debug = format!("{err:?}");
    for named in ["\"ModelError\"", "424", "\"req-error-1\""] {
        assert!(debug.contains(named), "{named} in {debug}");
    }
    let ledger = outputs.assert_no_marker(&[
        ("the error's Display", err.to_string()),
        ("the error's Debug", debug),
        ("the error's pretty Debug", format!("{err:#?}")),
        ("the receipt", format!("{cost} {cost:?}")),
    ]);
    assert!(ledger.contains("\"outcome\":\"error\""), "{ledger}");
}

/// A client of the fake stream's `llm` endpoint (1 × ml.g5.xlarge), priced by overrides.
fn stream_client(conf: &aws_types::SdkConfig) -> sagemeter::ClientBuilder {
    let usd = |s: &str| s.parse::<sagemeter::Decimal>().unwrap();
    Client::builder(conf)
        .without_discovery()
        .price_source(crate::support::receipts::NoPriceList)
        .endpoint_profile(EndpointProfile::new(
            "llm",
            vec![VariantProfile::instance(VARIANT, "ml.g5.xlarge", 1)],
        ))
        .price_override(PriceKey::hosting(REGION, "ml.g5.xlarge"), usd("1.408"))
        .price_override(
            PriceKey::DataIn {
                region: REGION.into(),
            },
            usd("0.016"),
        )
        .price_override(
            PriceKey::DataOut {
                region: REGION.into(),
            },
            usd("0.016"),
        )
}

#[tokio::test]
async fn a_streams_model_errors_reach_the_caller_and_nothing_sagemeter_writes() {
    let _logs = logs::capture();
    let outputs = Outputs::new();
    let _metrics = metrics::set_default_local_recorder(&outputs.recorder);
    let message = model_message();
    let fake = FakeStream::start(move |endpoint| match endpoint {
        // Refused before the stream: a ModelError quoting the model.
        "llm-refused" => Script::new().model_error_with_message(&message),
        // A part, then the model breaks off, in its own words.
        _ => Script::new()
            .part("data: {\"choices\":[{\"delta\":{\"content\":\"Once\"}}]}\n\n")
            .model_stream_error_with_message("ModelCrashed", &message),
    })
    .await;
    let conf = fake.sdk_config().await;
    let client = outputs
        .sinks(stream_client(&conf).endpoint_profile(EndpointProfile::new(
            "llm-refused",
            vec![VariantProfile::instance(VARIANT, "ml.g5.xlarge", 1)],
        )))
        .build()
        .unwrap();

    let refused = client
        .invoke_endpoint_with_response_stream()
        .endpoint_name("llm-refused")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap_err();
    let Error::InvokeWithResponseStream { source, cost, .. } = &refused else {
        panic!("expected Error::InvokeWithResponseStream, got {refused}")
    };
    let Some(InvokeEndpointWithResponseStreamError::ModelError(model)) = source.as_service_error()
    else {
        panic!("expected a ModelError")
    };
    assert!(model.message().unwrap().contains(MARKER));
    assert!(cost.is_some(), "the model ran: the call is billed");

    let mut response = client
        .invoke_endpoint_with_response_stream()
        .endpoint_name("llm")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap();
    let receipt = response.receipt();
    assert!(response.body.recv().await.unwrap().is_some());
    let broken = response.body.recv().await.unwrap_err();
    let Some(ResponseStreamError::ModelStreamError(stream_error)) = broken.as_service_error()
    else {
        panic!("expected a ModelStreamError")
    };
    assert!(stream_error.message().unwrap().contains(MARKER));
    let stream_debug = format!("{response:?}");
    drop(response);
    let broken_cost = receipt.await.expect("the stream's receipt");
    assert!(
        broken_cost
            .notes
            .iter()
            .any(|n| n.contains("ModelStreamError (ModelCrashed)")),
        "{:?}",
        broken_cost.notes
    );
    client.shutdown().await.unwrap();

    outputs.assert_no_marker(&[
        ("the error's Display", refused.to_string()),
        ("the error's Debug", format!("{refused:?}")),
        ("the refused call's receipt", format!("{cost:?}")),
        ("the stream's Debug", stream_debug),
        (
            "the broken stream's receipt",
            format!("{broken_cost} {broken_cost:?}"),
        ),
    ]);
}

/// Nothing sagemeter builds from an SDK config prints its credentials in `Debug`,
/// not even the access key id (the SDK's own `Credentials` Debug redacts the
/// secret, not the key id, and an SDK config or client prints its credentials).
#[tokio::test]
async fn no_debug_of_what_is_built_from_an_sdk_config_prints_its_credentials() {
    const KEY_ID: &str = "AKIALEAKCHECK0000042";
    const SECRET: &str = "SECRETLEAKCHECK42zzzzzzzzzzzzzzzzzzzzzzz";
    const TOKEN: &str = "TOKENLEAKCHECK42";
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            KEY_ID,
            SECRET,
            Some(TOKEN.into()),
            None,
            "test",
        ))
        .endpoint_url("http://127.0.0.1:9")
        .load()
        .await;
    // The check itself: the SDK config's Debug does print the key id.
    assert!(format!("{config:?}").contains(KEY_ID));

    #[allow(unused_mut)]
    let mut debugs: Vec<(&str, String)> = vec![
        ("ClientBuilder", format!("{:?}", Client::builder(&config))),
        (
            "Client",
            format!(
                "{:?}",
                Client::builder(&config)
                    .pricing_config(&config)
                    .build()
                    .unwrap()
            ),
        ),
        (
            "LivePricesBuilder",
            format!("{:?}", sagemeter::pricing::LivePrices::builder(&config)),
        ),
        (
            "LivePrices",
            format!(
                "{:?}",
                sagemeter::pricing::LivePrices::from_sdk_config(&config)
            ),
        ),
        (
            "default_price_source",
            format!("{:?}", sagemeter::pricing::default_price_source(&config)),
        ),
        (
            "PriceListHistoryBuilder",
            format!(
                "{:?}",
                sagemeter::pricing::history::PriceListHistory::builder(&config)
            ),
        ),
        (
            "PriceListHistory",
            format!(
                "{:?}",
                sagemeter::pricing::history::PriceListHistory::builder(&config).build()
            ),
        ),
    ];
    #[cfg(feature = "account")]
    debugs.extend([
        (
            "AccountBuilder",
            format!("{:?}", sagemeter::account::Account::builder(&config)),
        ),
        (
            "Account",
            format!("{:?}", sagemeter::account::Account::new(&config)),
        ),
    ]);
    #[cfg(feature = "fleet")]
    debugs.push((
        "FleetConfig",
        format!(
            "{:?}",
            sagemeter::fleet::FleetConfig::dynamodb("fleet")
                .dynamodb_client(aws_sdk_dynamodb::Client::new(&config))
        ),
    ));
    for (what, text) in debugs {
        for secret in [KEY_ID, SECRET, TOKEN] {
            assert!(
                !text.contains(secret),
                "{secret} in the Debug of {what}:\n{text}"
            );
        }
    }
}

/// A password the SDK takes in an endpoint URL and `http::Uri` refuses (`|`): the
/// SDK then fails with a message quoting the URL and the whole request, body too.
const URL_SECRET: &str = "URL|SECRET-7f3a";

/// Stands for a request body: it must never be written anywhere.
const BODY_MARKER: &str = "BODY-MARKER-7f3a";

/// A client of `rt` (2 × ml.m5.xlarge at 0.23 USD an hour, no discovery) on `conf`.
fn rt_client(conf: &aws_types::SdkConfig) -> Client {
    Client::builder(conf)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
        ))
        .price_override(
            PriceKey::hosting(REGION, "ml.m5.xlarge"),
            "0.23".parse().unwrap(),
        )
        .build()
        .unwrap()
}

/// An endpoint URL with [`URL_SECRET`] for a password (nothing listens there).
fn unappliable_url() -> String {
    format!("http://user:{URL_SECRET}@127.0.0.1:1")
}

/// Everything sagemeter says of `err` that a program may log: its Display, Debug,
/// pretty Debug and chain, and sagemeter's logs so far.
fn said_of(err: &sagemeter::Error) -> Vec<(&'static str, String)> {
    vec![
        ("the error's Display", err.to_string()),
        ("the error's Debug", format!("{err:?}")),
        ("the error's pretty Debug", format!("{err:#?}")),
        ("the error's chain", sagemeter::redact::error_chain(err)),
        ("sagemeter's logs", sagemeters_logs()),
    ]
}

/// Asserts that none of `markers` is in any of `outputs`.
fn assert_none_in(markers: &[&str], outputs: &[(&str, String)]) {
    for (what, text) in outputs {
        for marker in markers {
            assert!(
                !text.contains(marker),
                "{marker} leaked into {what}:\n{text}"
            );
        }
    }
}

/// sagemeter's own log lines (every level and thread): the SDK's own events are
/// the program's subscriber's to filter (`redact::may_log`).
fn sagemeters_logs() -> String {
    logs::everything()
        .lines()
        .filter(|line| line.contains("\"target\":\"sagemeter"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Discovery and the Price List at an endpoint URL the SDK cannot apply: the call
/// goes on, its receipt says why it is unpriced or priced from the snapshot, and
/// nothing of the URL's password or the request is in the receipt, the ledger or
/// the logs.
#[tokio::test]
async fn an_endpoint_url_the_sdk_cannot_apply_is_never_quoted_in_receipts_ledgers_or_logs() {
    let _logs = logs::capture();
    let fake = FakeSageMaker::start().await;
    fake.add_endpoint(
        "rt",
        vec![FakeVariant::instance("AllTraffic", "ml.m5.xlarge", 2)],
    );
    let conf = fake.sdk_config().await;
    let bad = crate::support::fake_pricelist::sdk_config_for(&unappliable_url(), REGION);
    let outputs = Outputs::new();
    let discovering = outputs
        .sinks(
            Client::builder(&conf)
                .sagemaker_client(aws_sdk_sagemaker::Client::new(&bad))
                .pricing_config(&bad),
        )
        .build()
        .unwrap();
    let profiled = Client::builder(&conf)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
        ))
        .pricing_config(&bad)
        .build()
        .unwrap();
    let mut receipts = Vec::new();
    for client in [&discovering, &profiled] {
        let out = client
            .invoke_endpoint()
            .endpoint_name("rt")
            .body(Blob::new(format!(r#"{{"inputs":"{BODY_MARKER}"}}"#)))
            .send()
            .await
            .unwrap();
        receipts.push(out.cost().clone());
    }
    discovering.shutdown().await.unwrap();
    profiled.shutdown().await.unwrap();

    let json: Vec<String> = receipts
        .iter()
        .map(|c| serde_json::to_string(c).unwrap())
        .collect();
    let ledger = std::fs::read_to_string(outputs.ledger.path().join("calls.jsonl")).unwrap();
    assert!(!ledger.is_empty());
    assert_none_in(
        &[URL_SECRET, "SECRET-7f3a", BODY_MARKER],
        &[
            ("the receipts' JSON", json.join("\n")),
            (
                "the receipts' Display and Debug",
                format!("{receipts:?} {}", receipts[0]),
            ),
            ("the ledger", ledger),
            ("sagemeter's logs", sagemeters_logs()),
        ],
    );
    // Each says why, without the URL: discovery failed; the live price was not had.
    assert!(json[0].contains("could not discover"), "{}", json[0]);
    assert!(
        json[0].contains("the endpoint URL could not be applied to the request"),
        "{}",
        json[0]
    );
    assert!(
        json[1].contains("the endpoint URL could not be applied to the request"),
        "{}",
        json[1]
    );
}

/// The runtime at an endpoint URL the SDK cannot apply: the call fails, and its
/// error's Display, Debug and chain say the URL could not be applied, never the
/// URL's password nor the request (its body, its custom attributes).
#[tokio::test]
async fn an_endpoint_url_the_sdk_cannot_apply_is_never_quoted_in_errors() {
    let _logs = logs::capture();
    let bad = crate::support::fake_pricelist::sdk_config_for(&unappliable_url(), REGION);
    let client = rt_client(&bad);
    let err = client
        .invoke_endpoint()
        .endpoint_name("rt")
        .custom_attributes(format!("attr={BODY_MARKER}"))
        .body(Blob::new(format!(r#"{{"inputs":"{BODY_MARKER}"}}"#)))
        .send()
        .await
        .unwrap_err();
    client.shutdown().await.unwrap();
    let chain = sagemeter::redact::error_chain(&err);
    let debug = format!("{err:?}");
    assert_none_in(&[URL_SECRET, "SECRET-7f3a", BODY_MARKER], &said_of(&err));
    assert!(
        chain.contains("the endpoint URL could not be applied to the request"),
        "{chain}"
    );
    assert!(debug.contains("DispatchFailure"), "{debug}");
}

/// Credentials from a `credential_process` that fails: the call fails, and its
/// error says credentials could not be loaded, never what the process printed.
// `ProfileFiles` is deprecated in favour of a type of `aws-runtime`, which is not a
// dependency; `ConfigLoader::profile_files` still takes it.
#[allow(deprecated)]
#[cfg(unix)]
#[tokio::test]
async fn a_credential_processs_output_is_never_quoted_in_errors() {
    use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
    let _logs = logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let script = crate::support::failing_credential_process(dir.path());
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .empty_test_environment()
        .region(aws_config::Region::new(REGION))
        .endpoint_url(crate::support::fake_pricelist::refused_url())
        .profile_files(
            ProfileFiles::builder()
                .include_default_credentials_file(false)
                .with_contents(
                    ProfileFileKind::Config,
                    format!("[profile cp]\ncredential_process = {}\n", script.display()),
                )
                .build(),
        )
        .profile_name("cp")
        .load()
        .await;
    let client = Client::builder(&conf)
        .without_discovery()
        .endpoint_profile(EndpointProfile::new(
            "rt",
            vec![VariantProfile::instance("AllTraffic", "ml.m5.xlarge", 2)],
        ))
        .pricing_config(&conf)
        .build()
        .unwrap();
    let err = client
        .invoke_endpoint()
        .endpoint_name("rt")
        .body(Blob::new("{}"))
        .send()
        .await
        .unwrap_err();
    client.shutdown().await.unwrap();
    let chain = sagemeter::redact::error_chain(&err);
    assert_none_in(&[crate::support::PROCESS_SECRET], &said_of(&err));
    assert!(
        chain.contains("an error occurred while loading credentials"),
        "{chain}"
    );
}

/// An async call's input location that is no valid header value (a presigned URL
/// with a trailing carriage return): the SDK refuses to build the request, and
/// its error, which quotes the value, is said by the field's name only.
#[tokio::test]
async fn an_input_location_the_sdk_refuses_is_never_quoted_in_errors() {
    let _logs = logs::capture();
    let conf = crate::support::fake_pricelist::sdk_config_for(
        &crate::support::fake_pricelist::refused_url(),
        REGION,
    );
    let client = rt_client(&conf);
    let presigned = "https://b.s3.amazonaws.com/in.json?AWSAccessKeyId=AKIAV2KEYMARKER&\
                     Expires=1700000000&x-amz-security-token=TOKENMARKER&Signature=SIGMARKER\r";
    let gateway = "https://gw.example.com/in.json?api_key=APIKEYMARKER\r";
    for location in [presigned, gateway] {
        let err = client
            .invoke_endpoint_async()
            .endpoint_name("rt")
            .input_location(location)
            .send()
            .await
            .unwrap_err();
        let chain = sagemeter::redact::error_chain(&err);
        assert_none_in(
            &[
                "AKIAV2KEYMARKER",
                "TOKENMARKER",
                "SIGMARKER",
                "APIKEYMARKER",
                "in.json",
            ],
            &said_of(&err),
        );
        assert!(chain.contains("input_location"), "{chain}");
    }
    client.shutdown().await.unwrap();
}
