"""Write the README's "Results" section and the model card's facts from the measured JSON.

No figure in those sections is typed by hand: this script renders every table from the JSON the
benchmark scripts and `maskflow eval --json` wrote (with the machine and the command that made it)
and, for weights/README.md, from the training facts stored in the shipped weights' metadata.

    python benchmarks/readme_results.py          # rewrite both sections
    python benchmarks/readme_results.py --check  # exit 1 if either file is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"
CARD_START, CARD_END = "<!-- card:start -->", "<!-- card:end -->"
FACTS = ("parameters", "dataset", "frames", "clips", "window", "steps", "batch_size", "lr", "ema", "seed", "precision",
         "hardware", "wall_seconds", "final_loss", "decoder_only_from", "loss", "reconstruction_psnr", "storage")

COMMANDS = {
    "eval": ("for s in tokenizer continuation horizon infill; do OMP_NUM_THREADS=1 maskflow eval --suite $s --json > eval_$s.json; done; "
             "python benchmarks/merge_eval.py eval_*.json --label weights/ --out benchmarks/results/eval.json"),
    "long_horizon": "OMP_NUM_THREADS=1 python benchmarks/long_horizon.py --weights weights --frames 1600 --sequences 1 --out benchmarks/results/long_horizon.json",
    "eval_h100": "maskflow eval -w runs/C --suite continuation --suite infill --device cuda --json > eval_h100.json  # on one H100",
    "window_speed": ("OMP_NUM_THREADS=1 python benchmarks/window_speed.py --weights weights --presets base --steps 8 --repeats 1 "
                     "--out benchmarks/results/window_speed.json"),
    "length_scaling": "python benchmarks/length_scaling.py --out benchmarks/results/length_scaling.json",
    "samplers": "OMP_NUM_THREADS=1 python benchmarks/samplers.py --sequences 8 --batch 8 --out benchmarks/results/samplers.json",
    "timestep_feeding": "OMP_NUM_THREADS=1 python benchmarks/timestep_feeding.py --sequences 8 --batch 8 --out benchmarks/results/timestep_feeding.json",
    "sampler_tuning": ("OMP_NUM_THREADS=1 python benchmarks/sampler_tuning.py --weights weights --sequences 32 --batch 16 --out benchmarks/results/sampler_tuning.json "
                       "(stopped after 10 of its 16 points)"),
    "sampler_tuning_8_steps": ("git show 54d5a04:benchmarks/sampler_tuning.py > /tmp/tuning_8.py; OMP_NUM_THREADS=1 PYTHONPATH=benchmarks:. python "
                               "/tmp/tuning_8.py --weights weights --sequences 32 --batch 16 --out benchmarks/results/sampler_tuning_8_steps.json "
                               "(stopped after 4 points)"),
    "next_frame_knowledge": "OMP_NUM_THREADS=1 python benchmarks/next_frame_knowledge.py --sequences 32 --out benchmarks/results/next_frame_knowledge.json",
    "frame_cost": "python benchmarks/frame_cost.py --weights weights --out benchmarks/results/frame_cost.json",
    "generate_speedup": ('W=$PWD/weights; OMP_NUM_THREADS=1 python benchmarks/compare.py --variant "before=709f1d4 -w $W" '
                         '--variant "now=HEAD -w $W" --variant "now_frozen=HEAD -w $W --context-cache frozen" --rounds 1 '
                         '--out benchmarks/results/generate_speedup.json -- generate --frames 160 --seed 0 -o {out}.mkv'),
    "context_cache": ("OMP_NUM_THREADS=1 python benchmarks/context_cache.py --weights weights --sequences 32 --batch 8 --steps 8 "
                      "--out benchmarks/results/context_cache.json"),
    "levers": "OMP_NUM_THREADS=1 python benchmarks/levers.py --weights weights --out benchmarks/results/levers.json",
    "infill_plans": ("OMP_NUM_THREADS=1 python benchmarks/infill_plans.py --weights weights --sequences 8 --batch 8 --steps 8 --gaps 8 "
                     "--out benchmarks/results/infill_plans.json"),
    "maze_data_speed": "OMP_NUM_THREADS=1 python benchmarks/maze_data_speed.py --out benchmarks/results/maze_data_speed.json",
    "maze_tokenizer": ("OMP_NUM_THREADS=1 python benchmarks/maze_tokenizer.py --train maze_train/ --test maze_test.safetensors "
                       "--runs runs/maze_tok --out benchmarks/results/maze_tokenizer.json (see weights/maze/README.md)"),
    "maze_eval": ("OMP_NUM_THREADS=1 maskflow eval -w runs/maze_smoke --data maze_test160.safetensors --quick --json "
                  "> benchmarks/results/maze_eval.json (see weights/maze/README.md)"),
}


def _machine(m: dict) -> str:
    """The machine a result was measured on; results since the speed work also name the CPU's flags,
    PyTorch's CPU capability and the fp32 matmul peak measured beside them."""
    if "flags" not in m:
        return f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}"
    peak = m["matmul_peak_gflops"]["float32"]
    return (f"{m['cpu']} (flags: {', '.join(m['flags']) or 'none of note'}; PyTorch CPU capability {m['capability']}), "
            f"{m['threads']} threads, torch {m['torch']}, fp32 matmul peak {peak:.0f} GFLOP/s measured beside "
            "(far below the CPU's when other processes share it: then read the ratios)")


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _scores(section: dict, names: tuple[str, ...]) -> list[str]:
    rows = [[n, f"{section[n]['mse']['mean']:.1f} ± {section[n]['mse']['ci95']:.1f}", f"{section[n]['psnr']['mean']:.2f}", f"{section[n]['ssim']['mean']:.3f}"] for n in names]
    return _table(["method", "MSE/frame", "PSNR (dB)", "SSIM"], rows)


