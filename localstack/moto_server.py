#!/usr/bin/env python3
"""moto's server, answering one DynamoDB request at a time, and speaking Smithy RPC v2 CBOR.

Usage: moto_server.py [moto_server's arguments, e.g. -H 127.0.0.1 -p 4566]

1. DynamoDB, one request at a time. moto applies a DynamoDB update as a
read-modify-write in Python, and its server runs each request on its own thread:
two concurrent UpdateItem calls on one item can lose one's ADD (4 threads x 1,000
`ADD a :one` end at 3,995 with moto 5.2.5). DynamoDB applies every single-item
update atomically, and sagemeter's fleet relies on it (several processes add to one
item), so the emulator must too: this handles DynamoDB requests (X-Amz-Target
`DynamoDB_*`) under one lock. Every other service is served as moto serves it,
concurrently (a SageMaker call must not wait behind a DescribeEndpoint: receipts
time the calls).

2. Smithy RPC v2 CBOR. The Rust SDK's CloudWatch client (aws-sdk-cloudwatch 1.140)
speaks only RPC v2 CBOR (POST /service/<Service>/operation/<Operation>, header
`smithy-protocol: rpc-v2-cbor`, CBOR bodies), which moto 5.2.5 does not parse. Such a
request is translated to the service's awsJson protocol (POST /, X-Amz-Target
`<targetPrefix>.<Operation>`, Content-Type application/x-amz-json-<jsonVersion>, both
from botocore's service model), moto answers it, and the JSON answer is translated back
to CBOR following the operation's output shape (timestamps -> tag 1 epoch seconds,
blobs -> bytes, numbers by their shape type). Errors become a CBOR map {__type,
message} with the same status, plus `x-amzn-query-error: <Code>;Sender|Receiver` for
awsQueryCompatible services (CloudWatch). A gzip-compressed request body
(Content-Encoding: gzip, CloudWatch PutMetricData's requestCompression) is inflated
first. Generic by service: any botocore service whose `protocols` list
smithy-rpc-v2-cbor and json, whose Smithy service name (the path's <Service>) equals
its targetPrefix, is handled.

3. Two CloudWatch fixes for metrics with two or more dimensions (sagemeter's
EndpointName + VariantName):
  * ListMetrics lists each metric once. moto 5.2.5's are_dimensions_same() compares
    every dimension with every other one, so such a metric is never recognised as
    already listed and ListMetrics returns one entry per datum put (672 for seed.py's
    data). Replaced by an order-insensitive comparison of the (name, value) pairs.
  * GetMetricData matches dimensions in any order. It compares sorted() lists, but
    Dimension.__lt__ is `name < other.name and value < other.name`, so
    [VariantName, EndpointName] never sorts like [EndpointName, VariantName] and a
    query naming them in the other order than PutMetricData did finds nothing.
    Dimensions now sort by (name, value).

4. Demo endpoints that are older than the emulator. moto stamps an endpoint's
CreationTime with the moment CreateEndpoint ran, and sagemeter's account view counts
an endpoint's burn from its creation: an endpoint tagged
`sagemeter:emulator-created-hours-ago=N` (seed.py tags the demo endpoints with 168, the
span of the CloudWatch data it puts) gets CreationTime and LastModifiedTime N hours
back instead. No other endpoint is touched.
"""

from __future__ import annotations

import base64
import datetime as _dt
import gzip
import io
import json
import math
import re
import sys
import threading

import cbor2
import moto.server as server

_lock = threading.Lock()
_Dispatcher = server.DomainDispatcherApplication


# --- Smithy RPC v2 CBOR <-> awsJson -------------------------------------------------

_CBOR_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)/?$")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)

# Smithy service name (= targetPrefix) -> botocore ServiceModel, or None if not found.
_services: dict[str, object] = {}
_services_lock = threading.Lock()
# Likely botocore names first (cheap); a full scan of botocore's services is the fallback.
_KNOWN_SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}


_session = None


def _botocore_session():
    global _session
    if _session is None:
        import botocore.session

        _session = botocore.session.get_session()
    return _session


def _model_if_matches(session, name: str, smithy_name: str):
    try:
        model = session.get_service_model(name)
    except Exception:
        return None
    md = model.metadata
    protocols = md.get("protocols") or [md.get("protocol")]
    if md.get("targetPrefix") == smithy_name and "json" in protocols:
        return model
    return None


def _service_model(smithy_name: str, signing_name: str | None):
    with _services_lock:
        if smithy_name in _services:
            return _services[smithy_name]
        session = _botocore_session()
        candidates = [c for c in (_KNOWN_SERVICES.get(smithy_name), signing_name) if c]
        model = None
        for name in candidates:
            model = _model_if_matches(session, name, smithy_name)
            if model is not None:
                break
        if model is None:
            for name in session.get_available_services():
                if name in candidates:
                    continue
                model = _model_if_matches(session, name, smithy_name)
                if model is not None:
                    break
        _services[smithy_name] = model
        return model


