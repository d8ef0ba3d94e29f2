"""Decision rules, one module per exercise: sampler_claims/rules/<exercise>.py holds every rule of the claims in
claims/test_<exercise>.py. A claim's catalogue entry names its rule (`rule = "..."`); `rule_of` is how the test and
its negative controls find it, so that changing the name in the catalogue changes the decision they both make."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def rule_of(claim: Any) -> Callable[..., Any]:
    """The function the claim's catalogue entry names, from its exercise's rules module."""
    module = importlib.import_module(f"{__name__}.{claim.module}")
    return getattr(module, claim.rule)
