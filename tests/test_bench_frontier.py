"""Unit tests of bench/frontier.py: settings, the frontier table and the SVG chart's content."""

import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import frontier

SVG = "{http://www.w3.org/2000/svg}"


def test_grid_and_labels():
    grid = frontier.parse_grid("gthread:3:8:16, sync:5,gthread:2:4:0")
    assert [setting.label for setting in grid] == [
        "gthread w3 t8 ka16",
        "sync w5",
        "gthread w2 t4 ka0",
    ]
    assert grid[1] == frontier.Setting("sync", 5, 1, 0)


@pytest.mark.parametrize(
    "spec",
    ["sync:5:2", "gthread:3:8", "eventlet:3", "gthread:0:8:16", "sync:3,sync:3", "gthread:3:8:-1"],
)
def test_bad_grids_are_refused(spec):
    with pytest.raises(ValueError):
        frontier.parse_grid(spec)


def test_a_sync_setting_has_no_threads_or_keepalive():
    with pytest.raises(ValueError):
        frontier.Setting("sync", 3, 8, 0)
    with pytest.raises(ValueError):
        frontier.Setting("sync", 3, 1, 16)


def test_extra_vars_name_the_roles_variables():
    extra = json.loads(frontier.Setting("gthread", 3, 4, 0).extra_vars())
    assert extra == {
        "flask_gunicorn_worker_class": "gthread",
        "flask_gunicorn_workers": 3,
        "flask_gunicorn_threads": 4,
        "flask_gunicorn_upstream_keepalive": 0,
    }
    defaults = (
        Path(__file__).resolve().parents[1] / "roles/flask_gunicorn/defaults/main.yml"
    ).read_text()
    for name in extra:
        assert re.search(rf"^{name}:", defaults, re.MULTILINE), name


GUNICORN_CONF = """\
# Ansible managed
wsgi_app = "hello:create_app()"
workers = 3
worker_class = "gthread"
threads = 8
timeout = 30
keepalive = 75
"""

UPSTREAM = """\
upstream hello_gunicorn {
    server unix:/run/hello.sock fail_timeout=0;
    # Reuse connections to Gunicorn instead of opening one per request (gthread keeps them).
    keepalive 16;
    keepalive_timeout 60s;
}
"""


def test_deployed_setting_from_the_hosts_files():
    assert frontier.deployed_setting(GUNICORN_CONF, UPSTREAM) == frontier.Setting(
        "gthread", 3, 8, 16
    )
    without = "upstream hello_gunicorn {\n    server unix:/run/hello.sock fail_timeout=0;\n}\n"
    assert frontier.deployed_setting(GUNICORN_CONF, without).keepalive == 0
    sync = GUNICORN_CONF.replace('"gthread"', '"sync"').replace("threads = 8", "threads = 1")
    assert frontier.deployed_setting(sync, without) == frontier.Setting("sync", 3, 1, 0)
    with pytest.raises(ValueError):
        frontier.deployed_setting("workers = 3\n", UPSTREAM)


def workload(rps, fast_p99, errors=0):
    return {
        "rps": rps,
        "fast_p50": fast_p99 / 4,
        "fast_p99": fast_p99,
        "slow_p99": 60.0,
        "errors": errors,
    }


POINTS = [
    {
        "label": "gthread w3 t8 ka16",
        "mixed": workload(2000, 40),
        "fast": workload(5000, 30),
        "seed_mixed": workload(500, 20),
        "seed_fast": workload(4000, 10),
        "pss_kb": 150 * 1024,
    },
    {
        "label": "sync w5",
        "mixed": workload(800, 15, errors=2),
        "fast": workload(4200, 9),
        "seed_mixed": workload(400, 20),
        "seed_fast": workload(4200, 12),
        "pss_kb": 200 * 1024,
    },
]
SEED = {"mixed": workload(450, 20), "fast": workload(4100, 11), "pss_kb": 160 * 1024}


def test_frontier_table():
    rows = frontier.frontier_table(POINTS, SEED, "gthread w3 t8 ka16")
    assert len(rows) == 2 + 2 + 1
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert header == frontier.TABLE_COLUMNS
    assert all(row.count("|") == len(frontier.TABLE_COLUMNS) + 1 for row in rows)
    default = [cell.strip() for cell in rows[2].strip("|").split("|")]
    assert default[0] == "**gthread w3 t8 ka16** (current default)"
    cells = dict(zip(header, default))
    assert cells["mixed req/s"] == "2000"
    assert cells["fast p99 ms"] == "40.00"
    assert cells["fast-only req/s"] == "5000"
    assert cells["PSS MB"] == "150"
    assert cells["errors"] == "0"
    # The x seed columns, in order: mixed req/s, mixed fast p99, fast-only req/s, fast-only p99.
    ratios = [cell for name, cell in zip(header, default) if name == "x seed"]
    assert ratios == ["4.00x", "2.00x", "1.25x", "3.00x"]
    sync = [cell.strip() for cell in rows[3].strip("|").split("|")]
    assert sync[0] == "sync w5" and sync[-1] == "2"
    seed = [cell.strip() for cell in rows[4].strip("|").split("|")]
    assert seed[0].startswith("seed")
    assert seed[2] == "-"  # no ratio of the seed with itself


