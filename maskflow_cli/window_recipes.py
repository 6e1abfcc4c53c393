"""One-command recipes for one GPU window: ``maskflow recipe NAME --budget 9m -o DIR``.

Each recipe spends one total time budget on its stages (data made with all cores, training sized by
``--time-limit``, a quick evaluation) and writes one folder holding the weights and RECORD.md (the
exact commands, the hardware, the training logs and the eval JSON), nothing else; its work files
live in a temporary folder beside it, removed at the end.

- ``digits-continue``: warm-start the shipped digits transformer on fresh Moving MNIST;
- ``digits-fast``: the speed design (block-causal, factorised attention, width 192, depth 6,
  ``context_prob``) from scratch on the shipped tokenizer's tokens;
- ``maze``: maze data, the ``maze16`` tokenizer and a transformer, the budget split by measured rates.

``smoke`` runs the same stages at toy sizes (tiny presets) on the CPU, so the test suite runs them all.
Every stage is a library call whose command line is recorded from the same arguments
(``command_line``), so RECORD.md's commands are what ran.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .defaults import RECIPES as RECIPE_NAMES
from .engine import SamplingOptions
from .errors import InvalidArgumentError
from .evaluation import SIZES, evaluate
from .pipeline import MaskFlowPipeline
from .planner import window_settings
from .recipes import TOKENIZER_FILE, TRANSFORMER_FILE, train_tokenizer, train_transformer
from .runtime import resolve_device
from .run_folders import make_output_dir
from .training import METRICS, TrainConfig
from .worlds import WORLDS

RECORD = "RECORD.md"
MAX_FOLDER_BYTES = 64 * 2**20  # what one GPU window can return
EVAL_SUITES = ("continuation", "infill")


def command_line(command: str, *positional: object, **options: object) -> str:
    """``maskflow COMMAND POSITIONAL --option value ...`` for keyword arguments named as the options
    (``batch_size`` is ``--batch-size``; True is a bare flag; False and None are left out; a
    ``time_limit`` in seconds is written ``90s``)."""
    words = ["maskflow", *command.split(), *map(str, positional)]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                words += [flag, str(item)]
        else:
            words += [flag, f"{value:g}s" if name == "time_limit" else str(value)]
    return shlex.join(words)


@dataclass
class Session:
    """One recipe run: its budget and clock, its work folder, and what RECORD.md will say."""

    name: str
    output: Path
    budget: float  # seconds
    smoke: bool
    device: str
    log: Callable[[str], None] = lambda _: None  # told each stage as it starts
    started: float = field(default_factory=time.perf_counter)
    work: Path = field(init=False)
    stages: list[tuple[str, str, float]] = field(default_factory=list)  # (title, command lines, seconds)
    logs: dict[str, str] = field(default_factory=dict)  # run name -> metrics.jsonl text

    def __post_init__(self) -> None:
        if not 0 < self.budget < float("inf"):
            raise InvalidArgumentError("budget", self.budget, "must be a positive number of seconds")
        make_output_dir(self.output)
        if any(self.output.iterdir()):
            raise InvalidArgumentError("output", str(self.output), "must be an empty or new folder: a recipe writes the whole folder")
        self.work = Path(tempfile.mkdtemp(prefix=f".{self.name}-", dir=self.output.parent))

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *failure: object) -> None:
        shutil.rmtree(self.work, ignore_errors=True)  # finished or failed: no work files stay

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.started)

    def path(self, name: str) -> str:
        return str(self.work / name)

    def run(self, title: str, lines: list[str], call: Callable[[], Any]) -> Any:
        """Run a stage (``call``) whose commands are ``lines``; record them and the seconds it took."""
        shown = "\n".join(line.replace(str(self.work) + os.sep, "") for line in lines)
        self.log(f"[{time.perf_counter() - self.started:.0f} s of {self.budget:.0f} s] {title}\n{shown}")
        began = time.perf_counter()
        result = call()
        self.stages.append((title, shown, time.perf_counter() - began))
        return result

    def finish(self, weights: Path, evaluation: dict, notes: list[str]) -> dict:
        """Copy the weights into the output and write RECORD.md -> a summary."""
        for name in (TOKENIZER_FILE, TRANSFORMER_FILE):
            shutil.copyfile(weights / name, self.output / name)
        seconds = time.perf_counter() - self.started
        (self.output / RECORD).write_text(self._record(evaluation, notes, seconds))
        size = sum(p.stat().st_size for p in self.output.iterdir())
        if size > MAX_FOLDER_BYTES:
            raise InvalidArgumentError("output", str(self.output), f"holds {size / 2**20:.1f} MiB, more than one window returns (64 MiB)")
        return {"recipe": self.name, "output": str(self.output), "bytes": size, "seconds": round(seconds, 1),
                "budget_seconds": self.budget, "smoke": self.smoke, "files": sorted(p.name for p in self.output.iterdir())}

    def _record(self, evaluation: dict, notes: list[str], seconds: float) -> str:
        lines = [f"# {self.name}{' (smoke run)' if self.smoke else ''}", "",
                 f"Made by `maskflow recipe {self.name} --budget {self.budget:g}s{' --smoke' if self.smoke else ''}` "
                 f"in {seconds:.0f} s on {hardware(self.device)}, PyTorch {torch.__version__}. The commands it ran, "
                 "in a scratch folder (paths relative to it), with what each took:", ""]
        for title, shown, spent in self.stages:
            lines += [f"**{title}** ({spent:.0f} s)", "", "```bash", shown, "```", ""]
        lines += notes + ([""] if notes else [])
        for run, text in self.logs.items():
            lines += [f"## Training log: {run} (metrics.jsonl)", "", "```json", text.rstrip(), "```", ""]
        lines += ["## Evaluation (eval JSON)", "", "```json", json.dumps(evaluation, indent=1), "```", ""]
        return "\n".join(lines)


def hardware(device: str) -> str:
    dev = resolve_device(device)
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} ({os.cpu_count()} CPU cores)"
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"


# ---- stages --------------------------------------------------------------------------------------


def _make_shard(world: str, path: str, options: dict) -> dict:
    return WORLDS[world].dataset(path, overwrite=True, **options).run(None)


def moving_mnist(session: Session, folder: str, sequences: int, frames: int, seed: int, workers: int) -> str:
    """Moving MNIST in ``workers`` shards made at once (shard i seeded ``seed + i``) -> the folder."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    per = [sequences // workers + (i < sequences % workers) for i in range(workers)]
    jobs = [(f"{folder}/shard{i:03d}.safetensors", {"sequences": n, "frames": frames, "seed": seed + i}) for i, n in enumerate(per) if n]
    lines = [f"mkdir -p {folder}", *(command_line("data moving-mnist", path, **options) for path, options in jobs)]

    def make() -> None:
        if len(jobs) == 1:
            _make_shard("moving-mnist", *jobs[0])
            return
        with ProcessPoolExecutor(len(jobs)) as pool:
            list(pool.map(_make_shard, ["moving-mnist"] * len(jobs), *zip(*jobs)))

    session.run(f"data: {sequences:,} Moving MNIST sequences of {frames} frames, {len(jobs)} process(es) at once", lines, make)
    return folder


