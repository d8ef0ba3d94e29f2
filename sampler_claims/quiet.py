"""Keeping notices of the libraries out of the terminal: they are not about the claims.

- transformers logs "`CLIPImageProcessor` requires torchvision (not installed); falling back to ..." when
  diffusers imports its pipelines. The suite never uses torchvision's image backend (CLIP gets PIL images), so
  the notice only pushes the first real line (often a usage error) down the screen.
- diffusers and transformers draw tqdm bars while a model loads ("Loading pipeline components", "Loading
  weights"); they land in the header, between pytest's own lines, even under -q -q.
"""
from __future__ import annotations

import logging

#: The logger transformers' lazy importer writes the torchvision notice to.
IMPORT_LOGGER = "transformers.utils.import_utils"


def _not_torchvision(record: logging.LogRecord) -> bool:
    return "requires torchvision" not in record.getMessage()


def silence_notices() -> None:
    """Drop transformers' torchvision notice. Cheap: touches only the standard logging module, so it can run at
    plugin import, before transformers is imported (the filter sits on the logger, which exists from now on)."""
    logger = logging.getLogger(IMPORT_LOGGER)
    if _not_torchvision not in logger.filters:
        logger.addFilter(_not_torchvision)


def no_loading_bars() -> None:
    """Turn off the loading bars of diffusers and transformers (call before from_pretrained)."""
    import diffusers.utils.logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    try:
        import transformers.utils.logging as transformers_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    transformers_logging.disable_progress_bar()
