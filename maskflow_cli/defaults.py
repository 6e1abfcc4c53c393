"""The defaults and names the command line declares or falls back on, in a module that imports nothing heavy.

``maskflow --help`` and every command's help show these values. They are defined here, once, and the
library modules that use them (engine, sampling, runtime, pipeline, the maze world) import them from
here, so the help can be shown without importing torch.
"""

from fractions import Fraction

# Sampling: chosen by measurement on the shipped weights (benchmarks/sampler_tuning.py; benchmarks/RESULTS.md):
# on held-out 10 -> 10 continuations MGM with 4 steps per window was as good as 8 and 20
DEFAULT_STEPS = 4
DEFAULT_TEMPERATURE = 1.0  # 0.7 with the guidance below continued better but turned long extends black (benchmarks/guidance.py)
# Guidance on the context, w = 0.5 at a window's first step annealed to 0 by its middle step (guidance.py;
# benchmarks/guidance.py): held 160-frame extends within ±10 % of the real ink where unguided ones fade,
# and continued held-out sequences better, for about 1.28x the network FLOPs per generated frame
DEFAULT_GUIDANCE = 0.5
MGM_NOISE = 4.5  # MGM's default Gumbel noise scale (chosen by benchmarks/sampler_tuning.py)
DEFAULT_CONTEXT_CACHE = "exact"  # changes no result: an approximation is opt-in
DEFAULT_FPS = Fraction(10)  # the frame rate of weights that do not say, and of stills

# maskflow eval's suites, in the order they run; fvd needs the user's I3D detector file (--fvd-detector)
SUITES = ("tokenizer", "continuation", "horizon", "infill", "fvd")

MOVING_MNIST_SPEED = "2:4"  # maskflow data moving-mnist --speed: digit speeds in pixels per frame (Srivastava et al.'s range)
SHARD_CLIPS = 1000  # maskflow data maze: clips per shard file (1000 x 36 frames of 64x64 RGB is 442 MB)

RECIPES = ("digits-continue", "digits-fast", "maze")  # maskflow recipe NAME: one GPU window's run each (window_recipes.py)
