"""Pure decision rules of the claims: measurements in, (lesson holds?, why) out.

Kept apart from the tests so that tests/ can feed them broken measurements (negative controls) and
show that each rule really can fail.
"""
from __future__ import annotations

import hashlib

import torch


def state_hash(module: torch.nn.Module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes and bytes), order-stable."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def same_weights(hashes: dict[str, str]) -> tuple[bool, str]:
    distinct = sorted(set(hashes.values()))
    if len(distinct) == 1:
        return True, f"U-Net hash unchanged across {len(hashes)} checkpoints ({distinct[0][:12]}…)"
    changed = [k for k, v in hashes.items() if v != hashes[next(iter(hashes))]]
    return False, f"U-Net weights changed at: {', '.join(changed)}"
