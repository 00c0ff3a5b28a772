"""Validation of the processing stages against a synthetic subject's known truth (``pimsk synth``).

- :mod:`pimsk.validate.truth`: compare processed results (scale factors, IK, ID, SO, CMC) with the truth
  files and tabulate the errors (``pimsk validate``).
- :mod:`pimsk.validate.process`: run the OpenSim stage on a synthetic subject through the ``pimsk`` verbs,
  in the workflow's results layout (used by the integration test and ``bench/validate_demo.py``).
"""
