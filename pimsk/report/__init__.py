"""Results of the learning stage turned into tables and figures (`pimsk figures`, `pimsk evaluate --truth-dir`).

* :mod:`pimsk.report.tables`: CSV reading and mean +- SD summaries;
* :mod:`pimsk.report.truth`: errors of saved test predictions against a synthetic subject's TRUE forces/angles;
* :mod:`pimsk.report.figures`: the figure set of Zhang et al. 2023 (IEEE TNSRE) as PNG files (matplotlib, Agg).
"""