def _tag(s: dict) -> str:
    return f"{s['sampler']}, {s['steps']} steps, {s['mode']} (context {s['context']}, stride {s['stride']}), seed {s['seed']}, NFE {s['nfe_per_sequence']} per sequence"


def render_eval(r: dict) -> list[str]:
    measured = [s for s in ("tokenizer", "continuation", "horizon", "infill") if s in r]
    missing = [s for s in ("tokenizer", "continuation", "horizon", "infill") if s not in r]
    out = [f"### Quality (`{COMMANDS['eval']}`)", "",
           (f"Weights: {r['weights']}; data: {r['data']}; device {r['device']}; {r['seconds']:.0f} s in all. Suites measured: "
            f"{', '.join(measured)}" + (f"; not measured here yet: {', '.join(missing)}." if missing else ".")), ""]
    if "tokenizer" in r:
        t = r["tokenizer"]
        out += [f"Tokenizer reconstruction on {t['frames']} test frames: PSNR {t['psnr']['mean']:.2f} dB, SSIM {t['ssim']['mean']:.3f}.", ""]
    if "continuation" in r:
        c = r["continuation"]
        out += [f"Continuation, {c['given']} given → {c['future']} generated frames, {c['sequences']} sequences ({_tag(c)}):", ""]
        out += _scores(c, ("maskflow", "copy_last", "black")) + [""]
    if "horizon" in r:
        h = r["horizon"]
        out += [f"Long horizon: {h['frames']}-frame videos, {h['sequences']} sequences, mean per {h['bin']}-frame bin "
                "(ink = summed intensity, crisp = solid / inked pixels, blobs = solid components ≈ digits):", ""]
        rows = [[i, *(f"{h[n]['ink'][i]:.0f} / {h[n]['crisp'][i]:.2f} / {h[n]['blobs'][i]:.2f}" for n in ("real", "generate", "extend"))] for i in range(len(h["real"]["ink"]))]
        out += _table(["bin", "real", "generate", "extend"], rows) + [""]
        if "colour" in h["real"]:
            out += ["Colour (total-variation distance of each frame's colour histogram from that of all real frames) / "
                    "sharpness (mean difference of neighbouring pixels, luma in [0, 1]), mean per bin:", ""]
            rows = [[i, *(f"{h[n]['colour'][i]:.3f} / {h[n]['sharpness'][i]:.4f}" for n in ("real", "generate", "extend"))] for i in range(len(h["real"]["colour"]))]
            out += _table(["bin", "real", "generate", "extend"], rows) + [""]
    for key, s in r.get("infill", {}).items():
        a, b = s["range"]
        out += [f"Infill of frames {a}:{b} from both sides ({_tag(s)}):", ""] + _scores(s, ("maskflow", "repeat_nearest", "crossfade")) + [""]
    return out


