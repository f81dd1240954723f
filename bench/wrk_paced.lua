-- Paced callers for wrk: each connection waits a random 0..2x(WRK_PACE_MS) between its
-- requests, so C connections offer about C / (WRK_PACE_MS + latency) requests a second,
-- spread out rather than in lock-step bursts. wrk times each request from send to reply.
local pace = tonumber(os.getenv("WRK_PACE_MS") or "0")

function setup(thread)
  thread:set("seed", math.random(1, 2 ^ 30))
end

function init(args)
  math.randomseed(seed)
end

function delay()
  if pace <= 0 then
    return 0
  end
  return math.random(0, 2 * pace)
end
