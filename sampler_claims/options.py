"""Command-line settings of a claims run, and how `--model auto`, `--device auto` and `--dtype auto` resolve.

Everything here is checked once at start-up so that bad input is one usage error that names the fix,
not the same stack trace repeated in every test. torch is imported only where a device or dtype is resolved:
the checks that need no device (`check_early`) run before it, so a typo is reported in about a second.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import paths
from .registry import TIMING

if TYPE_CHECKING:
    import torch

MODEL_CHOICES = ("auto", "tiny", "sd15", "sd15-random")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: The --dtype names; each is the name of a torch dtype (torch_dtype).
DTYPES = ("float32", "float16", "bfloat16")
QUALITY_MODES = ("auto", "checker", "clip")
HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
DEFAULT_SEEDS = 32  # sized by power: see registry.SEEDS_POWER
DEFAULT_SEED_BASE = 0
DEFAULT_REPORT = "reports/index.html"


class SettingsError(ValueError):
    """Bad command-line input; the message says what to pass instead."""


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one run: what is measured, on what, and why that was chosen."""

    model_arg: str
    model_kind: str  # tiny | sd15 | sd15-random | folder | hub
    model_source: str  # a folder path or a hub id
    model_reason: str
    device: str
    dtype_name: str
    seeds: int
    report_path: Path
    seed_base: int = DEFAULT_SEED_BASE
    #: --timing-rounds (None: the registry's timing_rounds).
    timing_rounds: int | None = None
    deterministic: bool = False
    offload: bool = False
    size: int | None = None
    #: --max-batch: at most this many seeds per pipeline call (None: the engine measures what fits).
    max_batch: int | None = None
    #: --compile: torch.compile of the U-Net (inductor), on the CPU and on CUDA.
    compile: bool = False
    #: --channels-last: the U-Net in channels_last memory format (the images may change in the last bits).
    channels_last: bool = False

    @property
    def dtype(self) -> torch.dtype:
        return torch_dtype(self.dtype_name)

    @property
    def trained(self) -> bool:
        """Whether quality claims mean something on this model (random weights make them moot)."""
        return self.model_kind != "sd15-random"

    @property
    def model_key(self) -> str:
        """Identity of the loaded weights and placement, used in generation cache keys."""
        return f"{self.model_kind}:{self.model_source}:{self.device}:{self.dtype_name}:{self.size}"


def positive_int(text: str) -> int:
    """argparse type for --seeds and --timing-rounds: a usage error for 0, negatives and non-numbers.

    It raises ArgumentTypeError, whose message argparse prints as is (a plain ValueError would be
    reduced to "invalid positive_int value").
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type for --budget: minutes, more than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes a number of minutes, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 minutes, got {text}")
    return value


def default_timing_rounds() -> int:
    """The timing rounds the registry sizes (the default of --timing-rounds), read without importing the timing
    module (which imports torch)."""
    from .registry import get

    return get("linear-time").t("timing_rounds", int)


def check_claim_ids(ids: Iterable[str], known: Iterable[str]) -> None:
    """Every --claim must name a claim; a typo gets the closest ids (difflib), before anything loads."""
    known = list(known)
    for cid in ids:
        if cid in known:
            continue
        close = difflib.get_close_matches(cid, known, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise SettingsError(f"--claim {cid!r} is not a claim id.{hint} (pytest --claims-list lists every id)")


def looks_like_path(arg: str) -> bool:
    """A --clip-model (or --model) value meant as a local folder rather than a hub id (owner/name): absolute,
    relative to here or home, or with more than one separator."""
    return (arg.startswith(("/", "./", "../", "~", ".\\")) or "\\" in arg
            or (os.sep in arg and not HUB_ID_PATTERN.match(arg)) or arg.count("/") > 1)


def check_clip_model(arg: str) -> None:
    """--clip-model PATH to a folder that is not there is a usage error now, not an inconclusive run later."""
    if arg in ("", "auto", "tiny") or not looks_like_path(arg):
        return
    path = Path(arg).expanduser()
    if not path.exists():
        raise SettingsError(f"--clip-model {arg}: no such folder. Pass a local CLIP folder (saved with "
                            "save_pretrained), a hub id such as openai/clip-vit-base-patch16, or auto")
    if not path.is_dir():
        raise SettingsError(f"--clip-model {arg}: not a folder. Pass the folder a CLIP was saved to with "
                            "save_pretrained, a hub id such as openai/clip-vit-base-patch16, or auto")


def check_early(*, claim_ids: Iterable[str] = (), clip_model: str = "auto", known_claims: Iterable[str] = ()) -> None:
    """The checks that need neither torch nor a device, run first so that a typo costs a second."""
    check_claim_ids(claim_ids, known_claims)
    check_clip_model(clip_model)


def native_size(kind: str, source: str) -> int | None:
    """The side in pixels a model was trained at, read from its folder's configs without loading it (the U-Net's
    sample_size times the VAE's downscaling); 512 for SD 1.5 not on disk; None when unknown."""
    folder = Path(source)
    try:
        unet = json.loads((folder / "unet" / "config.json").read_text())
        vae = json.loads((folder / "vae" / "config.json").read_text())
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError):
        return 512 if kind in ("sd15", "sd15-random") else None


