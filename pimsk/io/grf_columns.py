"""Column naming of ground reaction force files and how OpenSim finds a force in them.

OpenSim's ExternalForce selects the three columns whose labels *start with* an identifier
(``Storage::getColumnIndicesForIdentifier``), so an identifier is a label prefix shared by exactly
three columns (x, y, z). pimsk writes the convention of OpenSim's own examples (Rajagopal,
example3DWalking)::

    ground_force_{side}_vx/vy/vz   force (N)
    ground_force_{side}_px/py/pz   centre of pressure (m)
    ground_torque_{side}_x/y/z     free moment (N m)

and recognises when reading also:

* Gait2354/Gait2392 subject01: ``ground_force_vx`` ... and ``1_ground_force_vx`` ... (index prefix);
* Rajagopal run: ``R_ground_force_vx``, ``L_ground_torque_x`` ... (side prefix);
* OpenSim's C3D converter references (std_walking*_grfs.sto): ``f1_1 f1_2 f1_3`` (force),
  ``p1_1 ..`` (point), ``m1_1 ..`` (moment) for plate 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_AXES = ("x", "y", "z")
_TRIPLET_ENDS = (("x", "y", "z"), ("1", "2", "3"))
_PLATE = re.compile(r"^([fpm])(\d+)_$", re.IGNORECASE)


def grf_labels(side: str) -> list[str]:
    """The 9 column labels pimsk writes for one force ('r', 'l', or a plate number as text)."""
    force, point, torque = grf_identifiers(side)
    return [force + a for a in _AXES] + [point + a for a in _AXES] + [torque + a for a in _AXES]


def grf_identifiers(side: str) -> tuple[str, str, str]:
    """(force_identifier, point_identifier, torque_identifier) for ExternalForce, e.g. 'ground_force_r_v'."""
    side = str(side).strip()
    if not side or not re.fullmatch(r"[A-Za-z0-9]+", side):
        raise ValueError(f"GRF side {side!r} must be letters/digits such as 'r', 'l' or '1'")
    return f"ground_force_{side}_v", f"ground_force_{side}_p", f"ground_torque_{side}_"


@dataclass(frozen=True)
class GrfGroup:
    """One force found in a GRF file: identifiers (label prefixes) and the matching column labels.

    key: what the force/point/torque prefixes share (e.g. 'ground_r_' , '1' for plate 1);
    torque_identifier/torque_columns are None where the file has no moment for this force.
    """

    key: str
    force_identifier: str
    point_identifier: str
    torque_identifier: str | None
    force_columns: tuple[str, str, str]
    point_columns: tuple[str, str, str]
    torque_columns: tuple[str, str, str] | None


def _triplets(labels: Sequence[str]) -> dict[str, tuple[str, str, str]]:
    """Prefixes shared by exactly three labels that end in x/y/z or 1/2/3 (in that order of suffix)."""
    found: dict[str, tuple[str, str, str]] = {}
    present = set(labels)
    for label in labels:
        for ends in _TRIPLET_ENDS:
            if label.endswith(ends[0]):
                prefix = label[: -len(ends[0])]
                cols = tuple(prefix + e for e in ends)
                if all(c in present for c in cols) and sum(lab.startswith(prefix) for lab in labels) == 3:
                    found[prefix] = cols  # type: ignore[assignment]
    return found


def _classify(prefix: str) -> tuple[str, str] | None:
    """('force'|'point'|'torque', key) for a triplet prefix, or None if it is not a GRF quantity."""
    match = _PLATE.match(prefix)
    if match:
        kind = {"f": "force", "p": "point", "m": "torque"}[match.group(1).lower()]
        return kind, match.group(2)
    low = prefix.lower()
    if "ground_force" in low and low.endswith(("v", "p")):
        kind = "force" if low.endswith("v") else "point"
        stem = prefix[:-1]
        i = low.index("ground_force")
        return kind, stem[:i] + "ground" + stem[i + len("ground_force"):]
    if "ground_torque" in low:
        i = low.index("ground_torque")
        return "torque", prefix[:i] + "ground" + prefix[i + len("ground_torque"):]
    return None


def find_grf_groups(labels: Sequence[str]) -> list[GrfGroup]:
    """Forces in a GRF file's column labels (time excluded), in the order their force columns appear.

    A force needs a force and a point triplet with the same key; the torque triplet is optional.
    Labels of other conventions are ignored (an empty list means none was recognised).
    """
    parts: dict[str, dict[str, tuple[str, tuple[str, str, str]]]] = {}
    for prefix, cols in _triplets(labels).items():
        kind_key = _classify(prefix)
        if kind_key is None:
            continue
        kind, key = kind_key
        parts.setdefault(key, {})[kind] = (prefix, cols)
    groups = []
    for key, kinds in parts.items():
        if "force" not in kinds or "point" not in kinds:
            continue
        torque = kinds.get("torque")
        groups.append(
            GrfGroup(
                key=key,
                force_identifier=kinds["force"][0],
                point_identifier=kinds["point"][0],
                torque_identifier=torque[0] if torque else None,
                force_columns=kinds["force"][1],
                point_columns=kinds["point"][1],
                torque_columns=torque[1] if torque else None,
            )
        )
    order = {label: i for i, label in enumerate(labels)}
    return sorted(groups, key=lambda g: order[g.force_columns[0]])
