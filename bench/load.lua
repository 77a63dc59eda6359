-- wrk script of bench/load.sh: cycles through the signed calls of the file
-- named by WRK_REQUESTS, each thread from its own offset, and counts answers
-- whose RetCode is not 0.
-- Two flat arrays (no table per call): few objects for Lua's collector,
-- whose pauses would otherwise show up as latency.
local texts, is_body = {}, {}
for line in io.lines(os.getenv("WRK_REQUESTS")) do
  local kind, text = line:match("^(%a+) (.*)$")
  texts[#texts + 1] = text
  is_body[#is_body + 1] = kind == "body"
end
local threads = {}
local index = 0
bad = 0

function setup(thread)
  thread:set("offset", #threads * math.floor(#texts / 2))
  table.insert(threads, thread)
end

function init(args)
  index = offset or 0
end

function request()
  index = index + 1
  local i = (index % #texts) + 1
  if is_body[i] then
    return wrk.format("POST", "/", { ["Content-Type"] = "application/x-www-form-urlencoded" }, texts[i])
  end
  return wrk.format("GET", texts[i])
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"RetCode":0', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("bad")
  end
  io.write(string.format("RESULT requests=%d seconds=%.2f rps=%.0f p50_ms=%.2f p99_ms=%.2f retcode_not_0=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, failed))
end
