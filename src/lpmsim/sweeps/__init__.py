"""Many runs: variants of a scenario, ``lpmsim compare``."""
