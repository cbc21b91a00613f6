"""An OpenTelemetry trace receiver for the integration tests (stands in for otelcol).

It serves OTLP on 127.0.0.1, on two free ports:
  - gRPC: opentelemetry.proto.collector.trace.v1.TraceService/Export (grpcio)
  - HTTP: POST /v1/traces, Content-Type application/x-protobuf or application/json (OTLP/JSON:
    trace and span ids in hex), optionally Content-Encoding: gzip; other types get 415.
On start it prints one line to stdout, {"grpc": PORT, "http": PORT}. For every span it receives
it appends one JSON line to --out (flushed), so a test can assert what an exporter sent:
  {"protocol", "resource", "scope", "trace_id", "span_id", "parent_span_id", "name", "kind",
   "start_ns", "end_ns", "status": {"code", "message"}, "attributes", "links", "flags"}
--fail-first N answers the first N exports (both protocols together) with gRPC UNAVAILABLE or
HTTP 503 and records none of their spans; --delay S sleeps before answering every export.
It exits when stdin closes (its parent died) or on SIGTERM/SIGINT.
"""

import argparse
import base64
import gzip
import json
import os
import signal
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as ts_grpc
from opentelemetry.proto.trace.v1 import trace_pb2


def value(v):
    """An AnyValue as plain JSON (bytes as hex)."""
    which = v.WhichOneof("value")
    if which == "array_value":
        return [value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which) if which else None


def attributes(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


def enum_name(enum, number, prefix):
    try:
        return enum.Name(number).removeprefix(prefix)
    except ValueError:
        return str(number)


def span_lines(protocol, request):
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                yield {
                    "protocol": protocol,
                    "resource": resource,
                    "scope": ss.scope.name,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "name": s.name,
                    "kind": enum_name(trace_pb2.Span.SpanKind, s.kind, "SPAN_KIND_"),
                    "start_ns": s.start_time_unix_nano,
                    "end_ns": s.end_time_unix_nano,
                    "status": {
                        "code": enum_name(trace_pb2.Status.StatusCode, s.status.code, "STATUS_CODE_"),
                        "message": s.status.message,
                    },
                    "attributes": attributes(s.attributes),
                    "links": [{"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex()} for l in s.links],
                    "flags": s.flags,
                }


class Receiver:
    def __init__(self, out, fail_first, delay):
        # --out /dev/null (load tests): take exports without decoding them into lines.
        self.out = None if out == "/dev/null" else open(out, "a", encoding="utf-8")
        self.fail_left = fail_first
        self.delay = delay
        self.lock = threading.Lock()

    def accept(self, protocol, request):
        """Sleeps --delay, then records the request's spans; False when this export must fail."""
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            if self.fail_left > 0:
                self.fail_left -= 1
                print(f"otlp_receiver: failing a {protocol} export (--fail-first)", file=sys.stderr, flush=True)
                return False
            if self.out is None:
                return True
            for line in span_lines(protocol, request):
                self.out.write(json.dumps(line) + "\n")
            self.out.flush()
            return True


class TraceService(ts_grpc.TraceServiceServicer):
    def __init__(self, receiver):
        self.receiver = receiver

    def Export(self, request, context):
        if not self.receiver.accept("grpc", request):
            context.abort(grpc.StatusCode.UNAVAILABLE, "failing on purpose (--fail-first)")
        return ts.ExportTraceServiceResponse()


def hex_ids_to_base64(node):
    """OTLP/JSON writes trace and span ids in hex; protobuf's JSON mapping expects base64."""
    if isinstance(node, list):
        for item in node:
            hex_ids_to_base64(item)
    elif isinstance(node, dict):
        for key, v in node.items():
            if key in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id") and isinstance(v, str):
                node[key] = base64.b64encode(bytes.fromhex(v)).decode()
            else:
                hex_ids_to_base64(v)


def http_handler(receiver):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as exporters expect

        def log_message(self, *args):
            pass

        def reply(self, status, ctype, body):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                data = b""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    data += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
            else:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                data = gzip.decompress(data)
            return data

        def do_POST(self):
            data = self.body()
            if self.path.split("?")[0] != "/v1/traces":
                return self.reply(404, "text/plain", b"not found\n")
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            request = ts.ExportTraceServiceRequest()
            try:
                if ctype == "application/x-protobuf":
                    request.ParseFromString(data)
                elif ctype == "application/json":
                    doc = json.loads(data)
                    hex_ids_to_base64(doc)
                    json_format.ParseDict(doc, request, ignore_unknown_fields=True)
                else:
                    return self.reply(415, "text/plain", b"application/x-protobuf or application/json\n")
            except Exception as e:  # a malformed body: 400, as the OTLP spec says
                return self.reply(400, "text/plain", f"bad body: {e}\n".encode())
            if not receiver.accept("http", request):
                return self.reply(503, "text/plain", b"failing on purpose (--fail-first)\n")
            if ctype == "application/json":
                return self.reply(200, "application/json", b"{}")
            return self.reply(200, "application/x-protobuf", ts.ExportTraceServiceResponse().SerializeToString())

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="append one JSON line per received span")
    ap.add_argument("--fail-first", type=int, default=0, metavar="N", help="fail the first N exports")
    ap.add_argument("--delay", type=float, default=0.0, metavar="SECONDS", help="sleep before each answer")
    args = ap.parse_args()
    receiver = Receiver(args.out, args.fail_first, args.delay)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    ts_grpc.add_TraceServiceServicer_to_server(TraceService(receiver), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), http_handler(receiver))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.buffer.read(), stop.set()), daemon=True).start()

    print(json.dumps({"grpc": grpc_port, "http": httpd.server_address[1]}), flush=True)
    while not stop.wait(0.2):
        pass
    server.stop(None)
    os._exit(0)  # handler threads may be sleeping in --delay: do not wait for them


if __name__ == "__main__":
    main()