def render_long_horizon(r: dict) -> list[str]:
    h = r["horizon"]
    g = h["generate"]
    out = [f"### Far past the training length (`{COMMANDS['long_horizon']}`)", "",
           (f"{h['frames']}-frame videos ({h['frames'] // 16}× the 16-frame training window), {h['sequences']} held-out sequence(s), "
            f"{_tag(g)}; {r['seconds']:.0f} s on {_machine(r['machine'])}. Mean of the {h['bin']}-frame bins in each tenth of the "
            "video, as ink / crisp / blobs (see the horizon table above):"), ""]
    rows = [[f"{s['first_frame']}–{s['last_frame']}", *("/".join(f"{s[n][k]:.{d}f}" for k, d in (("ink", 0), ("crisp", 2), ("blobs", 2)))
                                                     for n in ("real", "generate", "extend"))] for s in r["spans"]]
    return out + _table(["frames", "real", "generate", "extend"], rows) + [""]


def render_eval_h100(r: dict, results: Path = RESULTS) -> list[str]:
    """The same suites measured on the H100 that trained the weights, next to this machine's eval at the
    H100's sampler settings (``h100_settings/eval.json``; ``eval.json`` holds the eval at the defaults)."""
    path = results / "h100_settings" / "eval.json"
    here = json.loads(path.read_text()) if path.exists() else {}
    out = [f"### The H100 measurement reproduced here (`{COMMANDS['eval_h100']}`)", "",
           (f"Weights {r['weights']} on {r['device']} ({r['seconds']:.0f} s), with the tokenizer decoder from before its "
            "fine-tuning; this machine: `benchmarks/results/h100_settings/eval.json` (weights/, fine-tuned decoder; the same "
            "`maskflow eval` command with `--steps 20 --context 8`, the defaults when it ran). Same test sequences "
            f"(data seed {r['data_seed']}), sampler settings and seed; the random streams of CUDA and the CPU differ."), ""]
    pairs = [("continuation 10 → 10", "black", r.get("continuation"), here.get("continuation"))]
    pairs += [(f"infill {s['range'][0]}:{s['range'][1]}", "crossfade", s, here.get("infill", {}).get(k)) for k, s in r.get("infill", {}).items()]
    rows = []
    for name, baseline, theirs, ours in pairs:
        if theirs is None:
            continue
        a = theirs["maskflow"]["mse"]
        row = [name, f"{baseline.replace('crossfade', 'cross-fade')} {theirs[baseline]['mse']['mean']:.1f}", f"{a['mean']:.1f} ± {a['ci95']:.1f}"]
        if ours is None:
            rows.append(row + ["not measured", "–"])
            continue
        b = ours["maskflow"]["mse"]
        inside = abs(a["mean"] - b["mean"]) <= b["ci95"]
        rows.append(row + [f"{b['mean']:.1f} ± {b['ci95']:.1f}", "yes" if inside else "no"])
    return out + _table(["MSE/frame", "baseline", "H100", "this machine", "H100 mean inside this machine's 95 % interval"], rows) + [""]


def render_window_speed(r: dict) -> list[str]:
    p = r["matmul_peak_gflops"]
    out = [f"### Speed of one window (`{COMMANDS['window_speed']}`)", "",
           f"Machine: {_machine(r['machine'])}. Square-matmul peak: " + ", ".join(f"{ {'float32': 'fp32', 'bfloat16': 'bf16'}.get(k, k)} {v:.1f}" for k, v in p.items()) +
           " GFLOP/s. Where a precision's square matmul runs slower than the model does in it (bf16 on a CPU without bf16 instructions "
           "falls back to a slow kernel), its share of peak is not shown.", ""]
    rows = [[x["model"], f"{x['parameters'] / 1e6:.1f}M", x["autocast"], f"{x['seconds_per_window']:.2f}", f"{x['ms_per_call']:.0f}", f"{x['gflop_per_call']:.1f}",
             f"{x['gflop_per_new_frame']:.0f}", f"{x['achieved_gflops']:.1f}", f"{100 * x['share_of_peak']:.0f}%" if x["share_of_peak"] <= 1 else "—"] for x in r["rows"]]
    first = r["rows"][0]
    return out + _table(["model", "parameters", "precision", f"s / {first['frames']}-frame window ({first['steps']} steps)", "ms / call", "GFLOP / call", "GFLOP / new frame", "GFLOP/s", "of peak"], rows) + [""]


