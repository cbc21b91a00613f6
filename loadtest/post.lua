-- wrk: POST an MCP tools/call (loadtest/body.json) and print one machine-readable line.
local f = assert(io.open(os.getenv("BODY_FILE") or "loadtest/body.json", "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT rps=%.0f p50_us=%d p99_us=%d errors=%d non2xx=%d\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
