"""Path surrogate against OpenSim on held-out poses: knee muscles of a scaled gait2392 subject, wrist muscles.

Golden values are OpenSim's own ``Muscle.getLength`` and ``Muscle.computeMomentArm`` at poses that the fit
never saw (Latin hypercubes with other seeds). Training moment arms are central differences of OpenSim's
``getLength`` (``moment_arms="difference"``: equal to computeMomentArm to ~3e-11 m here, 6x cheaper).

"The coordinates' range" is the range each coordinate declares in the scaled model: gait2392's hip
flexion, adduction and rotation -120..120 deg (placeholders far beyond the anatomical range of motion, but
the model's own), knee -120..10 deg, ankle and subtalar -90..90 deg. Every knee muscle is fitted and tested
over that full range (the hip cut into 2 x 2 x 2 pieces; a sum of a hip and a knee polynomial where the path
has a femur-fixed point). tfl_r's first path segment (iliac crest origin -> first femur point) shortens to
31-36 mm at hip flexion > 110 deg or abduction > 45 deg, where its hip moment arms turn within a few degrees:
a polynomial of the hip misses them by > 10 mm there (``test_tfl_r_needs_its_exact_segment``). The
surrogate computes that segment exactly instead (``exact_segments``: |origin - R_hip(q) femur point| from the
model's hip joint frames, checked against OpenSim's path points), and the polynomial fits only the rest;
sar_r's pelvis -> femur segment gets the same. Held-out poses include 300 in that hard corner of the hip.

Sample counts (and the time they take on 2 shared cores): knee 6000 training poses + poses added in short
path-switch pieces (min_per_piece) + 3000 more (~10 s), 1000 + 300 held-out poses (~3 s), fit ~7 s; wrist
300 + 300 (~2 s).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pimsk.core.path_surrogate import (
    PathSurrogate,
    evaluate_surrogate,
    exact_segment_length,
    fit_surrogate,
    write_report_csv,
)
from pimsk.osim.path_sampling import CONDITIONAL_TOLERANCE, PathSamples, exact_segments, sample_paths

pytestmark = [pytest.mark.opensim, pytest.mark.data]

KNEE_MUSCLES = ["rect_fem_r", "vas_med_r", "vas_int_r", "vas_lat_r", "bifemlh_r", "bifemsh_r", "semimem_r",
                "semiten_r", "med_gas_r", "lat_gas_r", "sar_r", "grac_r", "tfl_r"]
WRIST_MUSCLES = ["ECRB", "ECRL", "ECU_pre-surgery", "FCR", "FCU"]  # wrist.osim names ECU "ECU_pre-surgery"
HIP = ["hip_flexion_r", "hip_adduction_r", "hip_rotation_r"]
HIP_SPLITS = {c: 2 for c in HIP}
# the hip's hard corner for tfl_r: flexion 90..120 deg, abduction 30..120 deg (its first segment is shortest)
HARD_HIP = {"hip_flexion_r": np.deg2rad([90.0, 120.0]), "hip_adduction_r": np.deg2rad([-120.0, -30.0])}

MEDIAN_ARM_MM, MAX_ARM_MM, MAX_LENGTH_MM = 1.0, 3.0, 1.0


def _scaled_gait2392(osim, data_dir: Path, folder: Path) -> Path:
    """gait2392 scaled with the published subject01 Scale setup (files copied; shared data untouched)."""
    pipeline = data_dir / "opensim-models/Pipelines/Gait2392_Simbody"
    for name in ("subject01_Setup_Scale.xml", "gait2392_Scale_MarkerSet.xml", "subject01_static.trc"):
        shutil.copyfile(pipeline / name, folder / name)
    shutil.copyfile(data_dir / "opensim-models/Models/Gait2392_Simbody/gait2392_thelen2003muscle.osim",
                    folder / "gait2392_simbody.osim")  # the setup's generic model, same bodies and paths
    osim.ScaleTool(str(folder / "subject01_Setup_Scale.xml")).run()
    out = folder / "subject01_simbody.osim"
    assert out.is_file(), "ScaleTool wrote no model"
    return out


def _table(rows: list[dict]) -> str:
    lines = [f"{'muscle':<16}{'coords':>7}{'pieces':>7}{'len med':>9}{'len max':>9}{'r med':>8}{'r max':>8}  (mm)"
             "  range"]
    for r in rows:
        lines.append(f"{r['muscle']:<16}{len(r['coordinates'].split(';')):>7}{len(r['degree'].split('/')):>7}"
                     f"{r['length_err_median_mm']:9.3f}{r['length_err_max_mm']:9.3f}"
                     f"{r['moment_arm_err_median_mm']:8.3f}{r['moment_arm_err_max_mm']:8.3f}  {r['fit_range']}")
    return "\n".join(lines)


def _in_hard_corner(samples: PathSamples) -> np.ndarray:
    """(n,) True where a pose lies in HARD_HIP."""
    columns = {c: samples.q[:, samples.coordinates.index(c)] for c in HARD_HIP}
    return np.all([(columns[c] >= lo) & (columns[c] <= hi) for c, (lo, hi) in HARD_HIP.items()], axis=0)


def _check(rows: list[dict]) -> None:
    table = _table(rows)
    print("\n" + table)
    for r in rows:
        assert r["moment_arm_err_median_mm"] < MEDIAN_ARM_MM, table
        assert r["moment_arm_err_max_mm"] < MAX_ARM_MM, table
        assert r["length_err_max_mm"] < MAX_LENGTH_MM, table


@pytest.fixture(scope="module")
def knee(opensim_module, data_dir: Path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gait2392_scaled")
    model = _scaled_gait2392(opensim_module, data_dir, folder)
    base = sample_paths(model, KNEE_MUSCLES, 6000, seed=11, moment_arms="difference", min_per_piece=1500)
    train = base.concatenate(sample_paths(model, KNEE_MUSCLES, 3000, seed=13, moment_arms="difference",
                                          crossed=base.crossed))
    test = sample_paths(model, KNEE_MUSCLES, 1000, seed=12, crossed=train.crossed)
    test = test.concatenate(sample_paths(model, KNEE_MUSCLES, 300, seed=14, ranges=HARD_HIP, crossed=train.crossed))
    segments = exact_segments(model, train.crossed)
    surrogate = fit_surrogate(train.coordinates, train.range_min, train.range_max, train.crossed, train.q,
                              train.length_m, train.moment_arm_m, train.muscles, breaks=train.breaks, seed=11,
                              splits=HIP_SPLITS, joints=train.joints, segments=segments)
    rows = evaluate_surrogate(surrogate, test.q, test.length_m, test.moment_arm_m, test.coordinates, test.muscles)
    write_report_csv(rows, folder / "knee_report.csv")
    return train, test, surrogate, rows, model, segments, base.n_samples


def test_sampled_ranges_are_the_models_own(knee, opensim_module) -> None:
    train, model = knee[0], knee[4]
    osim_model = opensim_module.Model(str(model))  # keep the model alive while its coordinates are read
    coordinates = osim_model.getCoordinateSet()
    print()
    for c, lo, hi in zip(train.coordinates, train.range_min, train.range_max):
        declared = coordinates.get(c)
        lo_m, hi_m = np.rad2deg([declared.getRangeMin(), declared.getRangeMax()])
        print(f"{c:<18} model range {lo_m:7.1f} .. {hi_m:6.1f} deg, sampled {np.rad2deg(lo):7.1f} .. "
              f"{np.rad2deg(hi):6.1f} deg")
        assert (lo, hi) == (declared.getRangeMin(), declared.getRangeMax())
    assert np.allclose(np.rad2deg(train.range_min[:3]), -120.0)
    assert np.allclose(np.rad2deg(train.range_max[:3]), 120.0)
    assert train.joints["hip_rotation_r"] == train.joints["hip_flexion_r"] != train.joints["knee_angle_r"]


def test_knee_muscles_cross_the_expected_coordinates(knee) -> None:
    train = knee[0]
    hip_knee = [*HIP, "knee_angle_r"]
    for m in ("vas_med_r", "vas_int_r", "vas_lat_r", "bifemsh_r"):
        assert train.crossed[m] == ["knee_angle_r"]
    for m in ("rect_fem_r", "bifemlh_r", "semimem_r", "semiten_r", "sar_r", "grac_r", "tfl_r"):
        assert train.crossed[m] == hip_knee
    for m in ("med_gas_r", "lat_gas_r"):
        assert train.crossed[m] == ["knee_angle_r", "ankle_angle_r", "subtalar_angle_r"]
    # the via-point switches of gait2392 (ConditionalPathPoints, active on their range widened by 1e-5 rad in
    # OpenSim) split these muscles into pieces: rect_fem_r's femur via point is active for knee angles up to
    # -1.45997 rad (its range's upper end), so the switch is at -1.45997 + 1e-5
    switch = train.breaks["rect_fem_r"]["knee_angle_r"][0]
    assert switch == pytest.approx(-1.45997 + CONDITIONAL_TOLERANCE, abs=1e-9)
    assert "knee_angle_r" in train.breaks["med_gas_r"]
    assert train.breaks["bifemlh_r"] == {}
    # short pieces got extra poses: rect_fem_r's knee hyperextension piece (0..10 deg) holds >= 1500 of the
    # first sampling (6000 Latin-hypercube poses + the added ones), where the hypercube alone put ~460
    knee_angle = train.q[: knee[6], train.coordinates.index("knee_angle_r")]
    in_piece = knee_angle >= train.breaks["rect_fem_r"]["knee_angle_r"][-1]
    assert in_piece.sum() >= 1500 > in_piece[:6000].sum()


def test_knee_surrogate_matches_opensim_on_held_out_poses(knee) -> None:
    test, rows = knee[1], knee[3]
    _check(rows)
    assert all(r["fit_range"] == "full" for r in rows)  # the full model range for every muscle, tfl_r included
    hard = _in_hard_corner(test)
    assert hard.sum() >= 300  # held-out poses in tfl_r's hard corner are among those scored
    surrogate = knee[2]
    paths = {p.name: p for p in surrogate.paths}
    # a sum of hip and knee polynomials where the path has femur-fixed points (pelvis -> femur -> tibia)
    assert all(b.startswith("additive") for b in paths["sar_r"].report["basis_per_piece"])
    assert len(paths["semimem_r"].pieces) == 16  # 2 x 2 x 2 hip pieces x 2 knee pieces (via-point switch)
    assert paths["tfl_r"].report["exact_segments"] == ["tfl_r-P1 -> tfl_r-P2 across hip_r"]


def test_exact_segments_are_opensims_own(knee, opensim_module) -> None:
    """The segments found are the straight pelvis -> femur segments (the knee's translations move with the knee
    angle, so no knee segment is exact); tfl_r's equals the distance between OpenSim's first two path points
    at held-out poses, and (the only part of the path that moves with the hip) minus its derivative equals
    OpenSim's computeMomentArm about the three hip axes."""
    train, test, _, _, model, segments, _ = knee
    assert {m: [seg.name for seg in found] for m, found in segments.items() if found} == {
        "sar_r": ["sar_r-P1 -> sar_r-P2 across hip_r"], "tfl_r": ["tfl_r-P1 -> tfl_r-P2 across hip_r"]}
    segment = segments["tfl_r"][0]
    hip = [test.coordinates.index(c) for c in HIP]
    length_m, slope = exact_segment_length(segment, HIP, test.q[:, hip])
    k = test.muscles.index("tfl_r")
    arm_error_m = np.abs(-slope - test.moment_arm_m[:, k][:, hip]).max()
    m = opensim_module.Model(str(model))
    state = m.initSystem()
    coords = [m.getCoordinateSet().get(c) for c in test.coordinates]
    points = m.getMuscles().get("tfl_r").getGeometryPath().getPathPointSet()
    osim_m = np.empty(len(test.q))
    for i, q in enumerate(test.q):
        for c, v in zip(coords, q):
            c.setValue(state, float(v), False)
        m.realizePosition(state)
        a, b = (np.array([points.get(p).getLocationInGround(state).get(j) for j in range(3)]) for p in (0, 1))
        osim_m[i] = np.linalg.norm(b - a)
    print(f"\ntfl_r first segment {1e3 * osim_m.min():.1f}..{1e3 * osim_m.max():.1f} mm; exact segment vs OpenSim: "
          f"length {np.abs(length_m - osim_m).max():.1e} m, hip moment arms {arm_error_m:.1e} m")
    assert np.abs(length_m - osim_m).max() < 1e-12
    assert arm_error_m < 1e-9
    assert osim_m.min() < 0.035  # the held-out poses reach where the segment is shortest


