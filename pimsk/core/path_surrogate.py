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
so the surrogate reproduces OpenSim's discontinuity instead of smearing it.

Evaluation is batched over any leading dims: ``q`` (..., n_coordinates) -> lengths (..., n_muscles) and
moment arms (..., n_muscles, n_coordinates), coordinates in the order of ``surrogate.coordinates``; SI units.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations_with_replacement, product
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

FORMAT = "pimsk.path_surrogate"
VERSION = 1

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


def fit_polynomial(q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray | None, degree: int,
                   center: np.ndarray, half_range: np.ndarray, moment_arm_weight: float = 1.0) -> PolyFit:
    """Least-squares polynomial of total degree ``degree`` through lengths and moment arms.

    q (n, d) rad or m; length_m (n,); moment_arm_m (n, d) or None (lengths only). The moment-arm rows
    ``-dl/dq_j = r_j`` carry weight ``moment_arm_weight`` (both residuals are in metres).
    """
    q = np.asarray(q, dtype=float).reshape(len(length_m), -1)
    center, half_range = np.asarray(center, dtype=float), np.asarray(half_range, dtype=float)
    exps = monomial_exponents(q.shape[1], degree)
    a, b = _system(q, length_m, moment_arm_m, exps, center, half_range, moment_arm_weight)
    coef = None
    if a.shape[0] >= a.shape[1]:
        coef = _solve_prefix(*_qr_augmented(a, b), k=a.shape[1])
    if coef is None:  # rank-deficient: minimum-norm solution
        scale = np.linalg.norm(a, axis=0)
        scale[scale == 0] = 1.0
        coef = np.linalg.lstsq(a / scale, b, rcond=None)[0] / scale
    return PolyFit(exps, coef, center, half_range)


def fit_errors(fit: PolyFit, q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray) -> dict[str, float]:
    """Absolute errors in mm: length and moment arm (all coordinates pooled) median, max and rms."""
    el = np.abs(fit.length(q) - length_m) * 1e3
    er = np.abs(fit.moment_arm(q) - np.asarray(moment_arm_m).reshape(np.shape(q))) * 1e3
    return {"length_median_mm": float(np.median(el)), "length_max_mm": float(el.max()),
            "length_rms_mm": float(np.sqrt(np.mean(el ** 2))),
            "moment_arm_median_mm": float(np.median(er)), "moment_arm_max_mm": float(er.max()),
            "moment_arm_rms_mm": float(np.sqrt(np.mean(er ** 2)))}


def select_degree(q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray, center: np.ndarray,
                  half_range: np.ndarray, max_degree: int | None = None, validation_fraction: float = 0.25,
                  seed: int = 0, moment_arm_weight: float = 1.0) -> tuple[PolyFit, dict[int, float]]:
    """Pick the total degree with the smallest validation error, then refit on every sample.

    Score of a degree: ``rms(length error) + rms(moment-arm error)`` (mm) on a random ``validation_fraction``
    of the samples. One QR factorisation of the fitting rows at the highest degree serves every degree
    (graded monomials: each degree's columns are a prefix). Degrees with more terms than a third of the
    fitting rows are skipped. Returns the refitted polynomial and the score of each degree tried.
    """
    q = np.asarray(q, dtype=float).reshape(len(length_m), -1)
    length_m = np.asarray(length_m, dtype=float)
    moment_arm_m = np.asarray(moment_arm_m, dtype=float).reshape(q.shape)
    center, half_range = np.asarray(center, dtype=float), np.asarray(half_range, dtype=float)
    n, d = q.shape
    top = max_degree if max_degree is not None else DEFAULT_MAX_DEGREE.get(d, 3)
    rows_per_sample = 1 + (d if moment_arm_weight > 0 else 0)
    n_val = max(1, int(round(validation_fraction * n))) if n >= 8 else 0
    perm = np.random.default_rng(seed).permutation(n)
    val, train = perm[:n_val], perm[n_val:]
    while top > 0 and 3 * n_monomials(d, top) > len(train) * rows_per_sample:
        top -= 1
    if top == 0:
        raise ValueError(f"too few samples ({n}) to fit a polynomial in {d} coordinates")
    exps = monomial_exponents(d, top)
    scores: dict[int, float] = {}
    if n_val:
        a, b = _system(q[train], length_m[train], moment_arm_m[train], exps, center, half_range, moment_arm_weight)
        r, qtb, scale = _qr_augmented(a, b)
        phi_v, dphi_v = design((q[val] - center) / half_range, exps)
        for degree in range(1, top + 1):
            k = n_monomials(d, degree)
            coef = _solve_prefix(r, qtb, scale, k)
            if coef is None:  # the samples do not determine these terms
                break
            el = phi_v[:, :k] @ coef - length_m[val]
            er = -(dphi_v[:, :, :k] @ coef) / half_range - moment_arm_m[val]
            scores[degree] = 1e3 * (np.sqrt(np.mean(el ** 2)) + np.sqrt(np.mean(er ** 2)))
    best = min(scores, key=scores.get) if scores else 1
    return fit_polynomial(q, length_m, moment_arm_m, best, center, half_range, moment_arm_weight), scores


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
class MusclePath:
    """One muscle: the coordinates it crosses and its polynomial piece(s)."""

    name: str
    coordinates: list[str]
    pieces: list[PolynomialPiece]
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def degree(self) -> str:
        return "/".join(str(p.degree) for p in self.pieces)


