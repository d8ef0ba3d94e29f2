"""What a run was measured on, in words a reader of the lesson can use: the model described (never the folder
it was loaded from), the device, the library versions, the seeds and the date.

The errata and the report both open with this, and a verdict read without it misleads: a refutation on the
embedded 32-pixel model is not one on Stable Diffusion 1.5. It is built from claims.json's `environment`, so the
page and the JSON say the same.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths

#: What each model the options know is, for a reader who has never seen this project.
MODEL_WORDS: dict[str, tuple[str, str]] = {
    # kind: (short name, used inside a sentence; what it is)
    "tiny": ("the embedded tiny model",
             "a trained 32-pixel text-to-image latent diffusion model of coloured shapes, in diffusers format, "
             "with Stable Diffusion 1.5's stock scheduler config"),
    "sd15": ("Stable Diffusion 1.5", f"{paths.SD15_HUB_ID}, 512 pixels"),
    "sd15-random": ("Stable Diffusion 1.5's architecture with random weights",
                    "for timing and counting U-Net calls only: its images mean nothing"),
}


@dataclass(frozen=True)
class Model:
    """A run's model in words: `name` fits inside a sentence ("on <name>"), `what` says what it is."""

    name: str
    what: str

    @property
    def described(self) -> str:
        return f"{self.name}: {self.what}" if self.what else self.name


def looks_local(text: str) -> bool:
    """Whether a string is a filesystem path (absolute, home-relative or with a drive letter), not a hub id."""
    return bool(re.match(r"^(/|~|[A-Za-z]:[\\/]|\.{1,2}[\\/])", text)) or "\\" in text


def model(environment: dict[str, Any]) -> Model:
    """The run's model in words. A local folder is named by its last component only, a hub id as it is."""
    kind = str(environment.get("model") or "?")
    source = str(environment.get("model_source") or "")
    if kind in MODEL_WORDS:
        name, what = MODEL_WORDS[kind]
        return Model(name, what)
    if kind == "hub" or (source and not looks_local(source)):
        return Model(f"the model {source or kind}", "from the Hugging Face hub")
    folder = Path(source).name if source else kind
    return Model(f"the local model '{folder}'", "a diffusers folder given with --model")


def device(environment: dict[str, Any]) -> str:
    """"a CPU (float32)" or the GPU's name with its dtype."""
    env = environment
    dev = str(env.get("device") or "?")
    name = env.get("gpu") or ("a CPU" if dev == "cpu" else dev)
    return f"{name} ({env['dtype']})" if env.get("dtype") else str(name)


def public(value: Any) -> Any:
    """A value fit for a page others read: local paths reduced to the part inside the project, or to their last
    component. Applied to the environment table, so no user's home folder appears in a report."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [public(v) for v in value]
    if isinstance(value, str) and looks_local(value):
        try:
            return str(Path(value).resolve().relative_to(paths.REPO_ROOT))
        except (ValueError, OSError):
            return f"…/{Path(value).name}"
    return value


def facts(environment: dict[str, Any]) -> list[tuple[str, str]]:
    """The lines a reader needs first: (label, value) for model, device, versions, seeds and date."""
    env = environment
    out = [("model", model(env).described), ("device", device(env))]
    for lib in ("diffusers", "torch"):
        if env.get(lib):
            out.append((lib, str(env[lib])))
    if env.get("seeds") is not None:
        text = f"{env['seeds']} prompt-seed pairs from seed {env.get('seed_base', 0)}"
        if env.get("ddpm_seeds"):
            text += f" ({env['ddpm_seeds']} for the claims paired with DDPM)"
        out.append(("seeds", text))
    if env.get("started"):
        out.append(("date", date(str(env["started"]))))
    return out


def date(iso: str) -> str:
    """An ISO timestamp as a reader writes it: "2026-12-03 08:46 UTC" (other offsets kept as they are)."""
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.utcoffset() == dt.timedelta(0):
        return when.strftime("%Y-%m-%d %H:%M UTC")
    return when.isoformat(sep=" ", timespec="minutes")


def one_line(environment: dict[str, Any]) -> str:
    """The facts as one phrase: what every verdict of the run holds for ("the embedded tiny model (a trained ...),
    on a CPU (float32), diffusers 0.42.1, torch 2.13.0, 32 prompt-seed pairs from seed 0, run of 2026-...")."""
    env = environment
    m = model(env)
    parts = [f"{m.name} ({m.what})" if m.what else m.name, f"on {device(env)}"]
    parts += [f"{lib} {env[lib]}" for lib in ("diffusers", "torch") if env.get(lib)]
    text = ", ".join(parts)
    rest = dict(facts(env))
    if "seeds" in rest:
        text += f", {rest['seeds']}"
    if "date" in rest:
        text += f", run of {rest['date']}"
    return text
