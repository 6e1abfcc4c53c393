"""Training recipes: everything ``maskflow train-tokenizer`` and ``maskflow train`` do, as library
functions a Python caller can run too.

- ``train_tokenizer``: build a tokenizer from a preset (or start from one and train its decoder
  only, so its tokens stay the same), read the clips, train, export ``tokenizer.safetensors``;
- ``train_transformer``: derive the transformer's config from the tokenizer (vocabulary, token grid,
  FSQ digits, code patch size), tokenize the clips once, measure the code features if asked, train,
  export ``transformer.safetensors`` and copy the tokenizer beside it (a complete weights folder).

The loop itself is ``training.fit``. Every config is validated by its own constructor
(``TrainConfig``, ``TokenizerConfig``, ``TransformerConfig``); a recipe only renames a config
field in the error to the recipe parameter that set it.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch

from .clips import MAX_FRAMES, load_training_clips
from .errors import ConfigError, InvalidArgumentError
from .model_budget import over_limits
from .model_configs import TRANSFORMER_PRESETS, TokenizerConfig, TransformerConfig
from .lineage import warm_start
from .run_folders import claimed_run_folder, content_hash
from .runtime import resolve_device
from .shards import ShardWindows
from .token_shards import is_token_folder, pretokenize, token_shards
from .tokenizer import PRESETS as TOKENIZER_PRESETS
from .tokenizer import FrameTokenizer
from .training import RECONSTRUCTION_LOSSES, FitResult, TokenizerTask, TrainConfig, TransformerTask, code_centroids, fit
from .transformer import MaskFlowTransformer
from .video_io import FrameFormat
from .weight_headers import inspect_weights
from .weights import load_tokenizer, save_weights

OnLog = Callable[[dict], None] | None
EXPORT_DTYPES = {"fp32": None, "bf16": torch.bfloat16}  # how train stores the transformer (None: as trained, float32)
MIN_MODEL_FPS, MAX_MODEL_FPS = 0.001, 1000  # the frame rates generate can write
TOKENIZER_FILE, TRANSFORMER_FILE = "tokenizer.safetensors", "transformer.safetensors"
# Config fields set by a recipe parameter of another name (the rest come from presets or are fixed).
TOKENIZER_FIELDS = {"height": "size", "width": "size", "channels": "channels"}
TRANSFORMER_FIELDS = {"frames": "window", "attention": "attention", "scheduler": "scheduler", "code_digits": "code_digits",
                      "vocab_size": "tokenizer", "grid_height": "tokenizer", "grid_width": "tokenizer",
                      "time_conditioning": "timestep_independent", "code_features": "code_features", "context_attention": "block_causal"}


@contextmanager
def _fields_named(fields: dict[str, str], fallback: str, value: object) -> Iterator[None]:
    """Re-raise a ConfigError under the recipe parameter that set its field (``fallback``, with its
    ``value``, for fields a preset set)."""
    try:
        yield
    except ConfigError as error:
        if error.name in fields:
            raise InvalidArgumentError(fields[error.name], error.value, error.expected) from None
        raise InvalidArgumentError(fallback, value, f"{error.name} {error.value!r}: {error.expected}") from None


def _preset(presets: dict, name: str) -> dict:
    if name not in presets:
        raise InvalidArgumentError("preset", name, f"choose one of {', '.join(presets)}")
    return presets[name]


def _public_name(source: str) -> str:
    """What weights' metadata records of a data or weights source: its file or folder name only, so
    published weights do not carry a path of the training machine (``hf://`` sources stay whole)."""
    return source if str(source).startswith("hf://") else Path(source).name


def _probability(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise InvalidArgumentError(name, value, "must be in [0, 1]")


def train_tokenizer(data: str, output: str | Path, train: TrainConfig, *, preset: str = "base", size: int = 64,
                    channels: int = 1, decoder_only: str | None = None, loss: str = "l1+mse", device: str = "auto",
                    resume: bool = False, overwrite: bool = False, on_log: OnLog = None, started: float | None = None,
                    init_from: str | None = None) -> FitResult:
    """Train the frame tokenizer (conv autoencoder + FSQ) on ``data`` (a clips file or a folder of
    videos); writes ``output/tokenizer.safetensors``.

    ``decoder_only``: weights holding a tokenizer to start from; only its decoder trains, so its
    encoder and every token stay as they are. ``loss``: the reconstruction loss, one of
    ``training.RECONSTRUCTION_LOSSES`` ("l1+mse", or "mse" for the best PSNR); the weights' metadata
    records it. ``on_log(record)`` gets every logged metrics record. ``started``: the
    ``time.perf_counter()`` at which the run began (default: this call); a time limit counts from it.
    ``init_from``: weights whose tokenizer (of the config ``preset``, ``size`` and ``channels`` build)
    to start from, with a fresh optimizer and warm-up; the new weights record its lineage.

    A folder that holds a run is refused unless ``resume`` continues it (with the same settings,
    run_folders.check_same_run) or ``overwrite`` replaces it; a failed run removes the folders it made."""
    started = time.perf_counter() if started is None else started
    if loss not in RECONSTRUCTION_LOSSES:
        raise InvalidArgumentError("loss", loss, f"choose one of {', '.join(RECONSTRUCTION_LOSSES)}")
    with claimed_run_folder(Path(output), resume=resume, overwrite=overwrite):  # before any data is read
        dev = resolve_device(device)
        torch.manual_seed(train.seed)
        if decoder_only is not None and init_from is not None:
            raise InvalidArgumentError("init_from", init_from, "give it or {param:decoder_only}, not both")
        lineage = {}
        if decoder_only is None:
            with _fields_named(TOKENIZER_FIELDS, "preset", preset):
                config = TokenizerConfig(height=size, width=size, channels=channels, **_preset(TOKENIZER_PRESETS, preset))
            if init_from is None:
                model = FrameTokenizer(config)
            else:
                model, lineage = warm_start(init_from, "tokenizer", config, TOKENIZER_FIELDS, "preset")
        else:
            model = load_tokenizer(decoder_only)
            model.encoder.requires_grad_(False)
            config = model.config
        clips = load_training_clips(data, 1, FrameFormat.of(config))
        task = TokenizerTask(model.to(dev), clips, train.batch_size, dev, reconstruction_loss=loss)
        info = {"dataset": _public_name(data), "frames": len(clips), "loss": loss,
                **({"decoder_only_from": _public_name(decoder_only)} if decoder_only else {}), **lineage}
        settings = {"preset": None if decoder_only else preset, "size": size, "channels": channels, "loss": loss,
                    "decoder_only": f"sha256 {content_hash(model)}" if decoder_only else None}  # the tokenizer it started from
        return fit(task, train, Path(output), TOKENIZER_FILE, info, resume=resume, settings=settings, on_log=on_log, run_started=started)


def train_transformer(data: str, output: str | Path, train: TrainConfig, *, tokenizer: str | None = None,
                      preset: str = "base", window: int = 16, timestep_independent: bool = False, attention: str = "full",
                      scheduler: str = "sigmoid", code_features: bool = False, code_digits: bool = False, block_causal: bool = False,
                      snr_weighting: bool = False, constant_time_prob: float = 0.0, context_prob: float = 0.0,
                      fps: float = 10.0, device: str = "auto", resume: bool = False, overwrite: bool = False, on_log: OnLog = None,
                      started: float | None = None, init_from: str | None = None, export_dtype: str = "fp32",
                      checkpoint_activations: bool = False, workers: int = 2) -> FitResult:
    """Train the MaskFlow transformer with frame-level masking on ``data``, on the tokens of the
    tokenizer in ``tokenizer`` (weights as for ``MaskFlowPipeline.from_weights``; None: the installed
    ones). Writes ``output/transformer.safetensors`` and copies the tokenizer beside it.

    ``window`` is the model's window W (frames per training clip); ``code_features`` and
    ``code_digits`` give the model each code's mean pixel patch and FSQ digits; ``block_causal`` makes
    clean context frames attend to context frames only (``TransformerConfig.context_attention``), so
    sampling can cache their keys and values; ``constant_time_prob``
    and ``context_prob`` are the shares of clips masked with one masking time and given clean context;
    ``started``, ``resume`` and ``overwrite`` as for ``train_tokenizer``; a resumed run must use the
    same tokenizer (by content) and settings. ``init_from``: weights whose transformer (of the config
    these settings build) to start from, with a fresh optimizer and warm-up; its tokenizer is the
    default ``tokenizer``, and the new weights record its lineage. ``export_dtype``: one of
    EXPORT_DTYPES, how the exported transformer's tensors are stored (bf16: half the file).
    ``checkpoint_activations``: recompute each block in the backward pass instead of keeping its
    activations (``MaskFlowTransformer.checkpoint_activations``): less memory, the same result.

    ``data`` may be a folder of token shards (token_shards.write_token_shards, by the same tokenizer):
    training then streams them (shards.py) with ``workers`` DataLoader processes, one shard in
    memory a reader, instead of reading and tokenizing every clip up front."""
    if export_dtype not in EXPORT_DTYPES:
        raise InvalidArgumentError("export_dtype", export_dtype, f"choose one of {', '.join(EXPORT_DTYPES)}")
    started = time.perf_counter() if started is None else started
    _probability("constant_time_prob", constant_time_prob)
    _probability("context_prob", context_prob)
    if not 1 <= window <= MAX_FRAMES:
        raise InvalidArgumentError("window", window, f"must be between 1 and {MAX_FRAMES:,}")
    if not (math.isfinite(fps) and MIN_MODEL_FPS <= fps <= MAX_MODEL_FPS):
        raise InvalidArgumentError("fps", fps, f"must be between {MIN_MODEL_FPS} and {MAX_MODEL_FPS}")
    with claimed_run_folder(Path(output), resume=resume, overwrite=overwrite):  # before the tokenizer and the data are read
        dev = resolve_device(device)
        if tokenizer is None and init_from is not None and "tokenizer" in inspect_weights(init_from):
            tokenizer = init_from
        tok = load_tokenizer(tokenizer).to(dev)
        tok_info = inspect_weights(tokenizer)["tokenizer"].info
        tc = tok.config
        patch_size = (tc.height // tc.token_height) * (tc.width // tc.token_width) * tc.channels
        with _fields_named(TRANSFORMER_FIELDS, "preset", preset):
            config = TransformerConfig(vocab_size=tc.vocab_size, frames=window, grid_height=tc.token_height, grid_width=tc.token_width,
                                       attention=attention, time_conditioning=not timestep_independent, scheduler=scheduler,
                                       code_features=patch_size if code_features else 0,
                                       code_digits=tuple(tc.levels) if code_digits else (),
                                       context_attention="block_causal" if block_causal else "bidirectional", **_preset(TRANSFORMER_PRESETS, preset))
        problem = over_limits(config)  # before the clips are read and the model is built
        if problem is not None:
            raise InvalidArgumentError("window", window, f"{problem}; a shorter window or a smaller preset fits")
        model, lineage = warm_start(init_from, "transformer", config, TRANSFORMER_FIELDS, "preset") if init_from else (None, {})
        streamed = is_token_folder(data)
        if streamed:
            if code_features and model is None:
                raise InvalidArgumentError("code_features", True, "needs the clips' pixels: train on the clips, not on token shards")
            tokens = ShardWindows(token_shards(data, tok, window), window, train.batch_size, train.seed, workers)
            count = tokens.clips
        else:
            clips = load_training_clips(data, window, FrameFormat.of(tc))
            tokens, count = pretokenize(tok, clips, dev), len(clips)  # [N,T,H,W], once
        torch.manual_seed(train.seed)
        if model is None:  # from scratch (a warm start has its code features)
            model = MaskFlowTransformer(config)
            if code_features:
                model.set_code_features(code_centroids(clips, tokens, tc.vocab_size))
        model.checkpoint_activations = checkpoint_activations
        task = TransformerTask(model.to(dev), tokens, train.batch_size, dev,
                               snr_weighting=snr_weighting, constant_time_prob=constant_time_prob, context_prob=context_prob,
                               export_dtype=EXPORT_DTYPES[export_dtype])
        out = Path(output)
        info = {"fps": fps, "dataset": _public_name(data), "clips": count, "window": window, **lineage}
        settings = {"tokenizer": f"sha256 {content_hash(tok)}", "preset": preset, "window": window, "timestep_independent": timestep_independent,
                    "attention": attention, "scheduler": scheduler, "code_features": code_features, "code_digits": code_digits,
                    "block_causal": block_causal, "snr_weighting": snr_weighting, "constant_time_prob": constant_time_prob,
                    "context_prob": context_prob, "fps": fps, "init_from": init_from, "export_dtype": export_dtype,
                    **({"workers": workers} if streamed else {})}  # a streamed run's data order depends on them
        result = fit(task, train, out, TRANSFORMER_FILE, info, resume=resume, settings=settings, on_log=on_log, run_started=started)
        save_weights(out / TOKENIZER_FILE, {"tokenizer": tok.cpu()}, {"tokenizer": tok_info})  # the folder is complete
        return result
