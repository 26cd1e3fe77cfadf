"""make bench: the role's stack against the seed's hand-written setup, in one container, one run.

Deploys the sample app with playbooks/site.yml into a fresh systemd container (timing the cold
converge, a no-change run and a code-only redeploy), starts the seed's setup beside it on the same
code (gunicorn -w 4 on a unix socket behind a plain proxy_pass), and loads each target with wrk
inside the container against 127.0.0.1, each run bounded in time. Prints the table and writes
docs/benchmarks.md.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTAINER = "flask-gunicorn-bench"

TARGETS = [
    ("1. nginx return 200 (ceiling)", "http://127.0.0.1:8081/"),
    ("2. role: nginx -> socket -> Gunicorn, /healthz", "http://127.0.0.1:80/healthz"),
    ("3. seed: gunicorn -w 4 + plain proxy_pass, /healthz", "http://127.0.0.1:8082/healthz"),
    ("4a. role, 50 ms of I/O wait", "http://127.0.0.1:80/api/slow?ms=50"),
    ("4b. seed, 50 ms of I/O wait", "http://127.0.0.1:8082/api/slow?ms=50"),
]


def run(argv, **kwargs):
    return subprocess.run(argv, check=True, text=True, **kwargs)


def in_container(*argv, capture=True):
    result = run(["docker", "exec", CONTAINER, *argv], capture_output=capture)
    return result.stdout if capture else ""


def start_container(image):
    """A fresh bench container, booted: any earlier one is removed first."""
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    run([str(ROOT / "scripts/systemd-container.sh"), CONTAINER, image], stdout=subprocess.DEVNULL)


def playbook(inventory, app_source, extra_vars=()):
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
    recap = re.search(rf"{CONTAINER}\s*: ok=(\d+)\s+changed=(\d+).*?skipped=(\d+)", result.stdout)
    ran, changed, skipped = (int(number) for number in recap.groups())
    return seconds, ran, skipped, changed


def round_trip(inventory, workdir, tasks=20):
    """Seconds per no-op task over the connection: a playbook of 1 + tasks pings against one of 1,
    so that ansible-playbook's own start-up is not counted."""
    seconds = []
    for count in (1, 1 + tasks):
        plays = workdir / f"ping-{count}.yml"
        plays.write_text(
            f"- hosts: {CONTAINER}\n  gather_facts: false\n  become: true\n  tasks:\n"
            + "".join("    - ansible.builtin.ping:\n" for _ in range(count))
        )
        started = time.monotonic()
        run(["ansible-playbook", "-i", str(inventory), str(plays)], stdout=subprocess.DEVNULL)
        seconds.append(time.monotonic() - started)
    return (seconds[1] - seconds[0]) / tasks


