"""The real MOtoNMS UNIPD subject end to end: C3D -> Scale -> IK -> ID -> SO -> CMC, and the README numbers.

One command processes ``subjects/motonms_unipd/subject.yaml`` (static + 5 walks, gait2392) with pimsk's own
functions (``pimsk c3d`` itself, and the pimsk.osim functions the ``scale|ik|id|so|cmc`` verbs call) and prints:

- scaling: static marker RMS / max before and after marker placement;
- per walk (one full right gait cycle each): IK marker RMS / max, right-knee flexion range, peak knee
  extension moment in stance (N·m/kg), the right plate's centre of pressure against the heel markers
  (plate -> foot check), the pelvis residual force from ID (GRF missing where a foot is off the plates);
- SO (both muscle models: Thelen2003 as in gait2392, DeGrooteFregly2016 via OpenSim's replaceMuscles) and
  CMC: failed frames, reserves, residuals, the knee moment balance sum_i r_i F_i + reserve - ID (N·m), and
  the peak force of each right-knee muscle, mean ± SD over the walks;
- wall time per step per trial (frames per second) beside plain OpenSim running the same resolved setup XML
  (``opensim.<Tool>(setup).run()`` in a child process, no pimsk code).

    python bench/run_motonms.py                          # everything, CMC on all 5 walks (~25 min on 2 cores)
    python bench/run_motonms.py --cmc walk1              # CMC on one walk only
    python bench/run_motonms.py --cmc none --no-direct   # quick (about 2 min): no CMC, no plain-OpenSim timings

Results: ``<results>/motonms_unipd/<trial>/<step>/`` in the workflow's layout (``c3d``, ``ik``, ``id``, ``so`` =
the labels muscle model, ``so_<model>`` the other one, ``cmc_<model>``) and ``<results>/motonms_unipd/scale/``;
logs in ``<results>/logs/motonms_unipd/``; numbers in ``results/benchmarks/motonms.json`` (``--json``; rewritten
after every walk and every CMC run, so a long run can be read while it goes). SO and CMC get reserves on every
joint coordinate and residuals on the pelvis generated from the model (:mod:`pimsk.osim.cmc_defaults`; CMC
reserves 10 N·m optimal force, ``--cmc-reserve-nm``); coordinates are low-pass filtered at 6 Hz for ID, SO, CMC.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from pimsk.config import load_subject, resolve_path
from pimsk.errors import PimskError
from pimsk.osim.storage import read_storage
from pimsk.paths import PROJECT_ROOT, results_root

SUBJECT_FILE = PROJECT_ROOT / "subjects" / "motonms_unipd" / "subject.yaml"
KNEE = "knee_angle_r"  # gait2392: negative in flexion; a positive moment extends the knee
KNEE_MUSCLES = ("rect_fem_r", "vas_med_r", "vas_int_r", "vas_lat_r", "bifemlh_r", "bifemsh_r", "semimem_r",
                "semiten_r", "med_gas_r", "lat_gas_r", "sar_r", "grac_r", "tfl_r")
QUADRICEPS = ("rect_fem_r", "vas_med_r", "vas_int_r", "vas_lat_r")
LOWPASS_HZ = 6.0
STANCE_FORCE_N = 20.0
MODELS = {"degroote": "model_scaled_degroote.osim", "thelen": "model_scaled.osim"}
# a CMC run counts as labels when every joint coordinate (mtp excepted: the toes barely move) tracks IK within
# this error and the right-knee reserve stays below this moment (about 0.1 N·m/kg)
CMC_MAX_TRACKING_ERROR_DEG = 5.0
CMC_MAX_KNEE_RESERVE_NM = 10.0


# ---------------------------------------------------------------------------------------------------------
# timing

class Timer:
    """Collects one row per step per trial: our wall time, the tool's own (child) time, frames."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, trial: str, step: str, ours_s: float, frames: int, tool_s: float | None = None,
            setup: Path | None = None, tool: str | None = None, note: str = "") -> dict:
        row = {"trial": trial, "step": step, "frames": int(frames), "ours_s": ours_s, "tool_s": tool_s,
               "ours_frames_per_s": frames / ours_s if ours_s > 0 else None, "setup": str(setup) if setup else None,
               "tool": tool, "opensim_s": None, "ratio": None, "note": note}
        self.rows.append(row)
        return row


def run_direct(setup: Path, tool: str, work: Path) -> float:
    """Wall time (s) of plain OpenSim running a copy of ``setup`` with its results sent to ``work``."""
    from pimsk.osim import published

    work.mkdir(parents=True, exist_ok=True)
    copy = work / setup.name
    shutil.copyfile(setup, copy)
    tree = ET.parse(copy)
    tool_el = next(el for el in tree.getroot() if el.tag == tool)
    res = tool_el.find("results_directory")
    if res is not None:
        res.text = str(work)
    tree.write(copy, encoding="UTF-8", xml_declaration=True)
    return published.run_published(copy, tool, log_file=work / "direct.log", level="warn")


