-- wrk script for the small-file benchmarks.
--   WRK_METHOD=GET (default): GET the URL given on the command line.
--   WRK_METHOD=PUT: PUT a body of WRK_BODY_BYTES bytes to WRK_PATH_PREFIX .. "<thread>-<n>",
--     n cycling over WRK_NAMES names, so most uploads replace a file (as a busy store does).
--   WRK_AUTHORIZATION: sent as the Authorization header of every request.
-- done() prints one line "WRK_JSON {...}" with the counts and latency percentiles (microseconds).

local method = os.getenv("WRK_METHOD") or "GET"
local authorization = os.getenv("WRK_AUTHORIZATION")
if authorization then wrk.headers["Authorization"] = authorization end

if method == "PUT" then
  local prefix = os.getenv("WRK_PATH_PREFIX") or "/put-"
  local names = tonumber(os.getenv("WRK_NAMES") or "1024")
  local size = tonumber(os.getenv("WRK_BODY_BYTES") or "4096")
  local chars = {}
  for i = 1, size do chars[i] = string.char(math.random(0, 255)) end
  local body = table.concat(chars)
  local headers = { ["Content-Type"] = "application/octet-stream", ["Authorization"] = authorization }
  local threads = 0

  function setup(thread)
    thread:set("thread_id", threads)
    threads = threads + 1
  end

  local counter = 0
  function request()
    counter = counter + 1
    local path = prefix .. thread_id .. "-" .. (counter % names)
    return wrk.format("PUT", path, headers, body)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
