"""Unit tests of bench/results.py: wrk's and bench/mixed.lua's output, percentiles, memory."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import results

WRK_OUT = """\
Running 2s test @ http://127.0.0.1:80
  4 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.42ms   15.65ms  92.28ms   88.30%
    Req/Sec    20.84      5.92    30.00     64.63%
  Latency Distribution
     50%  812.00us
     75%    4.04ms
     90%   45.15ms
     99%    1.20s
  171 requests in 2.10s, 21.81KB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:     81.39
Transfer/sec:     10.38KB
"""

LUA_OUT = """\
bench-lua threads 4
bench-lua duration_us 2000000
bench-lua overlap 1
bench-lua mismatch 0
bench-lua class fast 9 1
bench-lua hist fast 1000 5
bench-lua hist fast 2000 3
bench-lua hist fast 30000 1
bench-lua class slow 2 0
bench-lua hist slow 50010 1
bench-lua hist slow 51000 1
"""


def test_durations_in_milliseconds():
    assert results.parse_duration_ms("812.00us") == pytest.approx(0.812)
    assert results.parse_duration_ms("5.08ms") == pytest.approx(5.08)
    assert results.parse_duration_ms("1.20s") == pytest.approx(1200)
    assert results.parse_duration_ms("1.00m") == pytest.approx(60000)
    with pytest.raises(ValueError):
        results.parse_duration_ms("5 ms")


def test_wrk_summary():
    wrk = results.parse_wrk(WRK_OUT)
    assert wrk["rps"] == pytest.approx(81.39)
    assert wrk["requests"] == 171
    assert wrk["p50"] == pytest.approx(0.812)
    assert wrk["p99"] == pytest.approx(1200)
    assert (wrk["non2xx"], wrk["socket_errors"], wrk["errors"]) == (4, 3, 7)


def test_wrk_without_errors_or_latency_lines():
    out = "  10 requests in 1.00s, 1KB read\nRequests/sec:     10.00\n"
    wrk = results.parse_wrk(out)
    assert (wrk["errors"], wrk["p50"], wrk["p99"]) == (0, None, None)


def test_wrk_without_a_summary_is_refused():
    with pytest.raises(ValueError, match="no wrk summary"):
        results.parse_wrk("unable to connect to 127.0.0.1:80 Connection refused\n")


def test_lua_report():
    lua = results.parse_lua(WRK_OUT + LUA_OUT)
    assert lua["threads"] == 4
    assert lua["duration_s"] == pytest.approx(2.0)
    assert (lua["overlap"], lua["mismatch"]) == (1, 0)
    assert lua["classes"]["fast"] == {
        "count": 9,
        "errors": 1,
        "hist": {1000: 5, 2000: 3, 30000: 1},
    }
    assert lua["classes"]["slow"]["hist"] == {50010: 1, 51000: 1}


def test_lua_report_must_add_up_and_be_there():
    with pytest.raises(ValueError, match="does not add up"):
        results.parse_lua(LUA_OUT.replace("class fast 9 1", "class fast 10 1"))
    with pytest.raises(ValueError, match="no bench-lua report"):
        results.parse_lua(WRK_OUT)
    with pytest.raises(ValueError, match="unknown"):
        results.parse_lua("bench-lua surprise 1\n")


def test_percentiles_by_nearest_rank():
    hist = {1000: 5, 2000: 3, 30000: 1, 40000: 1}
    assert results.percentile(hist, 50) == 1.0
    assert results.percentile(hist, 60) == 2.0
    assert results.percentile(hist, 80) == 2.0
    assert results.percentile(hist, 90) == 30.0
    assert results.percentile(hist, 99) == 40.0
    assert results.percentile(hist, 100) == 40.0
    assert results.percentile({}, 99) is None
    # 1,000 values 1..1000 us: p99 is the 990th.
    assert results.percentile({us: 1 for us in range(1, 1001)}, 99) == pytest.approx(0.99)


def test_merge_hists():
    assert results.merge_hists({1: 2, 3: 1}, {3: 4}, {}) == {1: 2, 3: 5}


def test_run_record_per_class():
    record = results.run_record(WRK_OUT + LUA_OUT, expect_threads=4)
    assert record["problems"] == []
    assert record["fast_count"] == 9 and record["slow_count"] == 2
    assert record["fast_rps"] == pytest.approx(4.5)
    assert record["fast_p50"] == 1.0
    assert record["fast_p99"] == 30.0
    assert record["slow_p50"] == pytest.approx(50.01)
    assert record["all_p99"] == 51.0
    assert record["wrk_p99"] == pytest.approx(1200)
    # Socket errors and the larger count of non-2xx answers (wrk's 4, the script's 1).
    assert record["errors"] == 3 + 4


def test_run_record_problems():
    out = WRK_OUT.replace("read 1, write 0, timeout 2", "read 0, write 0, timeout 0")
    overlapping = out + LUA_OUT.replace("overlap 1", "overlap 2")
    assert "overlapping" in results.run_record(overlapping)["problems"][0]
    # One overlap per socket error is a reconnect's, not a mix-up.
    assert results.run_record(WRK_OUT + LUA_OUT.replace("overlap 1", "overlap 4"))["problems"] == []
    mismatched = WRK_OUT + LUA_OUT.replace("mismatch 0", "mismatch 3")
    assert "other class" in results.run_record(mismatched)["problems"][0]
    assert "threads" in results.run_record(WRK_OUT + LUA_OUT, expect_threads=32)["problems"][0]


def record(rps, fast_p99, errors=0):
    return {
        "rps": rps,
        "fast_rps": rps,
        "slow_rps": None,
        "fast_p50": 1.0,
        "fast_p99": fast_p99,
        "slow_p50": None,
        "slow_p99": None,
        "wrk_p50": None,
        "wrk_p99": None,
        "all_p50": None,
        "all_p99": None,
        "errors": errors,
        "requests": int(rps),
        "problems": [],
    }


def test_summarise_takes_medians_over_runs():
    summary = results.summarise([record(100, 9), record(300, 3, errors=1), record(200, 5)])
    assert summary["rps"] == 200
    assert summary["fast_p99"] == 5
    assert (summary["rps_min"], summary["rps_max"]) == (100, 300)
    assert summary["best"]["rps"] == 300
    assert summary["errors"] == 1
    assert summary["requests"] == 600
    assert summary["slow_p99"] is None
    assert summary["runs"] == 3


SMAPS = """\
55d0a1e00000-7ffd5b1f4000 ---p 00000000 00:00 0                          [rollup]
Rss:               {rss} kB
Pss:               {pss} kB
Pss_Anon:           1000 kB
Shared_Clean:       2000 kB
"""


def test_smaps_rollup():
    assert results.parse_smaps_rollup(SMAPS.format(rss=30000, pss=12000)) == {
        "Rss": 30000,
        "Pss": 12000,
    }
    with pytest.raises(ValueError):
        results.parse_smaps_rollup("Rss: 1 kB\n")


def test_descendants_of_the_roots():
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 21: 20}
    assert results.descendants(parents, [10]) == [10, 11, 12, 13]
    assert results.descendants(parents, [20, 12]) == [12, 13, 20, 21]
    assert results.descendants(parents, [99]) == []


def test_stack_memory_sums_each_group():
    snapshot = {
        "1": {"ppid": 0, "comm": "systemd", "smaps": SMAPS.format(rss=9000, pss=9000)},
        "10": {"ppid": 1, "comm": "nginx", "smaps": SMAPS.format(rss=4000, pss=1000)},
        "11": {"ppid": 10, "comm": "nginx", "smaps": SMAPS.format(rss=4000, pss=1500)},
        "20": {"ppid": 1, "comm": "gunicorn", "smaps": SMAPS.format(rss=30000, pss=10000)},
        "21": {"ppid": 20, "comm": "gunicorn", "smaps": SMAPS.format(rss=35000, pss=20000)},
        "22": {"ppid": 20, "comm": "gunicorn", "smaps": SMAPS.format(rss=35000, pss=20000)},
    }
    memory = results.stack_memory(snapshot, {"nginx": [10], "role": [20]})
    assert memory["nginx"] == {"processes": 2, "pss_kb": 2500, "rss_kb": 8000}
    assert memory["role"] == {"processes": 3, "pss_kb": 50000, "rss_kb": 100000}


def test_the_snapshot_script_compiles():
    compile(results.PROC_SNAPSHOT, "snapshot", "exec")


def test_fmt_and_ratio():
    assert results.fmt(None) == "-"
    assert results.fmt(1.234, 1, "x") == "1.2x"
    assert results.ratio(3, 2) == 1.5
    assert results.ratio(None, 2) is None
    assert results.ratio(1, 0) is None


def test_wrks_correction_for_coordinated_omission():
    # Expected interval 10 ms: a 45 ms answer also stands for 35, 25 and 15 ms ones.
    hist = {5000: 10, 45000: 1}
    assert results.co_corrected(hist, 10000) == {5000: 10, 45000: 1, 35000: 1, 25000: 1, 15000: 1}
    # Below twice the interval nothing is added; the original is left alone.
    assert results.co_corrected({15000: 2}, 10000) == {15000: 2}
    assert hist == {5000: 10, 45000: 1}
    assert results.co_corrected(hist, 0) == hist


def test_run_record_applies_wrks_correction_for_its_p99():
    # 11 answers on 4 connections in 2 s: 2 per connection, an expected interval of 1 s; none
    # took 2 s, so the corrected p99 is the plain one.
    record = results.run_record(WRK_OUT.replace("171 requests", "11 requests") + LUA_OUT)
    assert record["corrected_p99"] == record["all_p99"]
    slow = LUA_OUT.replace("hist slow 51000 1", "hist slow 2500000 1")
    record = results.run_record(WRK_OUT.replace("171 requests", "11 requests") + slow)
    assert record["corrected_p99"] == 2500.0
    assert record["all_p99"] == 2500.0