# ---------------------------------------------------------------------------------------------------------
# steps (each returns what the summary needs; files land in the workflow's layout)

def _tasks(subject: dict, trial: dict, coordinate_weights: dict):
    from pimsk.osim.ik_tasks import CoordinateTask, IKTasks

    dropped = set(trial.get("drop_markers") or [])
    return IKTasks(markers={m: (0.0 if m in dropped else float(w))
                            for m, w in subject["scaling"]["marker_weights"].items()},
                   coordinates={c: CoordinateTask(weight=float(w)) for c, w in coordinate_weights.items()})


def step_c3d(subject: dict, trial: dict, out: Path, timer: Timer) -> Path:
    """`pimsk c3d` (the verb itself, in this process) for one trial; returns its folder."""
    from pimsk.cli import main as pimsk_main

    is_static = trial is subject["static"]
    argv = ["c3d", str(resolve_path(trial["file"], Path(subject["_dir"]))), "--out-dir", str(out),
            "--subject-file", subject["_file"], "--trial", trial["name"]]
    if is_static:
        argv += ["--emg-map", "none"]
    t0 = time.perf_counter()
    rc = pimsk_main(argv)
    wall = time.perf_counter() - t0
    if rc != 0:
        raise PimskError(f"pimsk c3d failed (exit {rc})", subject=subject["id"], trial=trial["name"])
    frames = len(read_trc_times(out / "markers.trc"))
    timer.add(trial["name"], "c3d", wall, frames, note="no OpenSim counterpart")
    return out


def read_trc_times(path: Path) -> np.ndarray:
    from pimsk.io.trc import read_trc

    return read_trc(path).time_s


def step_scale(subject: dict, static_trc: Path, out: Path, timer: Timer, log: Path) -> dict:
    from pimsk.osim.degroote import replace_muscles_degroote
    from pimsk.osim.marker_errors import compute_marker_errors
    from pimsk.osim.markersets import resolve as resolve_marker_set
    from pimsk.osim.scale import Measurement, read_manual_scales, run_scale

    sc = subject["scaling"]
    model = resolve_path(subject["model"], Path(subject["_dir"]))
    out.mkdir(parents=True, exist_ok=True)
    tasks = _tasks(subject, subject["static"], sc.get("coordinate_weights", {}))
    times = read_trc_times(static_trc)
    t_range = (float(times[0]), float(times[-1]))
    t0 = time.perf_counter()
    marker_set = resolve_marker_set(subject["marker_set"], model, out)
    res = run_scale(
        generic_model=model, static_trc=static_trc, out_dir=out, mass_kg=float(subject["mass_kg"]),
        measurements=[Measurement(m["name"], [tuple(p) for p in m["marker_pairs"]], dict(m["bodies"]))
                      for m in sc["measurements"]],
        tasks=tasks, time_range=t_range, marker_set_file=marker_set, height_m=subject.get("height_m"),
        max_marker_rms_m=sc.get("max_marker_rms_m", 0.02), max_marker_error_m=sc.get("max_marker_error_m", 0.05),
        log_file=log, subject=subject["id"], trial=subject["static"]["name"])
    wall = time.perf_counter() - t0
    timer.add("static", "scale", wall, len(times), res.run.wall_s, res.run.setup, res.run.tool,
              note="scale + marker placement + marker error table")
    t0 = time.perf_counter()
    replace_muscles_degroote(out / MODELS["thelen"], out / MODELS["degroote"], log_file=log, subject=subject["id"])
    timer.add("static", "degroote", time.perf_counter() - t0, 0, note="replaceMuscles (92 muscles)")
    # the fit marker placement starts from: scaled model, markers where the marker set put them
    unplaced = compute_marker_errors(model=res.model_scaled_only, trc=static_trc, time_range=t_range, tasks=tasks,
                                     work_dir=out, log_file=log, step="unplaced-marker-errors",
                                     subject=subject["id"], trial="static")
    worst = int(np.argmax(unplaced.rms_m))
    return {"model": str(out / MODELS["thelen"]), "static_frames": len(times),
            "markers": len(res.marker_errors.markers),
            "placed_rms_m": res.marker_errors.total_rms_m, "placed_max_m": res.marker_errors.total_max_m,
            "unplaced_rms_m": unplaced.total_rms_m, "unplaced_max_m": unplaced.total_max_m,
            "unplaced_worst_marker": unplaced.markers[worst], "unplaced_worst_rms_m": float(unplaced.rms_m[worst]),
            "scale_factors": {b: list(v) for b, v in read_manual_scales(res.scale_set).items()}}


def generated_actuators(model: Path, path: Path, log: Path, reserve_nm: float | None = None) -> Path:
    """Reserves on every joint coordinate (optimal force ``reserve_nm``, default pimsk's 1 N·m) and residuals
    on the pelvis (0.1 N/kg, 0.03 N·m/kg), generated from the model."""
    from pimsk.osim.cmc_defaults import write_actuators
    from pimsk.osim.model_info import read_model_info

    return write_actuators(read_model_info(model, log_file=log), path, purpose="cmc",
                           reserve_optimal_force=reserve_nm)


