"""Hugging Face datasets as data.train / data.heldout: sources, presets, embedded images, bad rows."""

from __future__ import annotations

import base64
import json
import shutil

import datasets
import numpy as np
import pytest
from PIL import Image

from mmrft.config import ConfigError, DataConfig
from mmrft.data.columns import LayoutError, coerce_solution
from mmrft.data.errors import SampleError
from mmrft.data.jsonl import JsonlDataset
from mmrft.data.sources import ParquetRows, RowDataset, open_config_data, open_dataset
from mmrft.data.synthetic import write_synthetic_split
from mmrft.data.validate import check_sample
from mmrft.training.stream import SampleStream
from tests.data.layouts import PRESET_TASK, layout_rows, write_layout

PRESETS = ("trl", "easyr1", "vlm_r1")


@pytest.fixture(scope="module")
def reference(grounding_data):
    dataset = JsonlDataset(grounding_data.train)
    return [dataset[i] for i in range(len(dataset))]


def _pixels(sample: dict) -> np.ndarray:
    from qwen_vl_utils import fetch_image

    item = next(i for i in sample["messages"][0]["content"] if i["type"] == "image")
    return np.asarray(fetch_image(item))


def _text(sample: dict) -> list:
    return [(i["type"], i.get("text")) for i in sample["messages"][0]["content"]]


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_gives_the_jsonl_samples(tmp_path, reference, preset):
    path = write_layout(preset, reference, tmp_path / f"{preset}.parquet")
    dataset = open_dataset(path, PRESET_TASK)
    assert isinstance(dataset, RowDataset) and dataset.columns.preset == preset
    assert len(dataset) == len(reference)
    for i in (0, 5, len(reference) - 1):
        sample, expected = dataset[i], reference[i]
        check_sample(sample)
        assert sample["task"] == "grounding"
        assert sample["solution"] == expected["solution"]
        assert sample["image_size"] == expected["image_size"] == [112, 112]
        assert _text(sample) == [("image", None), ("text", expected["messages"][0]["content"][1]["text"])]
        assert sample["messages"][0]["content"][0]["image"].startswith("data:image;base64,")
        assert np.array_equal(_pixels(sample), _pixels(expected))
    if preset == "vlm_r1":
        assert dataset[3]["id"] == reference[3]["id"]
    else:
        assert dataset[3]["id"] == f"{preset}:3"


def test_mmrft_parquet_from_the_synthetic_generator_matches_its_jsonl(tmp_path):
    jsonl = write_synthetic_split("counting", "train", tmp_path / "j", n=30, seed=3)
    parquet = write_synthetic_split("counting", "train", tmp_path / "p", n=30, seed=3, format="parquet")
    assert parquet.name == "train.parquet" and sorted(p.name for p in (tmp_path / "p").iterdir()) == ["train.parquet"]
    a, b = JsonlDataset(jsonl), open_dataset(parquet)
    assert b.columns.preset == "mmrft" and len(b) == 30
    for i in (0, 17, 29):
        x, y = a[i], b[i]
        assert {k: v for k, v in x.items() if k != "messages"} == {k: v for k, v in y.items() if k != "messages"}
        assert _text(x) == _text(y) and np.array_equal(_pixels(x), _pixels(y))
        embedded = base64.b64decode(y["messages"][0]["content"][0]["image"].split(",", 1)[1])
        assert open(x["messages"][0]["content"][0]["image"], "rb").read() == embedded  # the PNG's bytes, as written
    # datasets itself reads the file and decodes the embedded column as images
    loaded = datasets.load_dataset("parquet", data_files=str(parquet), split="train")
    assert isinstance(loaded.features["images"], datasets.List) and loaded[0]["images"][0].size == (112, 112)


def test_every_local_source_kind_reads_the_same_rows(tmp_path, reference):
    columns, features = layout_rows("trl", reference)
    ds = datasets.Dataset.from_dict(columns, features=features)
    ds.save_to_disk(str(tmp_path / "saved"))
    hub = tmp_path / "hub" / "data"
    hub.mkdir(parents=True)
    ds.select(range(8)).to_parquet(str(hub / "train-00000-of-00002.parquet"))
    ds.select(range(8, 16)).to_parquet(str(hub / "train-00001-of-00002.parquet"))
    ds.remove_columns("image").to_json(str(tmp_path / "rows.json"))
    arrow = next((tmp_path / "saved").glob("*.arrow"))
    sources = {
        "saved": str(tmp_path / "saved"),
        "arrow": str(arrow),
        "folder": str(tmp_path / "hub"),
        "hf": f"hf:{tmp_path / 'hub'}:train",  # datasets.load_dataset's hub code path, on a local folder
        "hf-default-split": f"hf:{tmp_path / 'hub'}",
    }
    want = [reference[i]["solution"] for i in (0, 9, 15)]
    for name, source in sources.items():
        dataset = open_dataset(source, PRESET_TASK)
        assert len(dataset) == 16, name
        assert [dataset[i]["solution"] for i in (0, 9, 15)] == want, name
        assert np.array_equal(_pixels(dataset[9]), _pixels(reference[9])), name
    text_only = open_dataset(tmp_path / "rows.json", PRESET_TASK)  # JSON through datasets' json builder
    assert text_only[9]["solution"] == want[1] and "image_size" not in text_only[9]


