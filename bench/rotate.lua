-- wrk script: rotate over a file of requests so caches see realistic keys, report as JSON.
--
--   wrk -t2 -c64 -d10s -s bench/rotate.lua http://127.0.0.1:PORT -- requests.tsv
--
-- One request per line: METHOD <tab> PATH <tab> HEADERS <tab> BODY, HEADERS being
-- "Name: value" pairs joined by "|" (or empty). Thread k starts at line k*n/threads, so the
-- threads walk disjoint stretches of the file (a "cold" run over n distinct ids sees each id
-- once until the requests outnumber the lines; the harness reports that count).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests = {}
line_count = 0  -- global: done() reads it with thread:get
local position = 0

function init(args)
  local path = args[1]
  for line in io.lines(path) do
    local method, target, header_text, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if method then
      local headers = {}
      for pair in header_text:gmatch("[^|]+") do
        local name, value = pair:match("^([^:]+):%s*(.*)$")
        headers[name] = value
      end
      if body == "" then
        body = nil
      elseif headers["Content-Type"] == nil then
        headers["Content-Type"] = "application/json"
      end
      requests[#requests + 1] = wrk.format(method, target, headers, body)
    end
  end
  line_count = #requests
  local thread_count = tonumber(args[2] or "1")
  position = math.floor(thread_id * line_count / thread_count)
end

function request()
  position = position % line_count + 1
  return requests[position]
end

function done(summary, latency, _requests)
  local errors = summary.errors
  local lines = threads[1] and threads[1]:get("line_count") or 0
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, '
      .. '"lines": %d}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, lines))
end
