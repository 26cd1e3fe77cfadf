-- make bench's wrk script: a fixed mix of fast and slow requests, the latency of each class kept
-- apart, and a bound on the requests a run sends.
--
--   wrk --threads N --connections N --duration 8s --latency -s mixed.lua http://127.0.0.1:80 \
--       -- FAST_PATH SLOW_PATH SLOW_EVERY MAX_REQUESTS [FAST_MARKER] [SLOW_MARKER]
--
-- SLOW_EVERY: every SLOW_EVERY-th request of a connection goes to SLOW_PATH (10: 10 %, 1: all of
-- them, 0: none). MAX_REQUESTS: the run's bound, split evenly between the threads. The markers, when
-- given, are strings the answer's body must hold: a check that each answer was matched with the
-- request it answers.
--
-- Why the latencies are right: wrk's response() hook is given no latency and does not say which
-- connection answered, so with several connections per thread nobody can tell which request an
-- answer belongs to. Run with exactly one connection per thread (threads = connections), a thread's
-- requests and answers strictly alternate (wrk sends no request on a connection before the previous
-- answer is complete, and this script never pipelines), so the answer in response() is the one to
-- the request request() made last. Each thread reads a monotonic wall clock (clock_gettime through
-- LuaJIT's FFI: os.clock is CPU time, os.time whole seconds) when it hands wrk the request and when
-- the answer is complete, and counts the difference in the class's histogram (10 microsecond
-- buckets). A request answered by an error (wrk reconnects) leaves an unanswered start behind: the
-- next request() counts it as an overlap, which must not exceed wrk's socket errors plus one (wrk
-- calls request() once on the first thread to check the script before it starts). wrk's own
-- latency figures are corrected for coordinated omission; these are not (bench/results.py's
-- co_corrected applies wrk's correction, and then gives wrk's figures).
--
-- done() prints lines "bench-lua ..." that bench/results.py reads: per class the number of answers,
-- the non-2xx ones and the histogram, then the run's overlaps, marker mismatches and duration.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local BUCKET_US = 10
local timespec = ffi.new("bench_timespec")

local function now_us()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
    return tonumber(timespec.tv_sec) * 1000000 + tonumber(timespec.tv_nsec) / 1000
end

-- The controller's side: every thread, to read its counts in done().
local threads = {}
local thread_count = 0

function setup(thread)
    thread_count = thread_count + 1
    thread:set("id", thread_count)
    table.insert(threads, thread)
end

-- A thread's side (each thread has its own Lua state).
local requests = {}
local slow_every, max_requests = 0, 0
local markers = {}
local sent, answered = 0, 0
local pending_class, started = nil, 0
hist_fast, hist_slow = {}, {}
counts = { fast = 0, slow = 0, fast_errors = 0, slow_errors = 0, overlap = 0, mismatch = 0 }

function init(args)
    local fast_path, slow_path = args[1] or "/", args[2] or "/"
    slow_every = tonumber(args[3] or "0")
    local threads_of_run = tonumber(args[7] or "1")
    max_requests = math.ceil(tonumber(args[4] or "1000000") / threads_of_run)
    markers.fast = args[5] ~= "" and args[5] or nil
    markers.slow = args[6] ~= "" and args[6] or nil
    requests.fast = wrk.format("GET", fast_path)
    requests.slow = wrk.format("GET", slow_path)
    -- Each thread starts at another place in the cycle, so that the slow requests of the
    -- connections do not all go at once.
    sent = (id or 1) - 1
end

function request()
    if pending_class ~= nil then
        counts.overlap = counts.overlap + 1
    end
    sent = sent + 1
    if slow_every > 0 and sent % slow_every == 0 then
        pending_class = "slow"
    else
        pending_class = "fast"
    end
    started = now_us()
    return requests[pending_class]
end

function response(status, headers, body)
    local elapsed = now_us() - started
    local class = pending_class
    pending_class = nil
    if class == nil then
        return
    end
    local hist = class == "fast" and hist_fast or hist_slow
    local bucket = math.floor(elapsed / BUCKET_US)
    hist[bucket] = (hist[bucket] or 0) + 1
    counts[class] = counts[class] + 1
    if status < 200 or status > 299 then
        counts[class .. "_errors"] = counts[class .. "_errors"] + 1
    elseif markers[class] and not string.find(body or "", markers[class], 1, true) then
        counts.mismatch = counts.mismatch + 1
    end
    answered = answered + 1
    if answered >= max_requests then
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    local totals = { fast = 0, slow = 0, fast_errors = 0, slow_errors = 0, overlap = 0, mismatch = 0 }
    local merged = { fast = {}, slow = {} }
    for _, thread in ipairs(threads) do
        local thread_counts = thread:get("counts")
        for key, value in pairs(thread_counts) do
            totals[key] = totals[key] + value
        end
        for class, name in pairs({ fast = "hist_fast", slow = "hist_slow" }) do
            for bucket, count in pairs(thread:get(name)) do
                merged[class][bucket] = (merged[class][bucket] or 0) + count
            end
        end
    end
    io.write(string.format("bench-lua threads %d\n", thread_count))
    io.write(string.format("bench-lua duration_us %d\n", summary.duration))
    io.write(string.format("bench-lua overlap %d\n", totals.overlap))
    io.write(string.format("bench-lua mismatch %d\n", totals.mismatch))
    for _, class in ipairs({ "fast", "slow" }) do
        io.write(string.format("bench-lua class %s %d %d\n", class, totals[class], totals[class .. "_errors"]))
        for bucket, count in pairs(merged[class]) do
            io.write(string.format("bench-lua hist %s %d %d\n", class, bucket * BUCKET_US, count))
        end
    end
end
