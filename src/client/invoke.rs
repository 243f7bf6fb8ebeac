//! `InvokeEndpoint`, metered: the fluent builder and the `send_metered` extension.

use super::Metered;
use super::call::{Answered, AttemptWatch, Call, CallRequest, MeteredOperation, ReadOutput};
use super::meter::{Meter, Phase, Targets};
use crate::config_error::ConfigError;
use crate::usage::{Operation, Usage};
use crate::{Cost, Error, Result};
use aws_sdk_sagemakerruntime::error::SdkError;
use aws_sdk_sagemakerruntime::operation::RequestId;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::builders::InvokeEndpointFluentBuilder;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::{
    InvokeEndpointError, InvokeEndpointOutput,
};
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// Ends an SDK `InvokeEndpoint` fluent builder with a metered send. The
/// builder's own settings are sent as they are; a request customized with
/// `customize()` is metered by [`MeteringInterceptor`](super::MeteringInterceptor)
/// instead.
///
/// The SDK client must be for the region of the meter's endpoints
/// ([`Meter::endpoint_region`]; one with no region configured is not checked). The
/// builder does not say which client it belongs to, so the request's own hook
/// checks it, and only then does the call begin: a request of another region is
/// refused with an [`Error::Config`](crate::Error::Config) naming both regions,
/// before it is sent, reserved against budgets (but with a fleet, whose
/// reservation comes first and is released), or looked up.
///
/// ```no_run
/// # async fn run(sdk: aws_sdk_sagemakerruntime::Client, meter: sagemeter::Meter) -> sagemeter::Result<()> {
/// use sagemeter::SendMeteredExt;
/// let response = sdk
///     .invoke_endpoint()
///     .endpoint_name("my-endpoint")
///     .body(aws_sdk_sagemakerruntime::primitives::Blob::new("{}"))
///     .send_metered(&meter) // was: .send()
///     .await?;
/// println!("{}", response.cost());
/// # Ok(()) }
/// ```
pub trait SendMeteredExt {
    /// The SDK operation's output.
    type Output;
    /// Sends the request and returns its output with its cost.
    ///
    /// The future borrows neither `meter` (it clones it) nor the builder: it
    /// can be spawned (`tokio::spawn(request.send_metered(&meter))`).
    fn send_metered(
        self,
        meter: &Meter,
    ) -> impl Future<Output = Result<Metered<Self::Output>>> + Send + use<Self>;

    /// [`send_metered`](Self::send_metered), the call attributed to `tags` as
    /// [`InvokeEndpoint::tag`] does: on the receipt, the log line and the sinks,
    /// and counted by the budgets of those tags.
    ///
    /// ```no_run
    /// # async fn run(sdk: aws_sdk_sagemakerruntime::Client, meter: sagemeter::Meter) -> sagemeter::Result<()> {
    /// use sagemeter::SendMeteredExt;
    /// let response = sdk
    ///     .invoke_endpoint()
    ///     .endpoint_name("my-endpoint")
    ///     .body(aws_sdk_sagemakerruntime::primitives::Blob::new("{}"))
    ///     .send_metered_tagged(&meter, [("tenant", "acme")])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    fn send_metered_tagged<I, K, V>(
        self,
        meter: &Meter,
        tags: I,
    ) -> impl Future<Output = Result<Metered<Self::Output>>> + Send + use<Self, I, K, V>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>;
}

impl SendMeteredExt for InvokeEndpointFluentBuilder {
    type Output = InvokeEndpointOutput;

    #[inline(always)]
    fn send_metered(
        self,
        meter: &Meter,
    ) -> impl Future<Output = Result<Metered<InvokeEndpointOutput>>> + Send + use<> {
        self.send_metered_tagged(meter, std::iter::empty::<(String, String)>())
    }

