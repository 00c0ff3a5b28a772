"""Per-muscle parameters of the DeGrooteFregly2016 model as tensors (one value per muscle).

Every tensor has shape (n_muscles,) so it broadcasts against (batch, time, muscle) inputs. The fields mirror
the properties of OpenSim's ``DeGrooteFregly2016Muscle`` (units in the names; see
:mod:`pimsk.osim.muscle_params` to read them from an ``.osim``). Any float field may be a leaf tensor with
``requires_grad=True`` (parameter identification).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from pimsk.core import degroote

__all__ = ["MuscleParameters", "FLOAT_FIELDS", "BOOL_FIELDS"]

# Field name -> OpenSim DeGrooteFregly2016Muscle property name.
FLOAT_FIELDS: dict[str, str] = {
    "max_isometric_force_n": "max_isometric_force",
    "optimal_fiber_length_m": "optimal_fiber_length",
    "tendon_slack_length_m": "tendon_slack_length",
    "pennation_angle_at_optimal_rad": "pennation_angle_at_optimal",
    "max_contraction_velocity_lopt_per_s": "max_contraction_velocity",
    "tendon_strain_at_one_norm_force": "tendon_strain_at_one_norm_force",
    "passive_fiber_strain_at_one_norm_force": "passive_fiber_strain_at_one_norm_force",
    "active_force_width_scale": "active_force_width_scale",
    "fiber_damping": "fiber_damping",
    "activation_time_constant_s": "activation_time_constant",
    "deactivation_time_constant_s": "deactivation_time_constant",
    "activation_dynamics_smoothing": "activation_dynamics_smoothing",
}
BOOL_FIELDS: dict[str, str] = {
    "ignore_tendon_compliance": "ignore_tendon_compliance",
    "ignore_passive_fiber_force": "ignore_passive_fiber_force",
}

# OpenSim 4.6 DeGrooteFregly2016Muscle defaults for the optional fields.
_DEFAULTS: dict[str, float | bool] = {
    "max_contraction_velocity_lopt_per_s": 10.0,
    "tendon_strain_at_one_norm_force": 0.049,
    "passive_fiber_strain_at_one_norm_force": 0.6,
    "active_force_width_scale": 1.0,
    "fiber_damping": 0.0,
    "activation_time_constant_s": 0.015,
    "deactivation_time_constant_s": 0.060,
    "activation_dynamics_smoothing": 0.1,
    "ignore_tendon_compliance": False,
    "ignore_passive_fiber_force": False,
}


@dataclass(frozen=True)
class MuscleParameters:
    """DeGrooteFregly2016 parameters, one entry per muscle (tensors of shape (n_muscles,)).

    max_contraction_velocity_lopt_per_s is in optimal fiber lengths per second (OpenSim's convention);
    fiber_damping multiplies normalised fiber velocity (force = F_max * damping * v~).
    """

    names: tuple[str, ...]
    max_isometric_force_n: Tensor
    optimal_fiber_length_m: Tensor
    tendon_slack_length_m: Tensor
    pennation_angle_at_optimal_rad: Tensor
    max_contraction_velocity_lopt_per_s: Tensor
    tendon_strain_at_one_norm_force: Tensor
    passive_fiber_strain_at_one_norm_force: Tensor
    active_force_width_scale: Tensor
    fiber_damping: Tensor
    activation_time_constant_s: Tensor
    deactivation_time_constant_s: Tensor
    activation_dynamics_smoothing: Tensor
    ignore_tendon_compliance: Tensor
    ignore_passive_fiber_force: Tensor

    def __post_init__(self) -> None:
        n = len(self.names)
        for name in (*FLOAT_FIELDS, *BOOL_FIELDS):
            value = getattr(self, name)
            if not isinstance(value, Tensor) or value.shape != (n,):
                raise ValueError(f"MuscleParameters.{name}: expected a tensor of shape ({n},), got {value!r}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_values(
        cls,
        names: Sequence[str],
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
        **values: Sequence[float] | Tensor | float | bool,
    ) -> "MuscleParameters":
        """Build from per-muscle sequences (or scalars broadcast to all muscles).

        Required: max_isometric_force_n, optimal_fiber_length_m, tendon_slack_length_m,
        pennation_angle_at_optimal_rad; the others default to OpenSim 4.6's DeGrooteFregly2016Muscle defaults.
        """
        names = tuple(names)
        n = len(names)
        unknown = set(values) - set(FLOAT_FIELDS) - set(BOOL_FIELDS)
        if unknown:
            raise ValueError(f"MuscleParameters: unknown fields {sorted(unknown)}")
        out: dict[str, Tensor] = {}
        for name in (*FLOAT_FIELDS, *BOOL_FIELDS):
            if name in values:
                raw = values[name]
            elif name in _DEFAULTS:
                raw = _DEFAULTS[name]
            else:
                raise ValueError(f"MuscleParameters: field {name!r} is required")
            kind = torch.bool if name in BOOL_FIELDS else dtype
            tensor = torch.as_tensor(raw, dtype=kind, device=device)
            if tensor.ndim == 0:
                tensor = tensor.expand(n).clone()
            out[name] = tensor
        return cls(names=names, **out)

    # ------------------------------------------------------------------ views
    @property
    def n_muscles(self) -> int:
        return len(self.names)

    @property
    def dtype(self) -> torch.dtype:
        return self.max_isometric_force_n.dtype

    @property
    def device(self) -> torch.device:
        return self.max_isometric_force_n.device

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> "MuscleParameters":
        """Copy with float fields cast to ``dtype`` and all fields moved to ``device``."""
        changes: dict[str, Tensor] = {}
        for name in FLOAT_FIELDS:
            changes[name] = getattr(self, name).to(dtype=dtype or self.dtype, device=device)
        for name in BOOL_FIELDS:
            changes[name] = getattr(self, name).to(device=device)
        return dataclasses.replace(self, **changes)

    def detach(self) -> "MuscleParameters":
        """Copy with every float field detached from the autograd graph."""
        return dataclasses.replace(self, **{name: getattr(self, name).detach() for name in FLOAT_FIELDS})

    def replace(self, **changes: Tensor) -> "MuscleParameters":
        """Copy with some fields replaced (e.g. a trainable max_isometric_force_n)."""
        return dataclasses.replace(self, **changes)

    def select(self, names: Sequence[str]) -> "MuscleParameters":
        """Parameters of the named muscles, in the given order; KeyError names a missing muscle."""
        index = []
        for name in names:
            if name not in self.names:
                raise KeyError(f"muscle {name!r} not in parameters (have {', '.join(self.names)})")
            index.append(self.names.index(name))
        idx = torch.tensor(index, dtype=torch.long, device=self.device)
        changes = {f: getattr(self, f).index_select(0, idx) for f in (*FLOAT_FIELDS, *BOOL_FIELDS)}
        return dataclasses.replace(self, names=tuple(names), **changes)

    def as_dict(self) -> dict[str, list]:
        """Plain lists per field (for JSON/YAML)."""
        out: dict[str, list] = {"names": list(self.names)}
        for name in (*FLOAT_FIELDS, *BOOL_FIELDS):
            out[name] = getattr(self, name).detach().cpu().tolist()
        return out

    # ------------------------------------------------------------------ derived quantities
    @property
    def fiber_width_m(self) -> Tensor:
        """Constant fiber height l_opt sin(alpha_opt) (m)."""
        return degroote.fiber_width(self.optimal_fiber_length_m, self.pennation_angle_at_optimal_rad)

    @property
    def max_contraction_velocity_mps(self) -> Tensor:
        """Max contraction velocity in m/s (v_max x l_opt)."""
        return self.max_contraction_velocity_lopt_per_s * self.optimal_fiber_length_m

    @property
    def tendon_stiffness_parameter(self) -> Tensor:
        """kT of De Groote 2016, derived from tendon_strain_at_one_norm_force."""
        return degroote.tendon_stiffness_parameter(self.tendon_strain_at_one_norm_force)
