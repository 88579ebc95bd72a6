"""The synthetic data set is exact, and the CLI commands produce their files."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from gpuaug import FaceFrames, collate
from gpuaug.cli import main
from gpuaug.labels.rotation import pose_to_matrix
from gpuaug.synth.face_model import INTEROCULAR, fit_similarity, mean_face


def test_synth_labels_are_the_projection_of_the_pose(synth_dir):
    batch = collate([s for s in FaceFrames(synth_dir)])
    face = torch.from_numpy(mean_face()).float()
    reproj = (face @ pose_to_matrix(batch.head_pose).transpose(1, 2))[..., :2]
    err = (fit_similarity(reproj, batch.landmarks2d) - batch.landmarks2d).norm(dim=-1).amax(1)
    iod = (batch.landmarks2d[:, INTEROCULAR[0]] - batch.landmarks2d[:, INTEROCULAR[1]]).norm(dim=1)
    assert (err / iod).max() < 1e-3
    torch.testing.assert_close(batch.landmarks3d[..., :2], batch.landmarks2d)
    assert (batch.bbox[:, :2] <= batch.landmarks2d.amin(1)).all()
    assert (batch.bbox[:, 2:] >= batch.landmarks2d.amax(1)).all()
    assert len(set(map(tuple, batch.sizes.tolist()))) >= 3  # several frame sizes


def test_cli_synth_preview_and_demo(tmp_path, capsys):
    main(["synth", str(tmp_path / "data"), "--videos", "2", "--frames", "3"])
    assert len(list((tmp_path / "data").glob("*.npz"))) == 2
    main(["preview", str(tmp_path / "data"), "--out", str(tmp_path / "p.png"), "--count", "4"])
    sheet = Image.open(tmp_path / "p.png")
    assert sheet.size == (4 * 256 + 3 * 4, 256)  # four 128 px tiles at zoom 2
    assert Image.open(tmp_path / "p_source.png").size[0] > 0
    main(["demo", "--out", str(tmp_path / "demo"), "--videos", "2", "--frames", "4", "--batch", "4",
          "--epochs", "1", "--workers", "0"])
    out = capsys.readouterr().out
    assert "augmenting" in out and (tmp_path / "demo" / "preview.png").exists()
    demo = tmp_path / "demo"
    assert Image.open(demo / "preview_webcam.png").size == Image.open(demo / "preview.png").size  # camera ops


def test_synth_takes_a_negative_seed(tmp_path) -> None:
    """write_dataset(seed=-1) is seed 2^64 - 1 (two's complement, as torch reads a seed), not seed 1."""
    from gpuaug.synth.write import write_dataset

    def images(seed: int) -> bytes:
        path = write_dataset(tmp_path / str(seed), videos=1, frames=1, seed=seed)[0]
        with np.load(path) as data:
            return data["colorImages"].tobytes()

    assert images(-1) == images(2**64 - 1) != images(1)