    #[inline(always)]
    fn send_metered_tagged<I, K, V>(
        self,
        meter: &Meter,
        tags: I,
    ) -> impl Future<Output = Result<Metered<InvokeEndpointOutput>>> + Send + use<I, K, V>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let tags = tags
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let call = call_request(&self, tags);
        // The SDK client may not carry the watch: it goes on this request, where
        // it checks the request's region before the call begins.
        invoke_endpoint_gated(meter.clone(), call, move || {
            self.customize().interceptor(AttemptWatch::opening()).send()
        })
    }
}

/// `InvokeEndpoint` through the call pipeline ([`Call`]): what it adds is reading
/// the response body (bytes, variant, tokens). `send` makes the SDK's request
/// future, pinned here, in the future the caller holds (see [`Call::run`]).
///
/// An `async move` block rather than an `async fn`: a function's future keeps its
/// arguments and, once running, a moved copy of them (the SDK builder twice); a
/// block's future uses what it captured in place.
///
/// `#[inline(always)]`, as is every `send` that returns it: inlined into the
/// caller's crate, the future is built where the caller awaits it. Returned from
/// a call instead, it is built on the stack and copied whole (32 KB) into the
/// caller's future, twice. A hint is not enough: once `send` also checked a
/// `config_override`, the compiler stopped inlining it, and the two copies were
/// 65,000 of the 86,000 instructions metering added to a call (cachegrind,
/// `benches/README.md`).
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn's future holds the SDK builder twice"
)]
#[inline(always)]
fn invoke_endpoint<F>(
    meter: Meter,
    call: CallRequest,
    send: impl FnOnce() -> F + Send,
) -> impl Future<Output = Result<Metered<InvokeEndpointOutput>>> + Send
where
    F: Future<Output = std::result::Result<InvokeEndpointOutput, InvokeEndpointSdkError>> + Send,
{
    async move {
        // In a block of its own: once answered, the request future's place is free
        // for what follows.
        let answered = {
            let sending = std::pin::pin!(send());
            let read: ReadOutput<InvokeEndpointOutput> = read_output;
            Call::run_reading::<InvokeEndpointOperation, _, _>(&meter, call, sending, Some(read))
                .await?
        };
        metered(answered)
    }
}

/// [`invoke_endpoint`] for `send_metered`, whose request's SDK client sagemeter
/// does not hold: the call begins inside the request, once the request's watch
/// has checked its region ([`Call::run_gated`]).
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn's future holds the SDK builder twice"
)]
#[inline(always)]
fn invoke_endpoint_gated<F>(
    meter: Meter,
    call: CallRequest,
    send: impl FnOnce() -> F + Send,
) -> impl Future<Output = Result<Metered<InvokeEndpointOutput>>> + Send
where
    F: Future<Output = std::result::Result<InvokeEndpointOutput, InvokeEndpointSdkError>> + Send,
{
    async move {
        let answered = {
            let sending = std::pin::pin!(send());
            let read: ReadOutput<InvokeEndpointOutput> = read_output;
            Call::run_gated::<InvokeEndpointOperation, _, _>(&meter, call, sending, Some(read))
                .await?
        };
        metered(answered)
    }
}

/// The receipt of an answered `InvokeEndpoint`, and its output or error.
fn metered(
    answered: Answered<InvokeEndpointOutput, InvokeEndpointError>,
) -> Result<Metered<InvokeEndpointOutput>> {
    let receipt = answered.receipt;
    let mut usage = receipt.usage(answered.latency);
    let request_id = match &answered.result {
        Ok(output) => read_output(output, receipt.meter(), &mut usage),
        Err(err) => err
            .as_service_error()
            .and_then(|e| e.meta().request_id())
            .map(str::to_owned),
    };
    match answered.result {
        Ok(output) => {
            let cost = receipt.make(usage, request_id, Vec::new(), Phase::Whole);
            Ok(Metered::new(output, cost))
        }
        Err(err) => {
            Err(receipt.fail::<InvokeEndpointOperation>(usage, request_id, Vec::new(), err))
        }
    }
}

