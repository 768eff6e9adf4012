-- wrk script: PUT one OCI image manifest under a new tag per request.
-- wrk -t1 -cN -dS -s manifest_put.lua URL -- REPO MANIFEST_FILE [PREFIX]
-- Tags are <PREFIX><thread>-<n>, PREFIX "t" by default (another prefix per run adds new tags to
-- a repository); every response must be 201, counted in ok/bad and printed by done().
local threads = {}
local path, body, headers
local counter = 0
ok, bad, last_bad = 0, 0, 0

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[2], "rb"))
   body = file:read("*a")
   file:close()
   path = "/v2/" .. args[1] .. "/manifests/" .. (args[3] or "t") .. id .. "-"
   headers = {["Content-Type"] = "application/vnd.oci.image.manifest.v1+json"}
end

function request()
   counter = counter + 1
   return wrk.format("PUT", path .. counter, headers, body)
end

function response(status, _headers, _body)
   if status == 201 then
      ok = ok + 1
   else
      bad, last_bad = bad + 1, status
   end
end

function done(_summary, _latency, _requests)
   for _, thread in ipairs(threads) do
      io.write(string.format("BENCH ok %d\nBENCH bad %d\nBENCH last_bad %d\n",
         thread:get("ok"), thread:get("bad"), thread:get("last_bad")))
   end
end
