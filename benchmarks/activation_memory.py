"""What one training step of a transformer preset keeps in memory, counted without running it.

The model is built on fake tensors (``torch._subclasses.FakeTensorMode``: shapes, dtypes and a CPU
device, no storage, no arithmetic), so even XL costs a second here. One forward pass runs under bf16
autocast (as training does) inside ``torch.autograd.graph.saved_tensors_hooks``, which sees every
tensor autograd keeps for the backward pass; each storage is counted once, and the parameters'
own storages not at all (they are the model state). Counted:

- ``state_bytes``: the model state of a training run, 20 bytes a parameter: fp32 weights, their
  gradients, AdamW's two moments and the EMA copy;
- ``saved_bytes``: what the forward pass keeps for the backward pass (activations, the bf16 copies
  of the weights that autocast makes, the attention's outputs and log-sum-exps); with activation
  checkpointing the blocks keep only their inputs, and the backward pass holds one block's
  activations again while it recomputes it, so that block's count (``block_bytes``) is added.

From counts at batches 1 and 2: the bytes a step needs whatever its batch (``fixed_bytes``: e.g. the
bf16 weight copies) and the bytes each clip adds (``clip_bytes``). Not counted: the gradients in flight
in the backward pass, the optimizer step's temporaries, kernels' scratch memory, the allocator's slack
and the CUDA context, so a real step needs more (a GPU run of ``train_throughput`` measures it: ``torch.cuda.max_memory_allocated``).
The attention kernel is the CPU's fused one, which like FlashAttention on a GPU keeps no score matrix.
"""

from __future__ import annotations

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.multiprocessing.reductions import StorageWeakRef

from maskflow_cli.model_configs import TransformerConfig
from maskflow_cli.transformer import MaskFlowTransformer

STATE_BYTES_PER_PARAMETER = 4 + 4 + 8 + 4  # fp32 weights, gradients, AdamW's moments, EMA


def _saved_bytes(model: MaskFlowTransformer, run, dtype: torch.dtype | None) -> int:
    """Bytes autograd keeps for the backward pass of ``run()`` (each storage once, parameters not)."""
    parameters = {StorageWeakRef(p.untyped_storage()) for p in model.parameters()}
    saved: dict[StorageWeakRef, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ref = StorageWeakRef(t.untyped_storage())
        if ref not in parameters:
            saved[ref] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
        run()
    return sum(saved.values())


def step_bytes(model: MaskFlowTransformer, batch: int, dtype: torch.dtype | None, checkpointing: bool) -> int:
    """Peak bytes kept for the backward pass of one step at ``batch`` clips (fake tensors)."""
    cfg = model.config
    tokens = torch.zeros(batch, cfg.frames, cfg.grid_height, cfg.grid_width, dtype=torch.long)
    times = torch.rand(batch, cfg.frames)
    model.checkpoint_activations = checkpointing
    total = _saved_bytes(model, lambda: model(tokens, times), dtype)
    if checkpointing:  # the backward pass holds one block's activations again while it recomputes it
        x = torch.randn(batch, cfg.frames, cfg.grid_height * cfg.grid_width, cfg.dim, requires_grad=True)  # [B,T,S,D]
        cond = torch.randn(batch, cfg.frames, cfg.dim, requires_grad=True)  # [B,T,D]
        total += _saved_bytes(model, lambda: model.blocks[0](x, cond), dtype)
    return total


def training_memory(config: TransformerConfig, dtype: torch.dtype | None, checkpointing: bool) -> dict:
    """The counts of the module docstring for ``config``'s model trained under autocast ``dtype``."""
    with FakeTensorMode():
        model = MaskFlowTransformer(config).train()
        parameters = sum(p.numel() for p in model.parameters())
        one, two = (step_bytes(model, b, dtype, checkpointing) for b in (1, 2))
    return {"parameters": parameters, "state_bytes": STATE_BYTES_PER_PARAMETER * parameters,
            "fixed_bytes": 2 * one - two, "clip_bytes": two - one, "checkpointing": checkpointing}


def clips_that_fit(memory: dict, device_bytes: float) -> int:
    """Clips a step could hold in ``device_bytes`` by these counts (an upper bound: see the docstring)."""
    free = device_bytes - memory["state_bytes"] - memory["fixed_bytes"]
    return max(0, int(free // memory["clip_bytes"]))
