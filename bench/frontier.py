"""make bench's frontier: the worker settings the role can choose, their table and their chart.

A setting is what the role's variables give Gunicorn and nginx: the worker class
(flask_gunicorn_worker_class), workers (flask_gunicorn_workers), threads (flask_gunicorn_threads)
and the idle connections nginx keeps to Gunicorn (flask_gunicorn_upstream_keepalive; the role turns
it off for the sync worker class). Pure functions: tests/test_bench_frontier.py tests them.
"""

import json
import math
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from results import fmt, ratio


@dataclass(frozen=True)
class Setting:
    worker_class: str
    workers: int
    threads: int
    keepalive: int

    def __post_init__(self):
        if self.worker_class not in ("sync", "gthread"):
            raise ValueError(f"worker class {self.worker_class!r}: sync or gthread")
        if self.workers < 1 or self.threads < 1 or self.keepalive < 0:
            raise ValueError(f"workers and threads from 1, keep-alive from 0: {self}")
        if self.worker_class == "sync" and (self.threads != 1 or self.keepalive != 0):
            # Gunicorn runs gthread whenever threads > 1; the role turns keep-alive off for sync.
            raise ValueError("a sync setting has 1 thread and no upstream keep-alive")

    @property
    def label(self):
        if self.worker_class == "sync":
            return f"sync w{self.workers}"
        return f"gthread w{self.workers} t{self.threads} ka{self.keepalive}"

    def extra_vars(self):
        """The -e override of ansible-playbook that deploys this setting."""
        return json.dumps(
            {
                "flask_gunicorn_worker_class": self.worker_class,
                "flask_gunicorn_workers": self.workers,
                "flask_gunicorn_threads": self.threads,
                "flask_gunicorn_upstream_keepalive": self.keepalive,
            }
        )


# The role's defaults on a 2-CPU host (workers: CPUs + 1): what the frontier measures first when
# the host runs them; bench.py reads the host's actual setting.
DEFAULT_SETTING = Setting("gthread", 3, 8, 16)


def parse_grid(spec):
    """Settings from "gthread:3:8:16,sync:5,...": class:workers[:threads[:keep-alive]]."""
    settings = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split(":")
        if parts[0] == "sync":
            if len(parts) != 2:
                raise ValueError(f"{item!r}: sync:WORKERS")
            setting = Setting("sync", int(parts[1]), 1, 0)
        elif parts[0] == "gthread":
            if len(parts) != 4:
                raise ValueError(f"{item!r}: gthread:WORKERS:THREADS:KEEPALIVE")
            setting = Setting("gthread", int(parts[1]), int(parts[2]), int(parts[3]))
        else:
            raise ValueError(f"{item!r}: sync:WORKERS or gthread:WORKERS:THREADS:KEEPALIVE")
        if setting in settings:
            raise ValueError(f"{item!r} is in the grid twice")
        settings.append(setting)
    return settings


def deployed_setting(gunicorn_conf, upstream_conf):
    """The setting a host runs, from its gunicorn.conf.py and nginx upstream file."""

    def value(name):
        match = re.search(rf"^{name} = (.+)$", gunicorn_conf, re.MULTILINE)
        if not match:
            raise ValueError(f"no {name} in gunicorn.conf.py")
        return json.loads(match.group(1))

    worker_class, workers, threads = value("worker_class"), value("workers"), value("threads")
    keepalive = re.search(r"^\s*keepalive (\d+);", upstream_conf, re.MULTILINE)
    keepalive = int(keepalive.group(1)) if keepalive else 0
    if worker_class == "sync":
        return Setting("sync", workers, 1, 0)
    return Setting(worker_class, workers, threads, keepalive)


# The table.

TABLE_COLUMNS = [
    "setting",
    "mixed req/s",
    "x seed",
    "fast p50 ms",
    "fast p99 ms",
    "x seed",
    "slow p99 ms",
    "fast-only req/s",
    "x seed",
    "fast-only p99 ms",
    "x seed",
    "PSS MB",
    "errors",
]