def render_length_scaling(r: dict) -> list[str]:
    out = [f"### Video length (`{COMMANDS['length_scaling']}`)", "", f"Machine: {_machine(r['machine'])}; `maskflow generate`, {r['steps']} steps, {r['mode']}.", ""]
    rows = [[x["frames"], x["windows"], x["nfe"], f"{x['seconds']:.1f}", f"{x['seconds_per_frame']:.3f}", f"{x['peak_rss_mib']:.0f}"] for x in r["rows"]]
    return out + _table(["frames", "windows", "NFE", "seconds", "s / frame", "peak RSS (MiB)"], rows) + [""]


def render_samplers(r: dict) -> list[str]:
    out = [f"### MGM against FM (`{COMMANDS['samplers']}`)", "",
           f"Machine: {_machine(r['machine'])}; continuation 10 → 10 on {r['sequences']} test sequences, {r['mode']} (context {r['context']}, stride {r['stride']}), seed {r['seed']}.", ""]
    rows = [[x["sampler"], x["steps"], x["nfe"], f"{x['mse']:.1f} ± {x['mse_ci95']:.1f}", f"{x['psnr']:.2f}", f"{x['ssim']:.3f}", f"{x['seconds_per_frame']:.3f}"] for x in r["rows"]]
    return out + _table(["sampler", "steps", "NFE / sequence", "MSE/frame", "PSNR", "SSIM", "s / generated frame"], rows) + [""]


def render_sampler_tuning(r: dict, command: str = COMMANDS["sampler_tuning"]) -> list[str]:
    b = r["base"]
    plot = "benchmarks/results/" + command.split("--out benchmarks/results/")[1].split(".json")[0] + ".png"
    out = [f"### Sampler settings around MGM {b['steps']} steps, context {b['context']} (`{command}`)", "",
           (f"Machine: {_machine(r['machine'])}; continuation 10 → 10 on {r['sequences']} test sequences, seed {r['seed']}, "
            f"one setting changed at a time from MGM {b['steps']} steps, Gumbel noise {b['noise']:g} "
            f"{'annealed to 0' if b.get('anneal', True) else 'not annealed'}, temperature {b['temperature']:g}, ar context "
            f"{b['context']}; all-black frames score {r['black_mse']:.1f}. \"vs base\" is the mean per-sequence difference to "
            "the base point on the same sequences and seed (negative: better), with its 95 % interval. Noise 1e+09 ranks the "
            f"masked tokens in random order. Plot: `{plot}`."), ""]
    rows = [[x["group"], x["sampler"], x["steps"], f"{x['noise']:g}" if x["sampler"] == "mgm" else "–",
             ("yes" if x.get("anneal", True) else "no") if x["sampler"] == "mgm" else "–", f"{x['temperature']:g}", x["context"], x["nfe"],
             f"{x['mse']:.1f} ± {x['mse_ci95']:.1f}", f"{x['mse_vs_base']:+.1f} ± {x['mse_vs_base_ci95']:.1f}" if "mse_vs_base" in x else "–",
             f"{x['psnr']:.2f}", f"{x['ssim']:.3f}", f"{x['seconds_per_frame']:.2f}"]
            for x in r["rows"]]
    return out + _table(["question", "sampler", "steps", "noise", "annealed", "temperature", "context", "NFE / sequence", "MSE/frame",
                         "vs base", "PSNR", "SSIM", "s / generated frame"], rows) + [""]


def render_timestep_feeding(r: dict) -> list[str]:
    out = [f"### Timestep feeding (`{COMMANDS['timestep_feeding']}`)", "",
           f"Machine: {_machine(r['machine'])}; timestep-dependent weights: {r['time_conditioning']}; continuation 10 → 10 on {r['sequences']} sequences, MGM {r['steps']} steps.", ""]
    rows = [[x["feeding"], f"{x['mse']:.1f} ± {x['mse_ci95']:.1f}", f"{x['psnr']:.2f}", f"{x['ssim']:.3f}"] for x in r["rows"]]
    return out + _table(["times fed", "MSE/frame", "PSNR", "SSIM"], rows) + [""]


