"""Muscle path surrogate: MTU length as a polynomial in the coordinates a muscle crosses (torch, no OpenSim).

Per muscle, ``l_MT(q) = sum_t c_t prod_j x_j^{e_tj}`` with ``x_j = (q_j - center_j) / half_range_j`` the
coordinate scaled to [-1, 1] over its sampled range and exponents of total degree <= the chosen degree.
The fit is linear least squares on BOTH the sampled lengths and the sampled moment arms, through the identity
``r_j = -dl_MT/dq_j`` (An et al. 1984, J Biomech 17:113; what OpenSim's ``computeMomentArm`` returns), so the
surrogate's moment arms are its own exact derivatives. The degree is chosen per muscle by the error on a
validation split (polynomial path models: Menegaldo et al. 2004, J Biomech 37:1447; Sartori et al. 2012,
J Appl Biomech 28:478).

Where OpenSim's path switches via points (a ConditionalPathPoint active over a coordinate interval) the
length and moment arm jump; such a muscle gets one polynomial *piece* per interval between the switch values,
so the surrogate reproduces OpenSim's discontinuity instead of smearing it. Over wide ranges (gait2392's hip:
+-120 deg about three axes) a coordinate's range may also be cut into equal intervals (``splits``): the pieces
then tile a grid, each with its own scaling, so a piecewise polynomial follows what one polynomial cannot.
Where a path has a point fixed on the body between two joints (pelvis -> femur point -> tibia: sartorius,
tensor fasciae latae, rectus femoris over part of the knee range) its length is exactly a sum of a hip part
and a knee part; the *additive* basis (one polynomial per joint, no cross terms) is then also tried per piece
and kept where it validates better (fewer terms buy a higher degree).

A straight path segment between two fixed points on the bodies either side of one joint whose transform is
rotations about fixed axes (linear in the coordinates) and a constant translation (gait2392's hip) has an
exact length, ``|a_F - (R_FM(q) b_M + p_FM)|``; a muscle may carry such *exact segments*
(:class:`ExactSegment`, read from the model by ``pimsk.osim.path_sampling.exact_segments``), and its
polynomial pieces then fit only the rest of the length (e.g. tensor fasciae latae, whose iliac-crest ->
femur segment shortens to ~31 mm at extreme hip flexion or abduction, where its moment arms turn faster than
any polynomial of the hip can follow).

Evaluation is batched over any leading dims: ``q`` (..., n_coordinates) -> lengths (..., n_muscles) and
moment arms (..., n_muscles, n_coordinates), coordinates in the order of ``surrogate.coordinates``; SI units.
Each point is evaluated with the one piece of each muscle that contains it (interval lookup per coordinate).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations_with_replacement, product
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

FORMAT = "pimsk.path_surrogate"
VERSION = 2  # 2: muscles may carry exact segments

# highest total degree tried for a muscle (piece) crossing d coordinates
DEFAULT_MAX_DEGREE = {1: 9, 2: 8, 3: 7, 4: 7, 5: 5, 6: 4}


# --------------------------------------------------------------------------------------------------
# Polynomial fitting (numpy, float64)
# --------------------------------------------------------------------------------------------------


def monomial_exponents(n_vars: int, degree: int) -> np.ndarray:
    """Exponent vectors of total degree <= ``degree`` in ``n_vars`` variables, (n_terms, n_vars).

    Graded order: the set for degree D is a prefix of the set for degree D + 1.
    """
    rows = []
    for total in range(degree + 1):
        for combo in combinations_with_replacement(range(n_vars), total):
            e = np.zeros(n_vars, dtype=np.int64)
            for k in combo:
                e[k] += 1
            rows.append(e)
    return np.array(rows, dtype=np.int64).reshape(-1, n_vars)


def n_monomials(n_vars: int, degree: int) -> int:
    return math.comb(n_vars + degree, degree)


def design(x: np.ndarray, exponents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monomials (n, n_terms) and their x-derivatives (n, n_vars, n_terms) at scaled points x (n, n_vars)."""
    x = np.asarray(x, dtype=float)
    n, d = x.shape
    top = int(exponents.max(initial=0))
    powers = np.ones((n, d, top + 1))
    for p in range(1, top + 1):
        powers[:, :, p] = powers[:, :, p - 1] * x
    cols = np.arange(d)
    phi = np.prod(powers[:, cols[None, :], exponents], axis=-1)
    dphi = np.empty((n, d, exponents.shape[0]))
    for j in range(d):
        lowered = exponents.copy()
        lowered[:, j] = np.maximum(lowered[:, j] - 1, 0)
        dphi[:, j, :] = exponents[:, j] * np.prod(powers[:, cols[None, :], lowered], axis=-1)
    return phi, dphi


@dataclass
class PolyFit:
    """A fitted polynomial in q (n, d): exponents (n_terms, d), coefficients (n_terms,) m, scaling of q."""

    exponents: np.ndarray
    coefficients: np.ndarray
    center: np.ndarray
    half_range: np.ndarray

    @property
    def degree(self) -> int:
        return int(self.exponents.sum(1).max(initial=0))

    def length(self, q: np.ndarray) -> np.ndarray:
        """(n, d) -> (n,) m."""
        phi, _ = design((np.asarray(q) - self.center) / self.half_range, self.exponents)
        return phi @ self.coefficients

    def moment_arm(self, q: np.ndarray) -> np.ndarray:
        """(n, d) -> (n, d) m: r = -dl/dq."""
        _, dphi = design((np.asarray(q) - self.center) / self.half_range, self.exponents)
        return -(dphi @ self.coefficients) / self.half_range