def test_vlm_r1_jsonl_with_relative_paths_and_answer_tags(tmp_path, reference):
    (tmp_path / "imgs").mkdir()
    lines = []
    for i, sample in enumerate(reference[:4]):
        image = sample["messages"][0]["content"][0]["image"]
        shutil.copy(image, tmp_path / "imgs" / f"{i}.png")
        text = sample["messages"][0]["content"][1]["text"]
        answer = f"<answer>{json.dumps(sample['solution'])}</answer>"
        lines.append({"id": i, "image": f"imgs/{i}.png", "conversations": [{"from": "human", "value": f"<image>{text}"}, {"from": "gpt", "value": answer}]})
    path = tmp_path / "rec.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    dataset = open_dataset(path, PRESET_TASK)
    assert dataset.columns.preset == "vlm_r1"
    sample = dataset[2]
    check_sample(sample)
    assert sample["id"] == "2" and sample["solution"] == reference[2]["solution"]
    assert sample["messages"][0]["content"][0]["image"] == str(tmp_path / "imgs" / "2.png")


def test_unknown_layout_is_one_error_naming_columns_and_presets(tmp_path):
    path = tmp_path / "odd.parquet"
    datasets.Dataset.from_dict({"question": ["q"], "img": ["a.png"], "bbox": [[1, 2, 3, 4]]}).to_parquet(str(path))
    with pytest.raises(LayoutError) as err:
        open_dataset(path)
    message = str(err.value)
    assert "columns found: question, img, bbox" in message
    for preset in ("trl", "easyr1", "vlm_r1", "mmrft"):
        assert f"  {preset}: " in message
    assert "trl: prompt, solution [lacks prompt, solution]" in message
    # renaming the roles makes it fit; the same error through the config names the key
    dataset = open_dataset(path, {"prompt": "question", "images": "img", "solution": "bbox", "task": "grounding"})
    assert dataset.columns.preset == "trl"
    assert dataset[0]["solution"] == [1, 2, 3, 4]
    assert dataset[0]["messages"][0]["content"][0] == {"type": "image", "image": str(tmp_path / "a.png")}
    with pytest.raises(ConfigError, match="^data.train: no column layout fits"):
        open_config_data(DataConfig(train=str(path)))
    with pytest.raises(LayoutError, match="unknown key 'image'; valid: preset, task, messages"):
        open_dataset(path, {"image": "img"})
    with pytest.raises(LayoutError, match="data.columns.problem: preset trl has no such role; its roles: prompt, images"):
        open_dataset(path, {"preset": "trl", "problem": "question"})
    with pytest.raises(LayoutError, match="data.columns.solution: no column 'answer'; columns found: question, img, bbox"):
        open_dataset(path, {"preset": "trl", "prompt": "question", "solution": "answer"})


def test_bad_rows_are_skipped_and_counted(tmp_path, reference):
    columns, features = layout_rows("easyr1", reference[:6])
    columns["images"][1] = [{"bytes": b"\x89PNG not really", "path": None}]  # corrupt embedded image
    columns["answer"][2] = "[5, 5, 1, 1]"  # inverted box
    columns["problem"][3] = "<image><image>two placeholders, one image"
    path = tmp_path / "bad.parquet"
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(path))
    dataset = open_dataset(path, PRESET_TASK)
    stream = SampleStream(dataset, seed=0, shuffle=False)
    batch = stream.next_batch(3)
    assert [s["solution"] for s in batch] == [reference[i]["solution"] for i in (0, 4, 5)]
    assert sum(stream.skipped.values()) == 3
    assert stream.skipped["corrupt image"] == 1
    assert stream.skipped["cannot convert the row"] == 1
    assert stream.skipped["grounding solution needs x1 < x2 and y1 < y2, got [5, 5, 1, 1]"] == 1
    assert sorted(stream.skipped_ids) == ["bad:1", "bad:2", "bad:3"]  # no id column: file stem and row


def test_parquet_rows_hold_at_most_two_row_groups(tmp_path, reference):
    path = write_layout("trl", reference, tmp_path / "t.parquet")
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    pq.write_table(table, tmp_path / "small.parquet", row_group_size=3)
    rows = ParquetRows([tmp_path / "small.parquet"])
    assert len(rows) == 16 and len(rows._groups) == 6
    for i in (15, 0, 7, 8, 3):
        assert rows.row(i)["solution"] == reference[i]["solution"]
        assert len(rows._cache) <= 2


