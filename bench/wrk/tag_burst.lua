-- wrk script: one long burst of manifest PUTs into one repository, a new tag per request.
-- wrk -t1 -cN -dS -s tag_burst.lua URL -- REPO MANIFEST_FILE LIMIT SEGMENT STOP_FILE
-- Tags are b-<n>. Every SEGMENT responses the time since the first request is kept, so the
-- harness sees the rate at each size of the repository (the cost of a push may grow with its
-- tag count). At LIMIT responses the thread stops and creates STOP_FILE, which tells the
-- harness to interrupt wrk (wrk itself would wait out -d). Every response must be 201.
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
local path, body, headers, limit, segment, stop_file
counter, ok, bad, last_bad, first_us, marks = 0, 0, 0, 0, 0, ""

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[2], "rb"))
   body = file:read("*a")
   file:close()
   path = "/v2/" .. args[1] .. "/manifests/b-"
   limit, segment, stop_file = tonumber(args[3]), tonumber(args[4]), args[5]
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
   local seen = ok + bad
   if seen % segment == 0 then
      marks = marks .. string.format("BENCH mark_%d %d\n", seen, now_us() - first_us)
   end
   if seen == limit then
      io.open(stop_file, "w"):close()
      wrk.thread:stop()
   end
end

function done(_summary, _latency, _requests)
   for _, thread in ipairs(threads) do
      io.write(string.format("BENCH ok %d\nBENCH bad %d\nBENCH last_bad %d\nBENCH sent %d\n",
         thread:get("ok"), thread:get("bad"), thread:get("last_bad"), thread:get("counter")))
      io.write(thread:get("marks"))
   end
end