def test_nice_ticks():
    assert frontier.nice_ticks(10) == [0, 2, 4, 6, 8, 10]
    assert frontier.nice_ticks(5300) == [0, 2000, 4000, 6000]
    assert frontier.nice_ticks(42) == [0, 10, 20, 30, 40, 50]
    assert frontier.nice_ticks(0) == [0, 1]
    ticks = frontier.nice_ticks(0.37)
    assert ticks[0] == 0 and ticks[-1] >= 0.37 and len(ticks) <= 7


def parse_svg(text):
    return ET.fromstring(text)


def test_chart_has_one_point_per_setting_and_marks_seed_and_default():
    svg = frontier.frontier_svg(POINTS, SEED, "gthread w3 t8 ka16")
    root = parse_svg(svg)
    assert root.tag == f"{SVG}svg"
    circles = root.findall(f".//{SVG}circle")
    diamonds = root.findall(f".//{SVG}path[@class='default']")
    squares = root.findall(f".//{SVG}rect[@class='seed']")
    # Two panels (mixed, fast only): in each one circle per other setting, the default's
    # diamond and the seed's square.
    assert (len(circles), len(diamonds), len(squares)) == (2, 2, 2)
    titles = [element.find(f"{SVG}title").text for element in circles + diamonds + squares]
    assert titles.count("sync w5") == 2
    assert titles.count("gthread w3 t8 ka16 (default)") == 2
    assert titles.count("seed: sync -w 4") == 2
    texts = "".join(root.itertext())
    assert "Mixed: 90 % fast, 10 % 50 ms of I/O" in texts
    assert "fast requests' p99 (ms)" in texts
    assert "requests/s" in texts


def test_chart_places_points_by_throughput_and_p99():
    root = parse_svg(frontier.frontier_svg(POINTS, SEED, "gthread w3 t8 ka16"))
    circle = root.findall(f".//{SVG}circle")[0]  # sync w5 on the mixed panel: 800 req/s, 15 ms
    diamond = root.findall(f".//{SVG}path[@class='default']")[0]  # 2000 req/s, 40 ms
    square = root.findall(f".//{SVG}rect[@class='seed']")[0]  # 450 req/s, 20 ms
    diamond_x, diamond_y = (
        float(n) for n in re.match(r"M([\d.]+),([\d.]+)", diamond.get("d")).groups()
    )
    diamond_y += 7  # the path starts at the diamond's top corner
    square_x = float(square.get("x")) + 5
    square_y = float(square.get("y")) + 5
    cx, cy = float(circle.get("cx")), float(circle.get("cy"))
    # More throughput is higher up (smaller y), more p99 further right.
    assert diamond_y < cy < square_y
    assert cx < square_x < diamond_x
    # Every mark is inside the first panel.
    assert all(0 < x < frontier.PANEL_W for x in (cx, square_x, diamond_x))


def test_chart_labels_are_escaped_and_missing_figures_left_out():
    points = [
        {
            "label": "a<b&c",
            "mixed": workload(100, 5),
            "fast": {"rps": 100, "fast_p99": None, "errors": 0},
        }
    ]
    svg = frontier.frontier_svg(points, SEED, "nothing")
    root = parse_svg(svg)
    assert "a<b&c" in "".join(root.itertext())
    # The fast-only panel has no point for the setting without a p99.
    assert len(root.findall(f".//{SVG}circle")) == 1


def test_the_default_setting_is_the_roles_on_two_cpus():
    import yaml

    defaults = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "roles/flask_gunicorn/defaults/main.yml").read_text()
    )
    assert (
        defaults["flask_gunicorn_workers"] == "{{ (ansible_facts['processor_nproc'] | int) + 1 }}"
    )
    assert (
        frontier.Setting(
            defaults["flask_gunicorn_worker_class"],
            2 + 1,
            defaults["flask_gunicorn_threads"],
            defaults["flask_gunicorn_upstream_keepalive"],
        )
        == frontier.DEFAULT_SETTING
    )
