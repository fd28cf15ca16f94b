"""Bad frames: a clip with an empty, truncated or undecodable frame is dropped at load with its
file and reason (or stops the load with on_bad_frame="error"); `mer data check --deep`
decodes every frame and lists the unreadable ones; a run reports every drop in metrics.json."""
import numpy as np
import pytest

from mer import data
from mer.cli import main
from mer.data.clips import frame_problem
from mer.data.synth import SynthConfig, generate


@pytest.fixture()
def broken(tmp_path):
    root = generate(tmp_path / "synth", SynthConfig(subjects=3, clips_per_subject=4, size=64, frames=(8, 10),
                                                    workers=1), progress=False)
    clips = data.load("synth", root).clips
    a, b, c = (clips.iloc[i] for i in (0, 5, 9))
    cut = a["frames"][3]
    with open(cut, "rb") as fh:
        whole = fh.read()
    with open(cut, "wb") as fh:
        fh.write(whole[: len(whole) // 2])
    with open(b["frames"][1], "wb"):
        pass
    # a middle frame with intact JPEG markers but nothing a decoder can read: only --deep sees it
    rng = np.random.default_rng(0)
    with open(c["frames"][2], "wb") as fh:
        fh.write(b"\xff\xd8" + rng.integers(0, 255, 500, dtype=np.uint8).tobytes().replace(b"\xff", b"\x00")
                 + b"\xff\xd9")
    return root, {"cut": (a, cut), "empty": (b, b["frames"][1]), "garbage": (c, c["frames"][2])}


def test_frame_problems_are_named():
    assert frame_problem("/no/such/img1.jpg").startswith("cannot be read")


def test_a_clip_with_a_bad_frame_is_dropped_with_its_file_and_reason(broken):
    root, faults = broken
    table = data.load("synth", root)
    assert len(table.clips) == 10
    reasons = dict(zip(table.dropped["clip"], table.dropped["reason"]))
    (a, cut), (b, empty) = faults["cut"], faults["empty"]
    assert reasons[a["clip"]] == f"unreadable frame {cut}: truncated JPEG (no end-of-image marker)"
    assert reasons[b["clip"]] == f"unreadable frame {empty}: empty file (0 bytes)"
    assert "unreadable frame" in table.summary() and str(cut) in table.summary()
    with pytest.raises(ValueError, match=r"2 clip\(s\) with a frame that cannot be read") as err:
        data.load("synth", root, on_bad_frame="error")
    assert str(cut) in str(err.value) and str(empty) in str(err.value)
    with pytest.raises(ValueError, match="on_bad_frame must be one of"):
        data.load("synth", root, on_bad_frame="skip")


def test_data_check_deep_decodes_every_frame(broken, capsys):
    root, faults = broken
    garbage = faults["garbage"][1]
    assert main(["data", "check", str(root), "--dataset", "synth"]) == 0  # the quick check: drops listed
    assert "unreadable frame" in capsys.readouterr().out
    assert main(["data", "check", str(root), "--dataset", "synth", "--deep", "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert f"{garbage}: not a readable image" in out and "deep check: 1 of" in out