def frontier_table(points, seed, default_label):
    """Markdown rows: one per setting, then the seed's. points: [{"label", "mixed", "fast",
    "seed_mixed", "seed_fast", "pss_kb"}], each workload a summary of bench's runs (medians); the
    "x seed" columns compare with the seed's runs interleaved with that setting's, in the same
    minutes. seed: {"mixed", "fast", "pss_kb"} over all of them."""
    rows = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|---" * len(TABLE_COLUMNS) + "|"]

    def cells(label, mixed, fast, pss_kb, seed_mixed=None, seed_fast=None):
        return [
            label,
            fmt(mixed["rps"], 0),
            fmt(ratio(mixed["rps"], seed_mixed and seed_mixed["rps"]), 2, "x"),
            fmt(mixed["fast_p50"]),
            fmt(mixed["fast_p99"]),
            fmt(ratio(mixed["fast_p99"], seed_mixed and seed_mixed["fast_p99"]), 2, "x"),
            fmt(mixed["slow_p99"]),
            fmt(fast["rps"], 0),
            fmt(ratio(fast["rps"], seed_fast and seed_fast["rps"]), 2, "x"),
            fmt(fast["fast_p99"]),
            fmt(ratio(fast["fast_p99"], seed_fast and seed_fast["fast_p99"]), 2, "x"),
            fmt(pss_kb / 1024 if pss_kb is not None else None, 0),
            str(mixed["errors"] + fast["errors"]),
        ]

    for point in points:
        label = point["label"]
        if label == default_label:
            label = f"**{label}** (current default)"
        row = cells(
            label,
            point["mixed"],
            point["fast"],
            point.get("pss_kb"),
            point.get("seed_mixed"),
            point.get("seed_fast"),
        )
        rows.append("| " + " | ".join(row) + " |")
    row = cells("seed: sync -w 4, plain proxy", seed["mixed"], seed["fast"], seed.get("pss_kb"))
    rows.append("| " + " | ".join(row) + " |")
    return rows


# The chart.


def nice_ticks(high, count=5):
    """Ticks from 0 to at least high, at a step of 1, 2 or 5 times a power of ten."""
    if high <= 0:
        return [0, 1]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _tick_label(value):
    return f"{value:g}" if value < 10000 else f"{value / 1000:g}k"


PANEL_W, PANEL_H = 460, 340
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 64, 16, 40, 48


def _panel(x0, title, entries, x_label):
    """One panel's SVG elements: entries [(label, kind, p99_ms, rps)], kind one of "setting",
    "default", "seed"; x is the p99, y the throughput, both from zero."""
    plot_w = PANEL_W - MARGIN_L - MARGIN_R
    plot_h = PANEL_H - MARGIN_T - MARGIN_B
    usable = [entry for entry in entries if entry[2] is not None and entry[3] is not None]
    x_ticks = nice_ticks(max((entry[2] for entry in usable), default=1) * 1.05)
    y_ticks = nice_ticks(max((entry[3] for entry in usable), default=1) * 1.05)

    def sx(value):
        return x0 + MARGIN_L + value / x_ticks[-1] * plot_w

    def sy(value):
        return MARGIN_T + plot_h - value / y_ticks[-1] * plot_h

    out = [
        f'<text x="{x0 + PANEL_W / 2:.1f}" y="22" text-anchor="middle" class="title">'
        f"{escape(title)}</text>",
        f'<rect x="{x0 + MARGIN_L}" y="{MARGIN_T}" width="{plot_w}" height="{plot_h}" '
        'class="plot"/>',
    ]
    for tick in x_ticks:
        x = sx(tick)
        out.append(
            f'<line x1="{x:.1f}" y1="{MARGIN_T}" x2="{x:.1f}" y2="{MARGIN_T + plot_h}" '
            'class="grid"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{MARGIN_T + plot_h + 16}" text-anchor="middle">'
            f"{_tick_label(tick)}</text>"
        )
    for tick in y_ticks:
        y = sy(tick)
        out.append(
            f'<line x1="{x0 + MARGIN_L}" y1="{y:.1f}" x2="{x0 + MARGIN_L + plot_w}" y2="{y:.1f}" '
            'class="grid"/>'
        )
        out.append(
            f'<text x="{x0 + MARGIN_L - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_tick_label(tick)}</text>"
        )
    out.append(
        f'<text x="{x0 + MARGIN_L + plot_w / 2:.1f}" y="{PANEL_H - 10}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text transform="translate({x0 + 16},{MARGIN_T + plot_h / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">requests/s</text>'
    )
    labels = _place_labels(
        [(label, sx(p99), sy(rps)) for label, _, p99, rps in usable],
        x0 + MARGIN_L + plot_w * 0.6,
    )
    for (label, kind, p99, rps), (label_x, label_y, anchor) in zip(usable, labels):
        x, y = sx(p99), sy(rps)
        if kind == "seed":
            out.append(
                f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" class="seed">'
                f"<title>{escape(label)}</title></rect>"
            )
        elif kind == "default":
            out.append(
                f'<path d="M{x:.1f},{y - 7:.1f} L{x + 7:.1f},{y:.1f} L{x:.1f},{y + 7:.1f} '
                f'L{x - 7:.1f},{y:.1f} Z" class="default"><title>{escape(label)}</title></path>'
            )
        else:
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" class="setting">'
                f"<title>{escape(label)}</title></circle>"
            )
        if label_y - (y - 6) >= 12:  # moved down past other labels: a line back to its mark
            out.append(
                f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{label_x:.1f}" y2="{label_y - 3:.1f}" '
                'class="leader"/>'
            )
        out.append(
            f'<text x="{label_x:.1f}" y="{label_y:.1f}" text-anchor="{anchor}" class="label">'
            f"{escape(label)}</text>"
        )
    return out


