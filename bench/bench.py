"""make bench: the role's stack against the seed's hand-written setup, in one container, one run.

Deploys the sample app with playbooks/site.yml into a fresh systemd container (timing the cold
converge, a no-change run and a code-only redeploy), starts the seed's setup beside it on the same
code (gunicorn -w 4 on a unix socket behind a plain proxy_pass), and loads each target with wrk
inside the container against 127.0.0.1, every run bounded in time and in requests:

- serving: nginx's ceiling, the fast endpoint and the 50 ms one, role and seed (as before);
- mixed: 90 % fast JSON (/healthz), 10 % waiting 50 ms on I/O (/api/slow?ms=50), the fast and the
  slow requests' latencies apart (bench/mixed.lua says how);
- fast only: throughput and p99;
- memory: PSS of nginx and Gunicorn (masters and workers), idle, at the end of the mixed run and
  after a run of 100,000 requests;
- the frontier: the role's worker settings (a grid, each deployed with -e overrides), mixed and
  fast only, each interleaved with the seed's runs; a table and an SVG chart.

Prints the tables and writes docs/benchmarks.md and docs/benchmarks-frontier.svg.
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import frontier
import results
from results import fmt, ratio

ROOT = Path(__file__).resolve().parents[1]
APP = "hello"
LUA_IN_CONTAINER = "/tmp/bench-mixed.lua"
FAST_PATH, SLOW_PATH = "/healthz", "/api/slow?ms=50"
FAST_MARKER, SLOW_MARKER = '"status"', '"slept_ms"'
ROLE_URL, SEED_URL, CEILING_URL = (
    "http://127.0.0.1:80",
    "http://127.0.0.1:8082",
    ("http://127.0.0.1:8081"),
)
# The memory run's wrk runs, in seconds.
MEMORY_CHUNK = 5
# Every 10th request of a connection is slow: 10 %.
MIXED_EVERY = 10
# The settings the frontier measures besides the current default (measured first, whatever it is).
# 2 CPUs: the default is gthread, 3 workers (CPUs + 1), 8 threads, 16 idle upstream connections.
DEFAULT_GRID = (
    "gthread:3:8:0,gthread:3:4:16,gthread:3:4:0,gthread:3:2:16,gthread:2:8:16,"
    "gthread:5:4:16,gthread:3:8:4,sync:5,sync:9"
)
QUICK_GRID = "gthread:3:4:0"


class Bench:
    def __init__(self, container, connections, max_rps):
        self.container = container
        self.connections = connections
        self.max_rps = max_rps
        self.raw_dir = None
        self.run_count = 0
        self.errors = 0

    def in_container(self, *argv, capture=True, check=True):
        result = subprocess.run(
            ["docker", "exec", self.container, *argv],
            capture_output=capture,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            sys.exit(
                f"in {self.container}: {' '.join(argv)} failed ({result.returncode}):\n"
                f"{(result.stdout or '')[-3000:]}\n{(result.stderr or '')[-3000:]}"
            )
        return result.stdout if capture else ""

    def wrk(self, url, duration, slow_every, max_requests=None, fast_path=FAST_PATH, markers=True):
        """One wrk run with bench/mixed.lua, one connection per thread, bounded in time (wrk's
        --duration, and timeout's beyond it) and in requests: results.run_record's figures."""
        if max_requests is None:
            max_requests = duration * self.max_rps
        threads = self.connections
        out = self.in_container(
            "timeout", f"{duration + 30}s",
            "wrk", "--threads", str(threads), "--connections", str(self.connections),
            "--duration", f"{duration}s", "--timeout", "5s", "--latency",
            "--script", LUA_IN_CONTAINER, url, "--",
            fast_path, SLOW_PATH, str(slow_every), str(max_requests),
            FAST_MARKER if markers else "", SLOW_MARKER if markers else "", str(threads),
        )  # fmt: skip
        self.run_count += 1
        if self.raw_dir:
            name = re.sub(r"[^a-z0-9]+", "-", f"{url} {slow_every}".lower()).strip("-")
            (self.raw_dir / f"{self.run_count:03d}-{name}.txt").write_text(out)
        record = results.run_record(out, expect_threads=threads)
        record["capped"] = record["requests"] >= max_requests
        self.errors += record["errors"]
        if record["problems"]:
            sys.exit(f"wrk run against {url}: " + "; ".join(record["problems"]))
        return record

    def main_pid(self, unit):
        pid = int(self.in_container("systemctl", "show", "--property=MainPID", "--value", unit))
        if pid == 0:
            sys.exit(f"{unit} has no main process")
        return pid

    def memory(self):
        """PSS and RSS of nginx, the role's Gunicorn and the seed's, each master and workers."""
        roots = {
            "nginx": [self.main_pid("nginx.service")],
            "role": [self.main_pid(f"{APP}.service")],
            "seed": [self.main_pid("seed-gunicorn.service")],
        }
        snapshot = json.loads(self.in_container("python3", "-c", results.PROC_SNAPSHOT))
        groups = results.stack_memory(snapshot, roots)
        for stack in ("role", "seed"):
            groups[f"{stack} stack"] = {
                key: groups["nginx"][key] + groups[stack][key]
                for key in ("processes", "pss_kb", "rss_kb")
            }
        return groups


def start_container(container, image):
    """A fresh bench container, booted: an earlier one of this name is removed first."""
    subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
    subprocess.run(
        [str(ROOT / "scripts/systemd-container.sh"), container, image],
        stdout=subprocess.DEVNULL,
        check=True,
    )


def playbook(container, inventory, app_source, extra_vars=()):
    """Run site.yml against the bench container: (seconds, tasks run, tasks skipped, changed)."""
    started = time.monotonic()
    result = subprocess.run(
        [
            "ansible-playbook", "-i", str(inventory), str(ROOT / "playbooks/site.yml"),
            "-e", f"flask_gunicorn_app_source={app_source}",
            "-e", '{"flask_gunicorn_app_env": {"FLASK_BENCH_ENDPOINTS": "true"}}',
            *(arg for extra in extra_vars for arg in ("-e", extra)),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        print(result.stdout[-6000:], result.stderr[-3000:], sep="\n")
        sys.exit("site.yml failed on the bench container")
    seconds = time.monotonic() - started
    recap = re.search(rf"{container}\s*: ok=(\d+)\s+changed=(\d+).*?skipped=(\d+)", result.stdout)
    ran, changed, skipped = (int(number) for number in recap.groups())
    return seconds, ran, skipped, changed


def round_trip(container, inventory, workdir, tasks=20):
    """Seconds per no-op task over the connection: a playbook of 1 + tasks pings against one of 1,
    so that ansible-playbook's own start-up is not counted."""
    seconds = []
    for count in (1, 1 + tasks):
        plays = workdir / f"ping-{count}.yml"
        plays.write_text(
            f"- hosts: {container}\n  gather_facts: false\n  become: true\n  tasks:\n"
            + "".join("    - ansible.builtin.ping:\n" for _ in range(count))
        )
        started = time.monotonic()
        subprocess.run(
            ["ansible-playbook", "-i", str(inventory), str(plays)],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        seconds.append(time.monotonic() - started)
    return (seconds[1] - seconds[0]) / tasks


def start_seed(bench):
    """The seed's setup on the same release: 4 sync workers, its own socket and server block."""
    bench.in_container("apt-get", "install", "-y", "-qq", "wrk")
    bench.in_container("install", "-d", "-o", APP, "-g", "www-data", "-m", "0750", "/run/seed")
    bench.in_container(
        "systemd-run", "--unit=seed-gunicorn", f"--uid={APP}", f"--gid={APP}",
        f"--working-directory=/srv/{APP}/current/src",
        f"--property=EnvironmentFile=/etc/{APP}/secret_key.env",
        f"--property=EnvironmentFile=/etc/{APP}/app.env",
        "--setenv=FLASK_BENCH_ENDPOINTS=true",
        f"/srv/{APP}/current/venv/bin/gunicorn", "-w", "4", "-b", "unix:/run/seed/seed.sock",
        "hello:create_app()",
    )  # fmt: skip
    for source, target in (
        (ROOT / "bench/seed-site.conf", "/etc/nginx/sites-enabled/"),
        (ROOT / "bench/mixed.lua", LUA_IN_CONTAINER),
    ):
        subprocess.run(["docker", "cp", str(source), f"{bench.container}:{target}"], check=True)
    bench.in_container("nginx", "-t")
    bench.in_container("systemctl", "reload", "nginx")
    for _ in range(30):
        code = bench.in_container(
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{SEED_URL}/healthz",
            check=False,
        )  # fmt: skip
        if code == "200":
            return
        time.sleep(1)
    sys.exit("the seed's setup did not answer")


def deployed(bench):
    return frontier.deployed_setting(
        bench.in_container("cat", f"/etc/{APP}/gunicorn.conf.py"),
        bench.in_container("cat", f"/etc/nginx/sites-available/{APP}.conf"),
    )


def in_turn(round_number, pair):
    """Role first in odd rounds, seed first in even ones: neither always has the warmer machine."""
    return pair if round_number % 2 else pair[::-1]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="flask-gunicorn-test/debian:12")
    parser.add_argument("--container", default="flask-gunicorn-bench", help="its own name")
    parser.add_argument("--quick", action="store_true", help="a short run while developing")
    parser.add_argument("--runs", type=int, help="rounds of the serving runs (3; quick 2)")
    parser.add_argument("--duration", type=int, help="seconds per serving wrk run (8; quick 2)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--max-rps", type=int, default=250000, help="a run's request bound: duration x this"
    )
    parser.add_argument("--grid", help=f"the frontier's settings (default {DEFAULT_GRID})")
    parser.add_argument("--frontier-rounds", type=int, help="rounds per setting (2; quick 1)")
    parser.add_argument("--frontier-duration", type=int, help="seconds per run (5; quick 2)")
    parser.add_argument(
        "--memory-requests", type=int, help="the memory run's requests (100000; quick 5000)"
    )
    parser.add_argument("--timing-rounds", type=int, help="runs per Ansible timing (3; quick 1)")
    parser.add_argument("--output", help="the report (docs/benchmarks.md; quick: in /tmp)")
    parser.add_argument("--keep", action="store_true", help="leave the container running")
    parser.add_argument("--raw-dir", help="keep every wrk run's output in this directory")
    args = parser.parse_args(argv)
    quick = args.quick
    for name, full, short in (
        ("runs", 3, 2),
        ("duration", 8, 2),
        ("grid", DEFAULT_GRID, QUICK_GRID),
        ("frontier_rounds", 2, 1),
        ("frontier_duration", 5, 2),
        ("memory_requests", 100000, 5000),
        ("timing_rounds", 3, 1),
        (
            "output",
            str(ROOT / "docs/benchmarks.md"),
            "/tmp/flask-gunicorn-bench-quick/benchmarks.md",
        ),
    ):
        if getattr(args, name) is None:
            setattr(args, name, short if quick else full)
    args.settings = frontier.parse_grid(args.grid)
    return args


def estimate_minutes(args):
    """What the run should take, from the parts of a --quick run on this 2-CPU machine: boot and
    cold converge, the timed Ansible runs, the serving rounds, the memory runs, the frontier."""
    points = 1 + sum(1 for setting in args.settings if setting != frontier.DEFAULT_SETTING)
    seconds = 60 + 35 * args.timing_rounds + 30
    seconds += args.runs * 7 * (args.duration + 1.5)
    seconds += 2 * (args.memory_requests / 2500 + MEMORY_CHUNK)
    seconds += points * (args.frontier_rounds * 4 * (args.frontier_duration + 1.5) + 3)
    seconds += (points - 1) * 25
    return seconds / 60


def main(args):
    output = Path(args.output)
    chart = output.parent / "benchmarks-frontier.svg"
    workdir = Path(tempfile.mkdtemp(prefix="flask-gunicorn-bench."))
    app_source = workdir / "app"
    shutil.copytree(
        ROOT / "app", app_source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    inventory = workdir / "hosts.yml"
    inventory.write_text(
        f"all:\n  children:\n    web:\n      hosts:\n        {args.container}:\n"
        "          ansible_connection: community.docker.docker\n"
    )
    bench = Bench(args.container, args.connections, args.max_rps)
    if args.raw_dir:
        bench.raw_dir = Path(args.raw_dir)
        bench.raw_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    print(
        f"==> Expected duration: about {estimate_minutes(args):.0f} minutes "
        f"(the frontier: the host's default and {len(args.settings)} other settings)",
        flush=True,
    )
    print(f"==> Starting {args.container} from {args.image}", flush=True)
    start_container(args.container, args.image)
    try:
        report, failures = measure(args, bench, inventory, app_source, workdir, chart)
    finally:
        if not args.keep:
            subprocess.run(["docker", "rm", "-f", args.container], capture_output=True, check=False)
        shutil.rmtree(workdir)
    minutes = (time.monotonic() - started) / 60
    report += f"\nThe whole run took {minutes:.1f} minutes.\n"
    print()
    print(report)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(f"==> Wrote {output} and {chart}")
    return 1 if failures else 0


def measure(args, bench, inventory, app_source, workdir, chart):
    container = args.container
    # Ansible runs: the cold converge, then each kind of run timing_rounds times, the median kept.
    print("==> Cold converge of site.yml", flush=True)
    cold = playbook(container, inventory, app_source)
    no_changes, redeploys = [], []
    about = app_source / "hello/templates/pages/about.html"
    rounds = args.timing_rounds
    for round_number in range(1, rounds + 1):
        print(f"==> No-change run {round_number}/{rounds}", flush=True)
        no_changes.append(playbook(container, inventory, app_source))
        print(f"==> Code-only redeploy {round_number}/{rounds} (a template changed)", flush=True)
        about.write_text(about.read_text() + f"{{# redeploy {round_number} by make bench #}}\n")
        redeploys.append(playbook(container, inventory, app_source))
    no_change = sorted(no_changes)[(rounds - 1) // 2]
    redeploy = sorted(redeploys)[(rounds - 1) // 2]
    per_task = round_trip(container, inventory, workdir)

    print("==> Starting the seed's setup beside the role's", flush=True)
    start_seed(bench)
    default = deployed(bench)
    cpus = bench.in_container("nproc").strip()

    # Memory when idle: after a short bounded warm-up of each, so that both have imported what a
    # request needs.
    served = {"role": 0, "seed": 0}
    for stack, url in (("role", ROLE_URL), ("seed", SEED_URL)):
        served[stack] += bench.wrk(url, 1, MIXED_EVERY, max_requests=2000)["requests"]
    time.sleep(2)
    idle = bench.memory()
    memory = {"idle": {"role": idle["role stack"], "seed": idle["seed stack"]}}
    nginx_idle = idle["nginx"]

    # Serving, mixed and fast only: every target in each round, interleaved.
    kinds = {
        "ceiling": (CEILING_URL, 0),
        "role fast": (ROLE_URL, 0),
        "seed fast": (SEED_URL, 0),
        "role mixed": (ROLE_URL, MIXED_EVERY),
        "seed mixed": (SEED_URL, MIXED_EVERY),
        "role slow": (ROLE_URL, 1),
        "seed slow": (SEED_URL, 1),
    }
    runs = {name: [] for name in kinds}
    for round_number in range(1, args.runs + 1):
        order = ["ceiling"]
        for workload in ("fast", "mixed", "slow"):
            order += in_turn(round_number, [f"role {workload}", f"seed {workload}"])
        for name in order:
            url, slow_every = kinds[name]
            print(f"==> wrk round {round_number}/{args.runs}: {name}", flush=True)
            record = bench.wrk(
                url,
                args.duration,
                slow_every,
                fast_path="/" if name == "ceiling" else FAST_PATH,
                markers=name != "ceiling",
            )
            runs[name].append(record)
            stack = name.split()[0]
            if stack in served:
                served[stack] += record["requests"]
            if round_number == args.runs and name.endswith("mixed"):
                memory.setdefault("end of the mixed run", {})[stack] = bench.memory()[
                    f"{stack} stack"
                ]
    # Memory after a long run: memory_requests fast requests, bounded in time as well. wrk lasts
    # its whole --duration even when the script has stopped every thread at the request bound:
    # runs of MEMORY_CHUNK seconds, each bounded by the requests still owed, until all are sent.
    memory_run = {}
    for stack, url in (("role", ROLE_URL), ("seed", SEED_URL)):
        print(f"==> {args.memory_requests} requests to the {stack}'s stack", flush=True)
        time_bound = math.ceil(args.memory_requests / 500) + 10
        started, sent, errors = time.monotonic(), 0, 0
        while sent < args.memory_requests and time.monotonic() - started < time_bound:
            record = bench.wrk(url, MEMORY_CHUNK, 0, max_requests=args.memory_requests - sent)
            sent += record["requests"]
            errors += record["errors"]
        served[stack] += sent
        memory_run[stack] = {"requests": sent, "errors": errors}
        time.sleep(1)
        memory.setdefault("after the long run", {})[stack] = bench.memory()[f"{stack} stack"]

    # The frontier: the current default first, then each other setting of the grid.
    settings = [default] + [setting for setting in args.settings if setting != default]
    points, seed_runs = [], {"mixed": [], "fast": []}
    for index, setting in enumerate(settings, 1):
        redeploy_seconds = None
        if setting != default:
            print(f"==> Frontier {index}/{len(settings)}: deploying {setting.label}", flush=True)
            redeploy_seconds = playbook(container, inventory, app_source, [setting.extra_vars()])[0]
            if deployed(bench) != setting:
                sys.exit(f"the host does not run {setting.label} after the deploy")
        bench.wrk(ROLE_URL, 1, MIXED_EVERY, max_requests=2000)  # warm-up
        point = {"label": setting.label, "redeploy_s": redeploy_seconds}
        point_runs = {"mixed": [], "fast": [], "seed_mixed": [], "seed_fast": []}
        for round_number in range(1, args.frontier_rounds + 1):
            for workload, slow_every in (("mixed", MIXED_EVERY), ("fast", 0)):
                for stack in in_turn(round_number, ["role", "seed"]):
                    print(
                        f"==> Frontier {index}/{len(settings)} {setting.label}, round "
                        f"{round_number}/{args.frontier_rounds}: {stack} {workload}",
                        flush=True,
                    )
                    url = ROLE_URL if stack == "role" else SEED_URL
                    record = bench.wrk(url, args.frontier_duration, slow_every)
                    key = workload if stack == "role" else f"seed_{workload}"
                    point_runs[key].append(record)
                    if stack == "seed":
                        seed_runs[workload].append(record)
        for key, records in point_runs.items():
            point[key] = results.summarise(records)
        point["pss_kb"] = bench.memory()["role stack"]["pss_kb"]
        points.append(point)
    seed_point = {
        "mixed": results.summarise(seed_runs["mixed"]),
        "fast": results.summarise(seed_runs["fast"]),
        "pss_kb": bench.memory()["seed stack"]["pss_kb"],
    }
    chart.parent.mkdir(parents=True, exist_ok=True)
    chart.write_text(frontier.frontier_svg(points, seed_point, default.label))

    summaries = {name: results.summarise(records) for name, records in runs.items()}
    report_lines = report(
        args,
        bench.errors,
        cpus,
        default,
        summaries,
        memory,
        nginx_idle,
        memory_run,
        served,
        points,
        seed_point,
        chart,
        (cold, no_change, redeploy, per_task),
    )
    failures = bench.errors
    return "\n".join(report_lines), failures


def report(
    args,
    errors,
    cpus,
    default,
    s,
    memory,
    nginx_idle,
    memory_run,
    served,
    points,
    seed_point,
    chart,
    timed,
):
    cold, no_change, redeploy, per_task = timed
    serving_targets = [
        ("1. nginx return 200 (ceiling)", "ceiling"),
        ("2. role: nginx -> socket -> Gunicorn, /healthz", "role fast"),
        ("3. seed: gunicorn -w 4 + plain proxy_pass, /healthz", "seed fast"),
        ("4a. role, 50 ms of I/O wait", "role slow"),
        ("4b. seed, 50 ms of I/O wait", "seed slow"),
    ]
    columns = ["target", "best req/s", "median req/s", "p50 ms", "p99 ms", "errors"]
    serving = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for label, name in serving_targets:
        best = s[name]["best"]
        capped = " (request bound reached)" if s[name]["capped"] else ""
        cells = [label + capped, fmt(best["rps"], 0), fmt(s[name]["rps"], 0)]
        cells += [fmt(best["wrk_p50"]), fmt(best["wrk_p99"]), str(s[name]["errors"])]
        serving.append("| " + " | ".join(cells) + " |")
    ratios = [
        f"- role / seed (2/3), median req/s: "
        f"**{ratio(s['role fast']['rps'], s['seed fast']['rps']):.2f}x** "
        f"(best: {ratio(s['role fast']['best']['rps'], s['seed fast']['best']['rps']):.2f}x)",
        f"- role / ceiling (2/1), median req/s: "
        f"{ratio(s['role fast']['rps'], s['ceiling']['rps']):.2f}x",
        f"- role / seed with 50 ms of I/O wait (4a/4b), median req/s: "
        f"{ratio(s['role slow']['rps'], s['seed slow']['rps']):.2f}x",
    ]

    mixed_cols = [
        "stack",
        "req/s (median)",
        "min-max",
        "fast req/s",
        "fast p50 ms",
        "fast p99 ms",
        "slow req/s",
        "slow p50 ms",
        "slow p99 ms",
        "errors",
    ]
    mixed = ["| " + " | ".join(mixed_cols) + " |", "|---" * len(mixed_cols) + "|"]
    fast_cols = [
        "stack",
        "req/s (median)",
        "min-max",
        "p50 ms",
        "p99 ms",
        "p99 ms, wrk's correction",
        "p99 ms by wrk",
        "errors",
    ]
    fast = ["| " + " | ".join(fast_cols) + " |", "|---" * len(fast_cols) + "|"]
    stack_names = {"role": f"role ({default.label}, the current default)", "seed": "seed"}
    for stack in ("role", "seed"):
        m = s[f"{stack} mixed"]
        mixed.append(
            "| "
            + " | ".join(
                [
                    stack_names[stack],
                    fmt(m["rps"], 0),
                    f"{m['rps_min']:.0f}-{m['rps_max']:.0f}",
                    fmt(m["fast_rps"], 0),
                    fmt(m["fast_p50"]),
                    fmt(m["fast_p99"]),
                    fmt(m["slow_rps"], 0),
                    fmt(m["slow_p50"]),
                    fmt(m["slow_p99"]),
                    str(m["errors"]),
                ]
            )
            + " |"
        )
        f = s[f"{stack} fast"]
        fast.append(
            "| "
            + " | ".join(
                [
                    stack_names[stack],
                    fmt(f["rps"], 0),
                    f"{f['rps_min']:.0f}-{f['rps_max']:.0f}",
                    fmt(f["fast_p50"]),
                    fmt(f["fast_p99"]),
                    fmt(f["corrected_p99"]),
                    fmt(f["wrk_p99"]),
                    str(f["errors"]),
                ]
            )
            + " |"
        )

    mem_cols = ["moment", "stack", "processes", "PSS MB", "RSS sum MB", "PSS role / seed"]
    mem = ["| " + " | ".join(mem_cols) + " |", "|---" * len(mem_cols) + "|"]
    for moment, stacks in memory.items():
        for stack in ("role", "seed"):
            data = stacks[stack]
            pss_ratio = ""
            if stack == "role":
                pss_ratio = fmt(ratio(data["pss_kb"], stacks["seed"]["pss_kb"]), 2, "x")
            mem.append(
                f"| {moment} | {stack} | {data['processes']} | {data['pss_kb'] / 1024:.1f} "
                f"| {data['rss_kb'] / 1024:.1f} | {pss_ratio} |"
            )

    # Issue 17's acceptance, for the current default against the seed.
    def verdict(ok):
        return "met" if ok else "MISSED"

    m_ratio = ratio(s["role mixed"]["rps"], s["seed mixed"]["rps"])
    m_p99 = ratio(s["role mixed"]["fast_p99"], s["seed mixed"]["fast_p99"])
    f_ratio = ratio(s["role fast"]["rps"], s["seed fast"]["rps"])
    f_p99 = ratio(s["role fast"]["fast_p99"], s["seed fast"]["fast_p99"])
    f_p99_wrk = ratio(s["role fast"]["wrk_p99"], s["seed fast"]["wrk_p99"])
    all_errors = errors
    mem_ratios = [
        ratio(stacks["role"]["pss_kb"], stacks["seed"]["pss_kb"]) for stacks in memory.values()
    ]
    acceptance = [
        f"- mixed: throughput {m_ratio:.2f}x the seed's (>= 4x), fast requests' p99 {m_p99:.2f}x "
        f"(<= 1x): **{verdict(m_ratio >= 4 and m_p99 <= 1)}**",
        f"- fast only: throughput {f_ratio:.2f}x (>= 1x), p99 {f_p99:.2f}x (<= 1.5x): "
        f"**{verdict(f_ratio >= 1 and f_p99 <= 1.5)}** (by wrk's corrected p99: "
        f"{f_p99_wrk:.2f}x)",
        f"- errors over every run, warm-ups and the other settings' included: {all_errors} "
        f"(0): **{verdict(all_errors == 0)}**",
        f"- memory (PSS) of the stack: {', '.join(f'{r:.2f}x' for r in mem_ratios)} the seed's "
        f"(idle, end of the mixed run, after the long run; <= 1.5x): "
        f"**{verdict(all(r <= 1.5 for r in mem_ratios))}**",
    ]

    frontier_rows = frontier.frontier_table(points, seed_point, default.label)
    redeploys = [point["redeploy_s"] for point in points if point["redeploy_s"] is not None]

    def timing(label, measured, target=None):
        seconds, ran, skipped, changed = measured
        verdict_text = ""
        if target is not None:
            verdict_text = f" (target <= {target} s: {'met' if seconds <= target else 'MISSED'})"
        return (
            f"| {label} | {seconds:.1f} s{verdict_text} | {ran} | {skipped} | {changed} "
            f"| {ran * per_task:.1f} s |"
        )

    timings = [
        f"| run of site.yml | time (median of {args.timing_rounds}) | tasks run | tasks skipped "
        "| changed | connection's share |",
        "|---|---|---|---|---|---|",
        timing("cold converge on a bare container (one run)", cold),
        timing("no-change run", no_change, 10),
        timing("code-only redeploy (one template changed)", redeploy, 20),
        "",
        f"The connection's share is the tasks run times the time of one no-op task over the "
        f"docker connection, {per_task * 1000:.0f} ms (20 `ping` tasks, start-up left out): what a "
        "run costs before any module does its work. Skipped tasks cost a few milliseconds each "
        "on the controller.",
    ]
    command = "make bench" if not args.quick else "python bench/bench.py --quick"
    return [
        "# Benchmarks",
        "",
        f"Produced by `{command}` (`bench/bench.py`); every figure below is from one run.",
        f"Machine: {cpus} CPUs (`nproc` in the container), Docker container from "
        f"`{args.image}`, wrk inside the container against 127.0.0.1 ({args.connections} "
        f"connections, one wrk thread per connection, {args.duration} s a run, {args.runs} "
        "rounds, targets interleaved, role and seed in turn first). wrk shares the CPUs with "
        "nginx and Gunicorn: the numbers compare within the run, they are not absolute capacity."
        + (" **A --quick run: too short to decide anything.**" if args.quick else ""),
        "",
        "## Serving",
        "",
        "p50 and p99 are wrk's own (corrected for coordinated omission, see Method), from the "
        "best run; errors are non-2xx answers and socket "
        "errors over all runs.",
        "",
        *serving,
        "",
        *ratios,
        "",
        "## Mixed workload: 90 % fast, 10 % waiting 50 ms",
        "",
        f"Each connection sends `{FAST_PATH}` (JSON) nine times, then `{SLOW_PATH}` (JSON after "
        "50 ms of sleep, as a database call would wait) once. req/s is all requests; the "
        "percentiles are medians over the rounds of each run's percentile, per class (see "
        "Method).",
        "",
        *mixed,
        "",
        "## Fast only",
        "",
        f"`{FAST_PATH}` only. p50 and p99 are the latencies the requests had, by the script; "
        "wrk prints its own after a correction for coordinated omission (see Method): the "
        "script's histogram with the same correction gives wrk's figure, a check that both "
        "counted the same latencies.",
        "",
        *fast,
        "",
        "## Memory",
        "",
        "PSS (proportional set size, from `/proc/<pid>/smaps_rollup`: pages shared between "
        "processes are split between them) summed over nginx's master and workers and the "
        "stack's Gunicorn master and workers; RSS sum counts shared pages in every process. "
        "Both stacks are served by the same nginx, whose share is in both "
        f"({nginx_idle['processes']} processes, {nginx_idle['pss_kb'] / 1024:.1f} MB PSS idle). "
        "Idle is after a warm-up of at most 2,000 requests; the end of the mixed run is right "
        f"after the last round's mixed run; the long run is {args.memory_requests:,} fast "
        "requests after the rounds (stopping earlier only at its time bound: "
        f"role {memory_run['role']['requests']:,}, seed {memory_run['seed']['requests']:,} "
        f"sent), when the stacks had served {served['role']:,} (role) and {served['seed']:,} "
        "(seed) requests in all. The role replaces a worker after 20,000 requests plus up to "
        "2,000 (`flask_gunicorn_max_requests`).",
        "",
        *mem,
        "",
        "## Issue 17's acceptance, current default against the seed",
        "",
        *acceptance,
        "",
        "## The frontier",
        "",
        "Each setting of the role's workers deployed by `site.yml` with `-e` overrides "
        "(`flask_gunicorn_worker_class`, `_workers`, `_threads`, `_upstream_keepalive`), then "
        f"{args.frontier_rounds} round(s) of the mixed and the fast-only run "
        f"({args.frontier_duration} s each), each run followed or preceded by the same run "
        "against the seed: the `x seed` columns compare with the seed's runs of the same "
        "minutes, and the seed's row is the median over all of them. Figures are medians over "
        "the rounds; PSS is the role's stack after the setting's runs. wN: workers, tN: "
        "threads, kaN: idle upstream connections per nginx worker (0: a connection per "
        "request). "
        + (
            f"A redeploy per setting took {min(redeploys):.0f}-{max(redeploys):.0f} s."
            if redeploys
            else ""
        ),
        "",
        *frontier_rows,
        "",
        f"![Throughput against the fast requests' p99, per setting]({chart.name})",
        "",
        "## Method",
        "",
        "wrk runs inside the container against 127.0.0.1 with `bench/mixed.lua`, every run "
        f"bounded in time (`--duration`, and `timeout`) and in requests ({args.max_rps:,} per "
        "second of the run; the memory run its own count). wrk's `response()` hook is given "
        "no latency and does not say which connection an answer came on, so with several "
        "connections per thread an answer cannot be matched with its request. The script is "
        "therefore run with one connection per wrk thread: a thread's requests and answers "
        "then strictly alternate (wrk sends the next request on a connection only when the "
        "previous answer is complete, and nothing is pipelined), and the answer `response()` "
        "sees is the one to the request `request()` made last. The script reads a monotonic "
        "clock (`clock_gettime` through LuaJIT's FFI; `os.clock` is CPU time) in both hooks and "
        "counts the difference in a histogram of its class (10 us buckets), merged over the "
        "threads in `done()`. Checks that fail the run: one connection per thread, no request "
        "made while another was unanswered (beyond the one wrk makes itself to check the "
        "script, and one per socket error), and every answer's body holding its class's mark "
        "(`status` for the fast endpoint, `slept_ms` for the slow one). Every connection "
        "sends the slow request every 10th time, starting at a different place in the cycle, "
        "so the mix is exactly 10 % and the slow requests do not go all at once. wrk corrects "
        "its own latencies for coordinated omission before printing them: an answer that took "
        "at least twice the mean time between a connection's requests also stands for the "
        "requests that connection did not send meanwhile, at that latency less one, two, ... "
        "intervals. That correction is right for a single kind of request, but in the mix every "
        "50 ms request would bring such made-up samples: the per-class figures here are the "
        "latencies the requests had, uncorrected. The same correction applied to the script's "
        "histogram reproduces wrk's p99 (the fast-only table shows both), so the two counted "
        "the same requests. Earlier runs (2 wrk threads for 32 connections) printed wrk's "
        "corrected figures: compare them with the `p99 ms by wrk` and Serving columns, not "
        "with the script's.",
        "",
        "## Ansible runs",
        "",
        *timings,
        "",
        f"Command: `{command}` (`python bench/bench.py --image {args.image}"
        + (" --quick" if args.quick else "")
        + "`).",
    ]


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main(parse_args()))
