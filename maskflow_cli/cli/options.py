"""Option definitions shared by the commands, written once.

Each is an ``Annotated`` type that carries its ``typer.Option`` (flags, help, help panel); commands
and the option groups (groups.py) declare parameters with them. What the command line calls a
Python parameter is read back from these declarations (``flags_for``), never kept by hand.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..defaults import DEFAULT_GUIDANCE, DEFAULT_TEMPERATURE, FREE_TEMPERATURE, MGM_NOISE
from ..model_configs import PAPER_PRESETS, REFERENCE_GRID, TRANSFORMER_PRESETS, preset_parameters
from ..planner import DEFAULT_CONTEXT_TEXT
from ..weight_sources import DEFAULT_NAME, installed_names

SAMPLING = "Sampling"
OUTPUT = "Output"


def _weights_help() -> str:
    """--weights' help: the shipped sets by name only where their files are installed (a glob, no torch)."""
    names = installed_names()
    by_name = f", or a shipped set by name ({', '.join(names)})" if names else ""
    default = (f"Default: {DEFAULT_NAME}, the weights installed with maskflow." if DEFAULT_NAME in names
               else "No weights are installed with maskflow: give this.")
    return f"Folder with tokenizer and transformer .safetensors files, one .safetensors file, a Hugging Face repo{by_name}. {default}"


