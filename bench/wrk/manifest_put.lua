-- wrk script: PUT one OCI image manifest under a new tag per request.
-- wrk -t1 -cN -dS -s manifest_put.lua URL -- REPO MANIFEST_FILE [PREFIX [LIMIT]]
-- Tags are <PREFIX><thread>-<n>, PREFIX "t" by default (another prefix per run adds new tags to
-- a repository); every response must be 201, counted in ok/bad and printed by done().
-- With LIMIT, the thread stops after LIMIT responses and prints BENCH elapsed_us, from its first
-- request to its LIMIT-th response (wrk itself still waits out -d, so its rate is not that).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

local function now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
   return tonumber(timespec.tv_sec) * 1000000 + tonumber(timespec.tv_nsec) / 1000
end

local threads = {}
local path, body, headers
local counter = 0
local limit = nil
ok, bad, last_bad, first_us, elapsed_us = 0, 0, 0, 0, 0

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[2], "rb"))
   body = file:read("*a")
   file:close()
   path = "/v2/" .. args[1] .. "/manifests/" .. (args[3] or "t") .. id .. "-"
   limit = tonumber(args[4])
   headers = {["Content-Type"] = "application/vnd.oci.image.manifest.v1+json"}
end

function request()
   counter = counter + 1
   if counter == 1 then
      first_us = now_us()
   end
   return wrk.format("PUT", path .. counter, headers, body)
end

function response(status, _headers, _body)
   if status == 201 then
      ok = ok + 1
   else
      bad, last_bad = bad + 1, status
   end
   if limit and ok + bad == limit then
      elapsed_us = now_us() - first_us
      wrk.thread:stop()
   end
end

function done(_summary, _latency, _requests)
   for _, thread in ipairs(threads) do
      io.write(string.format("BENCH ok %d\nBENCH bad %d\nBENCH last_bad %d\nBENCH elapsed_us %d\n",
         thread:get("ok"), thread:get("bad"), thread:get("last_bad"), thread:get("elapsed_us")))
   end
end
