"""The guest kernel model: lockup detectors, the pseries migration flow, panics, the kernel log."""