def start_seed():
    """The seed's setup on the same release: 4 sync workers, its own socket and server block."""
    in_container("apt-get", "install", "-y", "-qq", "wrk")
    in_container("install", "-d", "-o", "hello", "-g", "www-data", "-m", "0750", "/run/seed")
    in_container(
        "systemd-run", "--unit=seed-gunicorn", "--uid=hello", "--gid=hello",
        "--working-directory=/srv/hello/current/src",
        "--property=EnvironmentFile=/etc/hello/secret_key.env",
        "--property=EnvironmentFile=/etc/hello/app.env",
        "--setenv=FLASK_BENCH_ENDPOINTS=true",
        "/srv/hello/current/venv/bin/gunicorn", "-w", "4", "-b", "unix:/run/seed/seed.sock",
        "hello:create_app()",
    )  # fmt: skip
    run(
        [
            "docker",
            "cp",
            str(ROOT / "bench/seed-site.conf"),
            f"{CONTAINER}:/etc/nginx/sites-enabled/",
        ]
    )
    in_container("nginx", "-t")
    in_container("systemctl", "reload", "nginx")
    for _ in range(30):
        code = subprocess.run(
            ["docker", "exec", CONTAINER, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
             "http://127.0.0.1:8082/healthz"],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        if code == "200":
            return
        time.sleep(1)
    sys.exit("the seed's setup did not answer")


def parse_duration_ms(text):
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, duration, connections):
    out = in_container(
        "wrk", "--threads", "2", "--connections", str(connections), "--duration", f"{duration}s",
        "--timeout", "5s", "--latency", url,
    )  # fmt: skip
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return {
        "rps": float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1)),
        "p50": parse_duration_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": parse_duration_ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "errors": errors,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", default="flask-gunicorn-test/debian:12")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--output", default=str(ROOT / "docs/benchmarks.md"))
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="flask-gunicorn-bench."))
    app_source = workdir / "app"
    shutil.copytree(
        ROOT / "app", app_source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    inventory = workdir / "hosts.yml"
    inventory.write_text(
        f"all:\n  children:\n    web:\n      hosts:\n        {CONTAINER}:\n"
        "          ansible_connection: community.docker.docker\n"
    )

    print(f"==> Starting {CONTAINER} from {args.image}", flush=True)
    start_container(args.image)
    print("==> Cold converge of site.yml", flush=True)
    cold = playbook(inventory, app_source)
    # The machine is noisy: each kind of run three times, the median kept.
    no_changes, redeploys = [], []
    about = app_source / "hello/templates/pages/about.html"
    for round_number in range(1, 4):
        print(f"==> No-change run {round_number}/3", flush=True)
        no_changes.append(playbook(inventory, app_source))
        print(f"==> Code-only redeploy {round_number}/3 (a template changed)", flush=True)
        about.write_text(about.read_text() + f"{{# redeploy {round_number} by make bench #}}\n")
        redeploys.append(playbook(inventory, app_source))
    no_change = sorted(no_changes)[1]
    redeploy = sorted(redeploys)[1]
    per_task = round_trip(inventory, workdir)

    print("==> Starting the seed's setup beside the role's", flush=True)
    start_seed()
    in_container("nproc")

    results = {name: [] for name, _ in TARGETS}
    for run_number in range(1, args.runs + 1):
        for name, url in TARGETS:
            print(f"==> wrk run {run_number}/{args.runs}: {name}", flush=True)
            results[name].append(wrk(url, args.duration, args.connections))

    def best(name):
        return max(results[name], key=lambda r: r["rps"])

    def median_rps(name):
        return statistics.median(r["rps"] for r in results[name])

    role, seed, ceiling = TARGETS[1][0], TARGETS[2][0], TARGETS[0][0]
    columns = ["target", "best req/s", "median req/s", "p50 ms", "p99 ms", "errors"]
    rows = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for name, _ in TARGETS:
        b = best(name)
        errors = sum(r["errors"] for r in results[name])
        cells = [name, f"{b['rps']:.0f}", f"{median_rps(name):.0f}"]
        cells += [f"{b['p50']:.2f}", f"{b['p99']:.2f}", str(errors)]
        rows.append("| " + " | ".join(cells) + " |")
    ratios = [
        f"- role / seed (2/3), median req/s: **{median_rps(role) / median_rps(seed):.2f}x** "
        f"(best: {best(role)['rps'] / best(seed)['rps']:.2f}x)",
        f"- role / ceiling (2/1), median req/s: {median_rps(role) / median_rps(ceiling):.2f}x",
        f"- role / seed with 50 ms of I/O wait (4a/4b), median req/s: "
        f"{median_rps(TARGETS[3][0]) / median_rps(TARGETS[4][0]):.2f}x",
    ]

    def timing(label, measured, target=None):
        seconds, ran, skipped, changed = measured
        verdict = ""
        if target is not None:
            verdict = f" (target <= {target} s: {'met' if seconds <= target else 'MISSED'})"
        return (
            f"| {label} | {seconds:.1f} s{verdict} | {ran} | {skipped} | {changed} "
            f"| {ran * per_task:.1f} s |"
        )

    timings = [
        "| run of site.yml | time (median of 3) | tasks run | tasks skipped | changed "
        "| connection's share |",
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
    cpus = in_container("nproc").strip()
    report = "\n".join(
        [
            "# Benchmarks",
            "",
            "Produced by `make bench` (`bench/bench.py`); every figure below is from one run.",
            f"Machine: {cpus} CPUs (`nproc` in the container), Docker container from "
            f"`{args.image}`, wrk inside the container against 127.0.0.1 "
            f"({args.connections} connections, 2 threads, {args.duration} s a run, "
            f"{args.runs} runs per target, targets interleaved). p50 and p99 are from the best "
            "run; errors are non-2xx answers and socket errors over all runs. wrk shares the "
            "CPUs with nginx and Gunicorn: the numbers compare within the run, they are not "
            "absolute capacity.",
            "",
            "## Serving",
            "",
            *rows,
            "",
            *ratios,
            "",
            "## Ansible runs",
            "",
            *timings,
            "",
        ]
    )
    print()
    print(report)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report)
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    shutil.rmtree(workdir)
    failures = sum(r["errors"] for name in results for r in results[name])
    return 1 if failures else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