def render_next_frame_knowledge(r: dict) -> list[str]:
    out = [f"### What the model knows of the next frames (`{COMMANDS['next_frame_knowledge']}`)", ""]
    for w in r["results"]:
        out += [(f"Weights: {w['weights']}; {w['given']} clean frames, the rest masked, one network call, {w['sequences']} test "
                 f"clips. Ink: positions whose true token is not the empty patch's. Chance: p = {w['chance']:.4f}."), ""]
        rows = [[f"+{f + 1}", f"{x['ink']['p_true']:.4f}", f"{x['ink']['accuracy']:.3f}", f"{x['ink']['p_background']:.3f}",
                 f"{x['background']['p_true']:.3f}", f"{w['mse_argmax'][f]:.1f}", f"{w['mse_tokenizer_floor'][f]:.1f}", f"{w['mse_black'][f]:.1f}"]
                for f, x in enumerate(w["frames"][:4])]
        out += _table(["future frame", "p(true), ink", "accuracy, ink", "p(empty), ink", "p(true), background", "MSE of argmax",
                       "MSE of true tokens", "MSE of black"], rows) + [""]
        out += [("The exactness the task asks for: a test frame shifted by a few pixels keeps few of its ink tokens, "
                 "and its MSE against the unshifted frame grows fast with the shift:"), ""]
        out += _table(["shift", "ink tokens unchanged", "MSE/frame"],
                      [[f"{x['shift_px']} px", f"{x['ink_tokens_unchanged']:.1%}", f"{x['mse']:.1f}"] for x in w["shift_sensitivity"]]) + [""]
    return out


def render_frame_cost(r: dict) -> list[str]:
    out = [f"### Cost of a generated frame (`{COMMANDS['frame_cost']}`)", "",
           (f"Machine: {_machine(r['machine'])}. One steady-state window of a long `generate` ({r['window']} frames: "
            "the context frames given, the rest new; MGM), its new frames decoded; the variants interleaved "
            f"in one process, {r['rounds']} rounds. GFLOP count every matmul, convolution and attention, decoder included. "
            f"{r['note']}"), ""]
    rows = [[x["name"], x["steps"], f"{x['context']} / {x['stride']}", f"{x['gflop_per_frame']:.1f}", f"{x['frames_per_s']:.2f}",
             f"{x['frames_per_cpu_s']:.2f}", f"{x['cpu_per_frame_ratio']:.2f}"] for x in r["rows"]]
    return out + _table(["model", "steps", "context / new", "GFLOP / new frame", "frames/s", "frames per CPU-second",
                         "CPU time per frame vs first row"], rows) + [""]


def render_context_cache(r: dict) -> list[str]:
    d = r["mse_difference"]
    out = [f"### Frozen context of a bidirectional model (`{COMMANDS['context_cache']}`)", "",
           (f"Machine: {_machine(r['machine'])}. Continuation 10 → 10 of {r['sequences']} held-out sequences, {r['sampler']}, "
            f"{r['steps']} steps, ar context {r['context']}, seed {r['seed']}, both settings on the same sequences and seed. "
            f"Frozen minus uncached (exact) MSE/frame: {d['mean']:+.1f} ± {d['ci95']:.1f} (95 % interval of the paired difference); "
            f"CPU time frozen / uncached: {r['cpu_ratio']:.2f}; frames with identical tokens: {100 * r['identical_frames']:.1f} % "
            "(sampling diverges once one draw differs)."), ""]
    rows = [[x["context_cache"], f"{x['mse']['mean']:.1f} ± {x['mse']['ci95']:.1f}", f"{x['cpu_s_per_frame']:.3f}"] for x in r["rows"]]
    return out + _table(["context cache", "MSE/frame", "CPU-s / generated frame"], rows) + [""]


