"""Training loops for the tokenizer and the transformer, sharing one ``fit`` loop.

- tokenizer: per-frame reconstruction through the FSQ bottleneck, by L1 + MSE (the default) or MSE
  alone (``RECONSTRUCTION_LOSSES``); reports PSNR.
- transformer: the frame-level masking objective (objective.py) on tokens made once up front by
  the tokenizer (token_shards.pretokenize), so no step runs the tokenizer; in memory, or streamed
  from token shards (shards.py).

The loop: AdamW, linear warm-up then cosine decay, EMA of the weights, bf16 autocast, gradient
clipping, one seeded generator for data order and masking, checkpoints written atomically every N
steps with optimizer, EMA and RNG state (``resume`` continues a killed run exactly), a JSON-lines
metrics log, and DistributedDataParallel when started by ``torchrun`` (gloo on CPU, nccl on CUDA).
The exported weights are the EMA weights, with the config and training facts in their metadata.

Axis legend: B batch, T frames, Y, X pixels, C channels, H, W token grid.
"""

from __future__ import annotations

import copy
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Protocol

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .budget import charge_setup, learning_rate, schedule_position, shared_elapsed
from .errors import InvalidArgumentError, WeightsError
from .lineage import lineage_totals
from .objective import masking_loss
from .run_folders import CHECKPOINT, METRICS, append_metrics, check_same_run, make_output_dir, run_identity, write_checkpoint
from .runtime import model_scheduler, parameter_count, precision_dtype
from .tokenizer import FrameTokenizer
from .transformer import MaskFlowTransformer
from .weights import save_weights

if TYPE_CHECKING:
    from .shards import ShardWindows

# The tokenizer's reconstruction losses. L1 pulls each pixel toward the median of what the tokens
# leave open, MSE toward the mean: "mse" maximises PSNR (an MSE metric); "l1+mse" gives crisper edges.
RECONSTRUCTION_LOSSES = ("l1+mse", "mse")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 10_000
    batch_size: int = 32
    lr: float = 3e-4
    warmup: int = 500
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    weight_decay: float = 0.01
    ema: float = 0.999  # 0 disables the EMA (the raw weights are exported)
    grad_clip: float = 1.0
    precision: str = "auto"  # auto | bf16 | fp32
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    compile: bool = False
    time_limit: float | None = None  # seconds of training; with steps, whichever ends first (budget.py)

    def __post_init__(self) -> None:
        checks = [
            ("steps", self.steps, self.steps >= 1, "must be at least 1"),
            ("batch_size", self.batch_size, self.batch_size >= 1, "must be at least 1"),
            ("lr", self.lr, math.isfinite(self.lr) and self.lr > 0, "must be a positive finite number"),
            ("warmup", self.warmup, self.warmup >= 0, "must not be negative"),
            ("ema", self.ema, 0 <= self.ema < 1, "must be in [0, 1)"),
            ("grad_clip", self.grad_clip, math.isfinite(self.grad_clip) and self.grad_clip > 0, "must be a positive finite number"),
            ("min_lr_ratio", self.min_lr_ratio, 0 <= self.min_lr_ratio <= 1, "must be in [0, 1]"),
            ("weight_decay", self.weight_decay, math.isfinite(self.weight_decay) and self.weight_decay >= 0, "must be a finite number >= 0"),
            ("checkpoint_every", self.checkpoint_every, self.checkpoint_every >= 1, "must be at least 1"),
            ("log_every", self.log_every, self.log_every >= 1, "must be at least 1"),
            ("time_limit", self.time_limit, self.time_limit is None or 0 < self.time_limit < math.inf, "must be a positive number of seconds"),
        ]
        for name, value, ok, expected in checks:
            if not ok:
                raise InvalidArgumentError(name, value, expected)


class Task(Protocol):
    """What ``fit`` trains: a module, and the loss of one batch drawn with ``generator``."""

    model: nn.Module

    def loss(self, model: nn.Module, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]: ...

    def start(self, step: int) -> None: ...

    def export(self, module: nn.Module, path: Path, info: dict) -> None: ...