def test_tfl_r_needs_its_exact_segment(knee) -> None:
    """Without its exact segment, a piecewise polynomial fitted over the model's full hip range misses tfl_r's
    moment arms by more than 3 mm in the hip's hard corner; with it, the surrogate is within the limits there."""
    train, test, surrogate, _, _, _, _ = knee
    k = train.muscles.index("tfl_r")
    poly = fit_surrogate(train.coordinates, train.range_min, train.range_max, {"tfl_r": train.crossed["tfl_r"]},
                         train.q, train.length_m[:, [k]], train.moment_arm_m[:, [k]], ["tfl_r"], seed=11,
                         splits=HIP_SPLITS, joints=train.joints)
    hard = _in_hard_corner(test)
    without = evaluate_surrogate(poly, test.q[hard], test.length_m[hard][:, [k]], test.moment_arm_m[hard][:, [k]],
                                 test.coordinates, ["tfl_r"])[0]
    with_segment = evaluate_surrogate(surrogate, test.q[hard], test.length_m[hard], test.moment_arm_m[hard],
                                      test.coordinates, test.muscles)[k]
    print(f"\ntfl_r, hip flexion 90..120 deg and abduction 30..120 deg ({int(hard.sum())} held-out poses): "
          f"moment-arm error max {without['moment_arm_err_max_mm']:.2f} mm as a polynomial, "
          f"{with_segment['moment_arm_err_max_mm']:.2f} mm with its exact segment")
    assert without["moment_arm_err_max_mm"] > MAX_ARM_MM
    assert with_segment["moment_arm_err_max_mm"] < MAX_ARM_MM and with_segment["length_err_max_mm"] < MAX_LENGTH_MM


