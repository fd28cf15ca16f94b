"""Motion magnification for p2 (GAM-MM-MER): procedural training pairs (``pairs``), the
classical Eulerian (linear) magnifier (``eulerian``), the ST-MEMM network (``stmemm``) and
its training and weights cache (``training``), and measuring the motion a magnifier
produces (``measure``). GAM-MER's node dataset, which takes a magnifier as an argument,
is :class:`mer.preprocess.magnified_regions.MagnifiedRegions`."""
