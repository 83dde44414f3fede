-- wrk script for bench/wrk_demo.sh: POST the `validity` query for $PERMIT with $TOKEN, and count
-- answers that are not a 200 without "errors" (a refused or failed request is not throughput).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.headers["X-Purpose-Of-Use"] = os.getenv("PURPOSE") or "residence-permit-check"
wrk.body = '{"query":"query Validity($n: ID!) { permit(number: $n) { number status validUntil'
  .. ' isValid } }","variables":{"n":"' .. os.getenv("PERMIT") .. '"},"operationName":"Validity"}'

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  bad = 0
end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("bad")
  end
  io.write(string.format("answers with errors or not 200: %d\n", total))
end
