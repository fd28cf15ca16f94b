"""Benchmarks that write JSON (``mer bench ...``): the study's cold and warm times and the
fold-parallel speedup (:mod:`mer.bench.study`), every model's per-clip latency
(:mod:`mer.bench.latency`) and the paper profiles on a GPU (:mod:`mer.bench.gpu`)."""
