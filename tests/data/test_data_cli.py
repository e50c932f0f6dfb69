"""``mmrft data inspect`` and ``mmrft data convert`` on real parquet files."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest

from mmrft.cli import main
from mmrft.data.jsonl import JsonlDataset
from mmrft.data.sources import open_dataset
from tests.data.layouts import layout_rows


@pytest.fixture(scope="module")
def easyr1_parquet(tmp_path_factory, grounding_data):
    reference = JsonlDataset(grounding_data.train)
    samples = [reference[i] for i in range(len(reference))]
    columns, features = layout_rows("easyr1", samples)
    columns["images"][4] = [{"bytes": b"truncated", "path": None}]
    columns["answer"][6] = "[9, 9, 2, 2]"
    path = tmp_path_factory.mktemp("easyr1") / "train.parquet"
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(path))
    return path, samples


def test_inspect_shows_columns_preset_samples_and_failures(easyr1_parquet, capsys):
    path, samples = easyr1_parquet
    assert main(["data", "inspect", str(path), "--task", "grounding"]) == 0
    out = capsys.readouterr().out
    assert f"source: {path} (16 rows)" in out
    assert "columns: problem, answer, images" in out
    assert "preset: easyr1  (presets the columns fit: easyr1)" in out
    assert "roles: problem <- problem, images <- images, solution <- answer; task: grounding" in out
    assert out.count("\nsample ") == 3
    text = samples[0]["messages"][0]["content"][1]["text"]
    assert f"  user: <image: embedded, {len(open(samples[0]['messages'][0]['content'][0]['image'], 'rb').read())} bytes> {text}" in out
    assert f"  solution: {samples[0]['solution']}" in out
    assert "validation: 14 of 16 rows checked are valid" in out
    assert "  1 x corrupt image  (first: train:4: embedded image (cannot identify image file))" in out
    assert "  1 x grounding solution needs x1 < x2 and y1 < y2, got [9, 9, 2, 2]  (first: train:6)" in out


def test_inspect_unknown_layout_is_one_error_without_traceback(tmp_path, capsys):
    path = tmp_path / "odd.parquet"
    datasets.Dataset.from_dict({"question": ["q"], "bbox": [[1, 2, 3, 4]]}).to_parquet(str(path))
    assert main(["data", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "mmrft data: error: no column layout fits the columns found: question, bbox\n" in err and "Traceback" not in err
    assert "easyr1: problem, answer [lacks problem, answer]" in err


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_convert_writes_the_valid_rows(easyr1_parquet, tmp_path, capsys, fmt):
    path, samples = easyr1_parquet
    out = tmp_path / "out"
    assert main(["data", "convert", str(path), "--task", "grounding", "--out", str(out), "--format", fmt]) == 0
    assert "wrote 14 samples" in capsys.readouterr().out
    converted = JsonlDataset(out / "train.jsonl") if fmt == "jsonl" else open_dataset(out / "train.parquet")
    kept = [i for i in range(16) if i not in (4, 6)]
    assert len(converted) == 14
    for j, i in enumerate(kept):
        sample = converted[j]
        assert sample["id"] == f"train:{i}" and sample["task"] == "grounding"
        assert sample["solution"] == samples[i]["solution"]
    from qwen_vl_utils import fetch_image

    image = converted[3]["messages"][0]["content"][0]
    if fmt == "jsonl":
        assert image["image"].startswith(str(out / "media")) and image["image"].endswith(".png")
    else:
        assert converted.columns.preset == "mmrft"
    assert np.array_equal(np.asarray(fetch_image(image)), np.asarray(fetch_image(samples[kept[3]]["messages"][0]["content"][0])))


def test_eval_scores_a_parquet_split_as_its_jsonl(easyr1_parquet, grounding_data, tiny_model_dir, tmp_path, capsys):
    path, _ = easyr1_parquet
    model = str(tiny_model_dir("qwen2_5_vl"))
    common = ["--model", model, "--limit", "6", "--max-new-tokens", "8"]
    assert main(["eval", *common, "--data", str(grounding_data.train), "--output-dir", str(tmp_path / "jsonl")]) == 0
    assert main(["eval", *common, "--data", str(path), "--task", "grounding", "--output-dir", str(tmp_path / "parquet")]) == 0
    a = json.loads((tmp_path / "jsonl" / "eval.json").read_text())
    b = json.loads((tmp_path / "parquet" / "eval.json").read_text())
    assert a["n"] == b["n"] == 6
    assert b["failures"]["bad_sample"] == 1  # row 4's corrupt image; the others decode as the JSONL's
    rows_a = [json.loads(line) for line in (tmp_path / "jsonl" / "samples.jsonl").read_text().splitlines()]
    rows_b = [json.loads(line) for line in (tmp_path / "parquet" / "samples.jsonl").read_text().splitlines()]
    for i in (0, 1, 2, 3, 5):
        assert rows_b[i]["prediction"] == rows_a[i]["prediction"] and rows_b[i]["score"] == rows_a[i]["score"]
    assert rows_b[4]["failure"] == "bad_sample"
