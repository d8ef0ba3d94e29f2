"""The report: claims.json, benchmarks.json, errata.md and one self-contained HTML page beside them.

Images and plots are embedded as base64 data URIs, so the page is one file a reader can mail around.
Every file is written atomically. Evidence PNGs are also written to disk next to claims.json so the
JSON can point at them.
"""
from __future__ import annotations

import base64
import io
import json
import re
import time
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader
from PIL import Image

from . import errata as errata_mod
from . import plain, provenance
from .results import Evidence, Results, atomic_write, row_length, write_json

#: Evidence images wider than this are downscaled and JPEG-encoded to keep the page small.
MAX_EMBED_SIDE = 256
MIN_DISPLAY_SIDE = 96


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


#: The width the page gives a row of images, in CSS pixels (the page is 1180 px wide less its padding).
ROW_WIDTH = 1100
MIN_THUMB_SIDE = 56


def display_side(native: int, per_row: int) -> int:
    """The side an image is shown at: its own size within [MIN_DISPLAY_SIDE, MAX_EMBED_SIDE] (small images
    enlarged so their pixels show), shrunk so that `per_row` of them fit one row of the page."""
    side = max(MIN_DISPLAY_SIDE, min(MAX_EMBED_SIDE, native))
    fits = ROW_WIDTH // max(per_row, 1) - 10
    return max(MIN_THUMB_SIDE, min(side, fits))


_CONSTANT = re.compile(r"\b(?:registry\.)?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{5,})\b")
_REPR = re.compile(r"\b[A-Z]\w*\(((?:\w+=(?:'[^']*'|[^,()]+)(?:, )?)+)\)")
#: Words kept in capitals when a constant's name is spelled out.
_ACRONYMS = {"DDPM", "DDIM", "DPM", "CFG", "SSIM", "CLIP", "SD", "GPU", "CPU", "MSE", "FID", "ODE", "CUDA", "PNDM",
             "KDPM2", "LPIPS", "TF32", "UNET"}


def _spell(name: str) -> str:
    if name in _ACRONYMS:
        return name
    return " ".join(w if w in _ACRONYMS else w.lower() for w in name.split("_"))


def words(text: Any) -> str:
    """Text for a reader, not a programmer: a constant's name spelled as words ("MUCH_WORSE" -> "much worse"),
    a dataclass repr as its fields ("Control(sampler='dpm-solver', good=200)" -> "sampler dpm-solver, good 200")."""
    text = str(text)
    text = _REPR.sub(lambda m: ", ".join(f"{k} {v.strip(chr(39))}" for k, v in
                                         (f.split("=", 1) for f in re.split(r", (?=\w+=)", m.group(1)))), text)
    return _CONSTANT.sub(lambda m: _spell(m.group(1)), text)


def value_text(value: Any) -> str:
    """A threshold's value as a reader writes it: sequences joined, mappings and dataclasses as "key value"."""
    if is_dataclass(value) and not isinstance(value, type):
        return ", ".join(f"{f.name} {value_text(getattr(value, f.name))}" for f in fields(value))
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple: its fields by name
        return ", ".join(f"{k} {value_text(v)}" for k, v in zip(value._fields, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}: {value_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return words(value)


def label(key: Any) -> str:
    """A JSON key as a table label: underscores as spaces."""
    return str(key).replace("_", " ")


def flat(value: Any) -> bool:
    """A small mapping of scalars, shown on one line ("hits 0 · misses 3") rather than as a table."""
    return isinstance(value, dict) and 0 < len(value) <= 8 and \
        all(v is None or isinstance(v, (str, int, float, bool)) for v in value.values())


def evidence_note(items: list[dict[str, Any]]) -> str:
    """What a claim's folded evidence holds ("2 image grids (6 images), 1 plot, 2 tables")."""
    grids = [i for i in items if i["kind"] == "images"]
    parts = []
    if grids:
        n = sum(len(g["images"]) for g in grids)
        parts.append(f"{len(grids)} image grid{'s' * (len(grids) != 1)} ({n} image{'s' * (n != 1)})")
    for kind, word in (("plot", "plot"), ("table", "table")):
        k = sum(1 for i in items if i["kind"] == kind)
        if k:
            parts.append(f"{k} {word}{'s' * (k != 1)}")
    return ", ".join(parts)


def _scalars(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_scalars(v) and not isinstance(v, (list, tuple)) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def records(value: Any) -> bool:
    """A mapping of rows that share their keys (the plan's groups): shown as one table with a header row."""
    if not isinstance(value, dict) or len(value) < 2 or not all(isinstance(v, dict) for v in value.values()):
        return False
    keys = [tuple(v) for v in value.values()]
    return len(set(keys)) == 1 and all(_scalars(x) for v in value.values() for x in v.values())


def _by_exercise(sections: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The claims' sections grouped by exercise, in the registry's order: the table of contents' second level."""
    out: dict[str, list[dict[str, Any]]] = {}
    for s in sections:
        out.setdefault(s["rec"].claim.exercise, []).append(s)
    return list(out.items())


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
                native = int(np.asarray(ev.data["images"][0]).shape[1]) if ev.data["images"] else MIN_DISPLAY_SIDE
                per_row = ev.data.get("per_row") or row_length(ev.data["captions"])
                items.append({"kind": "images", "title": ev.title, "side": display_side(native, per_row),
                              "per_row": per_row, "images": list(zip(uris, ev.data["captions"]))})
            elif ev.kind == "series":
                items.append({"kind": "plot", "title": ev.title, "uri": plot_series(ev),
                              "wide": bool(ev.data.get("groups"))})
            else:
                items.append({"kind": "table", "title": ev.title, **ev.data})
        verdict, reason = rec.final_verdict
        shown = "not run" if rec.outcome == "not run" and rec.verdict is None else verdict
        sections.append({"rec": rec, "verdict": verdict, "shown": shown, "css": shown.replace(" ", ""),
                         "reason": reason, "plain": plain.for_record(rec), "evidence": items,
                         "key": str(rec.metrics.get("key", "")), "evidence_note": evidence_note(items),
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
    env.filters["words"] = words
    env.filters["value"] = value_text
    env.filters["label"] = label
    env.tests["flat"] = flat
    env.tests["records"] = records
    template = env.get_template("report.html.j2")
    context = {"results": results, "counts": results.counts(), "sections": sections,
               "environment": provenance.public(results.environment), "facts": provenance.facts(results.environment),
               "benchmarks": benchmarks, "comparison": results.comparison, "errata": errata,
               "errata_name": errata_path.name, "exercises": _by_exercise(sections)}
    render_s = time.perf_counter() - started
    html = template.render(**context, render_s=render_s, size_note="")
    size_mb = len(html.encode()) / 1e6
    html = template.render(**context, render_s=time.perf_counter() - started, size_note=f"{size_mb:.2f} MB")
    payload["report"] = {"html": html_path.name, "errata": errata_path.name, "size_mb": round(size_mb, 3),
                         "render_seconds": round(time.perf_counter() - started, 3)}
    write_json(json_path, payload)
    atomic_write(errata_path, errata.markdown())
    atomic_write(html_path, html)
    return [html_path, json_path, errata_path]