Weights = Annotated[
    Optional[str],
    typer.Option("--weights", "-w", metavar="PATH|hf://OWNER/REPO[@REV]", envvar="MASKFLOW_WEIGHTS", help=_weights_help()),
]
Output = Annotated[
    str, typer.Option("--output", "-o", metavar="FILE", rich_help_panel=OUTPUT,
                      help="Output video (.mp4 .mov .m4v .mkv .nut .avi .y4m .webm .gif) or one PNG per frame (frames/%05d.png); '-' writes a y4m stream to stdout (not to a terminal).")
]
Frames = Annotated[int, typer.Option("--frames", "-n", help="Frames to generate.")]
Mode = Annotated[str, typer.Option("--mode", rich_help_panel=SAMPLING, help="full: one window (at most the model's window length); ar: sliding windows, any length.")]
Sampler = Annotated[str, typer.Option("--sampler", rich_help_panel=SAMPLING, help="mgm: MaskGIT-style confidence sampling; fm: discrete flow-matching Euler.")]
Steps = Annotated[int, typer.Option("--steps", rich_help_panel=SAMPLING, help="Sampler steps per window (network calls per window).")]
Context = Annotated[Optional[int], typer.Option("--context", rich_help_panel=SAMPLING, help=f"ar mode: known frames at the start of each window. Default: {DEFAULT_CONTEXT_TEXT}.")]
Stride = Annotated[Optional[int], typer.Option("--stride", rich_help_panel=SAMPLING, help="ar mode: new frames kept from each window. Default: window − context.")]
Seed = Annotated[Optional[int], typer.Option("--seed", rich_help_panel=SAMPLING, help="Random seed; the same seed on the same machine and device gives the same video. Default: a fresh one, reported with --json (eval: 0).")]
Noise = Annotated[Optional[float], typer.Option("--noise", rich_help_panel=SAMPLING, help=f"mgm only: scale of the Gumbel noise added to the confidence scores, annealed to 0 over the steps. Default: {MGM_NOISE:g}.")]
Guidance = Annotated[float, typer.Option("--guidance", rich_help_panel=SAMPLING, help=f"Classifier-free guidance on the context: a step's logits are pushed away from the model's prediction without the window's context frames, cond + w·(cond − uncond), with w this value at a window's first step, falling to 0 by its middle step (at 4 steps: W, W/2, 0, 0). 0: none. Default {DEFAULT_GUIDANCE:g} (with --temperature {DEFAULT_TEMPERATURE:g}); each guided step costs one more, shorter network pass, except a window's first step after the first window (its uncond logits are the same every time and kept).")]
Anchor = Annotated[float, typer.Option("--guidance-anchor", metavar="GAIN", rich_help_panel=SAMPLING, help="Hold a long video's intensity at its first frames': after each window, scale --guidance per video by 1 + GAIN × the relative drop of the new frames' mean intensity below those frames' (more where it fades, less where it over-draws; between 0 and 2×). 0: w as it is. Decodes each token once, alone, the first time a run meets it.")]
Temperature = Annotated[Optional[float], typer.Option("--temperature", rich_help_panel=SAMPLING, help=f"Divide the predicted logits by this before drawing tokens: below 1 sharper, above 1 more varied. Default: {DEFAULT_TEMPERATURE:g} when continuing or completing a video (extend, infill), {FREE_TEMPERATURE:g} when generating from nothing (generate).")]
Fps = Annotated[Optional[float], typer.Option("--fps", rich_help_panel=OUTPUT, help="Output frame rate. Default: the input's (extend, infill) or the model's (generate).")]
OutputSize = Annotated[str, typer.Option("--size", metavar="input|model|WxH", rich_help_panel=OUTPUT, help="Output frame size: input (the input's size and colour; its frames pass through unchanged and the model's frames are mapped back onto the part of the frame the model sees, black around it), model (the model's frames as they are), or WxH such as 640x360. Default: input (extend, infill), model (generate).")]
NoAudio = Annotated[bool, typer.Option("--no-audio", rich_help_panel=OUTPUT, help="Leave the input's audio out (by default it is copied into the output, unchanged where the container takes its codec).")]
ModelFrameRate = Annotated[Optional[float], typer.Option("--model-fps", rich_help_panel=SAMPLING, help="Show the model every n-th input frame, n = input fps / this rounded (e.g. the weights' own rate); the output keeps the input's rate, each new model frame held for n frames. Default: every frame.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
Precision = Annotated[str, typer.Option("--precision", help="auto (what runs fast: bf16 on CPUs with AVX512-BF16 or AMX, fp32 on other CPUs; on CUDA fp32 with TF32 matmuls for models under 100M parameters, else bf16), bf16, fp32, or int8 (a CPU only: int8 linear layers, never picked by auto). The weights are converted once when they load.")]
TrainPrecision = Annotated[str, typer.Option("--precision", help="auto (bf16 autocast where the device runs it fast; on CUDA fp32 with TF32 matmuls for models under 100M parameters), bf16 or fp32.")]
ContextCache = Annotated[str, typer.Option("--context-cache", rich_help_panel=SAMPLING, help="When a window's context keys and values are computed once and reused by its later steps: exact (block-causal models, where reuse changes nothing), frozen (every model; for a bidirectional one an approximation, about 0.6x the time at 8 steps) or off.")]
CompileNetwork = Annotated[bool, typer.Option("--compile", help="Run the network through torch.compile: on CUDA as CUDA graphs, worth it for long videos; on a CPU it compiles for minutes and gains little.")]
Json = Annotated[bool, typer.Option("--json", rich_help_panel=OUTPUT, help="Print one JSON summary to stdout (no progress, no logs).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", rich_help_panel=OUTPUT, help="No progress and no logs.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", rich_help_panel=OUTPUT, help="Replace the output file if it exists.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the window plan as JSON and exit without sampling.")]
Input = Annotated[str, typer.Argument(metavar="INPUT", help="Input video or still image (PNG/JPEG); '-' reads a stream from stdin.", show_default=False)]
Ranges = Annotated[list[str], typer.Argument(metavar="RANGES...", help="Frame ranges to regenerate: 0-based, end-exclusive (10:20 is frames 10..19); negative numbers count from the end (-5: is the last five frames); 1.5s:3s is in seconds.", show_default=False)]
TokensInput = Annotated[str, typer.Argument(metavar="TOKENS", help="A tokens file written by 'maskflow encode'.", show_default=False)]

# ---- training ------------------------------------------------------------------------------------
TRAINING = "Training"
Data = Annotated[str, typer.Argument(metavar="DATA", help="A clips file from 'maskflow data moving-mnist', a folder of clips shards, a folder of videos, or (train) a folder of token shards from 'maskflow tokenize', streamed.", show_default=False)]
OutDir = Annotated[str, typer.Option("--output", "-o", metavar="DIR", help="Folder for the weights, checkpoint and metrics.jsonl.")]
TrainSteps = Annotated[int, typer.Option("--steps", rich_help_panel=TRAINING, help="Optimizer steps.")]
TimeLimit = Annotated[Optional[str], typer.Option("--time-limit", metavar="DURATION", rich_help_panel=TRAINING, help="Train for this long (90s, 8m, 2h): warm-up and cosine decay follow the share of the time spent, so the learning rate reaches its end when the time runs out; then checkpoint and export. With --steps, whichever ends first; --warmup keeps its share of --steps.")]
InitFrom = Annotated[Optional[str], typer.Option("--init-from", metavar="WEIGHTS", rich_help_panel=TRAINING, help="Start from the weights in WEIGHTS (a folder, a .safetensors file, hf://owner/repo or a shipped name such as digits), with a fresh optimizer and warm-up; the model settings must match them (a differing one is refused, exit 4). train also takes their tokenizer unless --tokenizer is given. The new weights record the lineage.")]
BatchSize = Annotated[int, typer.Option("--batch-size", rich_help_panel=TRAINING, help="Batch size per process.")]
Lr = Annotated[float, typer.Option("--lr", rich_help_panel=TRAINING, help="Peak learning rate (AdamW).")]
Warmup = Annotated[int, typer.Option("--warmup", rich_help_panel=TRAINING, help="Linear warm-up steps, then cosine decay to lr/10.")]
Ema = Annotated[float, typer.Option("--ema", rich_help_panel=TRAINING, help="EMA decay of the exported weights (0: no EMA).")]
GradClip = Annotated[float, typer.Option("--grad-clip", rich_help_panel=TRAINING, help="Clip the gradient norm to this.")]
TrainSeed = Annotated[int, typer.Option("--seed", rich_help_panel=TRAINING, help="Seed for initialisation, data order and masking.")]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", rich_help_panel=TRAINING, help="Write a checkpoint every N steps.")]
LogEvery = Annotated[int, typer.Option("--log-every", rich_help_panel=TRAINING, help="Log metrics every N steps.")]
Resume = Annotated[bool, typer.Option("--resume", rich_help_panel=TRAINING, help="Continue from the checkpoint in --output; with --steps at its step, export it without training.")]
TrainOverwrite = Annotated[bool, typer.Option("--overwrite", rich_help_panel=TRAINING, help="Replace the training run in --output (its checkpoint, metrics and weights); without it (or --resume) a folder holding a run is refused.")]
Compile = Annotated[bool, typer.Option("--compile", rich_help_panel=TRAINING, help="Use torch.compile.")]
LoaderWorkers = Annotated[int, typer.Option("--workers", rich_help_panel=TRAINING, help="When DATA is a folder of token shards: DataLoader worker processes that read them (0: the training process reads); each rank's workers read shards of their own.")]
ShardsOutDir = Annotated[str, typer.Option("--output", "-o", metavar="DIR", help="Folder for the token shards (created if missing).")]
ShardClips = Annotated[int, typer.Option("--shard-clips", help="Clips per token shard.")]
ClipFrames = Annotated[Optional[int], typer.Option("--frames", "-n", help="Frames per clip when DATA holds videos (clips files keep their sequences whole).")]
DecoderOnly = Annotated[Optional[str], typer.Option("--decoder-only", metavar="PATH", rich_help_panel=TRAINING, help="Fine-tune only the decoder of this tokenizer (weights as for --weights); its tokens stay the same.")]
ReconstructionLoss = Annotated[str, typer.Option("--loss", rich_help_panel=TRAINING, help="Reconstruction loss: l1+mse (crisper edges) or mse (the best PSNR, e.g. to fine-tune a decoder with --decoder-only).")]
TokenizerSource = Annotated[Optional[str], typer.Option("--tokenizer", "-t", metavar="PATH|hf://OWNER/REPO[@REV]", help="Weights holding the tokenizer to train on (as for --weights). Default: the installed weights.")]
MODEL = "Model"
TokenizerPreset = Annotated[str, typer.Option("--preset", rich_help_panel=MODEL, help="Tokenizer size: tiny (tests) or base (64x64 -> 8x8 tokens, vocabulary 1000).")]


def _transformer_presets_help() -> str:
    """--preset's help: every transformer preset's shape and parameter count (from the formula, no torch)."""
    grid = f"{REFERENCE_GRID['grid_height']}x{REFERENCE_GRID['grid_width']}"
    sizes = "; ".join(f"{name} {preset_parameters(name) / 1e6:.1f}M (depth {p['depth']}, width {p['dim']}, {p['heads']} heads)"
                      for name, p in TRANSFORMER_PRESETS.items())
    return (f"Transformer size. {', '.join(PAPER_PRESETS)}: the paper's (Latte) S, B, L, XL; tiny is for tests. Parameters with {grid} "
            f"tokens a frame, vocabulary {REFERENCE_GRID['vocab_size']} and a {REFERENCE_GRID['frames']}-frame window: {sizes}.")


TransformerPreset = Annotated[str, typer.Option("--preset", rich_help_panel=MODEL, help=_transformer_presets_help())]
CheckpointActivations = Annotated[bool, typer.Option("--checkpoint-activations", rich_help_panel=TRAINING, help="Recompute each transformer block in the backward pass instead of keeping its activations: far less memory (for the large presets), about a third more compute a step, the same result.")]
FrameSize = Annotated[int, typer.Option("--size", rich_help_panel=MODEL, help="Frame height and width in pixels.")]
Channels = Annotated[int, typer.Option("--channels", rich_help_panel=MODEL, help="1 (gray) or 3 (RGB).")]
Window = Annotated[int, typer.Option("--window", rich_help_panel=MODEL, help="Frames per training window: the model's window W.")]
TimestepIndependent = Annotated[bool, typer.Option("--timestep-independent", rich_help_panel=MODEL, help="Train without timestep conditioning.")]
Attention = Annotated[str, typer.Option("--attention", rich_help_panel=MODEL, help="full (all space-time tokens) or factorized (alternating space and time blocks).")]
Scheduler = Annotated[str, typer.Option("--scheduler", rich_help_panel=MODEL, help="Masking scheduler κ(t): sigmoid, linear or cosine.")]
SnrWeighting = Annotated[bool, typer.Option("--snr-weighting", rich_help_panel=TRAINING, help="Weight frames by a clipped, temporally fused SNR.")]
ConstantTimeProb = Annotated[float, typer.Option("--constant-time-prob", "--constant-level-prob", rich_help_panel=TRAINING, help="Share of clips masked with one masking time for all frames (--constant-level-prob: the older name).")]
ContextProb = Annotated[float, typer.Option("--context-prob", rich_help_panel=TRAINING, help="Share of clips given clean context frames (a prefix, sometimes also a suffix) and one level for the rest.")]
CodeFeatures = Annotated[bool, typer.Option("--code-features", rich_help_panel=MODEL, help="Give the transformer each code's mean pixel patch, so codes that look alike start alike.")]
BlockCausal = Annotated[bool, typer.Option("--block-causal", rich_help_panel=MODEL, help="Clean context frames attend to context frames only, so sampling computes their keys and values once per window (exactly the same result, about half the work per step with half a window of context). Train it with --context-prob, which makes such frames.")]
CodeDigits = Annotated[bool, typer.Option("--code-digits", rich_help_panel=MODEL, help="Also embed and predict each code's FSQ digits, one small categorical per tokenizer channel, so a near miss still earns credit.")]
ExportDtype = Annotated[str, typer.Option("--export-dtype", rich_help_panel=OUTPUT, help="How the exported transformer is stored: fp32, or bf16 (half the file; loading casts it back to fp32, and the weights' metadata says storage bfloat16).")]
ModelFps = Annotated[float, typer.Option("--fps", rich_help_panel=MODEL, help="Frame rate stored with the weights (generate's default).")]


# ---- parameter names -> what the command line calls them -----------------------------------------


def _spelling(param) -> str:
    """How the command line writes a Click parameter: its first long flag, or an argument's name."""
    if param.param_type_name == "argument":
        return (param.metavar or param.name.upper()).removesuffix("...")
    return next((o for o in param.opts if o.startswith("--")), param.opts[0])


def flags_for(app: typer.Typer, argv: list[str]) -> dict[str, str]:
    """The parameter -> flag table for the command ``argv`` runs: its own parameters, then (for a
    name it lacks) any command's. The library's errors name Python parameters; the error boundary
    (main.py) spells them with this table."""
    root = typer.main.get_command(app)
    every: dict[str, str] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        for param in node.params:
            every.setdefault(param.name, _spelling(param))
        stack += list(getattr(node, "commands", {}).values())
    node = root
    for word in (w for w in argv if not w.startswith("-")):
        if word not in getattr(node, "commands", {}):
            break
        node = node.commands[word]
    return every | {param.name: _spelling(param) for param in node.params}
