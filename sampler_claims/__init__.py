"""sampler-claims: the lesson "Samplers and Efficiency" turned into measured verdicts on diffusers."""
__version__ = "0.1.0"
