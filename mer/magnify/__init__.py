"""Motion magnification for p2: procedural training pairs, the classical Eulerian
(linear) magnifier, and measuring the motion a magnifier produces."""
