"""Generic models built in code from published anatomy (see each module's sources)."""

from __future__ import annotations

from pimsk.osim.models.leg import build_leg_model
from pimsk.osim.models.wrist import build_wrist_model

#: model kind -> builder(path=None, *, scale=None, muscles_subset=None, ...) -> opensim.Model
BUILDERS = {"leg": build_leg_model, "wrist": build_wrist_model}

__all__ = ["BUILDERS", "build_leg_model", "build_wrist_model"]
