-- wrk script: GET /health on erlmcp's main port (liveness of the HTTP sniffing path).
--
--   wrk -t2 -c64 -d10s -s bench/wrk/health.lua http://127.0.0.1:8080
--
-- Counts non-2xx replies so a failing health check cannot pass as throughput.
wrk.method = "GET"
wrk.path   = "/health"
wrk.headers["Accept"] = "application/json"

local bad = 0

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx (last thread): %d\n", bad))
  io.write(string.format("p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