def size_advice(kind: str, source: str) -> str:
    """What --size to pass on this model: its native size, which fits its VAE and U-Net."""
    native = native_size(kind, source)
    if native is None:
        return "leave --size out to use the model's native size"
    return f"the {kind} model is trained at {native} px: --size {native}, or leave --size out"


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a --dtype name (float32, float16, bfloat16)."""
    import torch

    return getattr(torch, name)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count()


def worker_device(worker: str | None, device_count: int) -> str | None:
    """One GPU per xdist worker: worker gwK gets cuda:(K mod N). None outside xdist or without CUDA."""
    if worker is None or device_count < 1:
        return None
    k = int(re.sub(r"\D", "", worker) or 0)
    return f"cuda:{k % device_count}"


def resolve_device(arg: str, worker: str | None = None) -> str:
    """`worker` is the xdist worker id: with --device auto (or plain cuda) on several GPUs each worker takes
    its own card; --device cuda:N pins every worker to one."""
    if not DEVICE_PATTERN.match(arg):
        raise SettingsError(f"--device {arg!r} is not one of auto, cpu, cuda, cuda:N, mps")
    import torch
    if arg in ("auto", "cuda") and cuda_available():
        mapped = worker_device(worker, cuda_device_count())
        if mapped is not None:
            return mapped
    if arg == "auto":
        if cuda_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if arg.startswith("cuda"):
        if not cuda_available():
            raise SettingsError(
                f"--device {arg} but this torch sees no CUDA device (torch {torch.__version__}, "
                f"built with CUDA: {torch.version.cuda or 'no'}); use --device cpu or --device auto, or install "
                "a CUDA build of torch on a machine with an NVIDIA GPU"
            )
        if ":" in arg and int(arg.split(":")[1]) >= cuda_device_count():
            raise SettingsError(f"--device {arg}: only {cuda_device_count()} CUDA device(s); use cuda:0")
    if arg == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SettingsError("--device mps but MPS is not available here; use --device cpu or auto")
    return arg


def resolve_dtype(arg: str, device: str) -> str:
    """fp16 on CUDA, fp32 elsewhere; fp16 on the CPU is refused (slow, and some CPU kernels lack it)."""
    if arg == "auto":
        return "float16" if device.startswith("cuda") else "float32"
    if arg not in DTYPES:
        raise SettingsError(f"--dtype {arg!r} is not one of auto, {', '.join(DTYPES)}")
    if arg == "float16" and device == "cpu":
        raise SettingsError(
            "--dtype float16 is refused on the CPU: half precision there is slow and not all kernels have it; "
            "use --dtype float32 (or auto, which picks float32 on the CPU and float16 on CUDA)"
        )
    return arg


def is_pipeline_folder(path: Path) -> bool:
    return (path / "model_index.json").is_file()


def sd15_in_cache(hub_id: str = paths.SD15_HUB_ID) -> str | None:
    """The local snapshot folder of a hub pipeline if the HF cache already holds it, else None."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(hub_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure means "not cached"
        return None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_model(arg: str, device: str) -> tuple[str, str, str]:
    """(kind, source, reason) for --model; raises SettingsError naming the choices or the fix."""
    if arg == "tiny":
        return "tiny", str(paths.TINY_MODEL), "asked for with --model tiny"
    if arg == "sd15-random":
        return "sd15-random", str(paths.SD15_RANDOM), "SD 1.5 architecture with random weights (timing only)"
    if arg in ("sd15", paths.SD15_HUB_ID):
        cached = sd15_in_cache()
        if cached:
            return "sd15", cached, "SD 1.5 from the local HF cache"
        if hub_offline():
            raise SettingsError(
                f"--model sd15: {paths.SD15_HUB_ID} is not in the local HF cache and HF_HUB_OFFLINE is set. "
                f"Fetch it where there is network (huggingface-cli download {paths.SD15_HUB_ID}), or pass "
                "--model PATH to a local copy; --model auto falls back to the embedded tiny model"
            )
        return "sd15", paths.SD15_HUB_ID, "SD 1.5 from the hub (not in the local cache)"
    if arg == "auto":
        if not device.startswith("cuda"):
            return "tiny", str(paths.TINY_MODEL), f"auto: no CUDA device (device={device}), embedded model"
        cached = sd15_in_cache()
        if cached:
            return "sd15", cached, "auto: CUDA and SD 1.5 in the local HF cache"
        if not hub_offline() and _hub_reachable():
            return "sd15", paths.SD15_HUB_ID, "auto: CUDA, SD 1.5 from the hub"
        return "tiny", str(paths.TINY_MODEL), (
            "auto: CUDA but SD 1.5 is neither cached nor reachable on the hub; embedded model "
            f"(fetch {paths.SD15_HUB_ID} or pass --model PATH to use it)"
        )
    path = Path(arg).expanduser()
    if path.exists():
        if not path.is_dir() or not is_pipeline_folder(path):
            raise SettingsError(
                f"--model {arg}: not a diffusers pipeline folder: model_index.json missing. Pass a folder "
                "saved with save_pretrained, or one of: " + ", ".join(MODEL_CHOICES)
            )
        return "folder", str(path.resolve()), "local diffusers folder"
    if HUB_ID_PATTERN.match(arg):
        cached = sd15_in_cache(arg)
        if cached:
            return "hub", cached, f"{arg} from the local HF cache"
        if hub_offline():
            raise SettingsError(
                f"--model {arg}: not in the local HF cache and HF_HUB_OFFLINE is set; download it first or "
                "pass --model PATH"
            )
        return "hub", arg, f"{arg} from the hub"
    raise SettingsError(
        f"--model {arg!r} is not a known model, an existing folder or a hub id (owner/name). "
        f"Choices: {', '.join(MODEL_CHOICES)}, a local diffusers folder, or a hub id"
    )


