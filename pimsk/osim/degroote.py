"""Replace a model's muscles by ``DeGrooteFregly2016Muscle`` (De Groote et al. 2016), file to file.

Runs in a child process: Millard2012 and Thelen2003 muscles by OpenSim's own
``DeGrooteFregly2016Muscle.replaceMuscles``; other types (e.g. the wrist model's
``Schutte1993Muscle_Deprecated``, which replaceMuscles leaves unchanged) from their base Muscle properties
(:func:`pimsk.osim.muscle_params.replace_with_degroote`; the log says which). Fails when any muscle is left
unconverted (the point is one muscle model everywhere).
"""

from __future__ import annotations

from pathlib import Path

from pimsk.errors import OpenSimToolError
from pimsk.osim.runner import check_outputs, run_child


def replace_muscles_degroote(model_in: str | Path, model_out: str | Path, *, log_file: str | Path,
                             subject: str | None = None, timeout_s: float | None = 600) -> Path:
    """Write ``model_out``: ``model_in`` with every muscle a DeGrooteFregly2016Muscle; return its path."""
    model_in, model_out = Path(model_in).resolve(), Path(model_out).resolve()
    if model_out.exists():
        model_out.unlink()
    try:
        run_child(["degroote", str(model_in), str(model_out)], log_file=log_file, cwd=model_out.parent,
                  timeout_s=timeout_s, step="degroote", subject=subject, setup=model_in)
    except OpenSimToolError as exc:
        exc.hint = "every muscle must become a DeGrooteFregly2016Muscle; see the log for the muscle that failed"
        raise exc.located(subject=subject)
    check_outputs([model_out], step="degroote", log_file=Path(log_file), subject=subject, setup=model_in)
    return model_out
