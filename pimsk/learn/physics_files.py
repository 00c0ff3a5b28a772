"""The musculoskeletal model the physics loss uses, read from files.

* path surrogate: JSON written by ``pimsk geometry`` (:class:`pimsk.core.path_surrogate.PathSurrogate`);
* muscle parameters: a scaled ``.osim`` (read through OpenSim, muscles converted to DeGrooteFregly2016 where
  needed: :func:`pimsk.osim.muscle_params.read_muscle_parameters`) or a JSON of
  :meth:`MuscleParameters.as_dict` (no OpenSim needed; :func:`save_muscle_parameters`);
* open chain: JSON of :class:`pimsk.core.joint_dynamics.ChainSpec` or a scaled ``.osim`` with the chain's root
  body and coordinates (:func:`pimsk.osim.chain.extract_chain`). Not needed when the net moment comes from an
  inverse-dynamics column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from pimsk.core.joint_dynamics import ChainSpec, OpenChainDynamics
from pimsk.core.muscle_parameters import MuscleParameters
from pimsk.core.path_surrogate import PathSurrogate
from pimsk.errors import ConfigError, FileFormatError

__all__ = ["PhysicsAssets", "load_muscle_parameters", "save_muscle_parameters", "load_chain_file",
           "load_physics_assets"]


@dataclass
class PhysicsAssets:
    """Surrogate, parameters and (optional) chain, float64, with the files they came from."""

    surrogate: PathSurrogate
    params: MuscleParameters
    chain: OpenChainDynamics | None = None
    sources: dict[str, str] | None = None


def save_muscle_parameters(params: MuscleParameters, path: str | Path) -> Path:
    """JSON of every parameter per muscle (``MuscleParameters.as_dict``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": "pimsk.muscle_parameters", **params.as_dict()}, indent=1))
    return path


def load_muscle_parameters(path: str | Path, muscles: Sequence[str] | None = None,
                           dtype: torch.dtype = torch.float64) -> MuscleParameters:
    """Parameters from a ``.osim`` (OpenSim) or a JSON of :func:`save_muscle_parameters`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("muscle parameter file not found", file=path, field="physics.muscle_parameters")
    if path.suffix.lower() == ".osim":
        from pimsk.osim.muscle_params import read_muscle_parameters

        return read_muscle_parameters(path, muscles, dtype=dtype)
    try:
        data = json.loads(path.read_text())
        names = data.pop("names")
        data.pop("format", None)
        params = MuscleParameters.from_values(names, dtype=dtype, **data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FileFormatError(f"cannot read muscle parameters: {exc}", file=path,
                              hint="write it with pimsk.learn.physics_files.save_muscle_parameters") from None
    if muscles is not None:
        try:
            params = params.select(list(muscles))
        except KeyError as exc:
            raise FileFormatError(str(exc), file=path, field="names") from None
    return params


def load_chain_file(path: str | Path, root_body: str | None = None, coordinates: Sequence[str] | None = None,
                    dtype: torch.dtype = torch.float64) -> OpenChainDynamics:
    """Torch open chain from a chain JSON, or from a ``.osim`` given the root body and the coordinates."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("chain file not found", file=path, field="physics.chain")
    if path.suffix.lower() == ".osim":
        if not root_body or not coordinates:
            raise ConfigError("a chain from an .osim needs its root body and coordinates", file=path,
                              field="physics.chain_root_body", hint="e.g. chain_root_body: forearm_r")
        from pimsk.osim.chain import extract_chain

        return OpenChainDynamics(extract_chain(path, root_body, list(coordinates)), dtype=dtype)
    return OpenChainDynamics(ChainSpec.load_json(path), dtype=dtype)


def load_physics_assets(surrogate: str | Path, muscle_parameters: str | Path, chain: str | Path | None = None, *,
                        chain_root_body: str | None = None, chain_coordinates: Sequence[str] | None = None,
                        dtype: torch.dtype = torch.float64) -> PhysicsAssets:
    """Everything :class:`pimsk.learn.losses.PhysicsLoss` needs, from files."""
    sur_path = Path(surrogate)
    if not sur_path.is_file():
        raise ConfigError("path surrogate file not found", file=sur_path, field="physics.surrogate",
                          hint="fit it with `pimsk geometry`")
    sur = PathSurrogate.load_json(sur_path, dtype=dtype)
    params = load_muscle_parameters(muscle_parameters, dtype=dtype)
    ch = None
    if chain is not None:
        coords = list(chain_coordinates) if chain_coordinates else None
        ch = load_chain_file(chain, chain_root_body, coords, dtype=dtype)
    sources = {"surrogate": str(sur_path), "muscle_parameters": str(muscle_parameters)}
    if chain is not None:
        sources["chain"] = str(chain)
    return PhysicsAssets(sur, params, ch, sources)
