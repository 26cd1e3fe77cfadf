"""make bench's pure parts: reading wrk's and bench/mixed.lua's output, percentiles, memory.

Nothing here runs a command: bench/bench.py runs wrk and reads /proc in the container, and hands
the text to these functions (tests/test_bench_results.py tests them).
"""

import math
import re
import statistics

# wrk's own output.
_DURATION = re.compile(r"([0-9.]+)(us|ms|s|m)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_duration_ms(text):
    """wrk's durations ("812.00us", "5.08ms", "1.20s", "1.00m") in milliseconds."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out):
    """wrk's summary: req/s, requests, its own p50/p99 over all requests (with --latency), errors.

    errors counts non-2xx/3xx answers and socket errors (connect, read, write, timeout).
    """
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    requests = re.search(r"(\d+) requests in ", out)
    if not rps or not requests:
        raise ValueError("no wrk summary in the output:\n" + out[-2000:])
    non2xx = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = _SOCKET_ERRORS.search(out)
    socket = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    result = {
        "rps": float(rps.group(1)),
        "requests": int(requests.group(1)),
        "non2xx": non2xx,
        "socket_errors": socket,
        "errors": non2xx + socket,
    }
    for name, label in (("p50", "50%"), ("p99", "99%")):
        found = re.search(rf"^\s+{label}\s+(\S+)\s*$", out, re.MULTILINE)
        result[name] = parse_duration_ms(found.group(1)) if found else None
    return result


# bench/mixed.lua's report.
CLASSES = ("fast", "slow")


def parse_lua(out):
    """The "bench-lua ..." lines of bench/mixed.lua's done(): counts and histograms per class.

    Returns {"threads", "duration_s", "overlap", "mismatch", "classes": {class: {"count",
    "errors", "hist": {microseconds: answers}}}}.
    """
    report = {"threads": None, "duration_s": None, "overlap": None, "mismatch": None}
    classes = {name: {"count": 0, "errors": 0, "hist": {}} for name in CLASSES}
    seen = False
    for line in out.splitlines():
        fields = line.split()
        if not fields or fields[0] != "bench-lua":
            continue
        seen = True
        kind, values = fields[1], fields[2:]
        if kind == "threads":
            report["threads"] = int(values[0])
        elif kind == "duration_us":
            report["duration_s"] = int(values[0]) / 1e6
        elif kind in ("overlap", "mismatch"):
            report[kind] = int(values[0])
        elif kind == "class":
            classes[values[0]]["count"] = int(values[1])
            classes[values[0]]["errors"] = int(values[2])
        elif kind == "hist":
            hist = classes[values[0]]["hist"]
            hist[int(values[1])] = hist.get(int(values[1]), 0) + int(values[2])
        else:
            raise ValueError(f"unknown bench-lua line: {line!r}")
    if not seen:
        raise ValueError("no bench-lua report in the output:\n" + out[-2000:])
    for name, data in classes.items():
        if sum(data["hist"].values()) != data["count"]:
            raise ValueError(f"the {name} histogram does not add up to its count")
    report["classes"] = classes
    return report


def merge_hists(*hists):
    merged = {}
    for hist in hists:
        for value, count in hist.items():
            merged[value] = merged.get(value, 0) + count
    return merged


def percentile(hist, q):
    """The q-th percentile (nearest rank) of a histogram {microseconds: count}, in milliseconds;
    None when it is empty."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value / 1000
    raise AssertionError("unreachable")


def co_corrected(hist, expected_us):
    """The histogram with wrk's correction for coordinated omission: each answer that took n >=
    2 x expected_us (the mean time between requests of a connection) stands also for the requests
    its connection would have sent while it waited, at n - expected, n - 2 x expected, ... down to
    above expected. wrk applies this to its own latencies before printing them; the script's
    histogram with it should give wrk's figures (a check), without it the latencies the requests
    had."""
    corrected = dict(hist)
    if expected_us <= 0:
        return corrected
    for value, count in hist.items():
        if value < 2 * expected_us:
            continue
        m = value - expected_us
        while m > expected_us:
            corrected[m] = corrected.get(m, 0) + count
            m -= expected_us
    return corrected


def run_record(out, expect_threads=None):
    """One wrk run with bench/mixed.lua: wrk's summary and the per-class figures.

    The matching of answers to requests holds only with one connection per thread (checked by
    expect_threads) and no overlap beyond the one wrk makes itself (it calls request() once on the
    first thread to check the script) and one per socket error; a marker mismatch means an answer
    was counted in the wrong class. Any of these makes the run's per-class figures unusable.
    """
    wrk = parse_wrk(out)
    lua = parse_lua(out)
    problems = []
    if expect_threads is not None and lua["threads"] != expect_threads:
        problems.append(f"{lua['threads']} threads reported, {expect_threads} expected")
    if lua["overlap"] > 1 + wrk["socket_errors"]:
        problems.append(f"{lua['overlap']} overlapping requests (more than one per thread?)")
    if lua["mismatch"]:
        problems.append(f"{lua['mismatch']} answers of the other class")
    duration = lua["duration_s"] or 1.0
    record = {
        "rps": wrk["rps"],
        "requests": wrk["requests"],
        "wrk_p50": wrk["p50"],
        "wrk_p99": wrk["p99"],
        "problems": problems,
    }
    # wrk counts answers over 399, the script every answer outside 2xx: the larger of the two.
    record["errors"] = wrk["socket_errors"] + max(
        wrk["non2xx"], sum(lua["classes"][name]["errors"] for name in CLASSES)
    )
    for name in CLASSES:
        data = lua["classes"][name]
        record[f"{name}_count"] = data["count"]
        record[f"{name}_rps"] = data["count"] / duration
        record[f"{name}_p50"] = percentile(data["hist"], 50)
        record[f"{name}_p99"] = percentile(data["hist"], 99)
        record[f"{name}_hist"] = data["hist"]
    merged = merge_hists(*(lua["classes"][name]["hist"] for name in CLASSES))
    connections = lua["threads"] or 1
    if wrk["requests"] // connections > 0:
        expected = int(lua["duration_s"] * 1e6) // (wrk["requests"] // connections)
        record["corrected_p99"] = percentile(co_corrected(merged, expected), 99)
    else:
        record["corrected_p99"] = None
    record["all_p50"] = percentile(merge_hists(*(lua["classes"][n]["hist"] for n in CLASSES)), 50)
    record["all_p99"] = percentile(merge_hists(*(lua["classes"][n]["hist"] for n in CLASSES)), 99)
    return record


def median(records, key):
    """The median of a key over runs, leaving out runs where it is None; None when none has it."""
    values = [record[key] for record in records if record.get(key) is not None]
    return statistics.median(values) if values else None


def summarise(records):
    """Runs of one target and workload: medians over the runs, min and max req/s, errors summed."""
    summary = {
        key: median(records, key)
        for key in (
            "rps",
            "fast_rps",
            "slow_rps",
            "fast_p50",
            "fast_p99",
            "slow_p50",
            "slow_p99",
            "wrk_p50",
            "wrk_p99",
            "all_p50",
            "all_p99",
            "corrected_p99",
        )
    }
    summary["best"] = max(records, key=lambda record: record["rps"])
    summary["rps_min"] = min(record["rps"] for record in records)
    summary["rps_max"] = max(record["rps"] for record in records)
    summary["errors"] = sum(record["errors"] for record in records)
    summary["requests"] = sum(record["requests"] for record in records)
    summary["problems"] = [problem for record in records for problem in record["problems"]]
    summary["runs"] = len(records)
    summary["capped"] = any(record.get("capped") for record in records)
    return summary


# Memory, from /proc in the container.


def parse_smaps_rollup(text):
    """/proc/<pid>/smaps_rollup's totals in kB: {"Rss": ..., "Pss": ...}."""
    values = {}
    for line in text.splitlines():
        match = re.match(r"(\w+):\s+(\d+) kB", line)
        if match and match.group(1) in ("Rss", "Pss"):
            values[match.group(1)] = int(match.group(2))
    if set(values) != {"Rss", "Pss"}:
        raise ValueError("no Rss and Pss in smaps_rollup:\n" + text)
    return values


def descendants(parents, roots):
    """The roots and every process below them, from {pid: parent pid}, in sorted order."""
    children = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root for root in roots if root in parents]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return sorted(found)


