-- One mat_prescription per request, each with its own record_id and patient.
local counter = 0
local thread_id = 0
function setup(thread) thread:set("tid", thread_id); thread_id = thread_id + 1 end
function init(args) prefix = "t" .. tid .. "-" .. math.random(1, 1e9) end
local body = '{"record_id":"c1:rx:%s","record_type":"mat_prescription","clinic":"c1","program":"otp","recorded_at":"2026-11-20T09:05:00-05:00","patient":{"mrn":"M%s"},"prescription":{"id":"%s","medication":{"rxnorm":"1010604","name":"buprenorphine 8 MG / naloxone 2 MG sublingual film"},"dose":{"value":1,"unit":"film"},"frequency":"daily","route":"sublingual","quantity":14,"days_supply":14,"refills":0,"status":"active","written_on":"2026-11-20","prescriber":{"npi":"1234567893","name":"Dr. Lee"},"diagnosis":{"system":"icd10","code":"F11.20"}}}'
function request()
  counter = counter + 1
  local id = prefix .. "-" .. counter
  return wrk.format("POST", "/v1/records", {["Content-Type"]="application/json", ["Authorization"]="Bearer dev-ingest-c1"}, string.format(body, id, id, id))
end
local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
