"""Where the repository's shipped files live, found from the package itself (editable install)."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "fixtures"
TINY_MODEL = FIXTURES / "tiny-shapes"
SD15_RANDOM = FIXTURES / "sd15-random"
TOKENIZER = TINY_MODEL / "tokenizer"
SD15_HUB_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
