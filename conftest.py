"""Loads the claims plugin for everything under the repository: claims/ and the harness's tests/."""
pytest_plugins = ["sampler_claims.plugin", "pytester"]
