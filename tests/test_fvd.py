"""FVD: the Fréchet distance against its closed form, the detector's protocol, and `maskflow eval
--fvd-detector` end to end with a tiny TorchScript detector of the I3D call signature."""

import json
import math

import pytest
import torch
from torch import nn

from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.fvd import FVD_RESOLUTION, detector_input, frechet_distance, fvd, load_detector, video_features


class TinyDetector(nn.Module):
    """The call of the I3D TorchScript file: videos [B,3,T,H,W] in [-1, 1] -> features [B,D]."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Linear(6, 5)

    def forward(self, videos: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False) -> torch.Tensor:
        mean = videos.mean(dim=(2, 3, 4))  # [B,3]
        spread = videos.std(dim=(2, 3, 4))  # [B,3]
        features = self.project(torch.cat([mean, spread], 1))
        return features if return_features else features.softmax(-1)


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fvd") / "tiny_detector.pt"
    torch.jit.script(TinyDetector()).save(str(path))
    return path


def _closed_form(m1, s1, m2, s2) -> float:
    """For commuting covariances (both diagonal): |m1-m2|² + Σ (√s1 - √s2)²."""
    return float((m1 - m2).square().sum() + (s1.sqrt() - s2.sqrt()).square().sum())


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    g = torch.Generator().manual_seed(1)
    m1, m2 = torch.randn(50, generator=g, dtype=torch.float64), torch.randn(50, generator=g, dtype=torch.float64)
    s1, s2 = torch.rand(50, generator=g, dtype=torch.float64) * 3 + 0.1, torch.rand(50, generator=g, dtype=torch.float64) * 3 + 0.1
    got = frechet_distance(m1, torch.diag(s1), m2, torch.diag(s2))
    assert math.isclose(got, _closed_form(m1, s1, m2, s2), rel_tol=1e-6)


def test_frechet_distance_matches_the_closed_form_for_rotated_gaussians():
    """Full covariances U diag(a) Uᵀ and U diag(b) Uᵀ share eigenvectors, so the distance is the
    diagonal one; also the 1-D formula (m1-m2)² + (σ1-σ2)²."""
    g = torch.Generator().manual_seed(2)
    rotation, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=torch.float64))
    a, b = torch.rand(40, generator=g, dtype=torch.float64) + 0.5, torch.rand(40, generator=g, dtype=torch.float64) * 4
    m1, m2 = torch.randn(40, generator=g, dtype=torch.float64), torch.zeros(40, dtype=torch.float64)
    got = frechet_distance(m1, rotation @ torch.diag(a) @ rotation.T, m2, rotation @ torch.diag(b) @ rotation.T)
    assert math.isclose(got, _closed_form(m1, a, m2, b), rel_tol=1e-6)
    one = frechet_distance(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([3.0]), torch.tensor([[9.0]]))
    assert math.isclose(one, (1 - 3) ** 2 + (2 - 3) ** 2, rel_tol=1e-12)


def test_frechet_distance_of_covariances_that_do_not_commute():
    """General covariances: tr (Σa Σb)^½ is the sum of the square roots of the (real, positive)
    eigenvalues of the non-symmetric product Σa Σb."""
    g = torch.Generator().manual_seed(5)
    a, b = (torch.randn(30, 60, generator=g, dtype=torch.float64) for _ in range(2))
    cov_a, cov_b = a @ a.T / 60, b @ b.T / 60 + 0.1 * torch.eye(30, dtype=torch.float64)
    m1, m2 = torch.randn(30, generator=g, dtype=torch.float64), torch.randn(30, generator=g, dtype=torch.float64)
    cross = torch.linalg.eigvals(cov_a @ cov_b).real.clamp(min=0).sqrt().sum()
    expected = float((m1 - m2).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)
    assert math.isclose(frechet_distance(m1, cov_a, m2, cov_b), expected, rel_tol=1e-9)


def test_fvd_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    features = torch.randn(300, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert abs(fvd(features, features)) < 1e-9
    assert math.isclose(fvd(features, features + 2), 8 * 4, rel_tol=1e-9)  # only the means differ, by 2 in 8 dimensions


def test_detector_input_protocol():
    clips = torch.zeros(2, 16, 64, 48, 1, dtype=torch.uint8)
    clips[:, :, :24] = 255  # the top 24 of 64 rows white
    x = detector_input(clips)
    assert x.shape == (2, 3, 16, FVD_RESOLUTION, FVD_RESOLUTION) and x.dtype == torch.float32
    assert float(x.min()) == pytest.approx(-1) and float(x.max()) == pytest.approx(1)  # [-1, 1]
    assert torch.equal(x[:, 0], x[:, 2])  # gray repeated into 3 channels
    # the shorter side (48) becomes 224, the longer is centre-cropped: 64 -> 298.67 -> rows 37..261 kept
    assert float(x[0, 0, 0, 0, 0]) == pytest.approx(1) and float(x[0, 0, 0, -1, 0]) == pytest.approx(-1)


def test_video_features_batches_alike(tiny_detector):
    detector = load_detector(tiny_detector, torch.device("cpu"))
    clips = torch.randint(0, 256, (5, 16, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    whole, parts = video_features(detector, clips, torch.device("cpu"), batch=5), video_features(detector, clips, torch.device("cpu"), batch=2)
    assert whole.shape == (5, 5) and whole.dtype == torch.float64
    assert torch.allclose(whole, parts, atol=1e-6)


def test_load_detector_refuses_what_is_not_one(tmp_path):
    with pytest.raises(InvalidArgumentError, match="no such file"):
        load_detector(tmp_path / "missing.pt", torch.device("cpu"))
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(InvalidArgumentError, match="not a TorchScript file"):
        load_detector(tmp_path / "junk.pt", torch.device("cpu"))
    torch.jit.script(nn.Linear(3, 3)).save(str(tmp_path / "linear.pt"))
    with pytest.raises(InvalidArgumentError, match="does not take the I3D call"):
        load_detector(tmp_path / "linear.pt", torch.device("cpu"))


def test_eval_reports_fvd_with_a_user_detector(cli, weights_dir, tiny_detector):
    r = cli("eval", "--weights", weights_dir, "--quick", "--steps", "1", "--suite", "continuation",
            "--fvd-detector", tiny_detector, "--fvd-clips", "3", "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    section = result["fvd"]
    assert section["clips"] == 3 and section["frames"] == 16 and section["resolution"] == 224 and section["features"] == 5
    assert section["maskflow"] >= 0 and section["nfe_per_sequence"] > 0
    assert "maskflow" in result["continuation"]  # FVD beside the continuation's MSE/PSNR/SSIM
    table = cli("eval", "--weights", weights_dir, "--quick", "--steps", "1", "--suite", "tokenizer", "--fvd-detector", tiny_detector)
    assert table.code == 0, table.err
    assert "FVD " in table.out and "clips of 16 frames at 224x224" in table.out


@pytest.mark.parametrize("name", ["missing.pt", "junk.pt"])
def test_eval_with_a_missing_or_wrong_detector_says_so_in_one_line(cli, weights_dir, tmp_path, name):
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 64)
    r = cli("eval", "--weights", weights_dir, "--quick", "--fvd-detector", tmp_path / name)
    assert r.code == 2 and r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "--fvd-detector" in lines[0] and "i3d_torchscript.pt" in lines[0]


def test_the_fvd_suite_needs_a_detector(cli, weights_dir):
    r = cli("eval", "--weights", weights_dir, "--quick", "--suite", "fvd")
    assert r.code == 2 and "--fvd-detector" in r.err and len(r.err.strip().splitlines()) == 1


def test_the_results_page_reports_fvd_beside_the_other_scores(weights_dir, tiny_detector, tmp_path, one_thread):
    from benchmarks import registry
    from benchmarks.__main__ import main

    out = tmp_path / "eval.json"
    main(["eval", "--out", str(out), "--weights", str(weights_dir), "--suites", "continuation", "fvd", "--fvd-detector", str(tiny_detector),
          "--label", "tiny", "--", "--quick", "--steps", "1", "--fvd-clips", "2"])
    result = json.loads(out.read_text())
    assert result["fvd"]["clips"] == 2 and "continuation" in result and set(result["suite_seconds"]) == {"continuation", "fvd"}
    page = registry()["eval"].render(result)
    assert "FVD of 2 generated against 2 held-out clips of 16 frames at 224×224" in page and "MSE/frame" in page