def _place_labels(marks, right_from, char_width=5.6, line=12):
    """Where each mark's label goes: [(x, y, text-anchor)], for marks [(label, x, y)]. A label is
    right of its mark, or left of it when the mark is right of right_from, and moved down until it
    overlaps no label placed before it (marks from the top down)."""
    placed = {}
    boxes = []
    for index in sorted(range(len(marks)), key=lambda i: (marks[i][2], marks[i][1])):
        label, x, y = marks[index]
        width = char_width * len(label)
        if x > right_from:
            anchor, left = "end", x - 8 - width
        else:
            anchor, left = "start", x + 8
        top = y - 6
        while any(
            abs(top - other_top) < line and left < other_right and other_left < left + width
            for other_left, other_right, other_top in boxes
        ):
            top += line
        boxes.append((left, left + width, top))
        placed[index] = (x - 8 if anchor == "end" else x + 8, top, anchor)
    return [placed[index] for index in range(len(marks))]


def frontier_svg(points, seed, default_label):
    """The frontier as an SVG document: two panels, the mixed workload (throughput against the
    fast requests' p99) and fast only (throughput against p99), one point per setting, the current
    default a diamond, the seed's setup a square. Arguments as frontier_table's."""
    panels = []
    for index, (workload, title, x_label) in enumerate(
        [
            ("mixed", "Mixed: 90 % fast, 10 % 50 ms of I/O", "fast requests' p99 (ms)"),
            ("fast", "Fast only", "p99 (ms)"),
        ]
    ):
        entries = [
            (
                point["label"] + (" (default)" if point["label"] == default_label else ""),
                "default" if point["label"] == default_label else "setting",
                point[workload]["fast_p99"],
                point[workload]["rps"],
            )
            for point in points
        ]
        entries.append(
            ("seed: sync -w 4", "seed", seed[workload]["fast_p99"], seed[workload]["rps"])
        )
        panels += _panel(index * PANEL_W, title, entries, x_label)
    width, height = 2 * PANEL_W, PANEL_H + 24
    style = (
        "text{font-family:sans-serif;font-size:11px;fill:#222}"
        ".title{font-size:13px;font-weight:bold}"
        ".label{font-size:10px;fill:#444}"
        ".plot{fill:#fff;stroke:#888}"
        ".grid{stroke:#e4e4e4}"
        ".leader{stroke:#aaa;stroke-width:0.6}"
        ".setting{fill:#3a6ea5}"
        ".default{fill:#e08a00;stroke:#7a4b00}"
        ".seed{fill:#c0392b}"
    )
    legend = (
        f'<text x="{MARGIN_L}" y="{height - 8}">circle: a setting of the role; diamond: the '
        "current default; square: the seed's setup. Up and to the left is better.</text>"
    )
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">',
            f"<style>{style}</style>",
            f'<rect width="{width}" height="{height}" fill="#fafafa"/>',
            *panels,
            legend,
            "</svg>",
            "",
        ]
    )
