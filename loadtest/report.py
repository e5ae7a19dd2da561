"""Merging the workers' tallies into one report; the JSON file and the HTML page of
latency and throughput over time written beside it."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .gen import hist_add

__all__ = ["hist_percentiles", "merge", "write_report"]

COUNTERS = (
    "connections",
    "sent",
    "acked",
    "errors",
    "delivered",
    "caught_up",
    "duplicates",
    "out_of_order",
    "ephemeral",
    "reads_sent",
    "reads_acked",
    "reads_held",
    "connects",
    "connect_failures",
    "disconnects",
    "churned",
    "stalled",
    "resent",
    "syncing",
)


def hist_percentiles(hist: dict[int, int], unit_ms: float = 0.1) -> dict[str, float]:
    """p50/p90/p99/max (ms) of a histogram of ``unit_ms`` buckets (upper bounds)."""
    total = sum(hist.values())
    if not total:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    out: dict[str, float] = {}
    wanted = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)]
    seen = 0
    keys = sorted(hist)
    i = 0
    for key in keys:
        seen += hist[key]
        while i < len(wanted) and seen >= wanted[i][1] * total:
            out[wanted[i][0]] = round((key + 1) * unit_ms, 2)
            i += 1
    out["max"] = round((keys[-1] + 1) * unit_ms, 2)
    return out


def merge(snaps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sum the counters of full snapshots; compute latency, loss and the time series."""
    total: dict[str, Any] = {k: sum(s.get(k, 0) for s in snaps) for k in COUNTERS}
    latency: dict[int, int] = {}
    ack_latency: dict[int, int] = {}
    read_ack_latency: dict[int, int] = {}
    positions: dict[str, list[int]] = {}
    seconds: dict[int, list[Any]] = {}
    t0 = min((s["t0_ns"] for s in snaps if "t0_ns" in s), default=0)
    for s in snaps:
        hist_add(latency, s.get("latency", {}))
        hist_add(ack_latency, s.get("ack_latency", {}))
        hist_add(read_ack_latency, s.get("read_ack_latency", {}))
        for room, (states, filled, top) in s.get("positions", {}).items():
            p = positions.setdefault(room, [0, 0, 0])
            p[0] += states
            p[1] += filled
            p[2] = max(p[2], top)
        shift = (s.get("t0_ns", t0) - t0) // 1_000_000_000
        for sec, (count, hist) in s.get("seconds", {}).items():
            per = seconds.setdefault(int(sec) + shift, [0, {}])
            per[0] += count
            hist_add(per[1], hist)
    close_codes: dict[str, int] = {}
    for s in snaps:
        for code, count in s.get("close_codes", {}).items():
            close_codes[code] = close_codes.get(code, 0) + count
    total["server_close_codes"] = close_codes
    lost = sum(states * top - filled for states, filled, top in positions.values())
    total["lost"] = lost
    total["expected"] = total["delivered"] + total["caught_up"] + lost
    total["latency_ms"] = hist_percentiles(latency)
    # The longest a reader waited for a live delivery (the stalled clients apart).
    total["longest_delivery_gap_ms"] = round(total["latency_ms"].get("max", 0.0) or 0.0, 1)
    # Connections the fault schedule made stop reading: their wait is their own.
    stalled_us = max((s.get("longest_stalled_gap_us", 0) for s in snaps), default=0)
    total["stalled_client_gap_ms"] = round(stalled_us / 1000, 1)
    total["ack_latency_ms"] = hist_percentiles(ack_latency)
    total["read_ack_latency_ms"] = hist_percentiles(read_ack_latency)
    total["generator_cpu_s"] = round(sum(s.get("cpu_s", 0.0) for s in snaps), 2)
    total["errors_sample"] = [e for s in snaps for e in s.get("error_samples", [])][:5]
    total["anomalies_sample"] = [a for s in snaps for a in s.get("anomalies", [])][:40]
    series = []
    for sec in sorted(seconds):
        count, hist = seconds[sec]
        pct = hist_percentiles(hist, unit_ms=1.0)
        series.append({"t": sec, "deliveries": count, "p50": pct["p50"], "p99": pct["p99"]})
    total["series"] = series
    return total


def _polyline(points: list[tuple[float, float]], xmax: float, ymax: float, colour: str) -> str:
    if not points:
        return ""
    w, h = 760.0, 220.0
    coords = " ".join(
        f"{40 + x / max(xmax, 1e-9) * w:.1f},{20 + h - y / max(ymax, 1e-9) * h:.1f}"
        for x, y in points
    )
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>'


def _chart(title: str, lines: list[tuple[str, str, list[tuple[float, float]]]]) -> str:
    xmax = max((x for _, _, pts in lines for x, _ in pts), default=1.0)
    ymax = max((y for _, _, pts in lines for _, y in pts), default=1.0) * 1.1 or 1.0
    body = "".join(_polyline(pts, xmax, ymax, colour) for _, colour, pts in lines)
    legend = " ".join(
        f'<tspan fill="{colour}">{html.escape(name)}</tspan>' for name, colour, _ in lines
    )
    return (
        f"<h2>{html.escape(title)}</h2>"
        '<svg width="820" height="270" style="border:1px solid #ccc">'
        '<line x1="40" y1="240" x2="800" y2="240" stroke="#999"/>'
        '<line x1="40" y1="20" x2="40" y2="240" stroke="#999"/>'
        f'<text x="44" y="16" font-size="12">max {ymax / 1.1:.1f}</text>'
        f'<text x="700" y="258" font-size="12">{xmax:.0f} s</text>'
        f'<text x="300" y="16" font-size="12">{legend}</text>{body}</svg>'
    )


def _page(title: str, report: dict[str, Any]) -> str:
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    runs: list[tuple[str, dict[str, Any]]] = [("", report)]
    for key in ("floor", "redis"):
        sub = report.get(key)
        if isinstance(sub, dict):
            runs.append((f"{key}: ", sub))
    for prefix, run in runs:
        series = run.get("series", [])
        parts.append(
            _chart(
                f"{prefix}deliveries per second",
                [("deliveries/s", "#1f77b4", [(p["t"], p["deliveries"]) for p in series])],
            )
        )
        parts.append(
            _chart(
                f"{prefix}delivery latency (ms)",
                [
                    ("p50", "#2ca02c", [(p["t"], p["p50"]) for p in series]),
                    ("p99", "#d62728", [(p["t"], p["p99"]) for p in series]),
                ],
            )
        )
        steps = run.get("steps_table")
        if steps:
            head = "".join(f"<th>{html.escape(k)}</th>" for k in steps[0])
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>"
                for row in steps
            )
            parts.append(f"<h2>{prefix}steps</h2><table border=1>{head}{rows}</table>")
    shown = {k: v for k, v in report.items() if k not in ("series", "floor", "redis")}
    parts.append(f"<h2>report</h2><pre>{html.escape(json.dumps(shown, indent=2))}</pre>")
    return "".join(parts)


def write_report(path: Path, report: dict[str, Any], title: str) -> Path:
    """Write ``path`` (JSON) and the HTML page beside it; return the page's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    page = path.with_suffix(".html")
    page.write_text(_page(title, report))
    return page
