"""Run an OpenSim tool from a setup XML in a child process, then check what it left behind.

One call = one step of one trial: the setup is resolved (absolute inputs, results in ``out_dir``) and
saved as ``out_dir/setup_<step>.xml``; the child re-prints it with every setting OpenSim applied, then
runs it from that folder. OpenSim's console log goes to ``log_file`` and no ``opensim.log`` is written.
Afterwards every expected output must exist and be non-empty, and RRA/CMC ``*_states.sto`` headers
overwritten at process exit are repaired (:mod:`pimsk.osim.sto_repair`). A failure raises
:class:`OpenSimToolError` naming subject, trial, step, setup file and the last error lines of the log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pimsk.errors import OpenSimToolError, PimskError
from pimsk.osim import setup_xml
from pimsk.osim.sto_repair import repair_states_header
from pimsk.paths import PROJECT_ROOT

DEFAULT_TIMEOUT_S = 3600.0
_ERROR_START = ("[error]", "[critical]", "[pimsk] error")
_ERROR_RE = re.compile(r"Error|Exception|Traceback|[Ff]ailed|Segmentation|Aborted|terminate called")
_QUIET_START = ("[info]", "[warning]", "[debug]", "[trace]", "=== pimsk")


@dataclass
class ToolRun:
    """What one tool run produced. Paths are absolute; ``wall_s`` is the child's wall time (s)."""

    step: str
    tool: str
    setup: Path
    log_file: Path
    out_dir: Path
    outputs: list[Path]
    wall_s: float
    repaired: list[Path] = field(default_factory=list)
    extra: dict[str, Path] = field(default_factory=dict)


def last_error_lines(log_file: str | Path, n: int = 8) -> str:
    """The last ``n`` lines of a log that look like errors (else its last ``n`` lines), joined by ' | '."""
    try:
        lines = [ln.rstrip() for ln in Path(log_file).read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    errs = [ln for ln in lines if ln.startswith(_ERROR_START)
            or (not ln.startswith(_QUIET_START) and _ERROR_RE.search(ln))]
    pick = (errs or lines)[-n:]
    return " | ".join(pick) if pick else "(log is empty)"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGKILL it when its parent dies, so a run killed midway (kill -9,
    a scheduler's time limit) leaves no OpenSim process writing into the results while the run resumes."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass


def run_child(
    args: Sequence[str],
    *,
    log_file: str | Path,
    cwd: str | Path,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    step: str = "",
    subject: str | None = None,
    trial: str | None = None,
    setup: str | Path | None = None,
) -> float:
    """Run ``python -m pimsk.osim._run_tool *args`` with stdout/stderr appended to ``log_file``.

    Returns the wall time (s). Non-zero exit or timeout raises OpenSimToolError with the log's last
    error lines.
    """
    log_file = Path(log_file).resolve()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pimsk.osim._run_tool", *map(str, args)]
    where = dict(subject=subject, trial=trial, file=str(setup) if setup else None)
    t0 = time.perf_counter()
    with open(log_file, "a") as log:
        log.write(f"\n=== pimsk {step}: {' '.join(cmd[3:])} (cwd {cwd}) {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        log.flush()
        proc = subprocess.Popen(cmd, cwd=str(cwd), stdout=log, stderr=subprocess.STDOUT, env=_child_env(),
                                start_new_session=True, preexec_fn=_die_with_parent if os.name == "posix" else None)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise OpenSimToolError(
                f"step {step!r} timed out after {timeout_s:.0f} s and was stopped", **where,
                hint=f"log {log_file}; raise the timeout or shorten the time range") from None
        except BaseException:
            _kill(proc)
            raise
    wall = time.perf_counter() - t0
    if rc != 0:
        what = {3: "the tool reported failure", 4: "an exception in the tool"}.get(
            rc, f"it crashed (signal {-rc})" if rc < 0 else f"exit status {rc}")
        raise OpenSimToolError(
            f"step {step!r} failed: {what}; last log lines: {last_error_lines(log_file)}", **where,
            hint=f"full log {log_file}")
    return wall


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def check_outputs(paths: Sequence[Path], *, step: str, log_file: Path, subject: str | None = None,
                  trial: str | None = None, setup: Path | None = None) -> None:
    """Every path must exist and be non-empty, else OpenSimToolError listing the missing ones."""
    bad = [f"{p} ({'empty' if p.exists() else 'missing'})" for p in paths if not p.exists() or p.stat().st_size == 0]
    if bad:
        raise OpenSimToolError(
            f"step {step!r} ended without its outputs: {', '.join(bad)}; last log lines: {last_error_lines(log_file)}",
            subject=subject, trial=trial, file=str(setup) if setup else None, hint=f"full log {log_file}")


def run_setup(
    setup: str | Path,
    *,
    step: str,
    out_dir: str | Path,
    log_file: str | Path | None = None,
    expected: Sequence[str | Path] | None = None,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    subject: str | None = None,
    trial: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> ToolRun:
    """Run the OpenSim tool set up by ``setup`` with its results in ``out_dir``.

    ``expected``: outputs to verify (relative paths are taken in ``out_dir``); default: what the setup
    itself names (:func:`setup_xml.expected_outputs`). ``overrides``: tool properties to change
    (e.g. ``{"initial_time": "0.6"}``). Returns a :class:`ToolRun`.
    """
    setup = Path(setup).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = Path(log_file).resolve() if log_file else out_dir / f"{step}.log"
    try:
        cls = setup_xml.tool_class(setup)
        resolved = out_dir / f"setup_{step}.xml"
        tree = setup_xml.resolve_setup(setup, resolved, out_dir, overrides)
    except PimskError as exc:
        raise exc.located(subject=subject, trial=trial)
    tool = setup_xml.tool_element(tree, resolved)
    for tag in setup_xml.OUTPUT_TAGS:  # outputs in sub-folders: make the folders
        for el in tool.iter(tag):
            if not setup_xml.is_unset(el.text) and not Path(el.text.strip()).is_absolute():
                (out_dir / el.text.strip()).parent.mkdir(parents=True, exist_ok=True)
    outs = [out_dir / p for p in expected] if expected is not None else setup_xml.expected_outputs(resolved)
    outs = [Path(p).resolve() for p in outs]
    for p in outs:  # a stale file from an earlier run must not pass for this run's output
        if p.exists():
            p.unlink()
    wall = run_child(["tool", resolved.name, "--cls", cls, "--print-resolved", resolved.name],
                     log_file=log_file, cwd=out_dir, timeout_s=timeout_s, step=step, subject=subject,
                     trial=trial, setup=setup)
    check_outputs(outs, step=step, log_file=log_file, subject=subject, trial=trial, setup=setup)
    repaired = []
    name = tool.get("name") or None
    if cls in ("CMCTool", "RRATool", "ForwardTool"):
        for states in sorted(set(p for p in outs if p.name.endswith("_states.sto"))
                             | set(out_dir.glob("*_states.sto"))):
            try:
                if repair_states_header(states, name=name):
                    repaired.append(states)
            except PimskError as exc:
                raise OpenSimToolError(f"step {step!r}: {exc.message}", subject=subject, trial=trial,
                                       file=str(states), hint=exc.hint) from None
    if repaired:
        with open(log_file, "a") as log:
            log.write(f"[pimsk] repaired states header(s): {', '.join(map(str, repaired))}\n")
    return ToolRun(step=step, tool=cls, setup=resolved, log_file=log_file, out_dir=out_dir, outputs=outs,
                   wall_s=wall, repaired=repaired)
