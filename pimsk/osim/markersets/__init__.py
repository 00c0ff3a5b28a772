"""Marker sets written by pimsk for lab marker protocols, generated from a model's own geometry.

A subject file names one as ``marker_set: builtin:<name>`` (e.g. ``builtin:unipd_fullbody``); :func:`resolve`
turns that into an OpenSim MarkerSet XML written for the subject's generic model, or returns a plain path as is.
"""

from __future__ import annotations

from pathlib import Path

from pimsk.errors import ConfigError

BUILTIN = ("unipd_fullbody",)


def resolve(spec: str | Path, model_path: str | Path, out_dir: str | Path) -> Path:
    """The MarkerSet XML for ``spec``: ``builtin:<name>`` is generated for ``model_path`` into ``out_dir``."""
    text = str(spec)
    if not text.startswith("builtin:"):
        path = Path(text)
        if not path.is_file():
            raise ConfigError("marker set file not found", file=str(path), field="marker_set")
        return path
    name = text.split(":", 1)[1]
    if name == "unipd_fullbody":
        from pimsk.osim.markersets.unipd_fullbody import write_markerset

        return write_markerset(model_path, Path(out_dir) / "markerset_unipd_fullbody.xml")
    raise ConfigError(f"unknown builtin marker set {name!r} (known: {', '.join(BUILTIN)})", field="marker_set")
