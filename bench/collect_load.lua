-- wrk script for bench/collect_load.py: each wrk thread holds one connection and is one rater,
-- looping "next task -> submit" with its own API token (line N of the tokens file for thread N).
-- Usage: wrk -tN -cN -dSECONDS -s collect_load.lua URL -- TOKENS_FILE CAMPAIGN
local threads = {}
local made = 0

function setup(thread)
  made = made + 1
  thread:set("rater", made)
  table.insert(threads, thread)
end

function init(args)
  local tokens = {}
  for line in io.lines(args[1]) do table.insert(tokens, line) end
  campaign = args[2]
  acknowledged, refused, submitting, leased = 0, 0, 0, nil
  wrk.headers["Authorization"] = "Bearer " .. tokens[rater]
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  if leased then
    submitting = 1  -- still 1 if the time limit cuts this request off: the server may store what it never acknowledged
    local body = '{"assignment_id": ' .. leased .. ', "choice": "A slightly better"}'
    return wrk.format("POST", "/api/campaigns/" .. campaign .. "/judgments", nil, body)
  end
  return wrk.format("GET", "/api/campaigns/" .. campaign .. "/next")
end

function response(status, headers, body)
  if leased then
    if status == 201 then acknowledged = acknowledged + 1 else refused = refused + 1 end
    leased, submitting = nil, 0
  else
    leased = body:match('"assignment_id"%s*:%s*(%d+)')
    if not leased then wrk.thread:stop() end  -- null: nothing left for this rater
  end
end

function done(summary, latency, requests)
  local totals = {acknowledged = 0, refused = 0, in_flight = 0}
  for _, thread in ipairs(threads) do
    totals.acknowledged = totals.acknowledged + thread:get("acknowledged")
    totals.refused = totals.refused + thread:get("refused")
    totals.in_flight = totals.in_flight + thread:get("submitting")
  end
  local errors = summary.errors
  io.write(string.format(
    '{"acknowledged": %d, "refused": %d, "in_flight": %d, "requests": %d, "seconds": %.3f, ' ..
    '"p50_ms": %.2f, "p99_ms": %.2f, "socket_errors": %d}\n',
    totals.acknowledged, totals.refused, totals.in_flight, summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors.connect + errors.read + errors.write + errors.timeout))
end
