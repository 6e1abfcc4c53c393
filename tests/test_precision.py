"""--precision auto: fp32 with TF32 matmuls for small models on CUDA, bf16 autocast for large ones;
on a CPU bf16 only where it runs fast. Checked with the device facts patched (no GPU needed)."""

import copy
from pathlib import Path

import pytest
import torch

from maskflow_cli import runtime
from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.runtime import SMALL_MODEL_PARAMETERS, precision_dtype, parameter_count

from conftest import tiny_models

CUDA = torch.device("cuda")


@pytest.fixture
def tf32_restored():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_auto_on_cuda_runs_small_models_in_fp32_with_tf32(monkeypatch, tf32_restored):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert precision_dtype(CUDA, "auto", 10_264_808) is None
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_auto_on_cuda_keeps_bf16_for_large_or_unknown_models(monkeypatch, tf32_restored):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert precision_dtype(CUDA, "auto", SMALL_MODEL_PARAMETERS) is torch.bfloat16
    assert precision_dtype(CUDA, "auto") is torch.bfloat16
    assert not torch.backends.cuda.matmul.allow_tf32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision_dtype(CUDA, "auto", 10 * SMALL_MODEL_PARAMETERS) is None


def test_explicit_precisions_and_the_cpu(monkeypatch, tf32_restored):
    assert precision_dtype(CUDA, "fp32", 1000) is None and not torch.backends.cuda.matmul.allow_tf32
    assert precision_dtype(CUDA, "bf16", 1000) is torch.bfloat16
    cpu = torch.device("cpu")
    for fast, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: fast)
        assert precision_dtype(cpu, "auto", 1000) is expected
    with pytest.raises(InvalidArgumentError, match="precision"):
        precision_dtype(cpu, "fp16")


def test_parameter_count_adds_modules():
    assert parameter_count(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1, bias=False)) == 8 + 2


def test_bf16_attention_on_a_cpu_is_attention_in_blocks_of_rows(monkeypatch):
    """The bf16 CPU path (matmuls around a softmax, in blocks of query rows) against fp32 SDPA, with a
    mask and with blocks small enough that the rows split unevenly."""
    from maskflow_cli import transformer

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, 8, generator=g) for _ in range(3))
    mask = torch.rand(2, 1, 10, 10, generator=g) < 0.7
    mask[..., 0] = True  # every query sees a key
    reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    for elements in (1 << 20, 2 * 3 * 10 * 3):  # all rows at once; 3 rows a block (10 = 3+3+3+1)
        monkeypatch.setattr(transformer, "SCORE_ELEMENTS", elements)
        out = transformer.bf16_cpu_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask)
        assert out.dtype == torch.bfloat16 and out.shape == reference.shape
        assert torch.allclose(out.float(), reference, atol=0.05)


def test_bf16_attention_kernel_follows_amx(monkeypatch):
    """cast_for_inference picks the bf16 CPU attention kernel: PyTorch's flash kernel (SDPA) where the
    CPU has AMX, blocks of matmuls elsewhere; both give the same attention, near fp32's."""
    from maskflow_cli.transformer import Attention

    def attentions(model):
        return [m for m in model.modules() if isinstance(m, Attention)]

    fp32 = tiny_models()[1]
    for p in fp32.parameters():  # adaLN-Zero starts every block as the identity: give the blocks something to do
        p.data.normal_(0, 0.05)
    tokens = torch.randint(0, fp32.config.vocab_size, (2, 4, fp32.config.grid_height, fp32.config.grid_width))
    times = torch.rand(2, 4)
    with torch.inference_mode():
        reference = fp32(tokens, times)
        outputs = {}
        for amx in (True, False):
            monkeypatch.setattr(runtime, "cpu_has_amx", lambda: amx)
            model = runtime.cast_for_inference(copy.deepcopy(fp32), torch.bfloat16)
            assert {a.blocked_bf16 for a in attentions(model)} == {not amx}
            outputs[amx] = model(tokens, times).float()
            assert torch.allclose(outputs[amx], reference, atol=0.1)
    assert not torch.equal(outputs[True], outputs[False])  # two kernels, really run
    packed = runtime.packed_linears_available()
    with_amx = [type(m) for m in (monkeypatch.setattr(runtime, "cpu_has_amx", lambda: True) or
                                   runtime.cast_for_inference(copy.deepcopy(fp32), torch.bfloat16)).modules()]
    assert (runtime.PackedLinear in with_amx) == packed and (torch.nn.Linear not in with_amx) == packed
    compiled = runtime.cast_for_inference(copy.deepcopy(fp32), torch.bfloat16, compile=True)  # torch.compile packs on its own
    assert not any(isinstance(m, runtime.PackedLinear) for m in compiled.modules())
    assert {a.blocked_bf16 for a in attentions(runtime.cast_for_inference(copy.deepcopy(fp32), None))} == {True}  # the model's own default