def quick_eval(session: Session, weights: str, data: str | None = None) -> dict:
    """The quick continuation + infill evaluation of ``maskflow eval --quick`` (seed 0)."""
    line = command_line("eval", weights=weights, data=data, quick=True, suite=list(EVAL_SUITES), device=session.device, json=True)

    def run() -> dict:
        pipe = MaskFlowPipeline.from_weights(weights, device=session.device)
        result = evaluate(pipe, pipe.tokenizer, pipe.device, data=data, size=SIZES["quick"], suites=EVAL_SUITES,
                          settings=window_settings(pipe.window), options=SamplingOptions(seed=0), data_seed=1234)
        return json.loads(json.dumps(result).replace(str(session.work) + os.sep, ""))

    return session.run("quick evaluation: continuation and infill", [line], run)


def train(session: Session, title: str, data: str, output: str, cfg: TrainConfig, **settings: Any) -> str:
    """``maskflow train`` (the transformer) as a stage -> its output folder."""
    line = command_line("train", data, output=output, **_config_options(cfg), **settings, device=session.device)
    session.run(title, [line], lambda: train_transformer(data, output, cfg, device=session.device, **settings))
    session.logs[Path(output).name] = (Path(output) / METRICS).read_text()
    return output


def train_tok(session: Session, title: str, data: str, output: str, cfg: TrainConfig, **settings: Any) -> str:
    """``maskflow train-tokenizer`` as a stage -> its output folder."""
    line = command_line("train-tokenizer", data, output=output, **_config_options(cfg), **settings, device=session.device)
    session.run(title, [line], lambda: train_tokenizer(data, output, cfg, device=session.device, **settings))
    session.logs[Path(output).name] = (Path(output) / METRICS).read_text()
    return output


def _config_options(cfg: TrainConfig) -> dict:
    """Every option of the training loop, written out (the commands' defaults differ from TrainConfig's)."""
    return {name: getattr(cfg, name) for name in ("steps", "time_limit", "batch_size", "lr", "warmup", "ema", "seed", "log_every",
                                                   "checkpoint_every", "precision")}


# ---- the recipes ---------------------------------------------------------------------------------

EVAL_RESERVE = 0.12  # share of the budget kept for the evaluation and the copies at the end


def _loop(smoke: bool, time_limit: float, *, batch_size: int, lr: float, log_every: int = 100) -> TrainConfig:
    """A stage's training loop: its time limit (whole seconds), steps capped at 100,000 with a 2 %
    warm-up; in a smoke run 2 steps of 2 clips."""
    time_limit = float(int(time_limit))
    if smoke:
        return TrainConfig(steps=2, batch_size=2, lr=lr, warmup=1, log_every=1, checkpoint_every=2, time_limit=time_limit)
    return TrainConfig(steps=100_000, batch_size=batch_size, lr=lr, warmup=2000, log_every=log_every, checkpoint_every=1000,
                       time_limit=time_limit)