def failed_frames(log_file: Path) -> int:
    """How many frames OpenSim's static optimization reported as failed."""
    try:
        return Path(log_file).read_text(errors="replace").count("OPTIMIZATION FAILED")
    except OSError:
        return -1


# ---------------------------------------------------------------------------------------------------------
# analysis

def knee_moment_balance(model: Path, coordinates: Path, forces: Path, moments: Path,
                        lowpass_hz: float = LOWPASS_HZ) -> dict:
    """sum_i r_i(q) F_i + knee reserve vs the ID knee moment, frame by frame (N·m).

    r_i = OpenSim's ``computeMomentArm`` about knee_angle_r at the coordinates filtered as ID and SO filter
    them (Storage pad + lowpassIIR); F_i from the SO/CMC force file. Also the quadriceps' share at the
    peak extension moment. Runs OpenSim in this process (analysis only; no tool).
    """
    import opensim as osim

    from pimsk.osim.logging import quiet_opensim

    quiet_opensim("warn")
    m = osim.Model(str(model))
    state = m.initSystem()
    sto = osim.Storage(str(coordinates))
    sto.pad(sto.getSize() // 2)
    if lowpass_hz:
        sto.lowpassIIR(float(lowpass_hz))
    m.getSimbodyEngine().convertDegreesToRadians(sto)
    lab = sto.getColumnLabels()
    labels = [lab.get(i) for i in range(1, lab.getSize())]
    cs = m.getCoordinateSet()
    knee = cs.get(KNEE)
    muscles = m.getMuscles()
    F = read_storage(forces)
    M = read_storage(moments)
    names = [muscles.get(i).getName() for i in range(muscles.getSize()) if muscles.get(i).getName() in F.labels]
    reserve = F.column(f"{KNEE}_reserve") if f"{KNEE}_reserve" in F.labels else np.zeros(F.n_frames)
    total, quads, ident = [], [], []
    for k, t in enumerate(F.time_s):
        j = int(np.argmin(np.abs(M.time_s - t)))
        if abs(M.time_s[j] - t) > 1e-4:
            continue
        row = osim.ArrayDouble(0.0, len(labels))
        sto.getDataAtTime(float(t), len(labels), row)
        for c, name in enumerate(labels):
            if cs.contains(name) and not cs.get(name).getLocked(state):
                cs.get(name).setValue(state, row.get(c), False)
        m.assemble(state)
        m.realizePosition(state)
        s = q = 0.0
        for name in names:
            r = muscles.get(name).computeMomentArm(state, knee)
            s += r * F.column(name)[k]
            if name in QUADRICEPS:
                q += r * F.column(name)[k]
        total.append(s + reserve[k])
        quads.append(q)
        ident.append(M.column(f"{KNEE}_moment")[j])
    total, quads, ident = map(np.asarray, (total, quads, ident))
    err = total - ident
    kpk = int(np.argmax(ident))
    return {"frames": int(len(total)), "max_abs_error_nm": float(np.max(np.abs(err))),
            "rms_error_nm": float(np.sqrt(np.mean(err ** 2))),
            "quadriceps_share_at_peak_extension": float(quads[kpk] / ident[kpk]) if ident[kpk] > 0 else None}


def plate_foot_check(c3d_dir: Path) -> dict:
    """Where the 'right' ground reaction acts, against the heel markers (the forefoot markers are mostly
    occluded on the plates), while it carries > 20 N: median mediolateral distance (m) of its centre of
    pressure from the right heel (RCA) and from the left heel (LCA), and its fore-aft range ahead of the
    right heel (m). A right-foot plate: a few cm from RCA, a step width from LCA, 0 to a foot length ahead."""
    from pimsk.io.trc import read_trc

    grf = read_storage(c3d_dir / "grf.mot")
    mk = read_trc(c3d_dir / "markers.trc").in_metres()
    on = grf.column("ground_force_r_vy") > STANCE_FORCE_N
    t = grf.time_s[on]
    cop_x, cop_z = grf.column("ground_force_r_px")[on], grf.column("ground_force_r_pz")[on]
    out: dict = {"right_loaded_s": [float(t[0]), float(t[-1])] if t.size else None}
    for side in ("r", "l"):
        heel = mk.marker(f"{side.upper()}CA")
        ok = ~np.isnan(heel[:, 0])
        hx = np.interp(t, mk.time_s[ok], heel[ok, 0])
        hz = np.interp(t, mk.time_s[ok], heel[ok, 2])
        out[f"cop_mediolateral_to_{side}_heel_median_m"] = float(np.median(np.abs(cop_z - hz)))
        if side == "r":
            ahead = cop_x - hx
            out["cop_ahead_of_r_heel_m"] = [float(ahead.min()), float(ahead.max())]
    return out


def walk_numbers(walk: str, trial: dict, d: dict, mass_kg: float) -> dict:
    """IK, knee angle and ID numbers of one walk (files in ``d``)."""
    coords = read_storage(d["ik"] / "coordinates.mot")
    errs = read_storage(d["ik"] / "marker_errors.sto").data
    flex = -coords.column(KNEE)
    mom = read_storage(d["id"] / "moments.sto")
    grf = read_storage(d["c3d"] / "grf.mot")
    k = mom.column(f"{KNEE}_moment")
    stance = np.interp(mom.time_s, grf.time_s, grf.column("ground_force_r_vy")) > STANCE_FORCE_N
    t0, t1 = trial["time_range_s"]
    return {
        "cycle_s": [t0, t1], "ik_frames": coords.n_frames,
        "ik_rms_m": float(np.sqrt(np.nanmean(errs ** 2))), "ik_max_m": float(np.nanmax(errs)),
        "knee_flexion_min_deg": float(flex.min()), "knee_flexion_max_deg": float(flex.max()),
        "knee_flexion_range_deg": float(flex.max() - flex.min()),
        "knee_flexion_peak_at_cycle": float((coords.time_s[int(np.argmax(flex))] - t0) / (t1 - t0)),
        "peak_knee_extension_moment_stance_nm_per_kg": float(k[stance].max() / mass_kg),
        "peak_knee_flexion_moment_nm_per_kg": float(-k.min() / mass_kg),
        "right_stance_fraction": float(stance.mean()),
        # where a foot stands on the floor beside the plates (initial double support) the pelvis carries the
        # missing ground reaction as a residual
        "frames_vertical_residual_over_10pct_bw": int(np.sum(np.abs(mom.column("pelvis_ty_force"))
                                                             > 0.1 * 9.80665 * mass_kg)),
        "max_pelvis_residual_force_id_n": float(max(np.abs(mom.column(c)).max()
                                                    for c in ("pelvis_tx_force", "pelvis_ty_force",
                                                              "pelvis_tz_force"))),
    }


def force_numbers(forces: Path, log_file: Path | None) -> dict:
    """Peak force per right-knee muscle (N), largest reserve (N·m) and residuals of an SO/CMC force file."""
    F = read_storage(forces)
    res = [c for c in F.labels if c.endswith("_reserve")]
    resid = [c for c in F.labels if c.endswith("_residual")]
    out = {"frames": F.n_frames,
           "peak_force_n": {m: float(F.column(m).max()) for m in KNEE_MUSCLES},
           "min_force_n": float(min(F.column(m).min() for m in KNEE_MUSCLES)),
           "max_knee_reserve_nm": float(np.abs(F.column(f"{KNEE}_reserve")).max()) if f"{KNEE}_reserve" in F.labels
           else None,
           "max_reserve_nm": float(max(np.abs(F.column(c)).max() for c in res)) if res else None,
           "max_reserve_name": max(res, key=lambda c: np.abs(F.column(c)).max()) if res else None,
           "max_residual_force_n": float(max(np.abs(F.column(c)).max() for c in resid
                                             if c[:-len("_residual")].split("_")[-1] in ("tx", "ty", "tz")))
           if resid else None,
           "max_residual_moment_nm": float(max(np.abs(F.column(c)).max() for c in resid
                                               if c[:-len("_residual")].split("_")[-1] not in ("tx", "ty", "tz")))
           if resid else None}
    if log_file is not None:
        out["failed_frames"] = failed_frames(log_file)
    return out


# ---------------------------------------------------------------------------------------------------------
# the run

def rigid_tendon_copy(src: Path, dst: Path) -> Path:
    """``src`` with ``ignore_tendon_compliance`` true on every DeGrooteFregly2016Muscle (an XML edit).

    CMC with gait2392's compliant-tendon DeGroote muscles stops while computing the initial muscle states
    (CMCTool returns false, muscles 'buckling' and 'exceeding maximum contraction velocity'); with rigid tendons
    it runs. SO assumes rigid tendons anyway.
    """
    tree = ET.parse(src)
    n = 0
    for mus in tree.getroot().iter("DeGrooteFregly2016Muscle"):
        el = mus.find("ignore_tendon_compliance")
        if el is None:
            el = ET.SubElement(mus, "ignore_tendon_compliance")
        el.text = "true"
        n += 1
    if n == 0:
        raise PimskError("no DeGrooteFregly2016Muscle to make rigid", file=str(src))
    tree.write(dst, encoding="UTF-8", xml_declaration=True)
    return dst


def _time_direct(row: dict, work: Path) -> None:
    """Fill ``row``'s plain-OpenSim time from its resolved setup (a failure is noted, not raised)."""
    try:
        row["opensim_s"] = run_direct(Path(row["setup"]), row["tool"], work / row["trial"] / row["step"])
        row["ratio"] = row["ours_s"] / row["opensim_s"]
        row["opensim_frames_per_s"] = row["frames"] / row["opensim_s"]
    except PimskError as exc:
        row["note"] += f"; direct run failed: {exc.message}"
    finally:
        shutil.rmtree(work / row["trial"] / row["step"], ignore_errors=True)


def cmc_numbers(folder: Path, forces: Path, model: Path, coordinates: Path, moments: Path) -> dict:
    """Peak forces, reserves, residuals, tracking errors and knee balance of one CMC run."""
    nums = force_numbers(forces, None)
    perr = read_storage(folder / "cmc_pErr.sto")
    nums["max_knee_tracking_error_deg"] = float(np.degrees(np.abs(perr.column(KNEE)).max()))
    rot = [c for c in perr.labels if not c.startswith(("pelvis_tx", "pelvis_ty", "pelvis_tz"))]
    worst = max(rot, key=lambda c: np.abs(perr.column(c)).max())
    nums["max_tracking_error_deg"] = float(np.degrees(np.abs(perr.column(worst)).max()))
    nums["max_tracking_error_coordinate"] = worst
    nums["knee_balance"] = knee_moment_balance(model, coordinates, forces, moments)
    # accepted as labels only where CMC followed the kinematics and the muscles made the knee moment
    joints = [c for c in rot if not c.startswith("mtp_")]
    worst_joint = max(joints, key=lambda c: np.abs(perr.column(c)).max())
    nums["max_joint_tracking_error_deg"] = float(np.degrees(np.abs(perr.column(worst_joint)).max()))
    nums["max_joint_tracking_error_coordinate"] = worst_joint
    nums["accepted"] = bool(nums["max_joint_tracking_error_deg"] < CMC_MAX_TRACKING_ERROR_DEG
                            and nums["max_knee_reserve_nm"] < CMC_MAX_KNEE_RESERVE_NM)
    return nums


def process(args: argparse.Namespace) -> dict:
    """Run every step; the report (also written to ``args.json`` after each stage) holds the numbers."""
    from pimsk.osim.cmc import run_cmc
    from pimsk.osim.id import run_id
    from pimsk.osim.ik import run_ik
    from pimsk.osim.so import run_so

    subject = load_subject(args.subject_file)
    sid = subject["id"]
    mass = float(subject["mass_kg"])
    root = args.results / sid
    logs = args.results / "logs" / sid
    logs.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    report: dict = {"subject": sid, "mass_kg": mass, "results": str(root), "labels_model": args.labels_model,
                    "so_models": [], "cmc_models": list(args.cmc_models), "cmc_reserve_nm": args.cmc_reserve_nm,
                    "walks": {}, "errors": {}, "timing": timer.rows}
    walks = [t for t in subject["trials"] if not args.trials or t["name"] in args.trials]
    direct_tmp = Path(tempfile.mkdtemp(prefix="pimsk_motonms_direct_"))
    t_start = time.perf_counter()

    def save() -> None:
        report["summary"] = summarise(report)
        report["total_wall_s"] = time.perf_counter() - t_start
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=str))

    # C3D -> OpenSim inputs, scaling
    static_dir = step_c3d(subject, subject["static"], root / subject["static"]["name"] / "c3d", timer)
    for w in walks:
        step_c3d(subject, w, root / w["name"] / "c3d", timer)
    report["scale"] = step_scale(subject, static_dir / "markers.trc", root / "scale", timer, logs / "scale.log")
    models = {k: root / "scale" / v for k, v in MODELS.items()}
    if "degroote_rigid" in args.cmc_models:
        models["degroote_rigid"] = rigid_tendon_copy(models["degroote"],
                                                     root / "scale" / "model_scaled_degroote_rigid.osim")
    so_models = [args.labels_model] + ([m for m in MODELS if m != args.labels_model] if args.both_models else [])
    report["so_models"] = so_models
    so_acts = {m: generated_actuators(models[m], root / "scale" / f"so_actuators_{m}.xml", logs / "scale.log")
               for m in so_models}
    paths: dict[str, dict[str, Path]] = {}

    # IK, ID, SO per walk
    for w in walks:
        name = w["name"]
        t_range = tuple(w["time_range_s"])
        d = {"c3d": root / name / "c3d", "ik": root / name / "ik", "id": root / name / "id"}
        loads = d["c3d"] / "external_loads.xml"
        try:
            t0 = time.perf_counter()
            ik = run_ik(model=models["thelen"], trc=d["c3d"] / "markers.trc", out_dir=d["ik"],
                        tasks=_tasks(subject, w, (subject.get("ik") or {}).get("coordinate_weights", {})),
                        time_range=t_range, log_file=logs / name / "ik.log", subject=sid, trial=name)
            n = read_storage(ik.outputs[0]).n_frames
            timer.add(name, "ik", time.perf_counter() - t0, n, ik.wall_s, ik.setup, ik.tool,
                      note="IK + per-marker error table")
            t0 = time.perf_counter()
            idr = run_id(model=models["thelen"], coordinates=ik.outputs[0], out_dir=d["id"], external_loads=loads,
                         time_range=t_range, lowpass_hz=LOWPASS_HZ, log_file=logs / name / "id.log", subject=sid,
                         trial=name)
            timer.add(name, "id", time.perf_counter() - t0, n, idr.wall_s, idr.setup, idr.tool)
            paths[name] = {"coordinates": ik.outputs[0], "moments": idr.outputs[0], "loads": loads}
            wr = walk_numbers(name, w, d, mass)
            wr["plate_foot"] = plate_foot_check(d["c3d"])
            wr["so"], wr["cmc"] = {}, {}
            report["walks"][name] = wr
            for mm in so_models:
                folder = "so" if mm == args.labels_model else f"so_{mm}"
                t0 = time.perf_counter()
                so = run_so(model=models[mm], coordinates=ik.outputs[0], out_dir=root / name / folder,
                            time_range=t_range, external_loads=loads, force_set_files=[so_acts[mm]],
                            lowpass_hz=LOWPASS_HZ, log_file=logs / name / f"{folder}.log", subject=sid, trial=name)
                timer.add(name, folder, time.perf_counter() - t0, n, so.wall_s, so.setup, so.tool,
                          note=f"{mm} muscles")
                nums = force_numbers(so.outputs[1], logs / name / f"{folder}.log")
                nums["knee_balance"] = knee_moment_balance(models["thelen"], ik.outputs[0], so.outputs[1],
                                                           idr.outputs[0])
                wr["so"][mm] = nums
        except Exception as exc:  # one failing walk does not lose the others
            report["errors"][name] = str(exc) if isinstance(exc, PimskError) else traceback.format_exc(limit=3)
            print(f"run_motonms: {name} failed: {report['errors'][name]}", file=sys.stderr)
        save()
    if args.direct:
        for row in timer.rows:
            if row["setup"]:
                _time_direct(row, direct_tmp)
        save()

    # CMC (minutes per walk and model)
    cmc_walks = [w["name"] for w in walks] if args.cmc == ["all"] else [c for c in args.cmc if c != "none"]
    for name in [n for n in paths if n in cmc_walks]:
        w = next(t for t in walks if t["name"] == name)
        t_range = tuple(w["time_range_s"])
        for mm in args.cmc_models:
            folder = root / name / f"cmc_{mm}"
            try:
                acts = generated_actuators(models[mm], root / "scale" / f"cmc_actuators_{mm}.xml", logs / "scale.log",
                                           reserve_nm=args.cmc_reserve_nm)
                t0 = time.perf_counter()
                cmc = run_cmc(model=models[mm], desired_kinematics=paths[name]["coordinates"], out_dir=folder,
                              time_range=t_range, external_loads=paths[name]["loads"], lowpass_hz=LOWPASS_HZ,
                              actuators_files=[acts], log_file=logs / name / f"cmc_{mm}.log", subject=sid, trial=name,
                              timeout_s=args.cmc_timeout_s)
                frames = int(round((t_range[1] - t_range[0]) * 60.0)) + 1
                row = timer.add(name, f"cmc_{mm}", time.perf_counter() - t0, frames, cmc.wall_s, cmc.setup, cmc.tool,
                                note=f"{mm} muscles; tasks, reserves ({args.cmc_reserve_nm:g} N·m) and residuals "
                                     "generated")
                nums = cmc_numbers(folder, cmc.extra["forces"], models["thelen"], paths[name]["coordinates"],
                                   paths[name]["moments"])
                so_mm = "degroote" if mm == "degroote_rigid" else mm
                if so_mm in report["walks"][name]["so"]:
                    so_peak = report["walks"][name]["so"][so_mm]["peak_force_n"]
                    nums["peak_minus_so_n"] = {m: nums["peak_force_n"][m] - so_peak[m] for m in KNEE_MUSCLES}
                report["walks"][name]["cmc"][mm] = nums
                if args.direct_cmc:
                    _time_direct(row, direct_tmp)
            except Exception as exc:
                key = f"{name}/cmc_{mm}"
                report["errors"][key] = str(exc) if isinstance(exc, PimskError) else traceback.format_exc(limit=3)
                print(f"run_motonms: {key} failed: {report['errors'][key]}", file=sys.stderr)
            save()
    shutil.rmtree(direct_tmp, ignore_errors=True)
    save()
    return report


