-- bench/post_png.lua - wrk script: POST one PNG file as the raw body.
--
--   WRK_PNG=build/bench/face48.png wrk -t1 -c16 -d10s -s bench/post_png.lua \
--       http://127.0.0.1:PORT/predict
--
-- The body is read once per wrk thread when the script loads (WRK_PNG, default
-- build/bench/face48.png; any file, e.g. a JPEG, with WRK_CONTENT_TYPE set to
-- its type, default image/png). At the end it prints "key value" lines that
-- bench/service.sh reads: requests/s, latency p50/p90/p99/max in ms, and the
-- error counts (status = answers with an HTTP status above 399).

local path = os.getenv("WRK_PNG") or "build/bench/face48.png"
local f = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE") or "image/png"

function done(summary, latency, requests)
   local s = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format("wrk_duration_s %.3f\n", s))
   io.write(string.format("wrk_requests %d\n", summary.requests))
   io.write(string.format("wrk_req_s %.1f\n", summary.requests / s))
   -- requests answered 2xx/3xx per second: what a client actually got
   io.write(string.format("wrk_ok_req_s %.1f\n", (summary.requests - e.status) / s))
   io.write(string.format("wrk_p50_ms %.3f\n", latency:percentile(50.0) / 1e3))
   io.write(string.format("wrk_p90_ms %.3f\n", latency:percentile(90.0) / 1e3))
   io.write(string.format("wrk_p99_ms %.3f\n", latency:percentile(99.0) / 1e3))
   io.write(string.format("wrk_max_ms %.3f\n", latency.max / 1e3))
   io.write(string.format("wrk_errors_connect %d\n", e.connect))
   io.write(string.format("wrk_errors_read %d\n", e.read))
   io.write(string.format("wrk_errors_write %d\n", e.write))
   io.write(string.format("wrk_errors_status %d\n", e.status))
   io.write(string.format("wrk_errors_timeout %d\n", e.timeout))
end
