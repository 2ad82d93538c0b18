"""Helpers the tests and benchmarks share and the product never imports: the plain-loop reference
of the flickering assertion (the oracle the fast engine is held equal to) and the simulated detector
over real ground-truth tracks that measures the QA estimators against the truth."""