def _mean_sd(values: list[float]) -> list[float]:
    a = np.asarray(values, dtype=float)
    return [float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0] if a.size else [math.nan, math.nan]


def summarise(report: dict) -> dict:
    """Means ± SD over the walks and the worst reserves/residuals, per method (so/cmc) and muscle model."""
    walks = list(report["walks"].values())
    out: dict = {"walks": len(walks)}
    for key in ("ik_rms_m", "knee_flexion_range_deg", "peak_knee_extension_moment_stance_nm_per_kg"):
        out[key] = _mean_sd([w[key] for w in walks])
    for kind, names in (("so", report["so_models"]), ("cmc", report["cmc_models"])):
        for mm in names:
            got = [w[kind][mm] for w in walks if mm in w.get(kind, {}) and w[kind][mm].get("accepted", True)]
            rejected = [n for n, w in report["walks"].items()
                        if mm in w.get(kind, {}) and not w[kind][mm].get("accepted", True)]
            if not got:
                continue
            out[f"{kind}_{mm}"] = {
                "walks": len(got),
                "rejected_walks": rejected,
                "peak_force_n": {m: _mean_sd([g["peak_force_n"][m] for g in got]) for m in KNEE_MUSCLES},
                "max_knee_reserve_nm": max(g["max_knee_reserve_nm"] for g in got),
                "max_reserve_nm": max(g["max_reserve_nm"] for g in got),
                "max_residual_force_n": max(g["max_residual_force_n"] for g in got),
                "max_residual_moment_nm": max(g["max_residual_moment_nm"] for g in got),
                "knee_balance_max_abs_error_nm": max(g["knee_balance"]["max_abs_error_nm"] for g in got),
                "failed_frames": sum(g.get("failed_frames", 0) for g in got),
            }
    return out


