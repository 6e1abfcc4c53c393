"""The defaults and names the command line declares or falls back on, in a module that imports nothing heavy.

``maskflow --help`` and every command's help show these values. They are defined here, once, and the
library modules that use them (engine, sampling, runtime, pipeline, the maze world) import them from
here, so the help can be shown without importing torch.
"""

from fractions import Fraction

# Sampling: chosen by measurement on the shipped weights (benchmarks/sampler_tuning.py; benchmarks/RESULTS.md):
# on held-out 10 -> 10 continuations MGM with 4 steps per window was as good as 8 and 20
DEFAULT_STEPS = 4
# Sampling with guidance on the context (guidance.py; chosen by benchmarks/guidance.py on held-out digits and on
# faster ones): w = 0.65 at a window's first step annealed to 0 by its middle step, logits divided by 0.85, and w
# scaled per video after each window by the guidance anchor (gain 10) so that long extends keep their intensity.
# 10 -> 10 continuations improved (paired -8.3 +- 5.8 MSE/frame, 64 sequences) and 160-frame extends stayed
# within 10 % of the real ink in every 16-frame bin, on both test sets and two seeds each; without the anchor the
# same w over-inked by 18-21 % and w = 0.55 faded by 21 %. Temperature 0.7 turned 1,600-frame extends black.
DEFAULT_TEMPERATURE = 0.85  # continuing or completing given frames (extend, infill)
FREE_TEMPERATURE = 1.0  # generating from nothing (generate): 0.85 there drew frames of a fifth to a half of the real ink
DEFAULT_GUIDANCE = 0.65
DEFAULT_ANCHOR = 10.0  # the guidance anchor's gain (guidance.GuidanceAnchor); 0: none
MGM_NOISE = 4.5  # MGM's default Gumbel noise scale (chosen by benchmarks/sampler_tuning.py)
DEFAULT_CONTEXT_CACHE = "exact"  # changes no result: an approximation is opt-in
DEFAULT_FPS = Fraction(10)  # the frame rate of weights that do not say, and of stills

# maskflow eval's suites, in the order they run; fvd needs the user's I3D detector file (--fvd-detector)
SUITES = ("tokenizer", "continuation", "horizon", "infill", "fvd")

MOVING_MNIST_SPEED = "2:4"  # maskflow data moving-mnist --speed: digit speeds in pixels per frame (Srivastava et al.'s range)
SHARD_CLIPS = 1000  # maskflow data maze: clips per shard file (1000 x 36 frames of 64x64 RGB is 442 MB)

RECIPES = ("digits-continue", "digits-fast", "maze")  # maskflow recipe NAME: one GPU window's run each (window_recipes.py)
