-- One mat_prescription per request, each with its own record_id, for patients M0..M{N-1}, whose
-- consents ingest-vs-limits.sh has ingested first (wrk ... -- N). Counts the statuses and prints
-- every status but 202 at the end, so a run that measured refusals shows it.
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end
function init(args)
  patients = tonumber(args[1] or "1000")
  prefix = "t" .. tid .. "-" .. math.random(1, 1e9)
  statuses = {}
end
local body = '{"record_id":"c1:rx:%s","record_type":"mat_prescription","clinic":"c1","program":"otp","recorded_at":"2026-11-20T09:05:00-05:00","patient":{"mrn":"M%d"},"prescription":{"id":"%s","medication":{"rxnorm":"1010604","name":"buprenorphine 8 MG / naloxone 2 MG sublingual film"},"dose":{"value":1,"unit":"film"},"frequency":"daily","route":"sublingual","quantity":14,"days_supply":14,"refills":0,"status":"active","written_on":"2026-11-20","prescriber":{"npi":"1234567893","name":"Dr. Lee"},"diagnosis":{"system":"icd10","code":"F11.20"}}}'
function request()
  counter = counter + 1
  local id = prefix .. "-" .. counter
  return wrk.format("POST", "/v1/records", {["Content-Type"]="application/json", ["Authorization"]="Bearer dev-ingest-c1"},
                    string.format(body, id, (counter * 7919 + tid * 104729) % patients, id))
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s or {}) do
      if code ~= 202 then io.write(string.format("status %d: %d\n", code, n)) end
    end
  end
end
