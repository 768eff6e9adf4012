-- wrk script: push distinct small blobs, each a POST /v2/<repo>/blobs/uploads/ (202, Location)
-- then a PUT <location>?digest=<d> with the whole body (201).
-- wrk -t1 -cN -dS -s small_blobs.lua URL -- REPO DIGESTS_FILE FILLER_FILE
-- Blob i (1-based) is string.format("%08d", i) .. filler; DIGESTS_FILE has its sha256 digest on
-- line i (written by the harness, which hashes the same bytes). Upload locations from 202s are
-- queued and the next request takes one, so a PUT may go over another connection than its POST
-- (both servers keep upload state in storage, not in the connection). One thread only: blob
-- numbers are per Lua state.
local threads = {}
local digests, filler, repo = {}, nil, nil
local queue, head, tail = {}, 1, 0
local blob = 0
local post_headers = {}
local put_headers = {["Content-Type"] = "application/octet-stream"}
pushed, posted, bad, last_bad, exhausted = 0, 0, 0, 0, 0

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   repo = args[1]
   for line in io.lines(args[2]) do
      digests[#digests + 1] = line
   end
   local file = assert(io.open(args[3], "rb"))
   filler = file:read("*a")
   file:close()
end

function request()
   if head <= tail and blob < #digests then
      local location = queue[head]
      queue[head] = nil
      head = head + 1
      blob = blob + 1
      local sep = location:find("?", 1, true) and "&" or "?"
      local body = string.format("%08d", blob) .. filler
      return wrk.format("PUT", location .. sep .. "digest=" .. digests[blob], put_headers, body)
   end
   if blob >= #digests then
      exhausted = 1  -- never reuse a blob: a repeat push takes a cheaper path
   end
   return wrk.format("POST", "/v2/" .. repo .. "/blobs/uploads/", post_headers, "")
end

function response(status, headers, _body)
   if status == 202 then
      local location = headers["Location"] or headers["location"]
      posted = posted + 1
      tail = tail + 1
      queue[tail] = (location:gsub("^https?://[^/]+", ""))
   elseif status == 201 then
      pushed = pushed + 1
   else
      bad, last_bad = bad + 1, status
   end
end

function done(_summary, _latency, _requests)
   for _, thread in ipairs(threads) do
      io.write(string.format(
         "BENCH ok %d\nBENCH posted %d\nBENCH bad %d\nBENCH last_bad %d\nBENCH exhausted %d\n",
         thread:get("pushed"), thread:get("posted"), thread:get("bad"), thread:get("last_bad"),
         thread:get("exhausted")))
   end
end
