"""The report: claims.json, benchmarks.json, errata.md and one self-contained HTML page beside them.

Images and plots are embedded as base64 data URIs, so the page is one file a reader can mail around.
Every file is written atomically. Evidence PNGs are also written to disk next to claims.json so the
JSON can point at them.
"""
from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader
from PIL import Image

from . import errata as errata_mod
from . import plain
from .results import Evidence, Results, atomic_write, write_json

#: Evidence images wider than this are downscaled and JPEG-encoded to keep the page small.
MAX_EMBED_SIDE = 256
MIN_DISPLAY_SIDE = 128


def _encode(image: np.ndarray) -> tuple[str, bytes]:
    """(data URI, PNG bytes) for one uint8 image; big images go in as downscaled JPEG."""
    pil = Image.fromarray(image)
    png = io.BytesIO()
    pil.save(png, format="PNG")
    if max(pil.size) > MAX_EMBED_SIDE:
        small = pil.copy()
        small.thumbnail((MAX_EMBED_SIDE, MAX_EMBED_SIDE))
        buf = io.BytesIO()
        small.convert("RGB").save(buf, format="JPEG", quality=85)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode(), png.getvalue()
    return "data:image/png;base64," + base64.b64encode(png.getvalue()).decode(), png.getvalue()


def plot_series(ev: Evidence) -> str:
    """A matplotlib line plot of a series evidence, rendered to a PNG data URI in memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = ev.data
    fig, ax = plt.subplots(figsize=(9, 4.6) if d.get("groups") else (6, 3.4), dpi=96)
    try:
        x = d["x"]
        for name, ys in d["series"].items():
            ax.plot(x[: len(ys)], ys, "o-", label=name)
        groups = d.get("groups") or {}
        colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(groups), 1)))
        for k, (name, pts) in enumerate(groups.items()):
            ax.plot(pts["x"], pts["y"], "o^sDv<>"[k % 7] + "-", ms=4, lw=0.9, color=colours[k], label=name)
        if d.get("front"):
            ax.plot(d["front"]["x"], d["front"]["y"], "k--", lw=2, alpha=0.6, label="Pareto front")
        fit = d.get("fit")
        if fit:
            xs = np.linspace(min(x), max(x), 50)
            ax.plot(xs, fit["a"] + fit["b"] * xs, "--", color="grey",
                    label=f"fit a+b·x, R²={fit.get('r2', float('nan')):.4f}")
        knee = d.get("knee")
        if knee is not None:
            ax.axvline(knee, color="crimson", linestyle=":", label=f"knee = {knee}")
        if d.get("logx"):
            from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))  # ticks at 5, 10, 20, 50, ...
            ax.xaxis.set_major_formatter(ScalarFormatter())  # written 20, not 2x10^1
            ax.xaxis.set_minor_formatter(NullFormatter())
        if d.get("logy"):
            ax.set_yscale("log")
        ax.set_xlabel(d.get("xlabel", ""))
        ax.set_ylabel(d.get("ylabel", ""))
        ax.set_title(ev.title, fontsize=10)
        ax.grid(alpha=0.3)
        if groups:  # many samplers: the legend goes beside the plot, not over the points
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        else:
            ax.legend(fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _benchmarks(config: Any) -> list[dict[str, Any]]:
    """pytest-benchmark's own figures for this session, if it ran any."""
    bs = getattr(config, "_benchmarksession", None) if config is not None else None
    out = []
    for b in getattr(bs, "benchmarks", []) or []:
        try:
            d = b.as_dict(include_data=False)
        except Exception:  # noqa: BLE001 - a benchmark that never ran has no stats
            continue
        stats = d.get("stats", {})
        out.append({
            "name": d.get("name"), "group": d.get("group"), "fullname": d.get("fullname"),
            "extra_info": d.get("extra_info", {}),
            "stats": {k: stats.get(k) for k in ("min", "median", "mean", "max", "stddev", "rounds", "iterations")},
        })
    return out


def write_report(results: Results, html_path: Path, *, config: Any = None) -> list[Path]:
    """Write claims.json, benchmarks.json, evidence PNGs and the HTML page; return the paths written."""
    started = time.perf_counter()
    html_path = Path(html_path)
    folder = html_path.parent
    stem = html_path.stem
    evidence_dir = folder / f"{stem}-evidence"
    evidence_paths: dict[int, list[str]] = {}
    sections = []
    for rec in results.records.values():
        items = []
        for n, ev in enumerate(rec.evidence):
            if ev.kind == "images":
                uris, files = [], []
                for k, img in enumerate(ev.data["images"]):
                    uri, png = _encode(np.asarray(img))
                    f = evidence_dir / rec.claim.id / f"{n:02d}-{k:02d}.png"
                    atomic_write(f, png)
                    files.append(str(f.relative_to(folder)))
                    uris.append(uri)
                evidence_paths[id(ev)] = files
                side = max(MIN_DISPLAY_SIDE, min(MAX_EMBED_SIDE, int(np.asarray(ev.data["images"][0]).shape[1]))) \
                    if ev.data["images"] else MIN_DISPLAY_SIDE
                items.append({"kind": "images", "title": ev.title, "side": side,
                              "images": list(zip(uris, ev.data["captions"]))})
            elif ev.kind == "series":
                items.append({"kind": "plot", "title": ev.title, "uri": plot_series(ev)})
            else:
                items.append({"kind": "table", "title": ev.title, **ev.data})
        verdict, reason = rec.final_verdict
        shown = "not run" if rec.outcome == "not run" and rec.verdict is None else verdict
        sections.append({"rec": rec, "verdict": verdict, "shown": shown, "css": shown.replace(" ", ""),
                         "reason": reason, "plain": plain.for_record(rec), "evidence": items,
                         "metrics_json": json.dumps({k: v for k, v in rec.metrics.items() if k != "key"},
                                                    indent=1, default=str)})
    benchmarks = _benchmarks(config)
    payload = results.to_json(evidence_paths)
    if results.compare_with is not None:
        from .compare import compare

        results.comparison = compare(results.compare_with[1], payload, results.compare_with[0])
        payload["comparison"] = results.comparison.as_dict()
    payload["benchmarks"] = benchmarks
    errata = errata_mod.build(payload)
    errata_path = errata_mod.path_for(html_path)
    json_path = folder / (f"{stem}.claims.json" if stem != "index" else "claims.json")
    bench_path = folder / (f"{stem}.benchmarks.json" if stem != "index" else "benchmarks.json")
    write_json(bench_path, {"benchmarks": benchmarks})
    env = Environment(loader=PackageLoader("sampler_claims", "templates"), autoescape=True)
    template = env.get_template("report.html.j2")
    render_s = time.perf_counter() - started
    html = template.render(results=results, counts=results.counts(), sections=sections,
                           environment=results.environment, benchmarks=benchmarks, render_s=render_s,
                           size_note="", comparison=results.comparison, errata=errata,
                           errata_name=errata_path.name)
    size_mb = len(html.encode()) / 1e6
    html = template.render(results=results, counts=results.counts(), sections=sections,
                           environment=results.environment, benchmarks=benchmarks,
                           render_s=time.perf_counter() - started, size_note=f"{size_mb:.2f} MB",
                           comparison=results.comparison, errata=errata, errata_name=errata_path.name)
    payload["report"] = {"html": html_path.name, "errata": errata_path.name, "size_mb": round(size_mb, 3),
                         "render_seconds": round(time.perf_counter() - started, 3)}
    write_json(json_path, payload)
    atomic_write(errata_path, errata.markdown())
    atomic_write(html_path, html)
    return [html_path, json_path, errata_path]
