"""Equation of motion of an open chain distal to a joint, in torch.

A chain is a tree of rigid bodies hanging from a *root* body whose pose in ground is fixed (the forearm
for the wrist, the thigh for a swinging shank). Every joint is an OpenSim-style spatial transform: up to
three rotations about fixed axes applied as a body-fixed sequence, then a translation
``p_FM = sum_k d_k(q) t_k`` expressed in the joint's parent frame F (Simbody's FunctionBased mobilizer,
which is what OpenSim's CustomJoint builds; PinJoint, SliderJoint and WeldJoint are special cases).
Each axis angle or distance is a function of one coordinate (constant, linear, spline, multiplier);
coordinates coupled by a ``CoordinateCouplerConstraint`` are functions of the independent ones.

The generalized forces follow Kane's method (Kane & Levinson 1985, *Dynamics: Theory and Applications*):

    tau_j = sum_b  m_b (a_b - g) . dc_b/dq_j  +  (I_b alpha_b + omega_b x I_b omega_b) . omega_b,j

with ``c_b`` the centre of mass of body b, ``I_b`` its inertia about the centre of mass in ground axes and
``omega_b,j`` its partial angular velocity. Body velocities and accelerations come from the outward
(Newton-Euler) recursion over the tree with analytic first and second derivatives of every joint function;
the partial velocities are the same velocity pass at unit speed of one coordinate. This is exact (no finite
differences), works for any spatial-transform joint and any tree, and stays differentiable with respect to
kinematics and inertial parameters. It equals ``tau = M(q) qddot + C(q, qdot) - G(q)``, the result of
OpenSim's InverseDynamicsSolver (sign included).

Shapes: coordinates ``(..., n_coordinates)``, any leading dims (``(batch, time, coordinate)``);
SI units (rad, m, kg, s); moments in N m (N for translational coordinates).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

FORMAT = "pimsk.open_chain"
VERSION = 1

# --------------------------------------------------------------------------------------------------
# Serialisable description (no OpenSim here; pimsk.osim.chain fills it from a model)
# --------------------------------------------------------------------------------------------------


@dataclass
class AxisSpec:
    """One rotation (rad) or translation (m) of a joint: ``value = function(coordinate)`` along ``axis``.

    ``function`` is a dict: ``{"kind": "constant", "value"}``, ``{"kind": "linear", "slope", "intercept"}``,
    ``{"kind": "multiplier", "scale", "function"}``, ``{"kind": "hermite", "x", "y", "dydx"}`` (piecewise
    cubic through knots with given slopes, linear beyond the end knots: OpenSim's SimmSpline and
    NaturalCubicSpline) or ``{"kind": "piecewise_linear", "x", "y"}``. ``coordinate`` is None for constants.
    """

    axis: list[float]
    function: dict[str, Any]
    coordinate: str | None = None


@dataclass
class BodySpec:
    """A rigid body and the joint that connects it to its parent.

    ``parent`` names the parent body (the chain's root or an earlier body). Offsets: the joint's parent
    frame F in the parent body and child frame M in this body, each a rotation matrix (3, 3) and a
    position (3,) in m. Inertia (3, 3) in kg m^2 is about the centre of mass, in body axes.
    """

    name: str
    parent: str
    joint: str
    mass_kg: float
    com_m: list[float]
    inertia_kgm2: list[list[float]]
    parent_offset_rotation: list[list[float]]
    parent_offset_translation_m: list[float]
    child_offset_rotation: list[list[float]]
    child_offset_translation_m: list[float]
    rotations: list[AxisSpec] = field(default_factory=list)
    translations: list[AxisSpec] = field(default_factory=list)


@dataclass
class CouplerSpec:
    """``dependent = scale * function(independent)`` (OpenSim CoordinateCouplerConstraint)."""

    dependent: str
    independent: str
    function: dict[str, Any]
    scale: float = 1.0


@dataclass
class ChainSpec:
    """Everything the torch dynamics needs: geometry, inertia, gravity, which coordinates move.

    ``coordinates`` are the independent coordinates (the generalized forces returned are for these);
    ``couplers`` give dependent coordinates; ``fixed_coordinates`` hold every other coordinate of the chain
    at a value (rad or m). The root body's pose in ground is ``root_rotation`` (3, 3), ``root_translation_m``.
    """

    root_body: str
    root_rotation: list[list[float]]
    root_translation_m: list[float]
    gravity_m_s2: list[float]
    coordinates: list[str]
    bodies: list[BodySpec]
    couplers: list[CouplerSpec] = field(default_factory=list)
    fixed_coordinates: dict[str, float] = field(default_factory=dict)
    coordinate_ranges: dict[str, list[float]] = field(default_factory=dict)
    rotational: dict[str, bool] = field(default_factory=dict)
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ChainSpec":
        data = {k: v for k, v in data.items() if k not in ("format", "version")}
        bodies = []
        for b in data.pop("bodies"):
            b = dict(b)
            b["rotations"] = [AxisSpec(**a) for a in b.get("rotations", [])]
            b["translations"] = [AxisSpec(**a) for a in b.get("translations", [])]
            bodies.append(BodySpec(**b))
        couplers = [CouplerSpec(**c) for c in data.pop("couplers", [])]
        return cls(bodies=bodies, couplers=couplers, **data)

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load_json(cls, path: str | Path) -> "ChainSpec":
        from pimsk.errors import FileFormatError

        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FileFormatError(f"cannot read open-chain JSON: {exc}", file=path) from None
        if data.get("format") != FORMAT:
            raise FileFormatError(f"not an open-chain file (format {data.get('format')!r})", file=path,
                                  field="format", hint=f"expected {FORMAT!r}")
        return cls.from_dict(data)


# --------------------------------------------------------------------------------------------------
# Scalar functions of one coordinate, in torch: value, first and second derivative
# --------------------------------------------------------------------------------------------------


class _Fn(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return self.triple(x)[0]

    def triple(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # pragma: no cover - interface
        """f(x), f'(x), f''(x), each shaped like x."""
        raise NotImplementedError


class _Constant(_Fn):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.register_buffer("value", torch.tensor(float(value), dtype=torch.float64))

    def triple(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        zero = torch.zeros_like(x)
        return self.value.to(x.dtype) + zero, zero, zero


class _Linear(_Fn):
    def __init__(self, slope: float, intercept: float) -> None:
        super().__init__()
        self.register_buffer("slope", torch.tensor(float(slope), dtype=torch.float64))
        self.register_buffer("intercept", torch.tensor(float(intercept), dtype=torch.float64))

    def triple(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        zero = torch.zeros_like(x)
        return self.slope * x + self.intercept, self.slope + zero, zero


class _Multiplier(_Fn):
    def __init__(self, scale: float, inner: _Fn) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float64))
        self.inner = inner

    def triple(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f, d1, d2 = self.inner.triple(x)
        return self.scale * f, self.scale * d1, self.scale * d2


class _Hermite(_Fn):
    """Piecewise cubic through (x_k, y_k) with slopes dydx_k; linear with the end slopes outside."""

    def __init__(self, x: Sequence[float], y: Sequence[float], dydx: Sequence[float]) -> None:
        super().__init__()
        if len(x) < 2 or len(x) != len(y) or len(x) != len(dydx):
            raise ValueError("hermite function needs >= 2 knots with matching y and dydx")
        self.register_buffer("xk", torch.tensor(list(x), dtype=torch.float64))
        self.register_buffer("yk", torch.tensor(list(y), dtype=torch.float64))
        self.register_buffer("dk", torch.tensor(list(dydx), dtype=torch.float64))

    def triple(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        xk, yk, dk = self.xk, self.yk, self.dk
        n = xk.shape[0]
        i = (torch.searchsorted(xk, x.detach().contiguous(), right=True) - 1).clamp(0, n - 2)
        x0, h = xk[i], xk[i + 1] - xk[i]
        y0, y1, m0, m1 = yk[i], yk[i + 1], dk[i] * h, dk[i + 1] * h
        t = (x - x0) / h
        t2 = t * t
        f = ((2 * t2 * t - 3 * t2 + 1) * y0 + (t2 * t - 2 * t2 + t) * m0
             + (-2 * t2 * t + 3 * t2) * y1 + (t2 * t - t2) * m1)
        d1 = ((6 * t2 - 6 * t) * y0 + (3 * t2 - 4 * t + 1) * m0 + (-6 * t2 + 6 * t) * y1 + (3 * t2 - 2 * t) * m1) / h
        d2 = ((12 * t - 6) * y0 + (6 * t - 4) * m0 + (-12 * t + 6) * y1 + (6 * t - 2) * m1) / (h * h)
        low, high = x < xk[0], x > xk[-1]
        zero = torch.zeros_like(x)
        f = torch.where(low, yk[0] + dk[0] * (x - xk[0]), torch.where(high, yk[-1] + dk[-1] * (x - xk[-1]), f))
        d1 = torch.where(low, dk[0] + zero, torch.where(high, dk[-1] + zero, d1))
        d2 = torch.where(low | high, zero, d2)
        return f, d1, d2


class _PiecewiseLinear(_Fn):
    def __init__(self, x: Sequence[float], y: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("xk", torch.tensor(list(x), dtype=torch.float64))
        self.register_buffer("yk", torch.tensor(list(y), dtype=torch.float64))

    def triple(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        xk, yk = self.xk, self.yk
        i = (torch.searchsorted(xk, x.detach().contiguous(), right=True) - 1).clamp(0, xk.shape[0] - 2)
        slope = (yk[i + 1] - yk[i]) / (xk[i + 1] - xk[i])
        return yk[i] + slope * (x - xk[i]), slope, torch.zeros_like(x)


def build_function(spec: dict[str, Any]) -> _Fn:
    """Torch module for a function dict (see :class:`AxisSpec`); ValueError names an unknown kind."""
    kind = spec.get("kind")
    if kind == "constant":
        return _Constant(spec["value"])
    if kind == "linear":
        return _Linear(spec["slope"], spec["intercept"])
    if kind == "multiplier":
        return _Multiplier(spec["scale"], build_function(spec["function"]))
    if kind == "hermite":
        return _Hermite(spec["x"], spec["y"], spec["dydx"])
    if kind == "piecewise_linear":
        return _PiecewiseLinear(spec["x"], spec["y"])
    raise ValueError(f"unknown function kind {kind!r}")


# --------------------------------------------------------------------------------------------------
# Small rotation helpers
# --------------------------------------------------------------------------------------------------


def _skew(v: Tensor) -> Tensor:
    """(3,) -> (3, 3) cross-product matrix."""
    z = torch.zeros((), dtype=v.dtype)
    return torch.stack([torch.stack([z, -v[2], v[1]]), torch.stack([v[2], z, -v[0]]),
                        torch.stack([-v[1], v[0], z])])


def _vee(m: Tensor) -> Tensor:
    """(..., 3, 3) -> (..., 3): the vector of the antisymmetric part."""
    return 0.5 * torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                              m[..., 1, 0] - m[..., 0, 1]], dim=-1)


def _matvec(m: Tensor, v: Tensor) -> Tensor:
    return (m * v.unsqueeze(-2)).sum(-1)


# --------------------------------------------------------------------------------------------------
# The dynamics module
# --------------------------------------------------------------------------------------------------


class _Axis(nn.Module):
    def __init__(self, spec: AxisSpec, coordinate_index: int | None) -> None:
        super().__init__()
        axis = torch.tensor(spec.axis, dtype=torch.float64)
        axis = axis / axis.norm()
        self.register_buffer("axis", axis)
        self.register_buffer("k", _skew(axis))
        self.register_buffer("k2", _skew(axis) @ _skew(axis))
        self.fn = build_function(spec.function)
        self.index = coordinate_index
        self.fixed_value = 0.0  # value of the coordinate when it is fixed (rad or m)


class OpenChainDynamics(nn.Module):
    """Net generalized forces ``tau(q, qdot, qddot)`` of the chain's independent coordinates.

    ``forward(q, qd, qdd)``: tensors ``(..., n_coordinates)`` in the order of ``spec.coordinates``
    -> ``(..., n_coordinates)`` N m. Differentiable in the kinematics and in the inertial parameters
    (``mass_kg`` (n_bodies,), ``com_m`` (n_bodies, 3), ``inertia_kgm2`` (n_bodies, 3, 3) are buffers;
    make them ``nn.Parameter`` to identify them). Use ``.to(torch.float32)`` for single precision.
    """

    def __init__(self, spec: ChainSpec, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.spec = spec
        self.coordinates = list(spec.coordinates)
        self.moving = self.coordinates + [c.dependent for c in spec.couplers]  # order of mobility forces
        index = {name: i for i, name in enumerate(self.moving)}
        for c in spec.couplers:
            if c.independent not in spec.coordinates:
                raise ValueError(f"coupler for {c.dependent!r} depends on {c.independent!r}, "
                                 "which is not an independent coordinate of the chain")
        self.coupler_fns = nn.ModuleList(build_function(c.function) for c in spec.couplers)
        self.coupler_index = [self.coordinates.index(c.independent) for c in spec.couplers]
        self.register_buffer("coupler_scale", torch.tensor([c.scale for c in spec.couplers], dtype=torch.float64))

        names = [b.name for b in spec.bodies]
        self.body_names = names
        self.parent_index: list[int] = []
        for k, b in enumerate(spec.bodies):
            if b.parent == spec.root_body:
                self.parent_index.append(-1)
            elif b.parent in names[:k]:
                self.parent_index.append(names.index(b.parent))
            else:
                raise ValueError(f"body {b.name!r}: parent {b.parent!r} must be the root or an earlier body")

        def make_axis(a: AxisSpec) -> _Axis:
            if a.coordinate is None or a.coordinate in index:
                ax = _Axis(a, None if a.coordinate is None else index[a.coordinate])
                ax.fixed_value = 0.0
            elif a.coordinate in spec.fixed_coordinates:
                ax = _Axis(a, None)
                ax.fixed_value = float(spec.fixed_coordinates[a.coordinate])
            else:
                raise ValueError(f"axis uses coordinate {a.coordinate!r}, which is neither moving nor fixed")
            return ax

        self.rot_axes = nn.ModuleList(nn.ModuleList(make_axis(a) for a in b.rotations) for b in spec.bodies)
        self.trans_axes = nn.ModuleList(nn.ModuleList(make_axis(a) for a in b.translations) for b in spec.bodies)

        t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
        self.register_buffer("root_R", t(spec.root_rotation))
        self.register_buffer("root_p", t(spec.root_translation_m))
        self.register_buffer("gravity", t(spec.gravity_m_s2))
        self.register_buffer("mass_kg", t([b.mass_kg for b in spec.bodies]))
        self.register_buffer("com_m", t([b.com_m for b in spec.bodies]).reshape(-1, 3))
        self.register_buffer("inertia_kgm2", t([b.inertia_kgm2 for b in spec.bodies]).reshape(-1, 3, 3))
        self.register_buffer("pf_R", t([b.parent_offset_rotation for b in spec.bodies]).reshape(-1, 3, 3))
        self.register_buffer("pf_p", t([b.parent_offset_translation_m for b in spec.bodies]).reshape(-1, 3))
        # X_M_B = inverse of the child frame's offset in its body
        cR = t([b.child_offset_rotation for b in spec.bodies]).reshape(-1, 3, 3)
        cp = t([b.child_offset_translation_m for b in spec.bodies]).reshape(-1, 3)
        self.register_buffer("mb_R", cR.transpose(-1, -2).contiguous())
        self.register_buffer("mb_p", -_matvec(cR.transpose(-1, -2), cp))
        self.to(dtype)

    # -- coordinates ---------------------------------------------------------------------------------

    def all_coordinates(self, q: Tensor, qd: Tensor | None = None,
                        qdd: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Independent (..., n_coordinates) -> moving (..., n_moving): values, speeds, accelerations."""
        qd = torch.zeros_like(q) if qd is None else qd
        qdd = torch.zeros_like(q) if qdd is None else qdd
        if not self.coupler_fns:
            return q, qd, qdd
        vals, vels, accs = [q], [qd], [qdd]
        for fn, i, s in zip(self.coupler_fns, self.coupler_index, self.coupler_scale):
            f, d1, d2 = fn.triple(q[..., i])
            vals.append(s * f[..., None])
            vels.append(s * (d1 * qd[..., i])[..., None])
            accs.append(s * (d2 * qd[..., i] ** 2 + d1 * qdd[..., i])[..., None])
        return torch.cat(vals, -1), torch.cat(vels, -1), torch.cat(accs, -1)

    def coupling_jacobian(self, q: Tensor) -> Tensor:
        """d(moving coordinates)/d(independent coordinates), (..., n_moving, n_coordinates)."""
        n = q.shape[-1]
        eye = torch.eye(n, dtype=q.dtype, device=q.device)
        cols = [self.all_coordinates(q, eye[i].expand_as(q))[1] for i in range(n)]
        return torch.stack(cols, dim=-1)

    # -- kinematics ----------------------------------------------------------------------------------

    def _axis_triple(self, ax: _Axis, qa: Tensor, qda: Tensor, qdda: Tensor):
        """Axis value, its rate and its second derivative (each (...,))."""
        if ax.index is None:
            x = torch.full(qa.shape[:-1], ax.fixed_value, dtype=qa.dtype, device=qa.device)
            f, _, _ = ax.fn.triple(x)
            zero = torch.zeros_like(f)
            return f, zero, zero
        x, xd, xdd = qa[..., ax.index], qda[..., ax.index], qdda[..., ax.index]
        f, d1, d2 = ax.fn.triple(x)
        return f, d1 * xd, d2 * xd * xd + d1 * xdd

    def _joint(self, b: int, qa: Tensor, qda: Tensor, qdda: Tensor):
        """Joint b in its parent frame F: R_FM, p_FM, omega_FM, alpha_FM, v_FM, a_FM (all in F)."""
        batch = qa.shape[:-1]
        eye = torch.eye(3, dtype=qa.dtype, device=qa.device)
        R = eye.expand(*batch, 3, 3)
        w = torch.zeros(*batch, 3, dtype=qa.dtype, device=qa.device)
        al = torch.zeros_like(w)
        for ax in self.rot_axes[b]:  # body-fixed sequence: axis k is turned by rotations 1..k-1
            th, thd, thdd = self._axis_triple(ax, qa, qda, qdda)
            a_f = _matvec(R, ax.axis)
            al = al + thdd[..., None] * a_f + torch.cross(w, thd[..., None] * a_f, dim=-1)
            w = w + thd[..., None] * a_f
            th = th[..., None, None]
            R = R @ (eye + torch.sin(th) * ax.k + (1 - torch.cos(th)) * ax.k2)
        p = torch.zeros_like(w)
        v = torch.zeros_like(w)
        a = torch.zeros_like(w)
        for ax in self.trans_axes[b]:  # translations along axes fixed in F
            d, dd, ddd = self._axis_triple(ax, qa, qda, qdda)
            p = p + d[..., None] * ax.axis
            v = v + dd[..., None] * ax.axis
            a = a + ddd[..., None] * ax.axis
        return R, p, w, al, v, a

    def motion(self, qa: Tensor, qda: Tensor, qdda: Tensor) -> dict[str, Tensor]:
        """Forward recursion over the tree for moving-coordinate values, speeds, accelerations.

        Returns ground-frame ``R`` (..., n_bodies, 3, 3), ``com`` (..., n_bodies, 3), angular velocity
        ``omega`` and acceleration ``alpha`` (rad/s, rad/s^2), centre-of-mass velocity ``v_com`` and
        acceleration ``a_com`` (m/s, m/s^2), each (..., n_bodies, 3).
        """
        batch = qa.shape[:-1]
        zero = torch.zeros(*batch, 3, dtype=qa.dtype, device=qa.device)
        cross = lambda x, y: torch.cross(x, y, dim=-1)  # noqa: E731
        out: dict[str, list[Tensor]] = {k: [] for k in ("R", "p", "omega", "alpha", "v", "a", "com", "v_com", "a_com")}
        for b in range(len(self.body_names)):
            parent = self.parent_index[b]
            if parent < 0:
                R_p = self.root_R.expand(*batch, 3, 3)
                p_p, w_p, al_p, v_p, a_p = self.root_p.expand(*batch, 3), zero, zero, zero, zero
            else:
                R_p, p_p, w_p = out["R"][parent], out["p"][parent], out["omega"][parent]
                al_p, v_p, a_p = out["alpha"][parent], out["v"][parent], out["a"][parent]
            # joint parent frame F, fixed on the parent body
            R_f = R_p @ self.pf_R[b]
            r = _matvec(R_p, self.pf_p[b])
            p_f = p_p + r
            v_f = v_p + cross(w_p, r)
            a_f = a_p + cross(al_p, r) + cross(w_p, cross(w_p, r))
            # joint child frame M
            R_fm, p_fm, w_fm, al_fm, v_fm, a_fm = self._joint(b, qa, qda, qdda)
            w_j, al_j = _matvec(R_f, w_fm), _matvec(R_f, al_fm)
            r, v_j, a_j = _matvec(R_f, p_fm), _matvec(R_f, v_fm), _matvec(R_f, a_fm)
            R_m = R_f @ R_fm
            w_m = w_p + w_j
            al_m = al_p + al_j + cross(w_p, w_j)
            p_m = p_f + r
            v_m = v_f + cross(w_p, r) + v_j
            a_m = a_f + cross(al_p, r) + cross(w_p, cross(w_p, r)) + 2 * cross(w_p, v_j) + a_j
            # body frame B, fixed in M
            R_b = R_m @ self.mb_R[b]
            r = _matvec(R_m, self.mb_p[b])
            p_b = p_m + r
            v_b = v_m + cross(w_m, r)
            a_b = a_m + cross(al_m, r) + cross(w_m, cross(w_m, r))
            rc = _matvec(R_b, self.com_m[b])
            for key, val in (("R", R_b), ("p", p_b), ("omega", w_m), ("alpha", al_m), ("v", v_b), ("a", a_b),
                             ("com", p_b + rc), ("v_com", v_b + cross(w_m, rc)),
                             ("a_com", a_b + cross(al_m, rc) + cross(w_m, cross(w_m, rc)))):
                out[key].append(val)
        return {k: torch.stack(v, dim=-3 if k == "R" else -2) for k, v in out.items()}

    def kinematics(self, qa: Tensor) -> tuple[Tensor, Tensor]:
        """Moving coordinates (..., n_moving) -> body rotations (..., n_bodies, 3, 3), origins (..., n_bodies, 3)."""
        m = self.motion(qa, torch.zeros_like(qa), torch.zeros_like(qa))
        return m["R"], m["p"]

    # -- dynamics ------------------------------------------------------------------------------------

    def mobility_forces(self, q: Tensor, qd: Tensor, qdd: Tensor) -> Tensor:
        """Generalized forces of every moving coordinate (independent then dependent), (..., n_moving).

        Kane's equations with the bodies' partial velocities; equals OpenSim's InverseDynamicsSolver
        (which ignores constraints) for those mobilities.
        """
        q, qd, qdd = torch.broadcast_tensors(q, qd, qdd)
        qa, qda, qdda = self.all_coordinates(q, qd, qdd)
        m = self.motion(qa, qda, qdda)
        R = m["R"]
        inertia_g = R @ self.inertia_kgm2 @ R.transpose(-1, -2)
        force = self.mass_kg[:, None] * (m["a_com"] - self.gravity)
        omega = m["omega"]
        torque = _matvec(inertia_g, m["alpha"]) + torch.cross(omega, _matvec(inertia_g, omega), dim=-1)
        eye = torch.eye(qa.shape[-1], dtype=qa.dtype, device=qa.device)
        zero = torch.zeros_like(qa)
        taus = []
        for j in range(qa.shape[-1]):  # partial velocities: the velocity pass at unit speed of coordinate j
            pj = self.motion(qa, eye[j].expand_as(qa), zero)
            taus.append((force * pj["v_com"]).sum((-1, -2)) + (torque * pj["omega"]).sum((-1, -2)))
        return torch.stack(taus, dim=-1)

    def forward(self, q: Tensor, qd: Tensor, qdd: Tensor) -> Tensor:
        """Net generalized forces of the independent coordinates, (..., n_coordinates), N m.

        Where coordinates are coupled this is the virtual-work projection ``J^T tau_moving``.
        """
        tau = self.mobility_forces(q, qd, qdd)
        if not self.coupler_fns:
            return tau
        jac = self.coupling_jacobian(torch.broadcast_tensors(q, qd, qdd)[0])
        return (jac * tau[..., :, None]).sum(-2)


def load_chain(path: str | Path, dtype: torch.dtype = torch.float64) -> OpenChainDynamics:
    """Torch dynamics from a chain JSON written by ``ChainSpec.save_json``."""
    return OpenChainDynamics(ChainSpec.load_json(path), dtype=dtype)
