"""Sends one known span to an OTLP receiver: the proof that otlp_receiver.py decodes real OTLP.

  otlp_send.py --grpc PORT | --http PORT [--json]

The span: trace id 0102...0f10, span id 1112...1718, no parent, name "selftest", kind SERVER,
status OK, attributes mcp.method.name="tools/call", http.response.status_code=200 (int),
sample.ratio=0.5, cache.hit=true, one link (trace aa..aa, span bb..bb), flags 1, resource
service.name="otlp-selftest", scope "otlp_send". --json sends it as OTLP/JSON (ids in hex)
instead of protobuf. Prints one JSON line {"ok", "status"} (status: the gRPC code name or the
HTTP status) and exits 1 when the export was refused.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

TRACE_ID = bytes(range(1, 17))
SPAN_ID = bytes(range(0x11, 0x19))
LINK_TRACE, LINK_SPAN = b"\xaa" * 16, b"\xbb" * 8
START_NS = 1_700_000_000_000_000_000
END_NS = START_NS + 1_500_000


def protobuf_request():
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1 import trace_pb2

    req = ts.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="otlp-selftest")))
    ss = rs.scope_spans.add()
    ss.scope.name = "otlp_send"
    span = ss.spans.add(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        name="selftest",
        kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=START_NS,
        end_time_unix_nano=END_NS,
        flags=1,
    )
    span.status.code = trace_pb2.Status.STATUS_CODE_OK
    span.attributes.extend([
        KeyValue(key="mcp.method.name", value=AnyValue(string_value="tools/call")),
        KeyValue(key="http.response.status_code", value=AnyValue(int_value=200)),
        KeyValue(key="sample.ratio", value=AnyValue(double_value=0.5)),
        KeyValue(key="cache.hit", value=AnyValue(bool_value=True)),
    ])
    span.links.add(trace_id=LINK_TRACE, span_id=LINK_SPAN)
    return req


def json_request():
    """The same span written by hand as OTLP/JSON (the spec's encoding, not protobuf's JSON mapping)."""
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otlp-selftest"}}]},
        "scopeSpans": [{"scope": {"name": "otlp_send"}, "spans": [{
            "traceId": TRACE_ID.hex(), "spanId": SPAN_ID.hex(), "name": "selftest", "kind": 2,
            "startTimeUnixNano": str(START_NS), "endTimeUnixNano": str(END_NS), "flags": 1,
            "status": {"code": 1},
            "attributes": [
                {"key": "mcp.method.name", "value": {"stringValue": "tools/call"}},
                {"key": "http.response.status_code", "value": {"intValue": "200"}},
                {"key": "sample.ratio", "value": {"doubleValue": 0.5}},
                {"key": "cache.hit", "value": {"boolValue": True}},
            ],
            "links": [{"traceId": LINK_TRACE.hex(), "spanId": LINK_SPAN.hex()}],
        }]}],
    }]}


def send_grpc(port):
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as ts_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            ts_grpc.TraceServiceStub(channel).Export(protobuf_request(), timeout=20)
            return True, "OK"
        except grpc.RpcError as e:
            return False, e.code().name


def send_http(port, as_json):
    if as_json:
        body, ctype = json.dumps(json_request()).encode(), "application/json"
    else:
        body, ctype = protobuf_request().SerializeToString(), "application/x-protobuf"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/traces", body, {"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            answer = resp.read()
            if not as_json:  # the answer must be an ExportTraceServiceResponse
                from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts

                ts.ExportTraceServiceResponse().ParseFromString(answer)
            return True, resp.status
    except urllib.error.HTTPError as e:
        return False, e.code


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    to = ap.add_mutually_exclusive_group(required=True)
    to.add_argument("--grpc", type=int, metavar="PORT")
    to.add_argument("--http", type=int, metavar="PORT")
    ap.add_argument("--json", action="store_true", help="with --http: OTLP/JSON instead of protobuf")
    args = ap.parse_args()
    ok, status = send_grpc(args.grpc) if args.grpc else send_http(args.http, args.json)
    print(json.dumps({"ok": ok, "status": status}), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
