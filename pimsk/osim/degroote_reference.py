"""OpenSim's own DeGrooteFregly2016Muscle evaluated on batches of states: reference values for the torch model.

One job: set coordinates / speeds / muscle states in a ``SimTK::State``, realize, and read every muscle output
through the OpenSim API (the per-state loop that tests compare against and that ``bench/`` times).
Coordinates driven by a ``CoordinateCouplerConstraint`` (e.g. the wrist model's carpal rows) are set from
their coupling function, positions and speeds, so the state satisfies the constraints without assembly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pimsk.osim.logging import quiet_opensim

__all__ = [
    "OPENSIM_GETTERS",
    "StateSetter",
    "SampledStates",
    "evaluate_states",
    "coordinate_ranges",
    "mtu_lengths",
    "sample_states",
    "explicit_tendon_forces",
]

# MuscleState field -> DeGrooteFregly2016Muscle getter (all in SI units, as the torch fields).
OPENSIM_GETTERS: dict[str, str] = {
    "fiber_force_n": "getFiberForce",
    "tendon_force_n": "getTendonForce",
    "active_fiber_force_n": "getActiveFiberForce",
    "passive_fiber_force_n": "getPassiveFiberForce",
    "passive_fiber_elastic_force_n": "getPassiveFiberElasticForce",
    "passive_fiber_damping_force_n": "getPassiveFiberDampingForce",
    "fiber_force_along_tendon_n": "getFiberForceAlongTendon",
    "norm_tendon_force": "getNormalizedTendonForce",
    "fiber_length_m": "getFiberLength",
    "norm_fiber_length": "getNormalizedFiberLength",
    "fiber_length_along_tendon_m": "getFiberLengthAlongTendon",
    "pennation_angle_rad": "getPennationAngle",
    "cos_pennation": "getCosPennationAngle",
    "tendon_length_m": "getTendonLength",
    "tendon_strain": "getTendonStrain",
    "active_force_length_multiplier": "getActiveForceLengthMultiplier",
    "passive_force_multiplier": "getPassiveForceMultiplier",
    "force_velocity_multiplier": "getForceVelocityMultiplier",
    "fiber_velocity_mps": "getFiberVelocity",
    "norm_fiber_velocity": "getNormalizedFiberVelocity",
    "fiber_velocity_along_tendon_mps": "getFiberVelocityAlongTendon",
    "tendon_velocity_mps": "getTendonVelocity",
    "pennation_angular_velocity_rad_per_s": "getPennationAngularVelocity",
}
INPUT_GETTERS: dict[str, str] = {
    "mtu_length_m": "getLength",
    "mtu_velocity_mps": "getLengtheningSpeed",
    "activation": "getActivation",
}


def _osim():
    import opensim as osim

    quiet_opensim()
    return osim


@dataclass
class _Coupler:
    dependent: object
    function: object
    scale: float


class StateSetter:
    """Sets the named independent coordinates (values in rad or m, speeds per s) and the coordinates coupled
    to them by single-input CoordinateCouplerConstraints."""

    def __init__(self, model, coordinates: Sequence[str]) -> None:
        osim = _osim()
        self._osim = osim
        coordinate_set = model.getCoordinateSet()
        self.names = list(coordinates)
        self.coordinates = [coordinate_set.get(name) for name in self.names]
        self.couplers: dict[str, list[_Coupler]] = {name: [] for name in self.names}
        constraints = model.getConstraintSet()
        for i in range(constraints.getSize()):
            coupler = osim.CoordinateCouplerConstraint.safeDownCast(constraints.get(i))
            if coupler is None or not coupler.get_isEnforced():
                continue
            independent = coupler.getIndependentCoordinateNames()
            if independent.getSize() != 1 or independent.get(0) not in self.couplers:
                continue
            scale = float(coupler.getPropertyByName("scale_factor").toString())
            self.couplers[independent.get(0)].append(
                _Coupler(coordinate_set.get(coupler.getDependentCoordinateName()), coupler.getFunction(), scale)
            )
        self._which = osim.StdVectorInt([0])

    def set(self, state, q: Sequence[float], u: Sequence[float]) -> None:
        osim = self._osim
        for name, coordinate, value, speed in zip(self.names, self.coordinates, q, u):
            coordinate.setValue(state, float(value), False)
            coordinate.setSpeedValue(state, float(speed))
            for c in self.couplers[name]:
                x = osim.Vector(1, float(value))
                c.dependent.setValue(state, c.scale * c.function.calcValue(x), False)
                c.dependent.setSpeedValue(state, c.scale * c.function.calcDerivative(self._which, x) * float(speed))


def coordinate_ranges(model, coordinates: Sequence[str]) -> np.ndarray:
    """(n_coordinates, 2) [min, max] of each coordinate's range (rad or m)."""
    coordinate_set = model.getCoordinateSet()
    return np.array(
        [[coordinate_set.get(n).getRangeMin(), coordinate_set.get(n).getRangeMax()] for n in coordinates]
    )


def _muscles(model, names: Sequence[str]) -> list:
    osim = _osim()
    return [osim.DeGrooteFregly2016Muscle.safeDownCast(model.getMuscles().get(n)) for n in names]


