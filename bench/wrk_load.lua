-- One kind of request of bench/bench_load.py's mixed traffic, paced like bench/wrk_paced.lua
-- (each connection waits a random 0..2x WRK_PACE_MS between its requests). Run one wrk per kind
-- (-t1), so wrk's latency histogram is that endpoint's; done() prints one JSON line:
-- LOAD {"kind":..., "requests":..., "p50_us":..., "statuses":{...}, ...}.
--   WRK_KIND     client_list | client_create | client_update | campaign_list | message_list
--                | campaign_stats | token_refresh
--   WRK_CAMPAIGN the dispatching campaign's id (stats, message list)
--   WRK_CLIENTS  client ids 1..WRK_CLIENTS are updated at random
--   WRK_PHONES   the first digits of created clients' phone numbers (11 digits in all)
--   WRK_TOKENS   refresh tokens, comma-separated, one per connection (each refresh answers a
--                new one and blacklists the one used, so a token is in flight at most once)
local kind = os.getenv("WRK_KIND")
local pace = tonumber(os.getenv("WRK_PACE_MS") or "0")
local campaign = os.getenv("WRK_CAMPAIGN") or "1"
local clients = tonumber(os.getenv("WRK_CLIENTS") or "1000")
local phones = os.getenv("WRK_PHONES") or "77"
local threads = {}
-- The fixture's clients (bench/fixtures.py prepare_messages) are tag bench, operator 900, UTC.
local client_filters = {
  "tag=bench&mobile_operator_code=900",
  "tag=bench",
  "timezone=UTC&tag=bench",
  "tag=load",
  "mobile_operator_code=977",
}

function setup(thread)
  thread:set("seed", math.random(1, 2 ^ 30))
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(seed)
  statuses = {}
  created = 0
  pool = {}
  for token in string.gmatch(os.getenv("WRK_TOKENS") or "", "[^,]+") do
    table.insert(pool, token)
  end
  last_token = "pool-empty"
end

function delay()
  if pace <= 0 then
    return 0
  end
  return math.random(0, 2 * pace)
end

-- wrk.format() with a headers table sends only those: the -H ones (the token) are added here.
local json = nil

function json_headers()
  if json == nil then
    json = { ["Content-Type"] = "application/json" }
    for name, value in pairs(wrk.headers) do
      json[name] = value
    end
  end
  return json
end

function request()
  if kind == "client_list" then
    return wrk.format("GET", "/api/clients/?" .. client_filters[math.random(1, #client_filters)])
  elseif kind == "campaign_list" then
    return wrk.format("GET", "/api/campaigns/?status=running")
  elseif kind == "message_list" then
    local status = ({ "sent", "pending", "sending" })[math.random(1, 3)]
    return wrk.format("GET", "/api/messages/?campaign=" .. campaign .. "&status=" .. status)
  elseif kind == "campaign_stats" then
    return wrk.format("GET", "/api/campaigns/" .. campaign .. "/stats/")
  elseif kind == "client_create" then
    created = created + 1
    local digits = 11 - #phones
    local phone = phones .. string.format("%0" .. digits .. "d", created)
    local body = '{"phone_number":"' .. phone .. '","mobile_operator_code":"977",'
      .. '"tag":"load","timezone":"Europe/Moscow"}'
    return wrk.format("POST", "/api/clients/", json_headers(), body)
  elseif kind == "client_update" then
    local id = math.random(1, clients)
    local body = '{"tag":"t' .. math.random(1, 50) .. '"}'
    return wrk.format("PATCH", "/api/clients/" .. id .. "/", json_headers(), body)
  elseif kind == "token_refresh" then
    local token = table.remove(pool, 1) or last_token
    return wrk.format("POST", "/api/token/refresh/", json_headers(), '{"refresh":"' .. token .. '"}')
  end
  error("unknown WRK_KIND " .. tostring(kind))
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if kind == "token_refresh" then
    local token = string.match(body, '"refresh"%s*:%s*"([^"]+)"')
    if token then
      table.insert(pool, token)
    end
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      table.insert(counts, string.format('"%d":%d', status, count))
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'LOAD {"kind":"%s","requests":%d,"seconds":%.3f,"p50_us":%d,"p95_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"statuses":{%s}}\n',
    kind, summary.requests, summary.duration / 1e6, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.max, errors.connect, errors.read,
    errors.write, errors.timeout, table.concat(counts, ",")
  ))
end