class TokenizerTask:
    """Reconstruct random frames of the clips in [-1, 1] pixel space; ``reconstruction_loss`` is one
    of RECONSTRUCTION_LOSSES."""

    def __init__(self, model: FrameTokenizer, clips: Tensor, batch_size: int, device: torch.device,
                 *, reconstruction_loss: str = "l1+mse") -> None:
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise InvalidArgumentError("reconstruction_loss", reconstruction_loss, f"choose one of {', '.join(RECONSTRUCTION_LOSSES)}")
        self.model, self.device, self.batch_size = model, device, batch_size
        self.reconstruction_loss = reconstruction_loss
        self.frames = rearrange(clips, "n t y x c -> (n t) y x c")  # [N*T,Y,X,C] uint8

    def start(self, step: int) -> None:
        """Nothing to position: the frames are in memory and drawn with the training generator."""

    def loss(self, model: nn.Module, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        index = torch.randint(len(self.frames), (self.batch_size,), generator=generator)
        x = rearrange(self.frames[index], "b y x c -> b c y x").to(self.device).float() / 127.5 - 1
        recon = model(x)  # the wrapped reconstruct pass (see _wrap)
        mse = F.mse_loss(recon.float(), x)
        loss = mse if self.reconstruction_loss == "mse" else F.l1_loss(recon.float(), x) + mse
        psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))  # peak-to-peak 2 in [-1, 1]
        return loss, {"mse": mse.item(), "psnr": psnr}

    def export(self, module: nn.Module, path: Path, info: dict) -> None:
        save_weights(path, {"tokenizer": module}, {"tokenizer": info})


class _Reconstructor(nn.Module):
    """Makes ``FrameTokenizer.reconstruct`` the forward pass, so DDP can wrap it."""

    def __init__(self, tokenizer: FrameTokenizer) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, x: Tensor) -> Tensor:
        return self.tokenizer.reconstruct(x)