def test_images_as_pil_bytes_and_paths(tmp_path, reference):
    from mmrft.data.columns import ColumnMap

    image = Image.open(reference[0]["messages"][0]["content"][0]["image"])
    raw = open(reference[0]["messages"][0]["content"][0]["image"], "rb").read()
    mapping = ColumnMap.from_config({"task": "counting"}, ["prompt", "images", "solution"], tmp_path)
    for value in (image, raw, {"bytes": raw, "path": "x.png"}, {"bytes": None, "path": "x.png"}, "x.png"):
        sample = mapping.to_sample({"prompt": "How many?", "images": [value], "solution": "3"}, 0)
        assert sample["solution"] == 3
        got = sample["messages"][0]["content"][0]["image"]
        if isinstance(value, str) or (isinstance(value, dict) and value["bytes"] is None):
            assert got == str(tmp_path / "x.png")
        else:
            assert np.array_equal(_pixels(sample), _pixels(reference[0]))
    with pytest.raises(SampleError, match="cannot read an image from a int"):
        mapping.to_sample({"prompt": "p", "images": [3], "solution": "3"}, 7)


@pytest.mark.parametrize(
    ("task", "given", "expected"),
    [
        ("grounding", "[1, 2, 3, 4]", [1, 2, 3, 4]),
        ("grounding", " <answer>[1, 2, 3, 4]</answer> ", [1, 2, 3, 4]),
        ("grounding", [1, 2, 3, 4], [1, 2, 3, 4]),
        ("counting", "3", 3),
        ("vqa", "cat", ["cat"]),
        ("vqa", '["cat", "kitten"]', ["cat", "kitten"]),
        ("classification", "circle", "circle"),
        ("multiple_choice", "<answer>B</answer>", "B"),
        ("grounding", "not a box", "not a box"),  # left for validation to report
        ("grounding", "[5, 5, 1, 1]", [5, 5, 1, 1]),  # parsed, so validation says what is wrong
        ("no_such_task", "3", "3"),
    ],
)
def test_coerce_solution(task, given, expected):
    assert coerce_solution(task, given) == expected


def test_synthetic_parquet_from_a_config(tmp_path):
    from mmrft.config import TrainConfig, from_dict
    from mmrft.training.trainer import prepare_data

    spec = {"task": "classification", "train": 12, "heldout": 4, "seed": 1, "format": "parquet"}
    data = {"train": str(tmp_path / "d" / "train.parquet"), "heldout": str(tmp_path / "d" / "heldout.parquet"), "synthetic": spec}
    config = from_dict(TrainConfig, {"data": data, "rewards": [{"name": "classification"}]})
    prepare_data(config)
    prepare_data(config)  # the recorded spec (format included) matches: no regeneration, no error
    train, heldout = open_config_data(config.data)
    assert (len(train), len(heldout)) == (12, 4) and train.columns.preset == "mmrft"
    check_sample(train[11])
    assert json.loads((tmp_path / "d" / "synthetic.json").read_text())["format"] == "parquet"


def test_trl_conversational_prompts_and_easyr1_videos(tmp_path, reference):
    image = open(reference[1]["messages"][0]["content"][0]["image"], "rb").read()
    text = reference[1]["messages"][0]["content"][1]["text"]
    conversational = [{"role": "user", "content": [{"type": "text", "text": "Look: "}, {"type": "image"}, {"type": "text", "text": text}]}]
    path = tmp_path / "conv.parquet"
    datasets.Dataset.from_dict(
        {"prompt": [conversational], "images": [[{"bytes": image, "path": None}]], "solution": [reference[1]["solution"]]},
        features=datasets.Features({
            "prompt": datasets.List({"role": datasets.Value("string"), "content": datasets.List({"type": datasets.Value("string"), "text": datasets.Value("string")})}),
            "images": datasets.List(datasets.Image()),
            "solution": datasets.List(datasets.Value("int64")),
        }),
    ).to_parquet(str(path))
    sample = open_dataset(path, PRESET_TASK)[0]
    check_sample(sample)
    assert _text(sample) == [("text", "Look: "), ("image", None), ("text", text)]  # the image where its placeholder was
    assert np.array_equal(_pixels(sample), _pixels(reference[1])) and sample["solution"] == reference[1]["solution"]

    rows = tmp_path / "video.jsonl"
    rows.write_text(json.dumps({"problem": "<video>When is the red circle visible?", "answer": "[1.5, 3.0]", "videos": ["clips/a.mp4"]}) + "\n")
    sample = open_dataset(rows, {"task": "temporal_grounding"})[0]
    assert sample["messages"][0]["content"] == [
        {"type": "video", "video": str(tmp_path / "clips" / "a.mp4")},
        {"type": "text", "text": "When is the red circle visible?"},
    ]
    assert sample["solution"] == [1.5, 3.0]
    with pytest.raises(SampleError, match="video not found"):
        check_sample(sample)  # a missing video is a bad sample, skipped in training
