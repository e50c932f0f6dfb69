"""Bad input through the CLI: user errors are one line and exit 2; broken samples are skipped and counted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from mmrft.cli import main


def write_config(path: Path, **values) -> Path:
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def error_line(capsys, command: str = "train") -> str:
    """The single user-facing error line on stderr (progress bars may precede it; tracebacks may not)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith(f"mmrft {command}: error:")]
    assert len(errors) == 1, err
    assert err.rstrip().splitlines()[-1] == errors[0]
    return errors[0]


@pytest.fixture
def sft_config(tmp_path, tiny_model_dir, grounding_data):
    return write_config(
        tmp_path / "sft.yaml",
        stage="sft",
        model={"name_or_path": str(tiny_model_dir("qwen2_5_vl"))},
        data={"train": str(grounding_data.train)},
        batch_size=2,
        max_steps=2,
        eval_before_after=False,
        progress_bar=False,
        output_dir=str(tmp_path / "run"),
    )


def test_unknown_config_key_exits_2_with_one_line(sft_config, capsys):
    assert main(["train", str(sft_config), "optim.lrr=1"]) == 2
    line = error_line(capsys)
    assert "'optim.lrr'" in line and "did you mean 'lr'" in line


def test_unknown_key_in_yaml_file_exits_2(tmp_path, capsys):
    path = write_config(tmp_path / "c.yaml", stage="sft", data={"train": "x.jsonl"}, generation={"max_tokens": 3})
    assert main(["train", str(path)]) == 2
    assert "'generation.max_tokens'" in error_line(capsys)


def test_unreachable_model_exits_2_naming_it(sft_config, tmp_path, capsys):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    code = main(
        ["train", str(sft_config), "model.name_or_path=nonexistent-org/nonexistent-model", "--output-dir", str(tmp_path / "r")]
    )
    assert code == 2
    assert "nonexistent-org/nonexistent-model" in error_line(capsys)


def test_local_dir_without_model_and_unknown_tiny_arch_exit_2(sft_config, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", str(sft_config), f"model.name_or_path={empty}"]) == 2
    assert str(empty) in error_line(capsys)
    assert main(["train", str(sft_config), "model.name_or_path=tiny:qwen9_vl"]) == 2
    line = error_line(capsys)
    assert "tiny:qwen9_vl" in line and "qwen2_5_vl" in line


def test_tiny_spec_builds_into_the_configured_cache():
    from mmrft.policies.loading import resolve_model

    path = Path(resolve_model("tiny:qwen2_vl"))
    assert path.parent == Path(os.environ["MMRFT_CACHE"]) / "models"
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert resolve_model("tiny:qwen2_vl") == str(path)  # cached: the second call reuses it


@pytest.fixture
def broken_train_set(tmp_path, grounding_data) -> tuple[Path, list[str]]:
    """A JSONL of 6 good samples with 4 broken ones right after the first (shuffle off)."""
    good = [json.loads(line) for line in Path(grounding_data.train).read_text().splitlines()[:6]]
    for sample in good:  # point the relative image paths at the fixture's images
        item = sample["messages"][0]["content"][0]
        item["image"] = str(Path(grounding_data.dir) / item["image"])
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))

    def broken(sample_id: str, image: str, solution) -> dict:
        sample = json.loads(json.dumps(good[0]))
        sample["id"] = sample_id
        sample["messages"][0]["content"][0]["image"] = image
        sample["solution"] = solution
        sample.pop("image_size")
        return sample

    bad = [
        broken("bad-missing-image", "images/does-not-exist.png", [10, 10, 40, 40]),
        broken("bad-corrupt-image", str(corrupt), [10, 10, 40, 40]),
        broken("bad-solution", good[0]["messages"][0]["content"][0]["image"], [10, 10, 5]),
    ]
    lines = [json.dumps(good[0])] + [json.dumps(b) for b in bad] + ['{"id": "bad-json", '] + [json.dumps(g) for g in good[1:]]
    path = tmp_path / "data" / "train.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(lines) + "\n")
    return path, [b["id"] for b in bad] + ["train.jsonl:5"]


def test_broken_samples_are_skipped_and_counted(sft_config, broken_train_set, tmp_path, capsys):
    path, bad_ids = broken_train_set
    out = tmp_path / "run-skip"
    code = main(["train", str(sft_config), f"data.train={path}", "data.shuffle=false", "--output-dir", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    # Step 1 takes good[0], then meets all 4 broken samples before good[1]; step 2 meets none.
    assert rows[0]["data/skipped"] == len(bad_ids) == 4
    assert rows[1]["data/skipped"] == 4
    assert all(r["loss"] > 0 for r in rows)
    assert (out / "checkpoints" / "step-000002" / "model.safetensors").is_file()


def test_broken_sample_with_raise_exits_2_naming_it(sft_config, broken_train_set, tmp_path, capsys):
    path, bad_ids = broken_train_set
    code = main(
        ["train", str(sft_config), f"data.train={path}", "data.shuffle=false", "data.on_bad_sample=raise",
         "--output-dir", str(tmp_path / "run-raise")]
    )
    assert code == 2
    line = error_line(capsys)
    assert bad_ids[0] in line and "image not found" in line