class TransformerTask:
    """The frame-level masking objective on random windows of pre-computed tokens: int [N,T,H,W] in
    memory (drawn with the training generator) or streamed from token shards (shards.ShardWindows)."""

    def __init__(self, model: MaskFlowTransformer, tokens: Tensor | ShardWindows, batch_size: int, device: torch.device,
                 *, snr_weighting: bool = False, constant_time_prob: float = 0.0, context_prob: float = 0.0,
                 export_dtype: torch.dtype | None = None) -> None:
        self.model, self.tokens, self.batch_size, self.device = model, tokens, batch_size, device
        self.export_dtype = export_dtype  # e.g. torch.bfloat16: half the file (loading casts back to float32)
        self.snr_weighting, self.constant_time_prob, self.context_prob = snr_weighting, constant_time_prob, context_prob
        self.window_length = model.config.frames  # W
        assert not isinstance(tokens, Tensor) or tokens.shape[1] >= self.window_length, "clips shorter than the window"

    def start(self, step: int) -> None:
        """Position a streamed source after ``step`` steps (tokens in memory: the generator's state does)."""
        if not isinstance(self.tokens, Tensor):
            self.tokens.start(step)

    def _windows(self, generator: torch.Generator) -> Tensor:
        """A batch of clean windows int [B,T,H,W]."""
        if not isinstance(self.tokens, Tensor):
            return self.tokens.draw(generator)
        n, t = self.tokens.shape[:2]
        index = torch.randint(n, (self.batch_size,), generator=generator)
        start = torch.randint(t - self.window_length + 1, (self.batch_size,), generator=generator)
        offsets = start[:, None] + torch.arange(self.window_length)  # [B,T]
        return self.tokens[index[:, None], offsets]

    def loss(self, model: nn.Module, generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        clean = self._windows(generator).long().to(self.device)  # [B,T,H,W]
        cfg = self.model.config
        out = masking_loss(model, clean, model_scheduler(cfg), cfg.mask_id, generator,
                           snr_weighting=self.snr_weighting, constant_time_prob=self.constant_time_prob,
                           context_prob=self.context_prob)
        return out.loss, {"accuracy": out.accuracy.item(), "masked": out.masked_fraction.item()}

    def export(self, module: nn.Module, path: Path, info: dict) -> None:
        if self.export_dtype is not None:
            info = {**info, "storage": str(self.export_dtype).removeprefix("torch.")}
        save_weights(path, {"transformer": module}, {"transformer": info}, dtype=self.export_dtype)


def code_centroids(clips: Tensor, tokens: Tensor, vocab_size: int, chunk: int = 4096) -> Tensor:
    """The mean pixel patch of every code: uint8 clips [N,T,Y,X,C] and their tokens [N,T,H,W] ->
    float [V, (Y/H)·(X/W)·C] in [0, 1]; a code that never occurs gets zeros. These are the
    transformer's code features (``TransformerConfig.code_features``)."""
    n, t, y, x, c = clips.shape
    h, w = tokens.shape[2:]
    frames = rearrange(clips, "n t y x c -> (n t) y x c")
    codes = rearrange(tokens, "n t h w -> (n t) (h w)")
    size = (y // h) * (x // w) * c
    sums, counts = torch.zeros(vocab_size, size, dtype=torch.float64), torch.zeros(vocab_size, dtype=torch.float64)
    for i in range(0, len(frames), chunk):
        patches = rearrange(frames[i : i + chunk], "f (h py) (w px) c -> (f h w) (py px c)", h=h, w=w).double() / 255
        index = codes[i : i + chunk].reshape(-1).long()  # [F*H*W]
        sums.index_add_(0, index, patches)
        counts.index_add_(0, index, torch.ones_like(index, dtype=torch.float64))
    return (sums / counts.clamp(min=1)[:, None]).float()


# ---- the loop ------------------------------------------------------------------------------------


@dataclass
class FitResult:
    steps: int
    final_loss: float
    wall_seconds: float
    metrics: dict


class EMA:
    """Exponential moving average of a module's floating-point state.

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so a short run's average
    is not dominated by the random initial weights (0.999**2000 would still give them 14 %)."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """The decay used by the update that follows ``step`` earlier updates."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        weight = 1 - self.decay_at(step)
        for avg, live in zip(self.shadow.state_dict().values(), module.state_dict().values()):
            if avg.is_floating_point():
                avg.lerp_(live.detach(), weight)
            else:
                avg.copy_(live)


def fit(
    task: Task,
    cfg: TrainConfig,
    out_dir: Path,
    export_name: str,
    info: dict,
    *,
    resume: bool = False,
    settings: Mapping[str, object] | None = None,
    on_log: Callable[[dict], None] | None = None,
    run_started: float | None = None,
) -> FitResult:
    """Train ``task.model`` until its budget (``cfg.steps``, ``cfg.time_limit``: budget.py) is spent;
    checkpoint and export ``out_dir / export_name`` (rank 0) at the end. ``run_started``: the
    ``time.perf_counter()`` at which the run began (default: this call); a time limit counts from it,
    so what came before the loop (reading and tokenizing data) is spent from the budget.

    The checkpoint records the run's identity: ``settings`` (what the caller's parameters set that
    the configs do not show, e.g. the tokenizer's content hash) and the training and model configs;
    ``resume`` refuses a checkpoint whose run differs in any of them (run_folders.check_same_run)."""
    run_started = time.perf_counter() if run_started is None else run_started
    rank, world = _distributed_rank()
    device = next(task.model.parameters()).device
    make_output_dir(out_dir)
    torch.manual_seed(cfg.seed)
    model = task.model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]  # e.g. a tokenizer's decoder alone
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    generator = torch.Generator().manual_seed(cfg.seed * 1000 + rank)  # data order and masking
    start_step, wall_before, loss_value = 0, 0.0, float("nan")
    checkpoint = out_dir / CHECKPOINT
    identity = run_identity(cfg, task.model.config, settings or {})
    if resume and checkpoint.exists():
        start_step, wall_before, loss_value = _load_checkpoint(checkpoint, identity, model, optimizer, ema, generator, rank)
        if start_step > cfg.steps:
            raise InvalidArgumentError("steps", cfg.steps, f"the checkpoint in {out_dir} is at step {start_step}: pass "
                                       f"{{param:steps={start_step}}} to export it as it is, or more to train on")
    trained = _wrap(model, cfg, device, world)
    task.start(start_step)  # a streamed data source continues where the checkpoint's step left it
    dtype = precision_dtype(device, cfg.precision, parameter_count(model))
    budget = cfg.time_limit
    if budget is not None:  # every rank charges the slowest one's setup, so their schedules stay the same
        cfg = charge_setup(cfg, shared_elapsed(time.perf_counter() - run_started, world, device))
    started, recent_losses, metrics = time.perf_counter(), [], {}  # losses since the last log record
    step, elapsed = start_step, wall_before  # elapsed: training seconds so far, the same on every rank
    while schedule_position(step, cfg, elapsed) < 1:
        lr = learning_rate(step, cfg, elapsed)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss, metrics = task.loss(trained, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.update(model, step)
        loss_value = loss.item()
        recent_losses.append(loss_value)
        step += 1
        elapsed = wall_before + time.perf_counter() - started
        if cfg.time_limit is not None:
            elapsed = shared_elapsed(elapsed, world, device)
        position = schedule_position(step, cfg, elapsed)
        if step % cfg.log_every == 0 or position >= 1:
            record = {"step": step, "loss": sum(recent_losses) / len(recent_losses), "lr": lr,
                      "grad_norm": float(grad_norm), **metrics,
                      "steps_per_second": (step - start_step) / max(elapsed - wall_before, 1e-9), "wall_seconds": elapsed,
                      "progress": round(min(position, 1.0), 4)}
            recent_losses = []
            if rank == 0:
                append_metrics(out_dir / METRICS, record)
                if on_log is not None:
                    on_log(record)
        if rank == 0 and (step % cfg.checkpoint_every == 0 or position >= 1):
            _save_checkpoint(checkpoint, step, model, optimizer, ema, generator, wall_before + time.perf_counter() - started,
                             loss_value, cfg, identity)
    wall = wall_before + time.perf_counter() - started
    if rank == 0:
        facts = {**info, "steps": step, "batch_size": cfg.batch_size * world, "clips_seen": step * cfg.batch_size * world, "lr": cfg.lr, "ema": cfg.ema,
                 "seed": cfg.seed, "precision": str(dtype or torch.float32).removeprefix("torch."),
                 "hardware": _hardware(device, world), "wall_seconds": round(wall, 1),
                 "final_loss": None if math.isnan(loss_value) else round(loss_value, 5),
                 **({"time_limit": budget} if budget is not None else {})}
        facts |= lineage_totals(facts)  # a warm start's (recipes.py)
        task.export((ema.shadow if ema is not None else model).eval(), out_dir / export_name, facts)
    if world > 1:
        dist.barrier()
    return FitResult(step, loss_value, wall, metrics)


def _wrap(model: nn.Module, cfg: TrainConfig, device: torch.device, world: int) -> nn.Module:
    forward_module = _Reconstructor(model) if isinstance(model, FrameTokenizer) else model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        forward_module = DistributedDataParallel(forward_module, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        forward_module = torch.compile(forward_module)
    return forward_module


def _distributed_rank() -> tuple[int, int]:
    """(rank, world size); joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    return f"{world} x {name}" if world > 1 else name


def _save_checkpoint(path: Path, step: int, model, optimizer, ema, generator, wall: float, loss: float, cfg: TrainConfig,
                     identity: dict) -> None:
    state = {
        "step": step, "wall_seconds": wall, "loss": loss, "config": asdict(cfg), "run": identity,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "ema": ema.shadow.state_dict() if ema is not None else None,
        "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
    }
    write_checkpoint(path, state)


_RESUME_FIX = "delete it (or pick another output folder) to train from the start"


def _load_checkpoint(path: Path, identity: dict, model, optimizer, ema, generator, rank: int) -> tuple[int, float, float]:
    """Restore the training state in place; -> (step, wall seconds so far, loss of the last step; NaN in
    checkpoints written before the loss was kept). WeightsError, one line, for a checkpoint that
    cannot be read (empty, truncated, corrupt, a pickle with code in it) or that belongs to
    another model or settings (named: run_folders.check_same_run)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # no arbitrary pickle
    except Exception as error:  # torch raises many kinds: EOFError, RuntimeError, UnpicklingError, ...
        raise WeightsError(str(path), f"is not a readable training checkpoint ({type(error).__name__}); {_RESUME_FIX}") from None
    check_same_run(path, state.get("run") if isinstance(state, dict) else None, identity)
    try:
        return _restore(state, model, optimizer, ema, generator, rank)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError, OverflowError) as error:
        raise WeightsError(str(path), f"does not fit this model and settings ({type(error).__name__}); {_RESUME_FIX}") from None


def _restore(state, model, optimizer, ema, generator, rank: int) -> tuple[int, float, float]:
    step, wall, loss = int(state["step"]), float(state["wall_seconds"]), float(state.get("loss", float("nan")))
    if step < 0 or not math.isfinite(wall):
        raise ValueError("step or time out of range")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if ema is not None and state["ema"] is not None:
        ema.shadow.load_state_dict(state["ema"])
    if rank == 0:
        generator.set_state(state["generator"])
    else:  # other ranks continue their own stream, offset deterministically from rank 0's position
        generator.manual_seed(int(state["step"]) * 7919 + rank)
    torch.set_rng_state(state["torch_rng"])
    return step, wall, loss
