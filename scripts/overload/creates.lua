-- wrk script: POST revenue creates to one property and count what came back.
-- Environment: HMP_TOKEN (a bearer token), HMP_PROPERTY (a property id).
-- done() prints one JSON line: ok (201), shed (503), shedNoRetryAfter (503
-- without Retry-After), other (any other status), errors (socket errors).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, shed, noretry, other = 0, 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("HMP_TOKEN")
  wrk.body = string.format(
    '{"propertyId":"%s","source":"room","amountCents":1250,"paymentMode":"cash","occurredAt":"%s"}',
    os.getenv("HMP_PROPERTY"), os.date("!%Y-%m-%dT%H:%M:%SZ"))
end

function response(status, headers, body)
  if status == 201 then
    ok = ok + 1
  elseif status == 503 then
    shed = shed + 1
    if headers["Retry-After"] == nil then noretry = noretry + 1 end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local o, s, n, x = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); s = s + t:get("shed")
    n = n + t:get("noretry"); x = x + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    '{"ok":%d,"shed":%d,"shedNoRetryAfter":%d,"other":%d,"errors":%d,"seconds":%.3f,"okPerSecond":%.1f,"p50Ms":%.2f,"p99Ms":%.2f,"maxMs":%.2f}\n',
    o, s, n, x, e.connect + e.read + e.write + e.timeout,
    summary.duration / 1e6, o / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
