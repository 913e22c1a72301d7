-- wrk script for bench/stack.py: replays pre-signed requests from a file at a fixed rate (open loop).
--
-- Usage: wrk -t1 -cC -dDs -s bench/wrk_paced.lua URL -- REQUESTS_FILE RATE
-- REQUESTS_FILE holds, per request, a line with its length in bytes and then the raw HTTP request.
-- Request i is due at start + i/RATE: delay() hands each connection the next slot, so the rate does
-- not depend on the server's latency (wrk alone is closed loop and would push as fast as it can).
-- Python signs the bodies beforehand, because LuaJIT has no HMAC-SHA256.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } tspipe_timespec;
int clock_gettime(int clk_id, tspipe_timespec *tp);
]]
local ts = ffi.new("tspipe_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local file, rate, start, slots = nil, 1000, nil, 0
function init(args)
  file = assert(io.open(args[1], "rb"))
  rate = tonumber(args[2])
end
function delay()
  if start == nil then start = now_ms() end
  local due = start + slots * 1000 / rate
  slots = slots + 1
  local wait = due - now_ms()
  if wait < 0 then return 0 end
  return wait
end
function request()
  local len = file:read("*l")
  if len == nil then error("tspipe: out of requests") end
  return file:read(tonumber(len))
end
function done(summary, latency, requests)
  io.write(string.format("TSPIPE requests=%d status_errors=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d duration_us=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99), summary.duration))
end
