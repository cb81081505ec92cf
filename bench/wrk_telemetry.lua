-- wrk script for the HTTP single case: POST /api/v1/devices/telemetry, every request with the next
-- device's own key, and a fixed number of answers per thread instead of wrk's fixed duration.
--
--   wrk -t2 -c64 --latency --timeout 30s -s wrk_telemetry.lua http://host:port \
--       -- <keys file, one key a line> <answers per thread> <threads> <marker path prefix>
--
-- The body is seed 002's own example: three values in `data`, and `metadata` and `type` beside them.
-- With WRK_PAUSE_MS set in the environment, each connection waits that long after an answer before its
-- next request (wrk's delay(), defined only then: wrk looks for it when it loads the script, and a delay of
-- 0 would still cost a timer per request): a paced load below saturation, whose latency wrk measures from
-- each request's sending.
-- wrk itself only knows durations: each thread stops once it has its share of answers and creates the
-- file "<marker prefix><thread number>"; the harness waits for every marker and then sends wrk SIGINT,
-- which ends wrk's sleep at once and makes it report. done() prints one JSON line for the harness.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  quota = tonumber(args[2])
  stride = tonumber(args[3])
  marker = args[4]
  local body = '{"data":{"temperature":22.5,"humidity":65,"pressure":1013.25},' ..
    '"metadata":{"battery_level":85,"signal_strength":-45},"type":"sensor"}'
  -- Every request is formatted once here; request() only picks the next one.
  prepared = {}
  for key in io.lines(args[1]) do
    prepared[#prepared + 1] = wrk.format("POST", "/api/v1/devices/telemetry",
      {["X-API-Key"] = key, ["Content-Type"] = "application/json"}, body)
  end
  -- Threads start at different devices and step by the thread count, so that together they go
  -- round-robin over every device and no two threads send for the same device at the same moment.
  next_index = tid
  answers = 0
  statuses = {}
end

function request()
  local req = prepared[(next_index % #prepared) + 1]
  next_index = next_index + stride
  return req
end

local pause_ms = tonumber(os.getenv("WRK_PAUSE_MS") or "0")
if pause_ms > 0 then
  function delay()
    return pause_ms
  end
end

function response(status, headers, body)
  answers = answers + 1
  statuses[status] = (statuses[status] or 0) + 1
  if answers == quota then
    local f = io.open(marker .. tid, "w")
    f:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[#counts + 1] = string.format('"%d": %d', status, n)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, "statuses": [{%s}]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max, latency.mean,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout, table.concat(counts, "}, {")))
end