# Run in the container with python3: each process's parent, name and smaps_rollup, as JSON.
PROC_SNAPSHOT = r"""
import json, os
out = {}
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/stat") as stat:
            head, tail = stat.read().rsplit(")", 1)
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            smaps = rollup.read()
    except OSError:
        continue
    out[pid] = {"ppid": int(tail.split()[1]), "comm": head.split("(", 1)[1], "smaps": smaps}
print(json.dumps(out))
"""


def stack_memory(snapshot, groups):
    """Memory of groups of processes from a PROC_SNAPSHOT: {group: {"processes", "pss_kb",
    "rss_kb"}}, each group the processes below its root pids (e.g. nginx's master, Gunicorn's)."""
    parents = {int(pid): data["ppid"] for pid, data in snapshot.items()}
    result = {}
    for group, roots in groups.items():
        pids = descendants(parents, roots)
        rollups = [parse_smaps_rollup(snapshot[str(pid)]["smaps"]) for pid in pids]
        result[group] = {
            "processes": len(pids),
            "pss_kb": sum(rollup["Pss"] for rollup in rollups),
            "rss_kb": sum(rollup["Rss"] for rollup in rollups),
        }
    return result


def fmt(value, digits=2, unit=""):
    """A figure for a table: "-" when missing."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b
