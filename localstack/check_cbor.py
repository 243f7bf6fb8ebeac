#!/usr/bin/env python3
"""Check that an emulator answers CloudWatch in Smithy RPC v2 CBOR, as the Rust SDK speaks it.

Usage: check_cbor.py [--endpoint-url http://127.0.0.1:4566] [--region us-east-1]

Starts nothing: point it at a running emulator (localstack/moto_server.py, up.sh).
Uses a botocore CloudWatch client whose service model is made to offer only the
`smithy-rpc-v2-cbor` protocol (botocore otherwise prefers awsJson), and checks:
  * every request went out as RPC v2 CBOR (POST /service/.../operation/<Op>,
    smithy-protocol: rpc-v2-cbor) and every answer came back as CBOR;
  * PutMetricData with StatisticValues, and with Values/Counts (big enough that
    botocore gzips the body: Content-Encoding gzip);
  * GetMetricData (MetricStat Sum, Period 3600) gives the sums back, timestamps as datetimes;
  * ListMetrics lists the metric with its dimensions;
  * errors: GetMetricData with a bad query (no MetricStat, no Expression) and
    GetDashboard of a missing dashboard raise ClientError with a code, a message, the
    HTTP status and an x-amzn-query-error header.
Writes to a fresh namespace and EndpointName (SageMeter/CborCheck/<random>,
cbor-check-<random>), so it can be rerun.
Exits 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import sys
import tempfile
import uuid

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)


def cbor_cloudwatch(endpoint_url: str, region: str, tmp: str):
    """A CloudWatch client that can only speak smithy-rpc-v2-cbor."""
    base = botocore.session.get_session()
    loader = base.get_component("data_loader")
    api_version = loader.determine_latest_version("cloudwatch", "service-2")
    model = loader.load_service_model("cloudwatch", "service-2", api_version)
    model["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    path = os.path.join(tmp, "cloudwatch", api_version)
    os.makedirs(path)
    with open(os.path.join(path, "service-2.json"), "w") as f:
        json.dump(model, f)

    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, tmp)
    key = os.environ.get("AWS_ACCESS_KEY_ID") or "test"
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY") or "test"
    cfg = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)
    client = session.create_client("cloudwatch", region_name=region, endpoint_url=endpoint_url,
                                   aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)
    assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    return client


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint-url", default="http://127.0.0.1:4566")
    p.add_argument("--region", default="us-east-1")
    args = p.parse_args(argv)

    wire: list[dict] = []

    def on_send(request, **_):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        wire.append({"url": request.url, "method": request.method,
                     "headers": {k.lower(): (v.decode() if isinstance(v, bytes) else v)
                                 for k, v in request.headers.items()},
                     "body": body})

    def on_response(http_response, **_):
        if wire:
            wire[-1]["status"] = http_response.status_code
            wire[-1]["response_headers"] = {k.lower(): v for k, v in http_response.headers.items()}

    with tempfile.TemporaryDirectory() as tmp:
        cw = cbor_cloudwatch(args.endpoint_url, args.region, tmp)
    cw.meta.events.register("before-send.cloudwatch", on_send)
    cw.meta.events.register("after-call.cloudwatch", lambda http_response, **kw: on_response(http_response))

    def last_call_was_cbor(op: str) -> None:
        w = wire[-1]
        check(w["method"] == "POST" and w["url"].endswith(f"/service/GraniteServiceVersion20100801/operation/{op}")
              and w["headers"].get("smithy-protocol") == "rpc-v2-cbor",
              f"{op}: sent as RPC v2 CBOR ({w['method']} {w['url'].split('/', 3)[-1]})")
        rh = w.get("response_headers", {})
        check(rh.get("smithy-protocol") == "rpc-v2-cbor" and rh.get("content-type") == "application/cbor",
              f"{op}: answered as CBOR (smithy-protocol {rh.get('smithy-protocol')!r}, "
              f"Content-Type {rh.get('content-type')!r})")

    run = uuid.uuid4().hex[:8]
    ns = f"SageMeter/CborCheck/{run}"
    # A fresh dimension value too: moto matches GetMetricData queries with dimensions on
    # name + dimensions only, whatever the namespace.
    dims = [{"Name": "EndpointName", "Value": f"cbor-check-{run}"},
            {"Name": "VariantName", "Value": "AllTraffic"}]
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    hour = now.replace(minute=0, second=0) - dt.timedelta(hours=2)
    t1 = hour + dt.timedelta(minutes=10, seconds=0.5)  # a fractional-second timestamp
    t2 = hour + dt.timedelta(minutes=40)

    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": t1, "Unit": "None",
         "StatisticValues": {"SampleCount": 120, "Sum": 120, "Minimum": 1, "Maximum": 1}},
        {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": t2, "Unit": "None",
         "StatisticValues": {"SampleCount": 30, "Sum": 30, "Minimum": 1, "Maximum": 1}},
    ])
    last_call_was_cbor("PutMetricData")

    # Big enough (> 10 KiB) for botocore to gzip it (CloudWatch's requestCompression trait).
    big = [{"MetricName": "ModelLatency", "Dimensions": dims, "Timestamp": t1, "Unit": "Microseconds",
            "Values": [float(200000 + i) for i in range(150)], "Counts": [1.0] * 150}
           for _ in range(10)]
    cw.put_metric_data(Namespace=ns, MetricData=big)
    last_call_was_cbor("PutMetricData")
    check(wire[-1]["headers"].get("content-encoding") == "gzip",
          f"PutMetricData (big): body gzipped by the client (Content-Encoding "
          f"{wire[-1]['headers'].get('content-encoding')!r}, {len(wire[-1]['body'])} bytes)")
    if wire[-1]["headers"].get("content-encoding") == "gzip":
        gzip.decompress(wire[-1]["body"])

    resp = cw.get_metric_data(
        MetricDataQueries=[
            {"Id": "inv", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Invocations",
                                                    "Dimensions": dims},
                                         "Period": 3600, "Stat": "Sum"}},
            {"Id": "lat", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "ModelLatency",
                                                    "Dimensions": dims},
                                         "Period": 3600, "Stat": "SampleCount"}},
        ],
        StartTime=now - dt.timedelta(hours=6), EndTime=now + dt.timedelta(minutes=5),
    )
    last_call_was_cbor("GetMetricData")
    by_id = {r["Id"]: r for r in resp["MetricDataResults"]}
    inv, lat = by_id.get("inv", {}), by_id.get("lat", {})
    print(f"     inv: {list(zip(inv.get('Timestamps', []), inv.get('Values', [])))} {inv.get('StatusCode')}")
    print(f"     lat: {list(zip(lat.get('Timestamps', []), lat.get('Values', [])))} {lat.get('StatusCode')}")
    check(abs(sum(inv.get("Values", [])) - 150.0) < 1e-9,
          f"GetMetricData: Invocations Sum over the window = {sum(inv.get('Values', []))} (want 150)")
    check(all(isinstance(t, dt.datetime) and t.tzinfo is not None for t in inv.get("Timestamps", []))
          and len(inv.get("Timestamps", [])) >= 1,
          "GetMetricData: Timestamps parsed as tz-aware datetimes (CBOR tag 1)")
    check(all(isinstance(v, float) for v in inv.get("Values", [])), "GetMetricData: Values are floats")
    check(inv.get("StatusCode") == "Complete", f"GetMetricData: StatusCode {inv.get('StatusCode')!r}")
    check(sum(lat.get("Values", [])) > 0,
          f"GetMetricData: gzipped ModelLatency datapoints arrived (SampleCount {sum(lat.get('Values', []))})")

    listed = cw.list_metrics(Namespace=ns)
    last_call_was_cbor("ListMetrics")
    names = sorted(m["MetricName"] for m in listed.get("Metrics", []))
    check(names == ["Invocations", "ModelLatency"], f"ListMetrics: {len(names)} metric(s) {sorted(set(names))} (want each once)")
    check(all(sorted(d["Name"] for d in m["Dimensions"]) == ["EndpointName", "VariantName"]
              for m in listed.get("Metrics", [])), "ListMetrics: dimensions EndpointName, VariantName")

    for what, call in [
        ("GetMetricData with a bad query",
         lambda: cw.get_metric_data(
             MetricDataQueries=[{"Id": "bad"}],  # neither MetricStat nor Expression
             StartTime=now - dt.timedelta(hours=1), EndTime=now)),
        ("GetDashboard of a missing dashboard",
         lambda: cw.get_dashboard(DashboardName=f"missing-{uuid.uuid4().hex[:8]}")),
    ]:
        op = "GetMetricData" if "GetMetricData" in what else "GetDashboard"
        try:
            call()
        except ClientError as err:
            e = err.response.get("Error", {})
            meta = err.response.get("ResponseMetadata", {})
            rh = meta.get("HTTPHeaders", {})
            print(f"     {what}: HTTP {meta.get('HTTPStatusCode')} Code {e.get('Code')!r} "
                  f"Message {e.get('Message')!r} x-amzn-query-error {rh.get('x-amzn-query-error')!r}")
            check(bool(e.get("Code")) and e.get("Code") not in ("400", "500")
                  and 400 <= meta.get("HTTPStatusCode", 0) < 600
                  and rh.get("smithy-protocol") == "rpc-v2-cbor"
                  and rh.get("content-type") == "application/cbor",
                  f"{what}: CBOR error {e.get('Code')} (HTTP {meta.get('HTTPStatusCode')})")
            check(bool(rh.get("x-amzn-query-error")), f"{what}: x-amzn-query-error header present")
        else:
            check(False, f"{what}: raised no error")
            last_call_was_cbor(op)

    print(f"{'all checks passed' if not failures else f'{len(failures)} check(s) failed'} "
          f"({args.endpoint_url}, namespace {ns})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