def mtu_lengths(model, state, muscles: Sequence[str], coordinates: Sequence[str], q: np.ndarray) -> np.ndarray:
    """(n_states, n_muscles) MTU path lengths (m) at the poses ``q`` (n_states, n_coordinates)."""
    setter = StateSetter(model, coordinates)
    muscle_objs = _muscles(model, muscles)
    zeros = np.zeros(len(coordinates))
    out = np.empty((len(q), len(muscles)))
    for k in range(len(q)):
        setter.set(state, q[k], zeros)
        model.realizePosition(state)
        out[k] = [m.getLength(state) for m in muscle_objs]
    return out


def evaluate_states(
    model,
    state,
    muscles: Sequence[str],
    coordinates: Sequence[str],
    q: np.ndarray,
    u: np.ndarray,
    activation: np.ndarray,
    norm_tendon_force: np.ndarray | None = None,
    norm_tendon_force_derivative: np.ndarray | None = None,
    fields: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Per-state OpenSim loop: set pose (n, n_coord), speeds, activation (n, n_muscles) and, for compliant
    muscles, normalised tendon force (and its derivative in implicit mode); realizeDynamics; read outputs.

    Returns {field: (n, n_muscles)} for ``fields`` (default all of OPENSIM_GETTERS) plus the inputs the
    torch model needs: mtu_length_m, mtu_velocity_mps, activation.
    """
    fields = list(OPENSIM_GETTERS) if fields is None else list(fields)
    names = fields + list(INPUT_GETTERS)
    getters_by_name = {**OPENSIM_GETTERS, **INPUT_GETTERS}
    muscle_objs = _muscles(model, muscles)
    getters = [[getattr(m, getters_by_name[f]) for f in names] for m in muscle_objs]
    setter = StateSetter(model, coordinates)
    derivative_name = "implicitderiv_normalized_tendon_force"
    n = len(q)
    out = np.empty((n, len(muscles), len(names)))
    for k in range(n):
        setter.set(state, q[k], u[k])
        for j, m in enumerate(muscle_objs):
            m.setActivation(state, float(activation[k, j]))
            if norm_tendon_force is not None:
                m.setNormalizedTendonForce(state, float(norm_tendon_force[k, j]))
            if norm_tendon_force_derivative is not None:
                m.setDiscreteVariableValue(state, derivative_name, float(norm_tendon_force_derivative[k, j]))
        model.realizeDynamics(state)
        for j in range(len(muscle_objs)):
            out[k, j] = [g(state) for g in getters[j]]
    return {name: out[..., i] for i, name in enumerate(names)}


@dataclass
class SampledStates:
    """Random states: poses q (n, n_coord), speeds u (n, n_coord), activation (n, n_muscles), and the
    MTU lengths at the poses (n, n_muscles)."""

    q: np.ndarray
    u: np.ndarray
    activation: np.ndarray
    mtu_length_m: np.ndarray


def sample_states(
    model,
    state,
    muscles: Sequence[str],
    coordinates: Sequence[str],
    tendon_slack_length_m: np.ndarray,
    optimal_fiber_length_m: np.ndarray,
    n: int,
    rng: np.random.Generator,
    speed_per_s: float = 6.0,
    activation_range: tuple[float, float] = (0.02, 1.0),
) -> SampledStates:
    """Poses uniform in the coordinates' ranges, kept where every muscle's MTU is longer than its tendon slack
    length + 0.25 optimal fiber length (no buckled tendon: the curves' domain); speeds uniform in
    [-speed, speed]; activations uniform in ``activation_range``."""
    ranges = coordinate_ranges(model, coordinates)
    min_length = np.asarray(tendon_slack_length_m) + 0.25 * np.asarray(optimal_fiber_length_m)
    poses: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    while sum(len(x) for x in poses) < n:
        q = rng.uniform(ranges[:, 0], ranges[:, 1], (n, len(coordinates)))
        l_mt = mtu_lengths(model, state, muscles, coordinates, q)
        ok = (l_mt > min_length).all(axis=1)
        poses.append(q[ok])
        lengths.append(l_mt[ok])
    q, l_mt = np.concatenate(poses)[:n], np.concatenate(lengths)[:n]
    u = rng.uniform(-speed_per_s, speed_per_s, (n, len(coordinates)))
    act = rng.uniform(*activation_range, (n, len(muscles)))
    return SampledStates(q, u, act, l_mt)


def explicit_tendon_forces(
    mtu_length_m: np.ndarray, activation: np.ndarray, params, rng: np.random.Generator
) -> np.ndarray:
    """Normalised tendon forces (n, n_muscles) whose explicit-form fiber velocity lies inside [-1, 1]:
    bisection on [0, 5] for f~T = cos(alpha) (a f_L f_V* + f_PE) at zero MTU velocity, with a random target
    f_V* in [0.03, 1.75]. Input design for states in the curves' domain (not a reference value)."""
    import torch

    from pimsk.core.muscle_state import compliant_tendon_state

    def t(x):
        return torch.as_tensor(np.asarray(x), dtype=torch.float64)

    p = params.to(dtype=torch.float64)
    l_mt, act = t(mtu_length_m), t(activation)
    target_fv = t(rng.uniform(0.03, 1.75, np.shape(mtu_length_m)))
    lo = torch.zeros_like(l_mt)
    hi = torch.full_like(l_mt, 5.0)
    with torch.no_grad():
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            s = compliant_tendon_state(l_mt, 0.0, act, mid, p, 0.0)
            g = mid - s.cos_pennation * (act * s.active_force_length_multiplier * target_fv + s.passive_force_multiplier)
            lo = torch.where(g < 0, mid, lo)
            hi = torch.where(g < 0, hi, mid)
    return (0.5 * (lo + hi)).numpy()
