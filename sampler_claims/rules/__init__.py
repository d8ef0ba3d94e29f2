"""Decision rules, one module per exercise: sampler_claims/rules/<exercise>.py holds every rule of the claims in claims/test_<exercise>.py."""