/// What a receipt reads from an `InvokeEndpoint` answer: bytes out, the variant
/// that served it and the tokens in its body; returns its request id.
pub(super) fn read_output(
    output: &InvokeEndpointOutput,
    meter: &Meter,
    usage: &mut Usage,
) -> Option<String> {
    let body = output.body().map(Blob::as_ref).unwrap_or_default();
    usage.bytes_out = body.len() as u64;
    usage.variant = output.invoked_production_variant().map(str::to_owned);
    if let Some(tokens) = meter.count_tokens(body, output.content_type()) {
        usage.input_tokens = tokens.input;
        usage.output_tokens = tokens.output;
    }
    output.request_id().map(str::to_owned)
}

/// What the pipeline needs to know of an `InvokeEndpoint` request.
fn call_request(
    request: &InvokeEndpointFluentBuilder,
    tags: BTreeMap<String, String>,
) -> CallRequest {
    CallRequest::new(
        request.get_endpoint_name(),
        request.get_body().as_ref(),
        tags,
    )
    .targets(Targets {
        variant: request.get_target_variant().clone(),
        component: request.get_inference_component_name().clone(),
        model: request.get_target_model().clone(),
    })
}

/// The SDK's error for `InvokeEndpoint`.
type InvokeEndpointSdkError = SdkError<InvokeEndpointError, HttpResponse>;

/// `InvokeEndpoint`'s part of the call pipeline.
pub(crate) struct InvokeEndpointOperation;

impl MeteredOperation for InvokeEndpointOperation {
    type Error = InvokeEndpointError;
    const OPERATION: Operation = Operation::InvokeEndpoint;

    fn error(
        endpoint: String,
        source: SdkError<InvokeEndpointError, HttpResponse>,
        cost: Option<Cost>,
    ) -> Error {
        Error::Invoke {
            endpoint,
            source: Box::new(source),
            cost: cost.map(Box::new),
        }
    }
}

/// A metered `InvokeEndpoint` request. Same setters as the SDK's fluent builder,
/// plus [`tag`](Self::tag); [`send`](Self::send) returns [`Metered`] output.
#[derive(Clone)]
pub struct InvokeEndpoint {
    request: InvokeEndpointFluentBuilder,
    meter: Meter,
    tags: BTreeMap<String, String>,
    /// Why its client refuses every call (an SDK client of another region).
    refused: Option<Arc<ConfigError>>,
    /// This request's own SDK settings ([`config_override`](Self::config_override));
    /// boxed, as it is rare: the builder stays small.
    config_override: Option<Box<aws_sdk_sagemakerruntime::config::Builder>>,
}

// Hand-written: the SDK builder's Debug prints its client's configuration
// (credentials' key id included); the body and custom attributes are never shown.
impl std::fmt::Debug for InvokeEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.request;
        f.debug_struct("InvokeEndpoint")
            .field("endpoint_name", r.get_endpoint_name())
            .field("target_variant", r.get_target_variant())
            .field("inference_component_name", r.get_inference_component_name())
            .field("target_model", r.get_target_model())
            .field("tags", &self.tags)
            .field("config_override", &self.config_override.is_some())
            .finish_non_exhaustive()
    }
}