@pytest.mark.skipif(not runtime.packed_linears_available(), reason="no oneDNN linear kernels in this PyTorch")
def test_packed_linears_give_the_plain_layers_numbers():
    """PackedLinear (oneDNN's weight layout, laid out once) against nn.Linear in bf16, for 2-D to 4-D
    and non-contiguous inputs, with and without a bias, and the whole transformer's logits: the same
    up to bf16's rounding (layers this small may take another kernel in the plain path; the shipped
    model's layers gave equal logits on a Xeon with AMX)."""
    g = torch.Generator().manual_seed(0)
    for bias in (True, False):
        linear = torch.nn.Linear(24, 40, bias=bias).bfloat16()
        packed = runtime.PackedLinear(linear)
        for x in (torch.randn(7, 24, generator=g), torch.randn(2, 3, 5, 24, generator=g), torch.randn(2, 24, 6, generator=g).transpose(1, 2)):
            with torch.inference_mode():
                ours, theirs = packed(x.bfloat16()), linear(x.bfloat16())
            assert ours.shape == theirs.shape and ours.dtype == torch.bfloat16
            assert torch.allclose(ours.float(), theirs.float(), rtol=2**-7, atol=2**-7)
    plain = tiny_models()[1]
    for p in plain.parameters():  # adaLN-Zero starts every block as the identity: give the blocks something to do
        p.data.normal_(0, 0.05, generator=g)
    plain = plain.bfloat16()
    model = runtime.pack_linears(copy.deepcopy(plain))
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
    tokens = torch.randint(0, plain.config.vocab_size, (2, 4, plain.config.grid_height, plain.config.grid_width), generator=g)
    times = torch.rand(2, 4, generator=g)
    with torch.inference_mode():
        assert torch.allclose(model(tokens, times).float(), plain(tokens, times).float(), atol=0.03)


def test_bf16_weights_are_cast_once_and_logits_come_back_in_fp32(weights_dir):
    """--precision bf16: the transformer and the tokenizer's decoder hold bf16 weights (no autocast),
    the encoder stays fp32, the denoiser hands the sampler fp32 logits close to the fp32 model's."""
    from maskflow_cli.pipeline import MaskFlowPipeline

    fp32 = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu", precision="fp32")
    bf16 = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu", precision="bf16")
    assert fp32.dtype is None and bf16.dtype is torch.bfloat16
    assert {p.dtype for p in bf16.transformer.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in bf16.tokenizer.decoder.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in bf16.tokenizer.encoder.parameters()} == {torch.float32}
    tokens = torch.randint(0, 16, (1, 6, 8, 8), generator=torch.Generator().manual_seed(1))
    wanted = torch.zeros(1, 6, 8, 8, dtype=torch.bool)
    wanted[:, 3:] = True
    times = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
    context = torch.tensor([True, True, True, False, False, False])
    with torch.inference_mode():
        low, high = bf16.denoiser()(tokens.masked_fill(wanted, 16), times, wanted, context), fp32.denoiser()(tokens.masked_fill(wanted, 16), times, wanted, context)
        assert low.dtype == torch.float32 and torch.allclose(low, high, atol=0.1)
        assert (bf16.decode(tokens[0]).int() - fp32.decode(tokens[0]).int()).abs().max() <= 8


def test_auto_on_a_cpu_needs_avx512_kernels_and_bf16_instructions(monkeypatch):
    """ATEN_CPU_CAPABILITY=avx2 (PyTorch's kernels without AVX-512) turns bf16 off even where the CPU has the instructions."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo")
    has_flags = any(f in cpuinfo.read_text().split() for f in runtime.BF16_FLAGS)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not runtime.cpu_has_fast_bf16()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert runtime.cpu_has_fast_bf16() == has_flags


def test_int8_is_a_cpu_inference_choice_with_int8_linear_layers(weights_dir, monkeypatch):
    from maskflow_cli import pipeline
    from maskflow_cli.engine import SamplingOptions
    from maskflow_cli.planner import window_settings

    pipe = pipeline.MaskFlowPipeline.from_weights(str(weights_dir), device="cpu", precision="int8")
    linears = [m for m in pipe.transformer.modules() if isinstance(m, torch.nn.Linear)]
    quantized = [m for m in pipe.transformer.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert quantized and all(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in linears)
    assert pipe.dtype is None and {p.dtype for p in pipe.tokenizer.parameters()} == {torch.float32}
    video = torch.cat([c.frames for c in pipe.generate(4, window_settings(pipe.window, "ar"), SamplingOptions(steps=2, seed=0))])
    assert video.shape == (4, 32, 32, 1) and video.dtype == torch.uint8
    with pytest.raises(InvalidArgumentError, match="precision"):  # training has no int8
        precision_dtype(torch.device("cpu"), "int8")
    monkeypatch.setattr(pipeline, "resolve_device", lambda name: torch.device("cuda"))
    with pytest.raises(InvalidArgumentError, match="CPU only"):
        pipeline.MaskFlowPipeline.from_weights(str(weights_dir), device="cuda", precision="int8")


def test_generate_with_int8_says_nothing_but_its_summary(cli, weights_dir, tmp_path):
    out = cli("generate", "-w", weights_dir, "-o", tmp_path / "a.mkv", "--frames", 3, "--steps", 2, "--precision", "int8", "--seed", 0)
    assert out.code == 0 and out.err.startswith("wrote ") and len(out.err.strip().splitlines()) == 1, out.err  # no deprecation warning


def test_the_mlp_gelu_is_the_tanh_form_in_fp32_and_the_erf_form_in_bf16_on_a_cpu():
    """fp32 runs the GELU the model was trained with (tanh approximation), bit for bit; bf16 on a CPU
    runs the erf form, which stays as close to the exact tanh form as bf16's own rounding allows."""
    from maskflow_cli.transformer import TanhGELU

    x = torch.linspace(-8, 8, 20001)
    assert torch.equal(TanhGELU()(x), torch.nn.functional.gelu(x, approximate="tanh"))
    low = TanhGELU()(x.bfloat16())
    assert low.dtype == torch.bfloat16 and torch.equal(low, torch.nn.functional.gelu(x.bfloat16()))
    exact = torch.nn.functional.gelu(x.bfloat16().double(), approximate="tanh")
    assert (low.double() - exact).abs().max() < 0.0083
    assert not torch.equal(low, torch.nn.functional.gelu(x.bfloat16(), approximate="tanh"))  # the cheaper form, not the same