# --------------------------------------------------------------------------------------------------
# The torch surrogate
# --------------------------------------------------------------------------------------------------


class _Frame(nn.Module):
    """Monomials of one scaling of the coordinates, and the weights of the pieces that use it.

    ``weight`` (n_terms, n_frame_pieces), ``deriv`` (n_coordinates, n_terms, n_frame_pieces): dl/dx_j of
    those pieces is ``monomials @ deriv[j]``; ``pieces`` lists their indices among all pieces.
    """

    def __init__(self, n_coords: int, center: Sequence[float], half_range: Sequence[float],
                 entries: list[tuple[int, list[tuple[int, ...]], list[float]]]) -> None:
        super().__init__()
        terms: set[tuple[int, ...]] = {(0,) * n_coords}
        for _, exps, _ in entries:
            for full in exps:  # close downwards: every derivative is a member
                terms.update(product(*(range(p + 1) for p in full)))
        ordered = sorted(terms, key=lambda t: (sum(t), t))  # each monomial = (one of degree - 1) * x_j
        position = {t: i for i, t in enumerate(ordered)}
        degrees = [sum(t) for t in ordered]
        first_of_degree = {d: degrees.index(d) for d in set(degrees)}
        parent, factor = [0], [0]  # parent: index within the previous degree's layer
        for t in ordered[1:]:
            j = next(i for i in range(n_coords) if t[i] > 0)
            lower = list(t)
            lower[j] -= 1
            parent.append(position[tuple(lower)] - first_of_degree[sum(t) - 1])
            factor.append(j)
        self.pieces = [piece for piece, _, _ in entries]
        weight = np.zeros((len(ordered), len(entries)))
        deriv = np.zeros((n_coords, len(ordered), len(entries)))
        for piece, (_, exps, coefs) in enumerate(entries):
            for full, coef in zip(exps, coefs):
                weight[position[full], piece] += coef
                for j in range(n_coords):
                    if full[j] > 0:
                        lower = list(full)
                        lower[j] -= 1
                        deriv[j, position[tuple(lower)], piece] += full[j] * coef
        self.layers: list[tuple[int, int]] = []
        start = 1
        while start < len(ordered):
            stop = start
            while stop < len(ordered) and degrees[stop] == degrees[start]:
                stop += 1
            self.layers.append((start, stop))
            start = stop
        f64 = torch.float64
        self.register_buffer("center", torch.tensor(list(center), dtype=f64))
        self.register_buffer("half_range", torch.tensor(list(half_range), dtype=f64))
        self.register_buffer("parent", torch.tensor(parent, dtype=torch.long))
        self.register_buffer("factor", torch.tensor(factor, dtype=torch.long))
        self.register_buffer("weight", torch.tensor(weight, dtype=f64))
        self.register_buffer("deriv", torch.tensor(deriv, dtype=f64))

    def monomials(self, q: Tensor) -> Tensor:
        """(..., n_coordinates) -> (..., n_terms)."""
        x = (q - self.center) / self.half_range
        layer = torch.ones_like(x[..., :1])
        layers = [layer]
        for start, stop in self.layers:  # degree by degree: monomial = (one of degree - 1) * x_j
            layer = layer[..., self.parent[start:stop]] * x[..., self.factor[start:stop]]
            layers.append(layer)
        return torch.cat(layers, dim=-1)