def test_knee_surrogate_float32_json_and_batching(knee, tmp_path: Path) -> None:
    _, test, surrogate, _, _, _, _ = knee
    path = tmp_path / "knee.json"
    surrogate.save_json(path)
    data = json.loads(path.read_text())
    assert [m["name"] for m in data["muscles"]] == KNEE_MUSCLES
    assert [len(m["segments"]) for m in data["muscles"]] == [int(m in ("sar_r", "tfl_r")) for m in KNEE_MUSCLES]
    back = PathSurrogate.load_json(path)
    q = torch.as_tensor(test.q[:200])
    assert torch.equal(back(q), surrogate(q))
    l32, r32 = PathSurrogate.load_json(path, dtype=torch.float32).lengths_and_moment_arms(q.float())
    l64, r64 = surrogate.lengths_and_moment_arms(q)
    assert (l32.double() - l64).abs().max() < 1e-5  # 0.01 mm
    assert (r32.double() - r64).abs().max() < 1e-5
    batched = surrogate(q.reshape(4, 50, -1))
    assert batched.shape == (4, 50, len(KNEE_MUSCLES))
    torch.testing.assert_close(batched.reshape(200, -1), l64, rtol=0.0, atol=1e-14)  # batching: round-off


def test_wrist_surrogate_matches_opensim_on_held_out_poses(opensim_module, data_dir: Path) -> None:
    model = data_dir / "opensim-models/Models/WristModel/wrist.osim"
    train = sample_paths(model, WRIST_MUSCLES, 300, seed=21, coordinates=["flexion", "deviation"])
    assert all(train.crossed[m] == ["deviation", "flexion"] for m in WRIST_MUSCLES)
    assert train.fixed_coordinates["elbow_flexion"] == 0.0  # the elbow stays at its default
    test = sample_paths(model, WRIST_MUSCLES, 300, seed=22, coordinates=["flexion", "deviation"],
                        crossed=train.crossed)
    surrogate = fit_surrogate(train.coordinates, train.range_min, train.range_max, train.crossed, train.q,
                              train.length_m, train.moment_arm_m, train.muscles, breaks=train.breaks)
    _check(evaluate_surrogate(surrogate, test.q, test.length_m, test.moment_arm_m, test.coordinates, test.muscles))