def render_generate_speedup(r: dict) -> list[str]:
    out = [f"### `maskflow generate` now against before (`{COMMANDS['generate_speedup']}`)", "",
           (f"Machine: {_machine(r['machine'])}. `{' '.join(r['command'])}`, each variant in its own process (start-up "
            f"included), interleaved, {r['rounds']} rounds; medians, ratios per round. Each revision runs at its own "
            "default settings. On a shared machine read the CPU-time column: wall time also counts waiting for a core."), ""]
    rows = [[x["name"], x["commit"], " ".join(x["args"] + [f"{k}={v}" for k, v in x["env"].items()]) or "(defaults)",
             f"{x['median_wall_s']:.1f}", f"{x['median_cpu_s']:.1f}", f"{x['frames_per_s']:.2f}", f"{x['speedup_wall']:.2f}×",
             f"{x['speedup_cpu']:.2f}×"] for x in r["rows"]]
    return out + _table(["variant", "commit", "arguments", "wall s", "CPU s", "frames/s", "speed-up (wall)", "speed-up (CPU time)"], rows) + [""]


def render_levers(r: dict) -> list[str]:
    out = [f"### Speed levers, each against its baseline (`{COMMANDS['levers']}`)", "",
           f"Machine: {_machine(r['machine'])}. Weights: {r['weights']}. CPU time, variants interleaved, median of {r['rounds']} per-round ratios.", ""]
    rows = [[x["lever"], f"{x['baseline_cpu_s']:.3f}", f"{x['variant_cpu_s']:.3f}", f"{x['ratio']:.3f}", x["note"]] for x in r["rows"]]
    return out + _table(["lever", "baseline CPU s", "variant CPU s", "ratio", "note"], rows) + [""]

def render_maze_data_speed(r: dict) -> list[str]:
    e = r["estimate"]
    out = [f"### Maze data: rendering speed per core (`{COMMANDS['maze_data_speed']}`)", "",
           f"Machine: {_machine(r['machine'])}; CPU time of one process, {r['size']}×{r['size']} RGB, {len(r['rows'])} train mazes.", ""]
    rows = [[x["cells"], f"{x['build_cpu_s']:.1f}", f"{x['frames_per_cpu_s']:.0f}"] for x in r["rows"]]
    out += _table(["maze (cells a side)", "build (CPU s)", "frames per CPU second"], rows) + [""]
    return out + [f"Estimate for {e['clips']:,} clips × {e['frames']} frames ({e['mazes']:,} mazes of {r['clips_per_maze']} clips): "
                  f"{e['cpu_hours']:.1f} CPU hours, about {e['wall_minutes']:.0f} minutes on {e['cores']} cores.", ""]


def render_maze_tokenizer(r: dict) -> list[str]:
    out = [f"### Maze tokenizer candidates (`{COMMANDS['maze_tokenizer']}`)", "",
           f"Machine: {_machine(r['machine'])}; each trained on {r['train_frames']:,} frames of train mazes (batch {r['batch_size']}, "
           f"lr {r['lr']}), measured on frames of test mazes.", ""]
    rows = [[x["preset"], x["tokens_per_frame"], f"{x['vocabulary']:,}", f"{x['parameters'] / 1e6:.2f}M", x["steps"],
             f"{x['psnr']['mean']:.2f}", f"{x['ssim']['mean']:.3f}", f"{x['decode_ms_per_frame']:.1f}"] for x in r["rows"]]
    return out + _table(["preset", "tokens / frame", "vocabulary", "parameters", "steps", "test PSNR (dB)", "test SSIM",
                         "decode ms / frame"], rows) + [""]


def render_maze_eval(r: dict) -> list[str]:
    return [f"### Maze smoke model (`{COMMANDS['maze_eval']}`)"] + render_eval(r)[1:]