class PathSurrogate(nn.Module):
    """Batched, differentiable MTU lengths and moment arms of several muscles.

    ``forward(q)`` / ``lengths(q)``: q (..., n_coordinates) rad or m -> (..., n_muscles) m.
    ``moment_arms(q)``: (..., n_muscles, n_coordinates) m, ``r = -dl/dq`` of the same polynomial (the exact
    derivative, equal to autograd's), zero where a muscle does not cross a coordinate.
    Works in float32 or float64 (``.to(dtype)``) and on any device.
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
        n_c = len(self.coordinates)
        glob_c, glob_h = [float(x) for x in center], [float(x) for x in half_range]

        pieces: list[tuple[int, MusclePath, PolynomialPiece]] = []
        frames: dict[tuple[float, ...], list[tuple[int, list[tuple[int, ...]], list[float]]]] = {}
        for k, m in enumerate(muscles):
            missing = [c for c in m.coordinates if c not in self.coordinates]
            if missing:
                raise ValueError(f"muscle {m.name}: coordinates {missing} not among {self.coordinates}")
            if not m.pieces:
                raise ValueError(f"muscle {m.name} has no polynomial")
            cols = [self.coordinates.index(c) for c in m.coordinates]
            for piece in m.pieces:
                fc, fh = list(glob_c), list(glob_h)
                for c, ce, h in zip(cols, piece.center, piece.half_range):
                    fc[c], fh[c] = float(ce), float(h)
                exps = []
                for e in piece.exponents:
                    full = [0] * n_c
                    for c, p in zip(cols, e):
                        full[c] = int(p)
                    exps.append(tuple(full))
                frames.setdefault(tuple(fc + fh), []).append((len(pieces), exps, list(piece.coefficients)))
                pieces.append((k, m, piece))
        n_p = len(pieces)
        self.frames = nn.ModuleList(_Frame(n_c, key[:n_c], key[n_c:], entries) for key, entries in frames.items())
        self.n_terms = sum(f.weight.shape[0] for f in self.frames)
        # pieces are evaluated frame by frame: put them in that order
        order = [i for f in self.frames for i in f.pieces]
        pieces = [pieces[i] for i in order]

        assign = np.zeros((n_p, len(muscles)))
        n_cond = max([len(p.conditions) for _, _, p in pieces] + [1])
        cond_coord = np.zeros((n_p, n_cond), dtype=np.int64)
        cond_lower = np.full((n_p, n_cond), -np.inf)
        cond_upper = np.full((n_p, n_cond), np.inf)
        for pi, (k, m, piece) in enumerate(pieces):
            assign[pi, k] = 1.0
            for ci, cond in enumerate(piece.conditions):
                if cond["coordinate"] not in self.coordinates:
                    raise ValueError(f"muscle {m.name}: condition on unknown coordinate {cond['coordinate']!r}")
                cond_coord[pi, ci] = self.coordinates.index(cond["coordinate"])
                if cond.get("lower") is not None:
                    cond_lower[pi, ci] = float(cond["lower"])
                if cond.get("upper") is not None:
                    cond_upper[pi, ci] = float(cond["upper"])
        self.has_pieces = any(p.conditions for _, _, p in pieces)
        f64 = torch.float64
        self.register_buffer("center", torch.tensor(glob_c, dtype=f64))
        self.register_buffer("half_range", torch.tensor(glob_h, dtype=f64))
        self.register_buffer("assign", torch.tensor(assign, dtype=f64))
        self.register_buffer("cond_coord", torch.tensor(cond_coord, dtype=torch.long))
        self.register_buffer("cond_lower", torch.tensor(cond_lower, dtype=f64))
        self.register_buffer("cond_upper", torch.tensor(cond_upper, dtype=f64))
        self.to(dtype)

    # -- evaluation ----------------------------------------------------------------------------------

    def piece_mask(self, q: Tensor) -> Tensor:
        """(..., n_pieces) 1 where a piece applies, else 0."""
        qc = q[..., self.cond_coord]  # (..., n_pieces, n_conditions)
        ok = (qc >= self.cond_lower) & (qc < self.cond_upper)
        return ok.all(-1).to(q.dtype)

    def _piece_lengths(self, q: Tensor) -> Tensor:
        return torch.cat([f.monomials(q) @ f.weight for f in self.frames], dim=-1)

    def lengths_and_moment_arms(self, q: Tensor) -> tuple[Tensor, Tensor]:
        """Lengths (..., n_muscles) and moment arms (..., n_muscles, n_coordinates), m."""
        lps, dps = [], []
        for f in self.frames:
            m = f.monomials(q)
            lps.append(m @ f.weight)
            dps.append(torch.einsum("...t,jtp->...pj", m, f.deriv) / f.half_range)  # dl/dq of each piece
        lp, dp = torch.cat(lps, dim=-1), torch.cat(dps, dim=-2)
        if self.has_pieces:
            mask = self.piece_mask(q)
            lp = lp * mask
            dp = dp * mask[..., None]
        return lp @ self.assign, -torch.einsum("...pj,pm->...mj", dp, self.assign)

    def lengths(self, q: Tensor) -> Tensor:
        """MTU lengths (..., n_muscles), m."""
        lp = self._piece_lengths(q)
        if self.has_pieces:
            lp = lp * self.piece_mask(q)
        return lp @ self.assign

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
                                         "coefficients": p.coefficients} for p in m.pieces]}
                            for m in self.paths]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], dtype: torch.dtype = torch.float64) -> "PathSurrogate":
        coords = data["coordinates"]
        muscles = [MusclePath(m["name"], list(m["coordinates"]),
                              [PolynomialPiece([list(map(int, e)) for e in p["exponents"]],
                                               [float(c) for c in p["coefficients"]],
                                               [float(c) for c in p["center"]], [float(h) for h in p["half_range"]],
                                               list(p.get("conditions", [])))
                               for p in m["pieces"]], dict(m.get("report", {})))
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


def fit_surrogate(coordinates: Sequence[str], range_min: Sequence[float], range_max: Sequence[float],
                  crossed: Mapping[str, Sequence[str]], q: np.ndarray, length_m: np.ndarray,
                  moment_arm_m: np.ndarray, muscles: Sequence[str],
                  breaks: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
                  max_degree: int | Mapping[int, int] | None = None, seed: int = 0, moment_arm_weight: float = 1.0,
                  model: str = "", fixed_coordinates: dict[str, float] | None = None) -> PathSurrogate:
    """Fit every muscle (one polynomial per piece, degree chosen on a validation split) -> torch surrogate.

    q (n, n_coordinates) in the order of ``coordinates``; length_m (n, n_muscles); moment_arm_m
    (n, n_muscles, n_coordinates). ``crossed[muscle]``: the coordinates it depends on. ``breaks[muscle]``:
    coordinate -> values where the path switches (see ``pimsk.osim.path_sampling.conditional_breaks``).
    """
    from threadpoolctl import threadpool_limits

    # one BLAS thread: these QRs are small, and threads fighting over shared cores cost 5-20x
    with threadpool_limits(limits=1, user_api="blas"):
        paths = _fit_all(list(coordinates), range_min, range_max, crossed, q, length_m, moment_arm_m, muscles,
                         breaks, max_degree, seed, moment_arm_weight)
    lo, hi = np.asarray(range_min, dtype=float), np.asarray(range_max, dtype=float)
    return PathSurrogate(coordinates, ((hi + lo) / 2).tolist(), ((hi - lo) / 2).tolist(), paths, model=model,
                         fixed_coordinates=fixed_coordinates)


def _fit_all(coordinates: list[str], range_min: Sequence[float], range_max: Sequence[float],
             crossed: Mapping[str, Sequence[str]], q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray,
             muscles: Sequence[str], breaks: Mapping[str, Mapping[str, Sequence[float]]] | None,
             max_degree: int | Mapping[int, int] | None, seed: int, moment_arm_weight: float) -> list[MusclePath]:
    lo, hi = np.asarray(range_min, dtype=float), np.asarray(range_max, dtype=float)
    paths = []
    for k, name in enumerate(muscles):
        names = list(crossed[name])
        cols = [coordinates.index(c) for c in names]
        d = len(cols)
        top = max_degree.get(d) if isinstance(max_degree, Mapping) else max_degree
        pieces, scores_all, counts = [], [], []
        for conditions in _intervals((breaks or {}).get(name, {})):
            rows = _in_piece(q, coordinates, conditions)
            counts.append(int(rows.sum()))
            if rows.sum() < 4:
                raise ValueError(f"muscle {name}: only {int(rows.sum())} samples where {conditions}; sample more")
            lo_p, hi_p = lo[cols].copy(), hi[cols].copy()  # the piece's own box, for conditioning
            for cond in conditions:
                j = names.index(cond["coordinate"])
                if cond.get("lower") is not None:
                    lo_p[j] = max(lo_p[j], cond["lower"])
                if cond.get("upper") is not None:
                    hi_p[j] = min(hi_p[j], cond["upper"])
            center_p, half_p = (hi_p + lo_p) / 2, (hi_p - lo_p) / 2
            fit, scores = select_degree(q[rows][:, cols], length_m[rows, k], moment_arm_m[rows, k][:, cols],
                                        center_p, half_p, max_degree=top, seed=seed + k,
                                        moment_arm_weight=moment_arm_weight)
            pieces.append(PolynomialPiece(fit.exponents.tolist(), fit.coefficients.tolist(), center_p.tolist(),
                                          half_p.tolist(), conditions))
            scores_all.append({str(a): round(b, 4) for a, b in scores.items()})
        paths.append(MusclePath(name, names, pieces, {"validation_score_mm": scores_all, "n_train": int(q.shape[0]),
                                                      "n_train_per_piece": counts}))
    return paths


REPORT_COLUMNS = ["muscle", "coordinates", "degree", "n_terms", "n_train", "n_test", "length_err_median_mm",
                  "length_err_max_mm", "moment_arm_err_median_mm", "moment_arm_err_max_mm"]


def evaluate_surrogate(surrogate: PathSurrogate, q: np.ndarray, length_m: np.ndarray, moment_arm_m: np.ndarray,
                       coordinates: Sequence[str], muscles: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Per-muscle held-out errors (mm) of the surrogate against OpenSim samples.

    q (n, n_coords) in the order of ``coordinates`` (must include the surrogate's); length_m (n, n_muscles) and
    moment_arm_m (n, n_muscles, n_coords) for ``muscles`` (default: the surrogate's, same order). The
    moment-arm error pools every coordinate the muscle crosses.
    """
    coordinates = list(coordinates)
    muscles = list(muscles or surrogate.muscles)
    cols = [coordinates.index(c) for c in surrogate.coordinates]
    qt = torch.as_tensor(np.asarray(q)[:, cols], dtype=surrogate.center.dtype)
    with torch.no_grad():
        lt, rt = surrogate.lengths_and_moment_arms(qt)
    lt, rt = lt.double().cpu().numpy(), rt.double().cpu().numpy()
    rows = []
    for s_idx, path in enumerate(surrogate.paths):
        k = muscles.index(path.name)
        el = np.abs(lt[:, s_idx] - length_m[:, k]) * 1e3
        idx_s = [surrogate.coordinates.index(c) for c in path.coordinates]
        idx_o = [coordinates.index(c) for c in path.coordinates]
        er = np.abs(rt[:, s_idx][:, idx_s] - moment_arm_m[:, k][:, idx_o]) * 1e3
        rows.append({"muscle": path.name, "coordinates": ";".join(path.coordinates), "degree": path.degree,
                     "n_terms": sum(len(p.exponents) for p in path.pieces), "n_train": path.report.get("n_train", ""),
                     "n_test": int(len(el)),
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
