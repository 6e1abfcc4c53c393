"""Start-up: help, the version, usage errors and ``info`` answer without importing torch or FFmpeg.

The commands run through the real entry point (``maskflow_cli.cli.main``) in a fresh Python process,
which reports after each one which heavy packages are loaded; this test process has torch loaded
already, so it cannot tell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from maskflow_cli.model_configs import SCHEDULER_NAMES
from maskflow_cli.schedules import SCHEDULERS

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "av", "numpy")

# Runs each command line of argv[1] (JSON) through main, then prints, per command line, its exit code
# and the HEAVY packages loaded so far; the help pages: every command's, found in the app itself.
CHILD = """
import contextlib, io, json, sys
import typer
from maskflow_cli.cli import main
from maskflow_cli.cli.app import app

def paths(command, prefix):
    found = [prefix]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += paths(sub, prefix + [name])
    return found

lines = [p + ["--help"] for p in paths(typer.main.get_command(app), [])] + json.loads(sys.argv[1])
report = {}
for argv in lines:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    report[" ".join(argv)] = [code, [m for m in %r if m in sys.modules]]
print(json.dumps(report))
""" % (HEAVY,)


def _loaded(lines: list[list[str]], cwd: Path) -> dict[str, list]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(lines)], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_help_the_version_and_usage_errors_import_no_torch_ffmpeg_or_numpy(tmp_path):
    usage_errors = [["--bogus"], ["generate", "--bogus"], ["generate", "--frames", "many"], ["infill"], ["data", "maze"],
                    ["nosuchcommand"], ["generate"]]  # the last: no -o, refused before any work
    report = _loaded([["--version"], *usage_errors], tmp_path)
    helps = [line for line in report if line.endswith("--help")]
    assert {"--help", "generate --help", "data --help", "data maze --help", "data moving-mnist --help", "info --help"} <= set(helps)
    assert {line: code for line, (code, _) in report.items() if line.endswith("--help") or line == "--version"} == {
        line: 0 for line in [*helps, "--version"]}
    assert all(report[" ".join(argv)][0] == 2 for argv in usage_errors)
    assert {line: heavy for line, (_, heavy) in report.items() if heavy} == {}


def test_info_reads_the_header_without_torch_or_ffmpeg(tmp_path, weights_dir):
    report = _loaded([["info"], ["info", "--json", "--weights", str(weights_dir)]], tmp_path)
    assert all(code == 0 and "torch" not in heavy and "av" not in heavy for code, heavy in report.values()), report


def test_the_configs_name_every_scheduler():
    assert SCHEDULER_NAMES == tuple(SCHEDULERS)


def test_loading_weights_does_not_import_the_compiler(weights_dir):
    """Building the weights' shape-check skeleton on the meta device runs no meta-device ops, which
    would import torch._dynamo (about 1.5 s of every command's start)."""
    code = ("import sys; from maskflow_cli.pipeline import MaskFlowPipeline; "
            f"MaskFlowPipeline.from_weights({str(weights_dir)!r}, device='cpu'); print('torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_command_line_chooses_how_idle_threads_wait_before_torch_loads_unless_the_user_chose():
    """A short spin where the load leaves a core per thread, sleep elsewhere; the user's setting wins."""
    from maskflow_cli.startup import BUSY_WAIT, QUIET_WAIT, busy_cores, set_thread_policy

    cpus = len(os.sched_getaffinity(0))
    environ: dict[str, str] = {}
    assert set_thread_policy(environ, busy=0.0) == QUIET_WAIT and environ == QUIET_WAIT
    environ = {"OMP_NUM_THREADS": "2"}
    assert set_thread_policy(environ, busy=cpus - 1.0) == BUSY_WAIT and environ == {"OMP_NUM_THREADS": "2", **BUSY_WAIT}  # one core free, two threads
    environ = {"OMP_NUM_THREADS": "1"}
    assert set_thread_policy(environ, busy=50.0) == QUIET_WAIT  # one thread never waits for another
    assert busy_cores() >= 0
    if cpus > 1:  # unset or unreadable: one thread per CPU
        assert set_thread_policy({}, busy=1.0) == BUSY_WAIT and set_thread_policy({"OMP_NUM_THREADS": "many"}, busy=1.0) == BUSY_WAIT
    for mine in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "1000"}, {"KMP_BLOCKTIME": "0"}):
        environ = dict(mine)
        assert set_thread_policy(environ, busy=0.0) == {} and environ == mine  # the user's own setting wins
    child = ("import os, sys, contextlib, io\nfrom maskflow_cli.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    main(['--version'])\n"
             "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() in (["PASSIVE", "None", "False"], ["None", "10000", "False"]), done.stderr  # set at start-up, torch not loaded yet