def _train_time(session: Session) -> float:
    """What is left of the budget for training once the evaluation's share is kept back."""
    left = session.left() - EVAL_RESERVE * session.budget
    if left < 3:
        raise InvalidArgumentError("budget", session.budget, "leaves no time to train after the data; give more")
    return left


def digits_continue(output: str | Path, budget: float, *, smoke: bool = False, device: str = "auto", workers: int | None = None,
                    log: Callable[[str], None] = lambda _: None) -> dict:
    """Warm-start the shipped digits transformer (``small``, 16-frame windows) on fresh Moving MNIST
    (seeds 100 on: never the shipped weights' data), then the quick eval. ``workers``: processes
    making data (default: every core); ``log(text)`` is told each stage as it starts."""
    with Session("digits-continue", Path(output), budget, smoke, device, log) as session:
        return _digits_continue(session, smoke, workers)


def _digits_continue(session: Session, smoke: bool, workers: int | None) -> dict:
    cores = 1 if smoke else workers or os.cpu_count() or 1
    data = moving_mnist(session, session.path("data"), 8 if smoke else 30_000, 16 if smoke else 32, 100, cores)
    run = train(session, "transformer: continue the shipped one", data, session.path("runs/continue"),
                _loop(smoke, _train_time(session), batch_size=128, lr=5e-4), init_from="digits", preset="small", window=16,
                context_prob=0.5, export_dtype="bf16")
    return session.finish(Path(run), quick_eval(session, run), [])


def digits_fast(output: str | Path, budget: float, *, smoke: bool = False, device: str = "auto", workers: int | None = None,
                log: Callable[[str], None] = lambda _: None) -> dict:
    """The speed design from scratch on the shipped tokenizer's tokens: block-causal, factorised
    attention, the ``fast`` preset (width 192, depth 6), context masking; then the quick eval."""
    with Session("digits-fast", Path(output), budget, smoke, device, log) as session:
        return _digits_fast(session, smoke, workers)


def _digits_fast(session: Session, smoke: bool, workers: int | None) -> dict:
    cores = 1 if smoke else workers or os.cpu_count() or 1
    data = moving_mnist(session, session.path("data"), 8 if smoke else 30_000, 16 if smoke else 32, 200, cores)
    run = train(session, "transformer: the fast design from scratch", data, session.path("runs/fast"),
                _loop(smoke, _train_time(session), batch_size=128, lr=1.5e-3), tokenizer="digits",
                preset="tiny" if smoke else "fast", window=16, attention="factorized", block_causal=True, context_prob=0.5,
                export_dtype="bf16")
    return session.finish(Path(run), quick_eval(session, run), [])


def maze(output: str | Path, budget: float, *, smoke: bool = False, device: str = "auto", workers: int | None = None,
         log: Callable[[str], None] = lambda _: None) -> dict:
    """Maze data (all cores), the ``maze16`` tokenizer, then a ``base`` transformer on its tokens; the
    data gets a fifth of the budget at its measured rendering rate, the tokenizer a third of the rest."""
    with Session("maze", Path(output), budget, smoke, device, log) as session:
        return _maze(session, smoke, workers)


def _maze(session: Session, smoke: bool, workers: int | None) -> dict:
    cores = 1 if smoke else workers or os.cpu_count() or 1
    frames = 16 if smoke else 32
    data, test = session.path("data/train"), session.path("data/maze_test.safetensors")

    def render(path: str, clips: int, seed: int, split: str) -> None:
        options = {"clips": clips, "frames": frames if split == "train" else 32, "seed": seed, "split": split, "workers": cores}
        session.run(f"data: {clips} {split} maze clips, {cores} process(es)", [command_line("data maze", path, **options)],
                    lambda: WORLDS["maze"].dataset(path, overwrite=True, **options).run(None))

    probe = 8 if smoke else 32 * cores  # one maze per process
    Path(data).mkdir(parents=True)
    began = time.perf_counter()
    render(data + "/probe.safetensors", probe, 0, "train")  # one file beside the shards below: the folder reads both
    rate = probe / (time.perf_counter() - began)  # clips a second
    more = 0 if smoke else int(rate * (session.budget / 5 - (time.perf_counter() - session.started)))
    if more >= 32:
        render(data, more, 1000, "train")
    render(test, 4 if smoke else 16, 0, "test")
    notes = [f"Rendering rate measured by the first data stage: {rate:.1f} clips a second."]
    tok = train_tok(session, "tokenizer: maze16", data, session.path("runs/tok"),
                    _loop(smoke, _train_time(session) / 3, batch_size=64, lr=1e-3), preset="tiny" if smoke else "maze16",
                    channels=3, size=64)
    run = train(session, "transformer on the tokenizer's tokens", data, session.path("runs/maze"),
                _loop(smoke, _train_time(session), batch_size=32, lr=3e-4), tokenizer=tok, preset="tiny" if smoke else "base",
                window=8 if smoke else 16, context_prob=0.5, fps=15.0, export_dtype="bf16")
    return session.finish(Path(run), quick_eval(session, run, data=test), notes)


RECIPES: dict[str, Callable[..., dict]] = dict(zip(RECIPE_NAMES, (digits_continue, digits_fast, maze)))  # names: defaults.RECIPES
