"""The closed vocabulary of the embedded world and a CLIP-style BPE tokenizer built from it.

Every caption word is one whole token, so the tiny text encoder learns words rather than spellings.
Single letters stay in the vocabulary so that any other lowercase text (the lesson's prompts, say)
still tokenizes, into letters, instead of failing.
"""
from __future__ import annotations

import json
from itertools import product
from pathlib import Path

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "green": (44, 160, 44),
    "blue": (31, 90, 220),
    "yellow": (240, 216, 36),
    "purple": (140, 60, 180),
    "orange": (250, 140, 20),
    "white": (238, 238, 238),
    "black": (28, 28, 28),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")
GLUE_WORDS: tuple[str, ...] = ("a",)
#: The attributes a caption names, in the order the checker scores them.
ATTRIBUTES: tuple[str, ...] = ("shape", "fg")

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
#: Short context: captions are three words, and a short context keeps the text encoder cheap.
MODEL_MAX_LENGTH = 16


def caption(shape: str, fg: str) -> str:
    """The one caption template of the world, e.g. 'a red circle'. The background is never named."""
    return f"a {fg} {shape}"


#: The values each attribute takes.
VALUES: dict[str, tuple[str, ...]] = {"shape": SHAPES, "fg": tuple(COLORS)}


def caption_of(attrs: dict[str, str]) -> str:
    """The caption of an attribute dict (the checker's parse_prompt inverts it)."""
    return caption(attrs["shape"], attrs["fg"])


def swapped(attrs: dict[str, str], attr: str, rng) -> dict[str, str]:
    """The same attributes with `attr` changed to another of its values, at random: one wrong attribute."""
    out = dict(attrs)
    out[attr] = str(rng.choice([v for v in VALUES[attr] if v != attrs[attr]]))
    return out


def all_captions() -> list[str]:
    """Every caption of the world: 4 shapes x 8 colours = 32."""
    return [caption_of(dict(zip(ATTRIBUTES, v))) for v in product(*(VALUES[a] for a in ATTRIBUTES))]


def words() -> list[str]:
    return sorted(set(GLUE_WORDS) | set(COLORS) | set(SHAPES))


def build_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """Letters, letters at word end, then each word built left to right by merges of its own."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab: dict[str, int] = {}
    for tok in letters + [c + "</w>" for c in letters]:
        vocab.setdefault(tok, len(vocab))
    merges: list[str] = []
    for word in words():
        left = word[0]
        for i, ch in enumerate(word[1:], start=1):
            right = ch + ("</w>" if i == len(word) - 1 else "")
            merge = f"{left} {right}"
            if merge not in merges:
                merges.append(merge)
            left = left + right
            vocab.setdefault(left, len(vocab))
        if len(word) == 1:
            vocab.setdefault(word + "</w>", len(vocab))
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    return vocab, merges


def write_tokenizer(folder: Path) -> None:
    """Write vocab.json, merges.txt and the configs that CLIPTokenizer.from_pretrained reads."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = build_vocab_and_merges()
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=0))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}, indent=2)
    )
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": MODEL_MAX_LENGTH,
                "bos_token": BOS,
                "eos_token": EOS,
                "unk_token": EOS,
                "pad_token": EOS,
                "do_lower_case": True,
            },
            indent=2,
        )
    )