def test_geometry_verb_on_the_wrist(opensim_module, data_dir: Path, tmp_path: Path) -> None:
    from pimsk.cli import main

    model = data_dir / "opensim-models/Models/WristModel/wrist.osim"
    out, report, npz = tmp_path / "wrist.json", tmp_path / "wrist.csv", tmp_path / "samples.npz"
    rc = main(["geometry", str(model), "--muscles", "FCR", "ECRL", "--coordinates", "flexion", "deviation",
               "--range", "flexion=-60:60", "--out", str(out), "--report", str(report), "--n-samples", "200",
               "--seed", "3", "--samples-npz", str(npz), "--split", "flexion=2", "--moment-arms", "difference",
               "--muscle-range", "FCR:deviation=-10:10", "--exact-segments"])
    assert rc == 0
    surrogate = PathSurrogate.load_json(out)
    assert surrogate.muscles == ["FCR", "ECRL"]
    assert all(p.segments == [] for p in surrogate.paths)  # the wrist's paths wrap and its coordinates are coupled
    fcr, ecrl = surrogate.paths
    assert len(ecrl.pieces) == 2 and ecrl.report["fit_range"]["flexion"] == pytest.approx(np.deg2rad([-60, 60]))
    assert fcr.report["restricted_range"]["deviation"] == pytest.approx(np.deg2rad([-10, 10]))
    assert np.allclose(surrogate.center[surrogate.coordinates.index("flexion")].item(), 0.0)
    assert np.isclose(surrogate.half_range[surrogate.coordinates.index("flexion")].item(), np.deg2rad(60.0))
    held_out = PathSamples.load_npz(tmp_path / "samples_test.npz")
    rows = evaluate_surrogate(surrogate, held_out.q, held_out.length_m, held_out.moment_arm_m,
                              held_out.coordinates, held_out.muscles)
    lines = report.read_text().splitlines()
    assert lines[0].startswith("muscle,coordinates,degree")
    for row, line in zip(rows, lines[1:]):
        fields = line.split(",")
        assert fields[0] == row["muscle"]
        assert fields[lines[0].split(",").index("fit_range")] == row["fit_range"]
        assert row["fit_range"].startswith("restricted deviation=") == (row["muscle"] == "FCR")
        assert float(fields[-1]) == pytest.approx(row["moment_arm_err_max_mm"], abs=1e-4)
        assert row["moment_arm_err_max_mm"] < MAX_ARM_MM
    assert main(["geometry", str(model), "--muscles", "nope", "--out", str(out), "--report", str(report)]) == 2


def test_geometry_verb_exact_segment_of_tfl_r(knee, tmp_path: Path) -> None:
    from pimsk.cli import main

    out, report = tmp_path / "tfl.json", tmp_path / "tfl.csv"
    rc = main(["geometry", str(knee[4]), "--muscles", "tfl_r", "--out", str(out), "--report", str(report),
               "--n-samples", "400", "--n-test", "300", "--moment-arms", "difference", "--exact-segments", "tfl_r"])
    assert rc == 0
    (path,) = PathSurrogate.load_json(out).paths
    assert [seg.name for seg in path.segments] == ["tfl_r-P1 -> tfl_r-P2 across hip_r"]
    header, line = report.read_text().splitlines()
    row = dict(zip(header.split(","), line.split(",")))
    assert row["fit_range"] == "full" and row["coordinates"] == ";".join([*HIP, "knee_angle_r"])
    assert float(row["moment_arm_err_max_mm"]) < MAX_ARM_MM and float(row["length_err_max_mm"]) < MAX_LENGTH_MM
    assert main(["geometry", str(knee[4]), "--muscles", "tfl_r", "--out", str(out), "--report", str(report),
                 "--exact-segments", "sar_r"]) == 2
