"""Scheduler short names and their labels, without importing diffusers: the catalogue checks a declared run's
sampler against these at start-up (before torch loads), and sampler_claims.schedulers maps each name to its class."""
from __future__ import annotations

#: Samplers that draw fresh noise at every step: no single converged solution to measure distance to.
STOCHASTIC = {"ddpm", "euler-a", "kdpm2-a", "dpm-sde"}

LABELS = {
    "ddpm": "DDPM", "ddim": "DDIM", "dpm-solver": "DPM-Solver", "dpm-solver-single": "DPM-Solver (singlestep)",
    "heun": "Heun", "euler": "Euler", "euler-a": "Euler ancestral", "lms": "LMS", "pndm": "PNDM",
    "unipc": "UniPC", "deis": "DEIS", "kdpm2": "KDPM2", "kdpm2-a": "KDPM2 ancestral", "dpm-sde": "DPM-Solver SDE",
    "edm-euler": "EDM Euler", "ddim-next": "DDIM (step to the next scheduled timestep)",
}