macro_rules! delegate_setters {
    ($($(#[$doc:meta])* $name:ident / $set:ident / $get:ident ($($ty:tt)+)),* $(,)?) => {
        $(delegate_setters!(@one $(#[$doc])* $name / $set / $get ($($ty)+));)*
    };
    // The conversion runs before the builder is touched: nothing between taking
    // the builder apart and putting it together can unwind, so the compiler
    // updates it in place instead of copying it.
    (@one $(#[$doc:meta])* $name:ident / $set:ident / $get:ident (impl Into<$target:ty>)) => {
        $(#[$doc])*
        #[inline]
        pub fn $name(self, input: impl Into<$target>) -> Self {
            let input: $target = input.into();
            Self {
                request: self.request.$name(input),
                ..self
            }
        }
        delegate_setters!(@option $(#[$doc])* $set / $get ($target));
    };
    (@one $(#[$doc:meta])* $name:ident / $set:ident / $get:ident ($ty:ty)) => {
        $(#[$doc])*
        #[inline]
        pub fn $name(self, input: $ty) -> Self {
            Self {
                request: self.request.$name(input),
                ..self
            }
        }
        delegate_setters!(@option $(#[$doc])* $set / $get ($ty));
    };
    // The SDK builder's `set_*` (an `Option`, `None` to clear) and `get_*`, so
    // that code written against the SDK's builder works unchanged.
    (@option $(#[$doc:meta])* $set:ident / $get:ident ($ty:ty)) => {
        $(#[$doc])*
        #[inline]
        pub fn $set(self, input: Option<$ty>) -> Self {
            Self {
                request: self.request.$set(input),
                ..self
            }
        }
        $(#[$doc])*
        #[inline]
        pub fn $get(&self) -> &Option<$ty> {
            self.request.$get()
        }
    };
}
pub(crate) use delegate_setters;

/// The SDK request of a metered builder's `request`, sent with its
/// `config_override` when it has one (the SDK's `customize().config_override`),
/// as it is otherwise: without one, the SDK assembles no override, and the
/// future is the SDK's own, in place ([`Sending`]).
macro_rules! sent_with_override {
    ($request:expr, $config_override:expr) => {
        match $config_override {
            None => $crate::client::invoke::Sending::Plain {
                future: $request.send(),
            },
            Some(config) => $crate::client::invoke::Sending::Customized {
                future: Box::pin($request.customize().config_override(*config).send()),
            },
        }
    };
}
pub(crate) use sent_with_override;

pin_project_lite::pin_project! {
    /// An SDK request future: sent as built, in place; or customized with a
    /// `config_override`, boxed (rare, and the SDK's customized send is large:
    /// in place, it would make every metered call's future larger).
    #[project = SendingProj]
    pub(crate) enum Sending<P, C> {
        Plain { #[pin] future: P },
        Customized { future: std::pin::Pin<Box<C>> },
    }
}

impl<P: Future, C: Future<Output = P::Output>> Future for Sending<P, C> {
    type Output = P::Output;

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.project() {
            SendingProj::Plain { future } => future.poll(cx),
            SendingProj::Customized { future } => future.as_mut().poll(cx),
        }
    }
}

/// Why a request is refused once its `config_override` is applied: an override
/// naming a region replaces the SDK client's, and is checked against the meter's
/// endpoints' region as the client was ([`Client::from_parts`](super::Client::from_parts));
/// one naming none leaves the client's (and its refusal, if any).
pub(crate) fn refused_with_override(
    meter: &Meter,
    refused: Option<Arc<ConfigError>>,
    config_override: Option<&aws_sdk_sagemakerruntime::config::Builder>,
    option: &'static str,
) -> Option<Arc<ConfigError>> {
    // `build` only freezes what was set: the override's region, as the SDK reads it.
    let Some(region) = config_override.and_then(|c| c.clone().build().region().cloned()) else {
        return refused;
    };
    meter
        .check_region(option, "the request's config_override", region.as_ref())
        .err()
        .map(Arc::new)
}

/// The doc of each metered builder's `config_override`.
macro_rules! config_override_setter {
    ($option:literal) => {
        /// This request's own SDK settings (a timeout, a retry configuration, an
        /// endpoint URL…), as the SDK's `customize().config_override(...)` sets
        /// them: they apply to this request only, over the client's. A later
        /// call replaces an earlier one.
        ///
        /// A region in it is where the request goes: one other than the meter's
        /// endpoints' ([`Meter::endpoint_region`](crate::Meter::endpoint_region))
        /// is refused with an [`Error::Config`](crate::Error::Config) for
        #[doc = concat!("`", $option, "`,")]
        /// before anything is sent, reserved or counted. The request is priced as
        /// built here: an interceptor added in the override that rewrites the
        /// HTTP request is not seen (see [`MeteringInterceptor`](crate::client::MeteringInterceptor)
        /// for requests customized in other ways).
        pub fn config_override(
            mut self,
            config_override: impl Into<aws_sdk_sagemakerruntime::config::Builder>,
        ) -> Self {
            self.config_override = Some(Box::new(config_override.into()));
            self
        }
    };
}
pub(crate) use config_override_setter;

impl InvokeEndpoint {
    pub(crate) fn new(
        request: InvokeEndpointFluentBuilder,
        meter: Meter,
        refused: Option<Arc<ConfigError>>,
    ) -> Self {
        InvokeEndpoint {
            request,
            meter,
            tags: BTreeMap::new(),
            refused,
            config_override: None,
        }
    }

    delegate_setters! {
        /// The endpoint to call.
        endpoint_name / set_endpoint_name / get_endpoint_name(impl Into<String>),
        /// The request body. Never logged or recorded.
        body / set_body / get_body(Blob),
        /// MIME type of the body.
        content_type / set_content_type / get_content_type(impl Into<String>),
        /// Desired MIME type of the response.
        accept / set_accept / get_accept(impl Into<String>),
        /// Opaque information passed to the model container (never logged).
        custom_attributes / set_custom_attributes / get_custom_attributes(impl Into<String>),
        /// Model to invoke on a multi-model endpoint.
        target_model / set_target_model / get_target_model(impl Into<String>),
        /// Production variant to send the request to.
        target_variant / set_target_variant / get_target_variant(impl Into<String>),
        /// Container to invoke on a multi-container endpoint.
        target_container_hostname / set_target_container_hostname / get_target_container_hostname(impl Into<String>),
        /// Identifier for the inference, for data capture.
        inference_id / set_inference_id / get_inference_id(impl Into<String>),
        /// Explanation filter (SageMaker Clarify).
        enable_explanations / set_enable_explanations / get_enable_explanations(impl Into<String>),
        /// Inference component to invoke.
        inference_component_name / set_inference_component_name / get_inference_component_name(impl Into<String>),
        /// Stateful session id.
        session_id / set_session_id / get_session_id(impl Into<String>),
        /// Routing hint for prefix-aware routing (endpoints whose `RoutingStrategy`
        /// is `PREFIX_AWARE`).
        prefix_aware_id / set_prefix_aware_id / get_prefix_aware_id(impl Into<String>),
    }

    /// Attributes this call to `key=value` (on the receipt, log line and sinks).
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    config_override_setter!("InvokeEndpoint::config_override");

    /// Anything else on the SDK's builder. Of the SDK's `customize()`, its
    /// [`config_override`](Self::config_override) is here; an interceptor of the
    /// request's own or a rewrite of its HTTP request is not, nor is anything of
    /// `customize()` through [`SendMeteredExt`] (it leaves a type that trait does not
    /// extend): meter such calls with [`MeteringInterceptor`](super::MeteringInterceptor)
    /// on your SDK client, whose requests may be customized as usual.
    pub fn map_request(
        mut self,
        f: impl FnOnce(InvokeEndpointFluentBuilder) -> InvokeEndpointFluentBuilder,
    ) -> Self {
        self.request = f(self.request);
        self
    }

    /// Sends the request; the output carries its cost.
    #[inline(always)] // see `invoke_endpoint`: the future is built where it is awaited
    pub fn send(self) -> impl Future<Output = Result<Metered<InvokeEndpointOutput>>> + Send {
        // Not an `async fn`: its future would hold this builder a second time.
        let InvokeEndpoint {
            request,
            meter,
            tags,
            refused,
            config_override,
        } = self;
        let refused = refused_with_override(
            &meter,
            refused,
            config_override.as_deref(),
            "InvokeEndpoint::config_override",
        );
        let call = call_request(&request, tags).refused(refused);
        // A Client's runtime client carries the watch, which an override keeps.
        invoke_endpoint(meter, call, move || {
            sent_with_override!(request, config_override)
        })
    }
}