def _system(q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray | None, exps: np.ndarray,
            center: np.ndarray, half_range: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Stacked least-squares rows: lengths, then ``weight * (-dl/dq_j) = weight * r_j`` per coordinate."""
    phi, dphi = design((q - center) / half_range, exps)
    blocks, rhs = [phi], [np.asarray(length_m, dtype=float)]
    if moment_arm_m is not None and weight > 0:
        r = np.asarray(moment_arm_m, dtype=float).reshape(q.shape)
        for j in range(q.shape[1]):
            blocks.append(-weight * dphi[:, j, :] / half_range[j])
            rhs.append(weight * r[:, j])
    return np.vstack(blocks), np.concatenate(rhs)


def _qr_augmented(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R and Q^T b of the column-scaled rows, from one QR of ``[a / scale | b]``; and the column scales.

    Columns keep their order, so for the first k columns the least-squares solution is
    ``solve(R[:k, :k], (Q^T b)[:k]) / scale[:k]``.
    """
    from scipy.linalg import qr

    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    r = qr(np.column_stack([a / scale, b]), mode="r", check_finite=False)[0]
    n = a.shape[1]
    return r[:n, :n], r[:n, n], scale


def _solve_prefix(r: np.ndarray, qtb: np.ndarray, scale: np.ndarray, k: int) -> np.ndarray | None:
    """Coefficients of the first k columns, or None where R is (numerically) singular there."""
    from scipy.linalg import solve_triangular

    diag = np.abs(np.diag(r[:k, :k]))
    if diag.min() < 1e-11 * np.abs(r[0, 0]):
        return None
    return solve_triangular(r[:k, :k], qtb[:k], check_finite=False) / scale[:k]


def additive_exponents(groups: Sequence[Sequence[int]], n_vars: int, degree: int) -> np.ndarray:
    """Exponents of a sum of polynomials, one per group of variables (no products across groups), each of
    total degree <= ``degree``, (n_terms, n_vars), graded so that the set for degree D is a prefix of the set
    for D + 1. For a path whose segments on either side of a body fixed point depend on different joints
    (e.g. pelvis -> femur point -> tibia), the length is exactly such a sum."""
    rows = [np.zeros(n_vars, dtype=np.int64)]
    for total in range(1, degree + 1):
        for group in groups:
            for e in monomial_exponents(len(group), total):
                if int(e.sum()) == total:
                    full = np.zeros(n_vars, dtype=np.int64)
                    full[list(group)] = e
                    rows.append(full)
    return np.array(rows, dtype=np.int64).reshape(-1, n_vars)


def _basis_exponents(basis: str, n_vars: int, degree: int, groups: Sequence[Sequence[int]] | None) -> np.ndarray:
    return monomial_exponents(n_vars, degree) if basis == "full" else additive_exponents(groups or [], n_vars, degree)


def _basis_size(basis: str, n_vars: int, degree: int, groups: Sequence[Sequence[int]] | None) -> int:
    """len(_basis_exponents(...)) without building it."""
    if basis == "full":
        return n_monomials(n_vars, degree)
    return 1 + sum(n_monomials(len(g), degree) - 1 for g in groups or [])


def _least_squares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    coef = None
    if a.shape[0] >= a.shape[1]:
        coef = _solve_prefix(*_qr_augmented(a, b), k=a.shape[1])
    if coef is None:  # rank-deficient: minimum-norm solution
        scale = np.linalg.norm(a, axis=0)
        scale[scale == 0] = 1.0
        coef = np.linalg.lstsq(a / scale, b, rcond=None)[0] / scale
    return coef


def fit_polynomial(q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray | None, degree: int,
                   center: np.ndarray, half_range: np.ndarray, moment_arm_weight: float = 1.0,
                   exponents: np.ndarray | None = None) -> PolyFit:
    """Least-squares polynomial of total degree ``degree`` through lengths and moment arms.

    q (n, d) rad or m; length_m (n,); moment_arm_m (n, d) or None (lengths only). The moment-arm rows
    ``-dl/dq_j = r_j`` carry weight ``moment_arm_weight`` (both residuals are in metres). ``exponents``
    (n_terms, d): another set of monomials (e.g. :func:`additive_exponents`) instead of all of total degree
    <= ``degree``.
    """
    q = np.asarray(q, dtype=float).reshape(len(length_m), -1)
    center, half_range = np.asarray(center, dtype=float), np.asarray(half_range, dtype=float)
    exps = monomial_exponents(q.shape[1], degree) if exponents is None else np.asarray(exponents, dtype=np.int64)
    a, b = _system(q, length_m, moment_arm_m, exps, center, half_range, moment_arm_weight)
    return PolyFit(exps, _least_squares(a, b), center, half_range)


def fit_errors(fit: PolyFit, q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray) -> dict[str, float]:
    """Absolute errors in mm: length and moment arm (all coordinates pooled) median, max and rms."""
    el = np.abs(fit.length(q) - length_m) * 1e3
    er = np.abs(fit.moment_arm(q) - np.asarray(moment_arm_m).reshape(np.shape(q))) * 1e3
    return {"length_median_mm": float(np.median(el)), "length_max_mm": float(el.max()),
            "length_rms_mm": float(np.sqrt(np.mean(el ** 2))),
            "moment_arm_median_mm": float(np.median(er)), "moment_arm_max_mm": float(er.max()),
            "moment_arm_rms_mm": float(np.sqrt(np.mean(er ** 2)))}


def select_basis(q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray, center: np.ndarray,
                 half_range: np.ndarray, max_degree: int | None = None, groups: Sequence[Sequence[int]] | None = None,
                 max_additive_degree: int | None = None, validation_fraction: float = 0.25, seed: int = 0,
                 moment_arm_weight: float = 1.0) -> tuple[PolyFit, dict[str, float], str]:
    """Pick the basis and total degree with the smallest validation error, then refit on every sample.

    Bases: ``full`` (every monomial of total degree <= D, up to ``max_degree``, default
    ``DEFAULT_MAX_DEGREE[d]``) and, where ``groups`` (lists of variable indices, e.g. the coordinates of
    each joint) has two or more groups, ``additive`` (:func:`additive_exponents`, up to
    ``max_additive_degree``, default ``DEFAULT_MAX_DEGREE`` of the largest group + 2: fewer terms buy a
    higher degree). Score: ``rms(length error) + rms(moment-arm error)`` (mm) on a random
    ``validation_fraction`` of the samples; one QR factorisation per basis at its highest degree serves every
    degree (graded monomials: each degree's columns are a prefix); degrees with more terms than a third of
    the fitting rows are skipped. Returns the refitted polynomial, the score of every (basis, degree) tried
    (keys like ``"full7"``) and the chosen basis.
    """
    q = np.asarray(q, dtype=float).reshape(len(length_m), -1)
    length_m = np.asarray(length_m, dtype=float)
    moment_arm_m = np.asarray(moment_arm_m, dtype=float).reshape(q.shape)
    center, half_range = np.asarray(center, dtype=float), np.asarray(half_range, dtype=float)
    n, d = q.shape
    bases = {"full": max_degree if max_degree is not None else DEFAULT_MAX_DEGREE.get(d, 3)}
    if groups is not None and len(groups) > 1:
        largest = max(len(g) for g in groups)
        bases["additive"] = (max_additive_degree if max_additive_degree is not None
                             else DEFAULT_MAX_DEGREE.get(largest, 3) + 2)
    rows_per_sample = 1 + (d if moment_arm_weight > 0 else 0)
    n_val = max(1, int(round(validation_fraction * n))) if n >= 8 else 0
    perm = np.random.default_rng(seed).permutation(n)
    val, train = perm[:n_val], perm[n_val:]
    scores: dict[str, float] = {}
    best: tuple[float, str, int] = (np.inf, "full", 1)
    factors: dict[str, tuple[np.ndarray, ...]] = {}
    for basis, top in bases.items():
        while top > 0 and 3 * _basis_size(basis, d, top, groups) > len(train) * rows_per_sample:
            top -= 1
        if top == 0:
            if basis == "full":
                raise ValueError(f"too few samples ({n}) to fit a polynomial in {d} coordinates")
            continue
        if not n_val:  # too few samples to validate: the lowest degree
            continue
        exps = _basis_exponents(basis, d, top, groups)
        a, b = _system(q[train], length_m[train], moment_arm_m[train], exps, center, half_range, moment_arm_weight)
        r, qtb, scale = _qr_augmented(a, b)
        factors[basis] = (exps, r, qtb, scale)
        phi_v, dphi_v = design((q[val] - center) / half_range, exps)
        for degree in range(1, top + 1):
            k = _basis_size(basis, d, degree, groups)
            coef = _solve_prefix(r, qtb, scale, k)
            if coef is None:  # the samples do not determine these terms
                break
            el = phi_v[:, :k] @ coef - length_m[val]
            er = -(dphi_v[:, :, :k] @ coef) / half_range - moment_arm_m[val]
            score = 1e3 * (np.sqrt(np.mean(el ** 2)) + np.sqrt(np.mean(er ** 2)))
            scores[f"{basis}{degree}"] = score
            best = min(best, (score, basis, degree))
    _, basis, degree = best
    exps = _basis_exponents(basis, d, degree, groups)
    coef = None
    if basis in factors:  # refit on every sample: update the training rows' factor with the validation rows
        from scipy.linalg import qr

        top_exps, r, qtb, scale = factors[basis]
        a, b = _system(q[val], length_m[val], moment_arm_m[val], top_exps, center, half_range, moment_arm_weight)
        stacked = np.vstack([np.column_stack([r, qtb]), np.column_stack([a / scale, b])])
        r_all = qr(stacked, mode="r", check_finite=False)[0]
        m = r.shape[1]
        coef = _solve_prefix(r_all[:m, :m], r_all[:m, m], scale, len(exps))
    fit = (PolyFit(exps, coef, center, half_range) if coef is not None else
           fit_polynomial(q, length_m, moment_arm_m, degree, center, half_range, moment_arm_weight, exponents=exps))
    return fit, scores, basis


def select_degree(q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray, center: np.ndarray,
                  half_range: np.ndarray, max_degree: int | None = None, validation_fraction: float = 0.25,
                  seed: int = 0, moment_arm_weight: float = 1.0) -> tuple[PolyFit, dict[int, float]]:
    """Pick the total degree with the smallest validation error, then refit on every sample (full basis only;
    see :func:`select_basis`). Returns the refitted polynomial and the score (mm) of each degree tried."""
    fit, scores, _ = select_basis(q, length_m, moment_arm_m, center, half_range, max_degree=max_degree,
                                  validation_fraction=validation_fraction, seed=seed,
                                  moment_arm_weight=moment_arm_weight)
    return fit, {int(k[len("full"):]): v for k, v in scores.items()}


# --------------------------------------------------------------------------------------------------
# Serialisable description
# --------------------------------------------------------------------------------------------------


@dataclass
class PolynomialPiece:
    """A polynomial valid where every condition ``lower <= q[coordinate] < upper`` holds (None: unbounded).

    exponents (n_terms, d) over the muscle's coordinates; coefficients (n_terms,) in m; the polynomial is in
    ``x = (q - center) / half_range`` with this piece's own center and half_range (d,) (rad or m), so that a
    piece on a short interval stays well conditioned (also in float32).
    """

    exponents: list[list[int]]
    coefficients: list[float]
    center: list[float]
    half_range: list[float]
    conditions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def degree(self) -> int:
        return int(max((sum(e) for e in self.exponents), default=0))


@dataclass
class ExactSegment:
    """A straight path segment across one joint, whose length is computed exactly.

    Length ``s(q) = |parent_point - (R_FM(q) child_point + translation)|`` (m) with ``parent_point`` the
    segment's end on the joint's parent side in the joint's parent frame F, ``child_point`` its other end in
    the joint's child frame M, ``translation`` the (constant) position of M's origin in F, and
    ``R_FM(q) = R(axes[0], angle_0) R(axes[1], angle_1) ...`` body-fixed rotations (OpenSim's CustomJoint
    SpatialTransform) by ``angle_i = slopes[i] * q[coordinates[i]] + intercepts[i]`` (rad; coordinate None:
    the constant ``intercepts[i]``). ``name`` says which path points and joint (for reports).
    """

    parent_point: list[float]
    child_point: list[float]
    translation: list[float]
    axes: list[list[float]]
    coordinates: list[str | None]
    slopes: list[float]
    intercepts: list[float]
    name: str = ""


@dataclass
class MusclePath:
    """One muscle: the coordinates it crosses, its polynomial piece(s) and optional exact segments (the
    length is the segments' lengths plus the piece's polynomial)."""

    name: str
    coordinates: list[str]
    pieces: list[PolynomialPiece]
    report: dict[str, Any] = field(default_factory=dict)
    segments: list[ExactSegment] = field(default_factory=list)

    @property
    def degree(self) -> str:
        return "/".join(str(p.degree) for p in self.pieces)


# --------------------------------------------------------------------------------------------------
# The torch surrogate
# --------------------------------------------------------------------------------------------------


def _skew(v: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices: skew(v) @ w = v x w."""
    out = np.zeros((*v.shape[:-1], 3, 3))
    out[..., 0, 1], out[..., 0, 2], out[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    return out - np.swapaxes(out, -1, -2)


class _ExactSegments(nn.Module):
    """One muscle's exact segments (:class:`ExactSegment`), batched and differentiable.

    ``forward(q_muscle)``: the muscle's coordinates (..., d) rad or m -> the segments' summed length (...,) m
    and its derivative ds/dq (..., d). Rotation i of the body-fixed sequence ``R = R_0 R_1 ...`` turns
    ``R b`` about ``omega_i = R_0 ... R_{i-1} axis_i`` (the axis in F at the current pose), so
    ``ds/dangle_i = -(d / |d|) . (omega_i x R b)`` with ``d = a - R b - p``; padded rotations have slope and
    angle 0 (identity).
    """

    def __init__(self, segments: Sequence[ExactSegment], coordinates: list[str], muscle: str) -> None:
        super().__init__()
        n, k = len(segments), max(len(seg.axes) for seg in segments)
        axes = np.zeros((n, k, 3))
        axes[..., 0] = 1.0
        slopes, intercepts = np.zeros((n, k)), np.zeros((n, k))
        position = np.zeros((n, k), dtype=np.int64)
        for i, seg in enumerate(segments):
            if not len(seg.axes) == len(seg.coordinates) == len(seg.slopes) == len(seg.intercepts):
                raise ValueError(f"muscle {muscle}: segment {seg.name!r} has unequal numbers of axes, "
                                 "coordinates, slopes and intercepts")
            for j, (axis, coord) in enumerate(zip(seg.axes, seg.coordinates)):
                axes[i, j] = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
                intercepts[i, j] = seg.intercepts[j]
                if coord is not None:
                    if coord not in coordinates:
                        raise ValueError(f"muscle {muscle}: segment {seg.name!r} turns with {coord!r}, not a "
                                         f"coordinate the muscle crosses ({coordinates})")
                    position[i, j], slopes[i, j] = coordinates.index(coord), seg.slopes[j]
        f64 = torch.float64
        self.n_rotations = k
        self.register_buffer("parent", torch.tensor([seg.parent_point for seg in segments], dtype=f64))
        self.register_buffer("child", torch.tensor([seg.child_point for seg in segments], dtype=f64))
        self.register_buffer("translation", torch.tensor([seg.translation for seg in segments], dtype=f64))
        self.register_buffer("axes", torch.tensor(axes, dtype=f64))
        self.register_buffer("skew", torch.tensor(_skew(axes), dtype=f64))
        self.register_buffer("skew2", torch.tensor(_skew(axes) @ _skew(axes), dtype=f64))
        self.register_buffer("slopes", torch.tensor(slopes, dtype=f64))
        self.register_buffer("intercepts", torch.tensor(intercepts, dtype=f64))
        self.register_buffer("position", torch.tensor(position, dtype=torch.long))
        self.d = len(coordinates)

    def forward(self, q: Tensor) -> tuple[Tensor, Tensor]:
        angle = q[..., self.position] * self.slopes + self.intercepts  # (..., n, k)
        sin, cos = torch.sin(angle)[..., None, None], torch.cos(angle)[..., None, None]
        eye = torch.eye(3, dtype=q.dtype, device=q.device)
        turns = eye + sin * self.skew + (1.0 - cos) * self.skew2  # Rodrigues, (..., n, k, 3, 3)
        rotation = eye.expand(*angle.shape[:-1], 3, 3)
        omegas = []
        for i in range(self.n_rotations):
            omegas.append((rotation @ self.axes[:, i, :, None])[..., 0])
            rotation = rotation @ turns[..., i, :, :]
        rb = (rotation @ self.child[..., None])[..., 0]  # (..., n, 3)
        d = self.parent - rb - self.translation
        length = torch.linalg.vector_norm(d, dim=-1)  # (..., n)
        ds_dangle = torch.stack([-(d * torch.linalg.cross(w, rb)).sum(-1) for w in omegas], -1) / length[..., None]
        values = (ds_dangle * self.slopes).flatten(-2)
        slope = torch.zeros(*q.shape[:-1], self.d, dtype=q.dtype, device=q.device)
        return length.sum(-1), slope.index_add(-1, self.position.flatten(), values)


def exact_segment_length(segment: ExactSegment, coordinates: Sequence[str],
                         q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One exact segment's length (n,) m and derivative ds/dq (n, d) at q (n, d) rad or m, columns in the
    order of ``coordinates`` (which must hold the segment's); float64."""
    module = _ExactSegments([segment], list(coordinates), segment.name)
    with torch.no_grad():
        length, slope = module(torch.as_tensor(np.asarray(q, dtype=float).reshape(-1, len(coordinates))))
    return length.numpy(), slope.numpy()


class _MusclePieces(nn.Module):
    """One muscle's polynomial pieces, evaluated by lookup: the pieces tile a grid of intervals of the
    coordinates named in their conditions; each point's cell is found by ``torch.bucketize`` per coordinate,
    and only that cell's polynomial (in that cell's own scaling) is evaluated.

    Buffers: ``poly_cols`` (d,) the muscle's coordinates among the surrogate's; ``grid_cols`` (g,) those
    with interval edges ``edges_<k>``; ``stride`` (g,); per cell ``center``, ``half_range`` (n_cells, d) and
    ``coef`` (n_cells, n_terms) over one exponent set closed downwards (zeros for terms a piece lacks);
    ``weights`` (n_terms, n_cells * (1 + d)) the same polynomials and their x-derivatives as coefficients of
    those monomials; ``parent``/``factor`` build the monomials degree by degree.
    """

    def __init__(self, path: MusclePath, coordinates: list[str]) -> None:
        super().__init__()
        d = len(path.coordinates)
        poly_cols = [coordinates.index(c) for c in path.coordinates]
        grid_names: list[str] = []
        for piece in path.pieces:
            for cond in piece.conditions:
                if cond["coordinate"] not in coordinates:
                    raise ValueError(f"muscle {path.name}: condition on unknown coordinate {cond['coordinate']!r}")
                if cond["coordinate"] not in grid_names:
                    grid_names.append(cond["coordinate"])
        edges = {g: sorted({float(cond[k]) for p in path.pieces for cond in p.conditions
                            if cond["coordinate"] == g for k in ("lower", "upper") if cond.get(k) is not None})
                 for g in grid_names}
        counts = [len(edges[g]) + 1 for g in grid_names]
        n_cells = int(np.prod(counts)) if counts else 1
        strides = [int(np.prod(counts[i + 1:])) for i in range(len(counts))]
        owner = np.full(n_cells, -1)
        for k, piece in enumerate(path.pieces):
            spans = []
            for g in grid_names:
                conds = [c for c in piece.conditions if c["coordinate"] == g]
                lo = max([edges[g].index(float(c["lower"])) + 1 for c in conds if c.get("lower") is not None],
                         default=0)
                hi = min([edges[g].index(float(c["upper"])) + 1 for c in conds if c.get("upper") is not None],
                         default=len(edges[g]) + 1)
                spans.append(range(lo, hi))
            for idx in product(*spans):
                cell = sum(i * s for i, s in zip(idx, strides))
                if owner[cell] >= 0:
                    raise ValueError(f"muscle {path.name}: pieces {owner[cell]} and {k} overlap")
                owner[cell] = k
        if (owner < 0).any():
            raise ValueError(f"muscle {path.name}: the pieces do not cover every interval of {grid_names}")
        terms: set[tuple[int, ...]] = {(0,) * d}
        for piece in path.pieces:
            for e in piece.exponents:  # close downwards: every derivative is a member
                terms.update(product(*(range(int(p) + 1) for p in e)))
        ordered = sorted(terms, key=lambda t: (sum(t), t))  # each monomial = (one of degree - 1) * x_j
        position = {t: i for i, t in enumerate(ordered)}
        degrees = [sum(t) for t in ordered]
        first_of_degree = {deg: degrees.index(deg) for deg in set(degrees)}
        parent, factor = [0], [0]  # parent: index within the previous degree's layer
        for t in ordered[1:]:
            j = next(i for i in range(d) if t[i] > 0)
            lower = list(t)
            lower[j] -= 1
            parent.append(position[tuple(lower)] - first_of_degree[sum(t) - 1])
            factor.append(j)
        self.layers: list[tuple[int, int]] = []
        start = 1
        while start < len(ordered):
            stop = start
            while stop < len(ordered) and degrees[stop] == degrees[start]:
                stop += 1
            self.layers.append((start, stop))
            start = stop
        coef = np.zeros((n_cells, len(ordered)))
        center = np.zeros((n_cells, d))
        half = np.ones((n_cells, d))
        for cell, k in enumerate(owner):
            piece = path.pieces[k]
            for e, c in zip(piece.exponents, piece.coefficients):
                coef[cell, position[tuple(int(p) for p in e)]] += c
            center[cell], half[cell] = piece.center, piece.half_range
        # weights (n_terms, n_cells, 1 + d): the cell's length polynomial and its d x-derivatives, each as
        # coefficients of the same monomials (d(x^e)/dx_j = e_j x^(e - 1_j), a member of the closed set)
        weights = np.zeros((len(ordered), n_cells, 1 + d))
        weights[:, :, 0] = coef.T
        for i, t in enumerate(ordered):
            for j in range(d):
                if t[j] > 0:
                    lower = list(t)
                    lower[j] -= 1
                    weights[position[tuple(lower)], :, 1 + j] += t[j] * coef[:, i]
        f64, long = torch.float64, torch.long
        self.n_cells = n_cells
        self.n_grid = len(grid_names)
        self.register_buffer("poly_cols", torch.tensor(poly_cols, dtype=long))
        self.register_buffer("grid_cols", torch.tensor([coordinates.index(g) for g in grid_names], dtype=long))
        self.register_buffer("stride", torch.tensor(strides, dtype=long))
        for i, g in enumerate(grid_names):
            self.register_buffer(f"edges_{i}", torch.tensor(edges[g], dtype=f64))
        self.register_buffer("center", torch.tensor(center, dtype=f64))
        self.register_buffer("half_range", torch.tensor(half, dtype=f64))
        self.register_buffer("coef", torch.tensor(coef, dtype=f64))
        self.register_buffer("weights", torch.tensor(weights.reshape(len(ordered), -1), dtype=f64))
        self.register_buffer("parent", torch.tensor(parent, dtype=long))
        self.register_buffer("factor", torch.tensor(factor, dtype=long))
        # a muscle fitted on a restricted range is evaluated at the nearest point of that range outside it
        bounds = np.array([[-np.inf, np.inf]] * d)
        for c, (lo, hi) in path.report.get("restricted_range", {}).items():
            bounds[path.coordinates.index(c)] = (lo, hi)
        self.restricted = bool(np.isfinite(bounds).any())
        self.register_buffer("lower", torch.tensor(bounds[:, 0], dtype=f64))
        self.register_buffer("upper", torch.tensor(bounds[:, 1], dtype=f64))
        self.exact = _ExactSegments(path.segments, path.coordinates, path.name) if path.segments else None

    def cell(self, q: Tensor) -> Tensor:
        """(..., n_coordinates) -> (...,) index of the grid cell (piece) each point lies in."""
        index = torch.zeros(q.shape[:-1], dtype=torch.long, device=q.device)
        for i in range(self.n_grid):
            edges = getattr(self, f"edges_{i}")
            column = q[..., self.grid_cols[i]].contiguous()
            index = index + torch.bucketize(column, edges.to(q.dtype), right=True) * self.stride[i]
        return index

    def _clamp(self, q: Tensor) -> Tensor:
        """The nearest point of the fitted range (a muscle fitted on a restricted range), else q."""
        if not self.restricted:
            return q
        clamped = torch.minimum(torch.maximum(q[..., self.poly_cols], self.lower), self.upper)
        return q.index_copy(-1, self.poly_cols, clamped)

    def _monomials(self, q: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """Monomials (..., n_terms) in each point's cell scaling, the cell index (None: one cell) and the
        cell's half ranges (..., d); q already clamped."""
        if self.n_cells == 1:
            cell, center, half = None, self.center[0], self.half_range[0]
        else:
            cell = self.cell(q)
            center, half = self.center[cell], self.half_range[cell]
        x = (q[..., self.poly_cols] - center) / half
        layer = torch.ones_like(x[..., :1])
        layers = [layer]
        for start, stop in self.layers:  # degree by degree: monomial = (one of degree - 1) * x_j
            layer = layer[..., self.parent[start:stop]] * x[..., self.factor[start:stop]]
            layers.append(layer)
        return torch.cat(layers, dim=-1), cell, half

    def _per_cell(self, values: Tensor, cell: Tensor | None, width: int) -> Tensor:
        """(..., n_cells * width) values of every cell's polynomials -> (..., width) of the point's own cell.
        (One matrix product for all cells, then a gather: cheaper than gathering coefficients per point.)"""
        values = values.reshape(*values.shape[:-1], self.n_cells, width)
        if cell is None:
            return values[..., 0, :]
        return torch.gather(values, -2, cell[..., None, None].expand(*cell.shape, 1, width)).squeeze(-2)

    def length(self, q: Tensor) -> Tensor:
        """(..., n_coordinates) -> (...,) m."""
        q = self._clamp(q)
        monomials, cell, _ = self._monomials(q)
        length = self._per_cell(monomials @ self.coef.t(), cell, 1)[..., 0]
        return length if self.exact is None else length + self.exact(q[..., self.poly_cols])[0]

    def length_and_slope(self, q: Tensor) -> tuple[Tensor, Tensor]:
        """Length (...,) m and dl/dq (..., d) over the muscle's coordinates (0 along a clamped coordinate)."""
        clamped = self._clamp(q)
        monomials, cell, half = self._monomials(clamped)
        out = self._per_cell(monomials @ self.weights, cell, 1 + self.poly_cols.numel())
        length, slope = out[..., 0], out[..., 1:] / half
        if self.exact is not None:
            exact_length, exact_slope = self.exact(clamped[..., self.poly_cols])
            length, slope = length + exact_length, slope + exact_slope
        if self.restricted:
            q_muscle = q[..., self.poly_cols]
            slope = slope * ((q_muscle >= self.lower) & (q_muscle <= self.upper)).to(slope.dtype)
        return length, slope


class PathSurrogate(nn.Module):
    """Batched, differentiable MTU lengths and moment arms of several muscles.

    ``forward(q)`` / ``lengths(q)``: q (..., n_coordinates) rad or m -> (..., n_muscles) m.
    ``moment_arms(q)``: (..., n_muscles, n_coordinates) m, ``r = -dl/dq`` of the same polynomial (the exact
    derivative, equal to autograd's), zero where a muscle does not cross a coordinate.
    Each point is evaluated with the one piece of each muscle that contains it (interval lookup), so many
    pieces cost little. A muscle fitted on a restricted range (``report["restricted_range"]``) is evaluated
    at the nearest point of that range outside it (length held, moment arm zero along a clamped coordinate)
    instead of extrapolating its polynomial. A muscle's exact segments (:class:`ExactSegment`) add their
    lengths and derivatives to its polynomial's. Works in float32 or float64 (``.to(dtype)``), on any device.
    """

    def __init__(self, coordinates: Sequence[str], center: Sequence[float], half_range: Sequence[float],
                 muscles: Sequence[MusclePath], model: str = "", fixed_coordinates: dict[str, float] | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.coordinates = list(coordinates)
        self.paths = list(muscles)
        self.muscles = [m.name for m in muscles]
        self.model = model
        self.fixed_coordinates = dict(fixed_coordinates or {})
        for m in muscles:
            missing = [c for c in m.coordinates if c not in self.coordinates]
            if missing:
                raise ValueError(f"muscle {m.name}: coordinates {missing} not among {self.coordinates}")
            if not m.pieces:
                raise ValueError(f"muscle {m.name} has no polynomial")
        self.pieces = nn.ModuleList(_MusclePieces(m, self.coordinates) for m in muscles)
        self.n_terms = sum(int(p.coef.numel()) for p in self.pieces)
        # conditions of every piece (muscle by muscle), for piece_mask
        all_pieces = [(k, p) for k, m in enumerate(muscles) for p in m.pieces]
        n_cond = max([len(p.conditions) for _, p in all_pieces] + [1])
        cond_coord = np.zeros((len(all_pieces), n_cond), dtype=np.int64)
        cond_lower = np.full((len(all_pieces), n_cond), -np.inf)
        cond_upper = np.full((len(all_pieces), n_cond), np.inf)
        for pi, (_, piece) in enumerate(all_pieces):
            for ci, cond in enumerate(piece.conditions):
                cond_coord[pi, ci] = self.coordinates.index(cond["coordinate"])
                if cond.get("lower") is not None:
                    cond_lower[pi, ci] = float(cond["lower"])
                if cond.get("upper") is not None:
                    cond_upper[pi, ci] = float(cond["upper"])
        self.has_pieces = any(p.conditions for _, p in all_pieces)
        f64 = torch.float64
        self.register_buffer("center", torch.tensor([float(x) for x in center], dtype=f64))
        self.register_buffer("half_range", torch.tensor([float(x) for x in half_range], dtype=f64))
        self.register_buffer("cond_coord", torch.tensor(cond_coord, dtype=torch.long))
        self.register_buffer("cond_lower", torch.tensor(cond_lower, dtype=f64))
        self.register_buffer("cond_upper", torch.tensor(cond_upper, dtype=f64))
        self.to(dtype)

    # -- evaluation ----------------------------------------------------------------------------------

    def piece_mask(self, q: Tensor) -> Tensor:
        """(..., n_pieces) 1 where a piece applies, else 0 (pieces muscle by muscle, in ``paths`` order)."""
        qc = q[..., self.cond_coord]  # (..., n_pieces, n_conditions)
        ok = (qc >= self.cond_lower) & (qc < self.cond_upper)
        return ok.all(-1).to(q.dtype)

    def lengths_and_moment_arms(self, q: Tensor) -> tuple[Tensor, Tensor]:
        """Lengths (..., n_muscles) and moment arms (..., n_muscles, n_coordinates), m."""
        lengths, arms = [], []
        for pieces in self.pieces:
            length, slope = pieces.length_and_slope(q)
            lengths.append(length)
            arm = torch.zeros(*q.shape[:-1], len(self.coordinates), dtype=q.dtype, device=q.device)
            arms.append(arm.index_add(-1, pieces.poly_cols, -slope))
        return torch.stack(lengths, -1), torch.stack(arms, -2)

    def lengths(self, q: Tensor) -> Tensor:
        """MTU lengths (..., n_muscles), m."""
        return torch.stack([pieces.length(q) for pieces in self.pieces], -1)

    def forward(self, q: Tensor) -> Tensor:
        return self.lengths(q)

    def moment_arms(self, q: Tensor) -> Tensor:
        """Moment arms (..., n_muscles, n_coordinates), m: ``-dl/dq`` of the same polynomial."""
        return self.lengths_and_moment_arms(q)[1]

    # -- serialisation -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        center, half = self.center.double().tolist(), self.half_range.double().tolist()
        return {"format": FORMAT, "version": VERSION, "model": self.model,
                "scaling": ("per piece: x = (q - center) / half_range; "
                            "length_m = sum_t coefficient_t * prod_j x_j ** exponent_tj"),
                "coordinates": [{"name": c, "center": ce, "half_range": h, "range_min": ce - h, "range_max": ce + h}
                                for c, ce, h in zip(self.coordinates, center, half)],
                "fixed_coordinates": self.fixed_coordinates,
                "muscles": [{"name": m.name, "coordinates": m.coordinates, "report": m.report,
                             "pieces": [{"conditions": p.conditions, "center": p.center, "half_range": p.half_range,
                                         "degree": p.degree, "exponents": p.exponents,
                                         "coefficients": p.coefficients} for p in m.pieces],
                              "segments": [asdict(seg) for seg in m.segments]}
                            for m in self.paths]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], dtype: torch.dtype = torch.float64) -> "PathSurrogate":
        coords = data["coordinates"]
        muscles = [MusclePath(m["name"], list(m["coordinates"]),
                              [PolynomialPiece([list(map(int, e)) for e in p["exponents"]],
                                               [float(c) for c in p["coefficients"]],
                                               [float(c) for c in p["center"]], [float(h) for h in p["half_range"]],
                                               list(p.get("conditions", [])))
                               for p in m["pieces"]], dict(m.get("report", {})),
                              [ExactSegment(**seg) for seg in m.get("segments", [])])
                   for m in data["muscles"]]
        return cls([c["name"] for c in coords], [c["center"] for c in coords], [c["half_range"] for c in coords],
                   muscles, model=data.get("model", ""), fixed_coordinates=data.get("fixed_coordinates", {}),
                   dtype=dtype)

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load_json(cls, path: str | Path, dtype: torch.dtype = torch.float64) -> "PathSurrogate":
        from pimsk.errors import FileFormatError

        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise FileFormatError(f"cannot read path surrogate: {exc}", file=path) from None
        if data.get("format") != FORMAT:
            raise FileFormatError(f"not a path surrogate (format {data.get('format')!r})", file=path,
                                  field="format", hint=f"expected {FORMAT!r}")
        if not isinstance(data.get("version", 1), int) or data.get("version", 1) > VERSION:
            raise FileFormatError(f"path surrogate version {data.get('version')!r} is newer than this pimsk "
                                  f"reads ({VERSION})", file=path, field="version", hint="update pimsk")
        try:
            return cls.from_dict(data, dtype=dtype)
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(f"malformed path surrogate: {exc}", file=path) from None


# --------------------------------------------------------------------------------------------------
# Fitting every muscle, and the held-out report
# --------------------------------------------------------------------------------------------------


def _intervals(breaks: Mapping[str, Sequence[float]]) -> list[list[dict[str, Any]]]:
    """Cartesian product of the intervals between break values: a list of condition lists."""
    per = []
    for coord, values in breaks.items():
        edges = [None, *sorted(float(v) for v in values), None]
        per.append([{"coordinate": coord, "lower": lo, "upper": hi} for lo, hi in zip(edges[:-1], edges[1:])])
    return [list(c) for c in product(*per)] if per else [[]]


def _in_piece(q: np.ndarray, coordinates: list[str], conditions: list[dict[str, Any]]) -> np.ndarray:
    ok = np.ones(q.shape[0], dtype=bool)
    for cond in conditions:
        x = q[:, coordinates.index(cond["coordinate"])]
        if cond.get("lower") is not None:
            ok &= x >= cond["lower"]
        if cond.get("upper") is not None:
            ok &= x < cond["upper"]
    return ok


def _piece_edges(switches: Sequence[float], lo: float, hi: float, n_splits: int) -> list[float]:
    """Interior edges of one coordinate's pieces: the path switches inside (lo, hi), switches closer than
    1e-3 of the range merged into one (e.g. a via point active on a 2e-5 rad window: no samples fall there),
    and the edges of ``n_splits`` equal intervals, an equal-interval edge dropped where a switch lies within
    a fifth of an interval of it (no sliver pieces)."""
    clusters: list[list[float]] = []
    for v in sorted(float(v) for v in switches if lo < v < hi):
        if clusters and v - clusters[-1][-1] < 1e-3 * (hi - lo):
            clusters[-1].append(v)
        else:
            clusters.append([v])
    edges = [float(np.mean(c)) for c in clusters]
    width = (hi - lo) / max(n_splits, 1)
    for e in np.linspace(lo, hi, max(n_splits, 1) + 1)[1:-1]:
        if all(abs(e - v) > 0.2 * width for v in edges):
            edges.append(float(e))
    return sorted(edges)


def fit_surrogate(coordinates: Sequence[str], range_min: Sequence[float], range_max: Sequence[float],
                  crossed: Mapping[str, Sequence[str]], q: np.ndarray, length_m: np.ndarray,
                  moment_arm_m: np.ndarray, muscles: Sequence[str],
                  breaks: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
                  max_degree: int | Mapping[int, int] | None = None, seed: int = 0, moment_arm_weight: float = 1.0,
                  model: str = "", fixed_coordinates: dict[str, float] | None = None,
                  splits: Mapping[str, int] | None = None, joints: Mapping[str, str] | None = None,
                  muscle_ranges: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
                  segments: Mapping[str, Sequence[ExactSegment | Mapping[str, Any]]] | None = None) -> PathSurrogate:
    """Fit every muscle (one polynomial per piece, basis and degree chosen on a validation split) -> surrogate.

    q (n, n_coordinates) in the order of ``coordinates``; length_m (n, n_muscles); moment_arm_m
    (n, n_muscles, n_coordinates). ``crossed[muscle]``: the coordinates it depends on. ``breaks[muscle]``:
    coordinate -> values where the path switches (see ``pimsk.osim.path_sampling.conditional_breaks``).

    splits: coordinate -> number of equal intervals its range is cut into for every muscle crossing it
    (more, smaller pieces where one polynomial cannot follow a path over a wide range, e.g. the +-120 deg
    of gait2392's hip); pieces tile a grid (switches x splits). joints: coordinate -> joint name; a muscle
    crossing coordinates of several joints may then also get the *additive* basis (a sum of one polynomial
    per joint, :func:`additive_exponents`), chosen where it validates better. muscle_ranges: muscle ->
    coordinate -> (min, max) narrower than the sampled range: that muscle is fitted (and valid) there only;
    the muscle's report records it under ``restricted_range``. segments: muscle -> its exact segments
    (:class:`ExactSegment` or their dicts, e.g. from ``pimsk.osim.path_sampling.exact_segments``): the
    pieces then fit the length and moment arms left once the segments' own are taken away, and the surrogate
    adds the segments back (their names go to the report under ``exact_segments``).
    """
    from threadpoolctl import threadpool_limits

    # one BLAS thread: these QRs are small, and threads fighting over shared cores cost 5-20x
    with threadpool_limits(limits=1, user_api="blas"):
        paths = _fit_all(list(coordinates), range_min, range_max, crossed, q, length_m, moment_arm_m, muscles,
                         breaks, max_degree, seed, moment_arm_weight, splits or {}, joints or {},
                         muscle_ranges or {}, segments or {})
    lo, hi = np.asarray(range_min, dtype=float), np.asarray(range_max, dtype=float)
    return PathSurrogate(coordinates, ((hi + lo) / 2).tolist(), ((hi - lo) / 2).tolist(), paths, model=model,
                         fixed_coordinates=fixed_coordinates)


def _fit_all(coordinates: list[str], range_min: Sequence[float], range_max: Sequence[float],
             crossed: Mapping[str, Sequence[str]], q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray,
             muscles: Sequence[str], breaks: Mapping[str, Mapping[str, Sequence[float]]] | None,
             max_degree: int | Mapping[int, int] | None, seed: int, moment_arm_weight: float,
             splits: Mapping[str, int], joints: Mapping[str, str],
             muscle_ranges: Mapping[str, Mapping[str, Sequence[float]]],
             segments: Mapping[str, Sequence[ExactSegment | Mapping[str, Any]]]) -> list[MusclePath]:
    lo_all, hi_all = np.asarray(range_min, dtype=float), np.asarray(range_max, dtype=float)
    unknown = sorted(set(segments) - set(muscles))
    if unknown:
        raise ValueError(f"segments given for muscles {unknown} that are not fitted")
    paths = []
    for k, name in enumerate(muscles):
        names = list(crossed[name])
        cols = [coordinates.index(c) for c in names]
        d = len(cols)
        exact = [seg if isinstance(seg, ExactSegment) else ExactSegment(**seg) for seg in segments.get(name, [])]
        length_k, arms_k = length_m[:, k], moment_arm_m[:, k][:, cols]
        if exact:  # the polynomial fits what the exact segments leave: l - s and r - (-ds/dq)
            with torch.no_grad():
                s_m, ds_dq = _ExactSegments(exact, names, name)(torch.as_tensor(q[:, cols], dtype=torch.float64))
            length_k, arms_k = length_k - s_m.numpy(), arms_k + ds_dq.numpy()
        top = max_degree.get(d) if isinstance(max_degree, Mapping) else max_degree
        lo, hi = lo_all[cols].copy(), hi_all[cols].copy()
        restricted = {}
        for c, (r_lo, r_hi) in (muscle_ranges.get(name) or {}).items():
            if c not in names:
                raise ValueError(f"muscle {name}: muscle_ranges names {c!r}, not a coordinate it crosses")
            j = names.index(c)
            lo[j], hi[j] = max(lo[j], float(r_lo)), min(hi[j], float(r_hi))
            restricted[c] = [float(lo[j]), float(hi[j])]
        inside = np.all((q[:, cols] >= lo) & (q[:, cols] <= hi), axis=1)
        groups = None
        if joints:
            by_joint: dict[str, list[int]] = {}
            for j, c in enumerate(names):
                by_joint.setdefault(joints.get(c, c), []).append(j)
            groups = list(by_joint.values()) if len(by_joint) > 1 else None
        edges = {c: _piece_edges((breaks or {}).get(name, {}).get(c, []), lo[j], hi[j], int(splits.get(c, 1)))
                 for j, c in enumerate(names)}
        pieces, scores_all, counts, bases = [], [], [], []
        for conditions in _intervals({c: e for c, e in edges.items() if e}):
            rows = inside & _in_piece(q, coordinates, conditions)
            counts.append(int(rows.sum()))
            if rows.sum() < 4:
                raise ValueError(f"muscle {name}: only {int(rows.sum())} samples where {conditions}; sample more")
            lo_p, hi_p = lo.copy(), hi.copy()  # the piece's own box, for conditioning
            for cond in conditions:
                j = names.index(cond["coordinate"])
                if cond.get("lower") is not None:
                    lo_p[j] = max(lo_p[j], cond["lower"])
                if cond.get("upper") is not None:
                    hi_p[j] = min(hi_p[j], cond["upper"])
            center_p, half_p = (hi_p + lo_p) / 2, (hi_p - lo_p) / 2
            fit, scores, basis = select_basis(q[rows][:, cols], length_k[rows], arms_k[rows], center_p, half_p,
                                              max_degree=top, groups=groups, seed=seed + k,
                                              moment_arm_weight=moment_arm_weight)
            pieces.append(PolynomialPiece(fit.exponents.tolist(), fit.coefficients.tolist(), center_p.tolist(),
                                          half_p.tolist(), conditions))
            scores_all.append({key: round(value, 4) for key, value in scores.items()})
            bases.append(f"{basis}{fit.degree}")
        report: dict[str, Any] = {"validation_score_mm": scores_all, "n_train": int(inside.sum()),
                                  "n_train_per_piece": counts, "basis_per_piece": bases,
                                  "fit_range": {c: [float(lo[j]), float(hi[j])] for j, c in enumerate(names)}}
        if restricted:
            report["restricted_range"] = restricted
        if exact:
            report["exact_segments"] = [seg.name for seg in exact]
        paths.append(MusclePath(name, names, pieces, report, exact))
    return paths


REPORT_COLUMNS = ["muscle", "coordinates", "degree", "n_terms", "n_train", "n_test", "fit_range",
                  "length_err_median_mm", "length_err_max_mm", "moment_arm_err_median_mm", "moment_arm_err_max_mm"]


def evaluate_surrogate(surrogate: PathSurrogate, q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray,
                       coordinates: Sequence[str], muscles: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Per-muscle held-out errors (mm) of the surrogate against OpenSim samples.

    q (n, n_coords) in the order of ``coordinates`` (must include the surrogate's); length_m (n, n_muscles) and
    moment_arm_m (n, n_muscles, n_coords) for ``muscles`` (default: the surrogate's, same order). The
    moment-arm error pools every coordinate the muscle crosses. A muscle fitted on a restricted range
    (``report["restricted_range"]``) is scored on the samples inside that range only, and its ``fit_range``
    says so ("restricted coordinate=min:max;..." in rad or m; else "full").
    """
    coordinates = list(coordinates)
    muscles = list(muscles or surrogate.muscles)
    cols = [coordinates.index(c) for c in surrogate.coordinates]
    qt = torch.as_tensor(np.asarray(q)[:, cols], dtype=surrogate.center.dtype)
    with torch.no_grad():
        lt, rt = surrogate.lengths_and_moment_arms(qt)
    lt, rt = lt.double().cpu().numpy(), rt.double().cpu().numpy()
    rows = []
    q = np.asarray(q)
    for s_idx, path in enumerate(surrogate.paths):
        k = muscles.index(path.name)
        restricted = path.report.get("restricted_range", {})
        inside = np.ones(len(q), dtype=bool)
        for c, (lo, hi) in restricted.items():
            inside &= (q[:, coordinates.index(c)] >= lo) & (q[:, coordinates.index(c)] <= hi)
        el = np.abs(lt[inside, s_idx] - length_m[inside, k]) * 1e3
        idx_s = [surrogate.coordinates.index(c) for c in path.coordinates]
        idx_o = [coordinates.index(c) for c in path.coordinates]
        er = np.abs(rt[inside, s_idx][:, idx_s] - moment_arm_m[inside, k][:, idx_o]) * 1e3
        fit_range = ("restricted " + ";".join(f"{c}={lo:.4f}:{hi:.4f}" for c, (lo, hi) in restricted.items())
                     if restricted else "full")
        rows.append({"muscle": path.name, "coordinates": ";".join(path.coordinates), "degree": path.degree,
                     "n_terms": sum(len(p.exponents) for p in path.pieces), "n_train": path.report.get("n_train", ""),
                     "n_test": int(len(el)), "fit_range": fit_range,
                     "length_err_median_mm": float(np.median(el)), "length_err_max_mm": float(el.max()),
                     "moment_arm_err_median_mm": float(np.median(er)), "moment_arm_err_max_mm": float(er.max())})
    return rows


def write_report_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """The per-muscle fit report as CSV (columns ``REPORT_COLUMNS``; errors in mm)."""
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=REPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