def _signing_name(environ) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", auth)
    return m.group(1) if m else None


def _epoch_number(dt: _dt.datetime):
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_dt.timezone.utc)
    delta = dt - _EPOCH
    if delta.microseconds == 0:
        return delta.days * 86400 + delta.seconds
    return delta.total_seconds()


def _cbor_to_json_value(value):
    """A decoded CBOR request value, as awsJson carries it."""
    if isinstance(value, dict):
        return {str(k): _cbor_to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_cbor_to_json_value(v) for v in value]
    if isinstance(value, _dt.datetime):  # tag 0/1
        return _epoch_number(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, cbor2.CBORTag):
        raise ValueError(f"unsupported CBOR tag {value.tag}")
    if value is cbor2.undefined:
        return None
    return value


def _to_datetime(value) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _EPOCH + _dt.timedelta(seconds=value)
    text = str(value).strip()
    try:
        return _EPOCH + _dt.timedelta(seconds=float(text))
    except ValueError:
        pass
    from botocore.utils import parse_timestamp

    dt = parse_timestamp(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=_dt.timezone.utc)


def _json_to_cbor_value(value, shape):
    """One value of moto's JSON answer, typed by its botocore shape."""
    if value is None:
        return None
    t = shape.type_name if shape is not None else None
    if t == "structure":
        if not isinstance(value, dict):
            return value
        out = {}
        for key, item in value.items():
            member = shape.members.get(key)
            if member is None or item is None:
                continue  # not in the output shape: not serialised
            out[key] = _json_to_cbor_value(item, member)
        return out
    if t == "list":
        return [_json_to_cbor_value(v, shape.member) for v in value]
    if t == "map":
        return {k: _json_to_cbor_value(v, shape.value) for k, v in value.items()}
    if t == "timestamp":
        secs = _epoch_number(_to_datetime(value))
        return cbor2.CBORTag(1, secs)
    if t in ("double", "float"):
        return float(value)  # float("NaN") / float("Infinity") too
    if t in ("integer", "long", "short", "byte"):
        return int(value)
    if t == "blob":
        if isinstance(value, str):
            return base64.b64decode(value)
        return bytes(value)
    if t == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if t == "string":
        return value if isinstance(value, str) else str(value)
    return value


def _error_code(type_field: str) -> str:
    code = type_field.split(":", 1)[0]
    return code.rsplit("#", 1)[-1]


def _query_error_header(model, code: str, status: int) -> str:
    """`<Code>;Sender|Receiver` for an awsQueryCompatible service's error."""
    try:
        shape = model.shape_for(code)
        meta = shape.metadata.get("error", {})
        query_code = meta.get("code", code)
        fault = "Sender" if meta.get("senderFault") or (not meta and status < 500) else "Receiver"
        return f"{query_code};{fault}"
    except Exception:
        return f"{code};{'Sender' if status < 500 else 'Receiver'}"


def _cbor_response(start_response, status: str, headers: list, body_obj):
    body = b"" if body_obj is None else cbor2.dumps(body_obj)
    headers = [(k, v) for k, v in headers
               if k.lower() not in ("content-type", "content-length", "smithy-protocol",
                                    "x-amzn-errortype", "content-encoding", "transfer-encoding",
                                    "x-amz-crc32")]
    headers += [("smithy-protocol", "rpc-v2-cbor"),
                ("Content-Type", "application/cbor"),
                ("Content-Length", str(len(body)))]
    start_response(status, headers)
    return [body]


def _cbor_error(start_response, status: int, code: str, message: str, model=None, extra=()):
    headers = list(extra)
    if model is not None and "awsQueryCompatible" in model.metadata:
        if not any(k.lower() == "x-amzn-query-error" for k, _ in headers):
            headers.append(("x-amzn-query-error", _query_error_header(model, code, status)))
    reason = {400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}.get(status, "Error")
    return _cbor_response(start_response, f"{status} {reason}", headers,
                          {"__type": code, "message": message})


def is_cbor_request(environ) -> bool:
    return (environ.get("HTTP_SMITHY_PROTOCOL", "").strip().lower() == "rpc-v2-cbor"
            and _CBOR_PATH.match(environ.get("PATH_INFO", "") or "") is not None)