def check_report_folder(report_path: Path) -> None:
    """The report's folder must be creatable and writable now, not after every test has run."""
    import tempfile

    folder = report_path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sampler-claims-write-check-"):
            pass
    except OSError as exc:
        raise SettingsError(
            f"--claims-report {report_path}: cannot write to the folder {folder} ({exc.strerror or exc}); pass a "
            "path in a writable folder, e.g. --claims-report reports/index.html") from None


def available_memory(device: str) -> int:
    """Bytes free where the generations live: the GPU's free memory on CUDA, the machine's available RAM."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def batch_bytes(size: int, seeds: int) -> int:
    """A lower bound on one batched generation's memory: float32 latents (4 x size/8 squared, doubled by
    CFG) and decoded images (3 x size squared) for every seed. The U-Net's activations need many times more."""
    latent = 4 * (size // 8) ** 2 * 2
    image = 3 * size**2
    return seeds * (latent + image) * 4


def check_size_fits(size: int, seeds: int, device: str, advice: str = "SD 1.5 is trained at 512") -> None:
    """A first check before loading anything: one image's latents and pixels must fit. Whether a chunk of
    seeds fits is measured by the engine (sampler_claims.memory), which splits the seeds into chunks."""
    need, have = batch_bytes(size, 1), available_memory(device)
    if need > have:
        raise SettingsError(
            f"--size {size}: one image needs at least {need / 2**30:,.1f} GiB for its latents and pixels alone, and "
            f"{device} has {have / 2**30:,.1f} GiB free; use a smaller --size ({advice})")


def check_compile(device: str, offload: bool) -> None:
    """--compile: inductor compiles for the CPU (with a C++ compiler) and CUDA; accelerate's offload wraps the
    U-Net's forward in its own hooks, which a compiled forward would bypass."""
    import shutil

    if offload:
        raise SettingsError("--compile and --offload: the offload hooks wrap the U-Net's forward, which --compile "
                            "replaces; drop one of them")
    if not (device == "cpu" or device.startswith("cuda")):
        raise SettingsError(f"--compile compiles the U-Net for the CPU or CUDA, not {device}; drop --compile or "
                            "pass --device cpu")
    if device == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        raise SettingsError("--compile on the CPU needs a C++ compiler for inductor (g++ or clang++ on the PATH); "
                            "install one (e.g. apt-get install g++) or drop --compile")


def _hub_reachable() -> bool:
    """One quick look for SD 1.5's model_index.json on the hub, so auto does not pick an unloadable model."""
    from huggingface_hub import hf_hub_download

    try:
        hf_hub_download(paths.SD15_HUB_ID, "model_index.json", etag_timeout=5)
        return True
    except Exception:  # noqa: BLE001
        return False


def resolve(
    *,
    model: str = "auto",
    device: str = "auto",
    dtype: str = "auto",
    seeds: int = DEFAULT_SEEDS,
    report: str | os.PathLike[str] = DEFAULT_REPORT,
    deterministic: bool = False,
    offload: bool = False,
    size: int | None = None,
    rootdir: Path | None = None,
    seed_base: int = DEFAULT_SEED_BASE,
    timing_rounds: int | None = None,
    worker: str | None = None,
    max_batch: int | None = None,
    compile: bool = False,
    channels_last: bool = False,
) -> Settings:
    """Turn raw option values into Settings, or raise SettingsError with the fix."""
    if seeds < 1:
        raise SettingsError(f"--seeds must be at least 1, got {seeds}; try --seeds {DEFAULT_SEEDS}")
    if seed_base < 0 or seed_base > 2**31:
        raise SettingsError(f"--seed-base must be between 0 and 2**31, got {seed_base}; try --seed-base 1000")
    default_rounds = TIMING["timing_rounds"].value
    timing_rounds = default_rounds if timing_rounds is None else timing_rounds
    if timing_rounds < 2:
        raise SettingsError(f"--timing-rounds must be at least 2 (one round has no interval), got {timing_rounds}; "
                            f"try --timing-rounds {default_rounds}")
    dev = resolve_device(device, worker)
    dtype_name = resolve_dtype(dtype, dev)
    if offload and not dev.startswith("cuda"):
        raise SettingsError("--offload moves models between CPU and GPU and needs --device cuda; drop --offload")
    if compile:
        check_compile(dev, offload)
    kind, source, reason = resolve_model(model, dev)
    if kind == "tiny" and not is_pipeline_folder(Path(source)):
        raise SettingsError(f"the embedded model is missing at {source}; run scripts/train_tiny.py or re-clone")
    if size is not None and (size < 8 or size % 8):
        raise SettingsError(f"--size {size}: give a multiple of 8 pixels; {size_advice(kind, source)}")
    if size is not None:
        check_size_fits(size, min(seeds, max_batch or seeds), dev, size_advice(kind, source))
    report_path = Path(report)
    if not report_path.is_absolute() and rootdir is not None:
        report_path = rootdir / report_path
    check_report_folder(report_path)
    return Settings(
        model_arg=model, model_kind=kind, model_source=source, model_reason=reason, device=dev,
        dtype_name=dtype_name, seeds=seeds, report_path=report_path, deterministic=deterministic,
        offload=offload, size=size, seed_base=seed_base, timing_rounds=timing_rounds, max_batch=max_batch,
        compile=compile, channels_last=channels_last,
    )
