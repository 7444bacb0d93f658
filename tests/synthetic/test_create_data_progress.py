"""create_data's generators show progress (mmengine's bar: count, rate, elapsed, ETA) on stdout (tiny sizes)."""

import re

from perception_mtl.apis.create_data import main as create_data

# mmengine's ProgressBar line once done, e.g. "[>>>>] 2/2, 3.1 task/s, elapsed: 1s, ETA:     0s".
DONE = r"\] {n}/{n}, [\d.]+ task/s, elapsed: \d+s, ETA:\s+0s"


def test_synthetic_nuscenes_shows_progress(tmp_path, capsys):
    create_data(
        [
            "synthetic", "--out-dir", str(tmp_path), "--scenes", "1", "--samples-per-scene", "2",
            "--sweeps-per-sample", "0", "--image-width", "48", "--workers", "1", "--no-occupancy", "--no-gt-database",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "simulating 2 synthetic nuScenes samples" in out
    assert re.search(DONE.format(n=2), out), out[-2000:]  # the simulated samples, then the info files' key frames


def test_faces_show_progress(tmp_path, capsys):
    create_data(
        ["faces", "--out-dir", str(tmp_path), "--num-train", "2", "--num-val", "1", "--num-pose-eval", "1",
         "--img-size", "32", "--max-faces", "1"]
    )  # fmt: skip
    assert re.search(DONE.format(n=4), capsys.readouterr().out)


def test_cvgl_shows_progress(tmp_path, capsys):
    create_data(
        ["cvgl", "--out-dir", str(tmp_path), "--num-samples", "3", "--width", "32", "--height", "24", "--workers", "1"]
    )
    assert re.search(DONE.format(n=3), capsys.readouterr().out)
