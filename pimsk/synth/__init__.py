"""Synthetic subjects with known truth: a scaled generic model driven by known excitations through an
OpenSim forward simulation, "measured" as C3D markers and raw EMG (see :mod:`pimsk.synth.generate`)."""
