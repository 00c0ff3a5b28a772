"""Path surrogate against OpenSim on held-out poses: knee muscles of a scaled gait2392 subject, wrist muscles.

Golden values are OpenSim's own ``Muscle.getLength`` and ``Muscle.computeMomentArm`` at poses that the fit
never saw (a second Latin hypercube with another seed).

Sampling ranges. Knee, ankle and subtalar: the model's full ranges. Hip (for the biarticular knee muscles):
a functional range of motion (flexion -30..90 deg, adduction -30..20 deg, rotation -30..30 deg), which covers
gait, running, stairs and sit-to-stand; gait2392's nominal hip ranges (+-120 deg about every axis) are
placeholders, and at their extremes tfl_r's first segment collapses onto the hip centre (no wrap surface), a
geometry no polynomial of reasonable degree follows (see the report of the helper that wrote this test).

Sample counts (and the time they take on 2 shared cores): knee 1500 training + 1000 held-out poses
(~10 s of OpenSim), wrist 300 + 300 (~2 s).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pimsk.core.path_surrogate import PathSurrogate, evaluate_surrogate, fit_surrogate, write_report_csv
from pimsk.osim.path_sampling import PathSamples, sample_paths

pytestmark = [pytest.mark.opensim, pytest.mark.data]

KNEE_MUSCLES = ["rect_fem_r", "vas_med_r", "vas_int_r", "vas_lat_r", "bifemlh_r", "bifemsh_r", "semimem_r",
                "semiten_r", "med_gas_r", "lat_gas_r", "sar_r", "grac_r", "tfl_r"]
WRIST_MUSCLES = ["ECRB", "ECRL", "ECU_pre-surgery", "FCR", "FCU"]  # wrist.osim names ECU "ECU_pre-surgery"
HIP_RANGES = {"hip_flexion_r": np.deg2rad([-30.0, 90.0]), "hip_adduction_r": np.deg2rad([-30.0, 20.0]),
              "hip_rotation_r": np.deg2rad([-30.0, 30.0])}

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
    lines = [f"{'muscle':<16}{'coords':>7}{'degree':>10}{'len med':>9}{'len max':>9}{'r med':>8}{'r max':>8}  (mm)"]
    for r in rows:
        lines.append(f"{r['muscle']:<16}{len(r['coordinates'].split(';')):>7}{r['degree']:>10}"
                     f"{r['length_err_median_mm']:9.3f}{r['length_err_max_mm']:9.3f}"
                     f"{r['moment_arm_err_median_mm']:8.3f}{r['moment_arm_err_max_mm']:8.3f}")
    return "\n".join(lines)


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
    train = sample_paths(model, KNEE_MUSCLES, 1500, seed=11, ranges=HIP_RANGES)
    test = sample_paths(model, KNEE_MUSCLES, 1000, seed=12, ranges=HIP_RANGES, crossed=train.crossed)
    surrogate = fit_surrogate(train.coordinates, train.range_min, train.range_max, train.crossed, train.q,
                              train.length_m, train.moment_arm_m, train.muscles, breaks=train.breaks, seed=11)
    rows = evaluate_surrogate(surrogate, test.q, test.length_m, test.moment_arm_m, test.coordinates, test.muscles)
    write_report_csv(rows, folder / "knee_report.csv")
    return train, test, surrogate, rows


def test_knee_muscles_cross_the_expected_coordinates(knee) -> None:
    train = knee[0]
    hip_knee = ["hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r"]
    for m in ("vas_med_r", "vas_int_r", "vas_lat_r", "bifemsh_r"):
        assert train.crossed[m] == ["knee_angle_r"]
    for m in ("rect_fem_r", "bifemlh_r", "semimem_r", "semiten_r", "sar_r", "grac_r", "tfl_r"):
        assert train.crossed[m] == hip_knee
    for m in ("med_gas_r", "lat_gas_r"):
        assert train.crossed[m] == ["knee_angle_r", "ankle_angle_r", "subtalar_angle_r"]
    # the via-point switches of gait2392 (ConditionalPathPoints) split these muscles into pieces
    assert train.breaks["rect_fem_r"]["knee_angle_r"][0] == pytest.approx(-1.45997)
    assert "knee_angle_r" in train.breaks["med_gas_r"]
    assert train.breaks["bifemlh_r"] == {}


def test_knee_surrogate_matches_opensim_on_held_out_poses(knee) -> None:
    _check(knee[3])


def test_knee_surrogate_float32_json_and_batching(knee, tmp_path: Path) -> None:
    _, test, surrogate, _ = knee
    path = tmp_path / "knee.json"
    surrogate.save_json(path)
    data = json.loads(path.read_text())
    assert [m["name"] for m in data["muscles"]] == KNEE_MUSCLES
    back = PathSurrogate.load_json(path)
    q = torch.as_tensor(test.q[:200])
    assert torch.equal(back(q), surrogate(q))
    l32, r32 = PathSurrogate.load_json(path, dtype=torch.float32).lengths_and_moment_arms(q.float())
    l64, r64 = surrogate.lengths_and_moment_arms(q)
    assert (l32.double() - l64).abs().max() < 1e-5  # 0.01 mm
    assert (r32.double() - r64).abs().max() < 1e-5
    batched = surrogate(q.reshape(4, 50, -1))
    assert batched.shape == (4, 50, len(KNEE_MUSCLES))
    assert torch.equal(batched.reshape(200, -1), l64)


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
               "--seed", "3", "--samples-npz", str(npz)])
    assert rc == 0
    surrogate = PathSurrogate.load_json(out)
    assert surrogate.muscles == ["FCR", "ECRL"]
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
        assert float(fields[-1]) == pytest.approx(row["moment_arm_err_max_mm"], abs=1e-4)
    assert main(["geometry", str(model), "--muscles", "nope", "--out", str(out), "--report", str(report)]) == 2