# ---------------------------------------------------------------------------------------------------------
# printing

def print_tables(report: dict) -> None:
    """The README tables (Markdown)."""
    sc = report["scale"]
    print(f"\n## {report['subject']}: scaling (gait2392, {sc['markers']} markers, {sc['static_frames']} static frames)")
    print(f"static marker RMS / max before placement: {1e3 * sc['unplaced_rms_m']:.1f} / "
          f"{1e3 * sc['unplaced_max_m']:.1f} mm (worst {sc['unplaced_worst_marker']} "
          f"{1e3 * sc['unplaced_worst_rms_m']:.1f} mm RMS); after placement: {1e3 * sc['placed_rms_m']:.2f} / "
          f"{1e3 * sc['placed_max_m']:.2f} mm")
    print("\n## walks (one full right gait cycle each)")
    print("| walk | cycle s | frames | IK RMS mm | IK max mm | knee flex min-max deg (range) | peak flex at % | "
          "peak knee ext. moment N·m/kg | R-plate COP: mediolateral to R / L heel mm, ahead of R heel mm | "
          "max ID pelvis residual N | frames with vertical residual > 10 % BW |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, w in report["walks"].items():
        pf = w["plate_foot"]
        cop = (f"{1e3 * pf['cop_mediolateral_to_r_heel_median_m']:.0f} / "
               f"{1e3 * pf['cop_mediolateral_to_l_heel_median_m']:.0f}, {1e3 * pf['cop_ahead_of_r_heel_m'][0]:.0f} to "
               f"{1e3 * pf['cop_ahead_of_r_heel_m'][1]:.0f}")
        print(f"| {name} | {w['cycle_s'][1] - w['cycle_s'][0]:.3f} | {w['ik_frames']} | {1e3 * w['ik_rms_m']:.1f} | "
              f"{1e3 * w['ik_max_m']:.1f} | {w['knee_flexion_min_deg']:.1f}-{w['knee_flexion_max_deg']:.1f} "
              f"({w['knee_flexion_range_deg']:.1f}) | {100 * w['knee_flexion_peak_at_cycle']:.0f} | "
              f"{w['peak_knee_extension_moment_stance_nm_per_kg']:.2f} | {cop} | "
              f"{w['max_pelvis_residual_force_id_n']:.0f} | {w['frames_vertical_residual_over_10pct_bw']} |")
    for kind, names in (("so", report["so_models"]), ("cmc", report["cmc_models"])):
        for mm in names:
            rows = {n: w[kind][mm] for n, w in report["walks"].items() if mm in w[kind]}
            if not rows:
                continue
            if kind == "cmc":
                print(f"\n## CMC ({mm} muscles): tracking errors")
                print("| walk | max knee error deg | max joint error deg (coordinate), mtp excluded | max mtp error deg "
                      f"| accepted (joints < {CMC_MAX_TRACKING_ERROR_DEG:g} deg, knee reserve < "
                      f"{CMC_MAX_KNEE_RESERVE_NM:g} N·m) |")
                print("|---|---|---|---|---|")
                for n, r in rows.items():
                    print(f"| {n} | {r['max_knee_tracking_error_deg']:.2f} | {r['max_joint_tracking_error_deg']:.2f} "
                          f"({r['max_joint_tracking_error_coordinate']}) | {r['max_tracking_error_deg']:.1f} | "
                          f"{'yes' if r['accepted'] else 'no'} |")
            print(f"\n## {kind.upper()} ({mm} muscles): reserves, residuals, knee moment balance")
            print("| walk | frames | failed frames | max knee reserve N·m | max reserve N·m (coord) | "
                  "max residual N / N·m | max abs(sum r·F + reserve - ID) N·m | quadriceps share at peak ext. |")
            print("|---|---|---|---|---|---|---|---|")
            for n, r in rows.items():
                kb = r["knee_balance"]
                share = kb["quadriceps_share_at_peak_extension"]
                share_text = f"{share:.2f}" if share is not None else "-"
                print(f"| {n} | {r['frames']} | {r.get('failed_frames', '-')} | {r['max_knee_reserve_nm']:.2f} | "
                      f"{r['max_reserve_nm']:.2f} ({r['max_reserve_name'].replace('_reserve', '')}) | "
                      f"{r['max_residual_force_n']:.0f} / {r['max_residual_moment_nm']:.0f} | "
                      f"{kb['max_abs_error_nm']:.3f} | {share_text} |")
    print("\n## peak force of the right-knee muscles over the cycle (N), mean ± SD over the walks (CMC: accepted "
          "walks only)")
    cols = [(k, mm) for k, names in (("so", report["so_models"]), ("cmc", report["cmc_models"])) for mm in names
            if f"{k}_{mm}" in report["summary"]]
    print("| muscle | " + " | ".join(f"{k.upper()} {mm} (n={report['summary'][f'{k}_{mm}']['walks']})"
                                    for k, mm in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for m in KNEE_MUSCLES:
        cells = []
        for k, mm in cols:
            mu, sd = report["summary"][f"{k}_{mm}"]["peak_force_n"][m]
            cells.append(f"{mu:.0f} ± {sd:.0f}")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print("\n## wall time per step per trial (ours: pimsk function incl. setup, checks, extras; tool: the OpenSim "
          "child alone; OpenSim: plain OpenSim from the same resolved setup)")
    print("| trial | step | frames | ours s | tool s | OpenSim s | ours/OpenSim | frames/s ours | frames/s OpenSim |"
          " note |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in report["timing"]:
        def f(x, fmt):
            return format(x, fmt) if isinstance(x, (int, float)) else "-"
        print(f"| {r['trial']} | {r['step']} | {r['frames']} | {r['ours_s']:.2f} | {f(r['tool_s'], '.2f')} | "
              f"{f(r['opensim_s'], '.2f')} | {f(r['ratio'], '.2f')} | {f(r['ours_frames_per_s'], '.1f')} | "
              f"{f(r.get('opensim_frames_per_s'), '.1f')} | {r['note']} |")
    if report["errors"]:
        print("\nfailed: " + "; ".join(f"{k}: {v}" for k, v in report["errors"].items()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subject-file", type=Path, default=SUBJECT_FILE)
    p.add_argument("--results", type=Path, default=results_root(), help="results root (default results/)")
    p.add_argument("--trials", nargs="*", default=None, help="walks to process (default: all)")
    p.add_argument("--labels-model", choices=tuple(MODELS), default="degroote",
                   help="muscle model of the SO labels in so/ (default degroote, as the workflow)")
    p.add_argument("--one-model", dest="both_models", action="store_false",
                   help="SO with the labels muscle model only (default: both, the other in so_<model>/)")
    p.add_argument("--cmc", nargs="*", default=["all"],
                   help="walks to run CMC on: names, 'all' or 'none' (default all)")
    p.add_argument("--cmc-models", nargs="*", choices=("thelen", "degroote", "degroote_rigid"),
                   default=["thelen"],
                   help="muscle models for CMC, each in cmc_<model>/ (default thelen; with gait2392, CMC with "
                        "DeGroote muscles fails at its initial states (compliant tendons) or tracks the ankles "
                        "10-22 deg off (degroote_rigid: rigid tendons))")
    p.add_argument("--cmc-reserve-nm", type=float, default=10.0,
                   help="optimal force of CMC's generated reserves (N·m; default 10: with pimsk's 1 N·m CMC's fast "
                        "target fails in walk1's swing, 'search direction becomes too small')")
    p.add_argument("--cmc-timeout-s", type=float, default=7200.0)
    p.add_argument("--no-direct", dest="direct", action="store_false",
                   help="skip timing plain OpenSim on the same setups")
    p.add_argument("--direct-cmc", action="store_true", help="also time plain OpenSim CMC (doubles CMC time)")
    p.add_argument("--json", type=Path, default=results_root() / "benchmarks" / "motonms.json")
    args = p.parse_args(argv)
    if not Path(args.subject_file).is_file():
        print(f"run_motonms: no subject file {args.subject_file}", file=sys.stderr)
        return 2
    subject = load_subject(args.subject_file)
    static = resolve_path(subject["static"]["file"], Path(subject["_dir"]))
    if not static.is_file():
        print(f"run_motonms: MOtoNMS data not found ({static}); set PIMSK_DATA", file=sys.stderr)
        return 2
    report = process(args)
    print_tables(report)
    print(f"\ntotal {report['total_wall_s']:.0f} s; wrote {args.json}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