def render_infill_plans(r: dict) -> list[str]:
    out = [f"### Infill plans (`{COMMANDS['infill_plans']}`)", "",
           (f"Machine: {_machine(r['machine'])}; weights: {r['weights']}; a gap centred in {r['frames']}-frame test clips, "
            f"{r['sequences']} sequences, MGM {r['steps']} steps, window {r['window']}, context {r['context']}, stride {r['stride']}, seed {r['seed']}. "
            f"both: known frames on both sides of every window that can hold them (the default); left: forward from the left, "
            f"the right side in the last window only. On the eval's infill suite the two plans are "
            f"{'the same' if r['eval_suite_plans_identical'] else 'different'}."), ""]
    rows = []
    for x in r["rows"]:
        for name in ("both", "left"):
            y = x[name]
            rows.append([f"{x['gap']}", f"maskflow, {name}", f"{y['mse']:.1f} ± {y['mse_ci95']:.1f}", f"{y['psnr']:.2f}", f"{y['ssim']:.3f}",
                         f"{y['frames_seeing_both_sides']} / {x['gap']}", f"{y['windows']}"])
        for name in ("crossfade", "repeat_nearest"):
            y = x[name]
            rows.append([f"{x['gap']}", name, f"{y['mse']:.1f} ± {y['mse_ci95']:.1f}", f"{y['psnr']:.2f}", f"{y['ssim']:.3f}", "", ""])
    return out + _table(["gap", "method", "MSE/frame", "PSNR", "SSIM", "frames made seeing both sides", "windows"], rows) + [""]


RENDERERS = {"eval": render_eval, "long_horizon": render_long_horizon, "eval_h100": render_eval_h100, "window_speed": render_window_speed, "length_scaling": render_length_scaling,
             "samplers": render_samplers, "sampler_tuning": render_sampler_tuning,
             "sampler_tuning_8_steps": lambda r: render_sampler_tuning(r, COMMANDS["sampler_tuning_8_steps"]), "timestep_feeding": render_timestep_feeding,
             "next_frame_knowledge": render_next_frame_knowledge, "infill_plans": render_infill_plans, "frame_cost": render_frame_cost,
             "context_cache": render_context_cache, "generate_speedup": render_generate_speedup, "levers": render_levers,
             "maze_data_speed": render_maze_data_speed, "maze_tokenizer": render_maze_tokenizer, "maze_eval": render_maze_eval}


def render(results: Path = RESULTS) -> str:
    lines = [START, ""]
    for name, renderer in RENDERERS.items():
        path = results / f"{name}.json"
        if path.exists():
            lines += renderer(json.loads(path.read_text()))
        else:
            lines += [f"*{name}: not measured yet (`{COMMANDS[name]}`).*", ""]
    return "\n".join(lines + [END])


def render_card(weights: Path = ROOT / "weights", results: Path = RESULTS) -> str:
    """The model card's facts: per component its config and training facts, then the measured quality."""
    from maskflow_cli.weights import inspect_weights

    lines = [CARD_START, ""]
    if not list(weights.glob("*.safetensors")):
        return "\n".join(lines + ["*No weights in this folder yet.*", "", CARD_END])
    for kind, c in inspect_weights(str(weights)).items():
        facts = {"parameters": f"{c.parameters:,}", **c.info}
        lines += [f"**{kind}** (`{c.file.name}`): " + ", ".join(f"{k}={v}" for k, v in c.config.__dict__.items()), ""]
        lines += _table(["fact", "value"], [[k, facts[k]] for k in FACTS if k in facts]) + [""]
    path = results / "eval.json"
    if path.exists():
        lines += ["Measured quality, from `benchmarks/results/eval.json` (see the main README's Results for all of it):", ""]
        lines += render_eval(json.loads(path.read_text()))[2:]
    for name in ("sampler_tuning", "sampler_tuning_8_steps"):
        if (results / f"{name}.json").exists():
            lines += [f"Sampler settings on these weights, from `benchmarks/results/{name}.json` (the defaults were chosen from these):", ""]
            lines += RENDERERS[name](json.loads((results / f"{name}.json").read_text()))[2:]
    if (results / "eval_h100.json").exists():
        lines += ["The H100's own evaluation, from `benchmarks/results/eval_h100.json`, next to this machine's:", ""]
        lines += render_eval_h100(json.loads((results / "eval_h100.json").read_text()), results)[2:]
    return "\n".join(lines + [CARD_END])


def updated(text: str, section: str, start: str = START, end: str = END) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    return head + section + rest.split(end, 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that both files are up to date")
    args = parser.parse_args()
    targets = [(ROOT / "README.md", render(), START, END), (ROOT / "weights" / "README.md", render_card(), CARD_START, CARD_END)]
    stale = []
    for path, section, start, end in targets:
        text = path.read_text()
        new = updated(text, section, start, end)
        if new != text:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        sys.exit(f"out of date: {', '.join(stale)}; run python benchmarks/readme_results.py")


if __name__ == "__main__":
    main()
