"""make bench's plan: the options, and a whole run kept under about 25 minutes on 2 CPUs."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench


def test_a_full_run_stays_under_25_minutes():
    args = bench.parse_args([])
    assert (args.runs, args.duration, args.memory_requests) == (3, 8, 100000)
    assert len(args.settings) >= 6
    assert bench.estimate_minutes(args) <= 25


def test_quick_is_short_and_writes_outside_the_repository():
    args = bench.parse_args(["--quick", "--container", "mine"])
    assert args.container == "mine"
    assert len(args.settings) == 1
    assert not args.output.startswith(str(bench.ROOT))
    assert bench.estimate_minutes(args) <= 6


def test_explicit_options_win_over_quick():
    args = bench.parse_args(["--quick", "--duration", "3", "--grid", "sync:5,sync:9"])
    assert args.duration == 3
    assert [setting.label for setting in args.settings] == ["sync w5", "sync w9"]


def test_roles_and_seeds_turns():
    assert bench.in_turn(1, ["role", "seed"]) == ["role", "seed"]
    assert bench.in_turn(2, ["role", "seed"]) == ["seed", "role"]
