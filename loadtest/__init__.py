"""Load generation and benchmarks: simulated practitioners against real nodes."""