def cbor_via_json(environ, start_response, app):
    """Serve one RPC v2 CBOR request with `app` (a WSGI app speaking awsJson)."""
    smithy_name, operation = _CBOR_PATH.match(environ["PATH_INFO"]).groups()
    if environ.get("REQUEST_METHOD", "").upper() != "POST":
        return _cbor_error(start_response, 404, "UnknownOperationException",
                           "RPC v2 CBOR requests must be POST")
    model = _service_model(smithy_name, _signing_name(environ))
    if model is None:
        return _cbor_error(start_response, 404, "UnknownOperationException",
                           f"no service {smithy_name} known to speak awsJson")
    if operation not in model.operation_names:
        return _cbor_error(start_response, 404, "UnknownOperationException",
                           f"{smithy_name} has no operation {operation}", model)

    from werkzeug.wsgi import get_input_stream

    raw = get_input_stream(environ).read()
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    try:
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding not in ("", "identity"):
            raise ValueError(f"unsupported Content-Encoding {encoding!r}")
        doc = cbor2.loads(raw) if raw else {}
        if not isinstance(doc, dict):
            raise ValueError("the request body is not a CBOR map")
        payload = json.dumps(_cbor_to_json_value(doc)).encode("utf-8")
    except Exception as err:  # malformed CBOR, unknown tag, bad gzip
        return _cbor_error(start_response, 400, "SerializationException",
                           f"cannot read the CBOR request: {err}", model)

    json_type = f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.0')}"
    env = dict(environ)
    for key in ("HTTP_SMITHY_PROTOCOL", "HTTP_CONTENT_ENCODING", "HTTP_TRANSFER_ENCODING",
                "HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE"):
        env.pop(key, None)
    env.update({
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "CONTENT_TYPE": json_type,
        "CONTENT_LENGTH": str(len(payload)),
        "HTTP_ACCEPT": json_type,
        "HTTP_X_AMZ_TARGET": f"{model.metadata['targetPrefix']}.{operation}",
        "wsgi.input": io.BytesIO(payload),
    })
    env.pop("wsgi.input_terminated", None)
    for key in ("RAW_URI", "REQUEST_URI"):
        if key in env:
            env[key] = "/"

    captured: dict = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, list(headers)
        return lambda data: captured.setdefault("written", []).append(data)

    result = app(env, capture)
    try:
        body = b"".join(captured.get("written", [])) + b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()

    status = captured.get("status", "500 Internal Server Error")
    code = int(status.split(" ", 1)[0])
    headers = captured.get("headers", [])
    try:
        answer = json.loads(body) if body.strip() else None
    except ValueError:
        answer = None

    if code >= 300:
        if isinstance(answer, dict) and (answer.get("__type") or answer.get("code")):
            err_code = _error_code(str(answer.get("__type") or answer.get("code")))
            message = answer.get("message", answer.get("Message", ""))
        else:
            err_code = "InternalFailure" if code >= 500 else "ValidationException"
            message = body.decode("utf-8", "replace")[:2000]
        return _cbor_error(start_response, code, err_code, message or "", model,
                           [(k, v) for k, v in headers if k.lower() != "content-length"])

    op = model.operation_model(operation)
    if op.output_shape is None:
        return _cbor_response(start_response, status, headers, None)
    try:
        out = _json_to_cbor_value(answer if isinstance(answer, dict) else {}, op.output_shape)
    except Exception as err:
        return _cbor_error(start_response, 500, "InternalFailure",
                           f"cannot translate moto's answer to CBOR: {err}", model)
    return _cbor_response(start_response, status, headers, out)


# --- the dispatcher -------------------------------------------------------------------


class SerialisedDispatcher(_Dispatcher):
    """moto's dispatcher with each DynamoDB request handled under one lock, and
    Smithy RPC v2 CBOR requests translated to and from awsJson."""

    def __call__(self, environ, start_response):
        if is_cbor_request(environ):
            return cbor_via_json(environ, start_response, self._dispatch)
        return self._dispatch(environ, start_response)

    def _dispatch(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _lock:
                return super().__call__(environ, start_response)
        return super().__call__(environ, start_response)


server.DomainDispatcherApplication = SerialisedDispatcher


# --- moto fixes -----------------------------------------------------------------------


def _are_dimensions_same(metric_dimensions, dimensions) -> bool:
    def pairs(dims):
        return sorted((d.name, d.value) for d in dims)

    return pairs(metric_dimensions) == pairs(dimensions)


import moto.cloudwatch.models as _cloudwatch_models  # noqa: E402

_cloudwatch_models.are_dimensions_same = _are_dimensions_same
_cloudwatch_models.Dimension.__lt__ = lambda self, other: (
    (self.name or "", self.value or "") < (other.name or "", other.value or ""))

import moto.sagemaker.models as _sagemaker_models  # noqa: E402

AGE_TAG = "sagemeter:emulator-created-hours-ago"
_endpoint_init = _sagemaker_models.FakeEndpoint.__init__


def _aged_endpoint_init(self, *args, **kwargs):
    _endpoint_init(self, *args, **kwargs)
    for tag in self.tags or []:
        if tag.get("Key") == AGE_TAG:
            try:
                hours = float(tag.get("Value", ""))
            except ValueError:
                return
            self.creation_time = self.last_modified_time = (
                self.creation_time - _dt.timedelta(hours=hours))


_sagemaker_models.FakeEndpoint.__init__ = _aged_endpoint_init

if __name__ == "__main__":
    server.main(sys.argv[1:])
