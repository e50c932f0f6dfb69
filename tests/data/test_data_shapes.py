"""Synthetic shapes: determinism, split definitions, pixel-exact boxes, and valid output."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmrft.data import JsonlDataset, check_sample
from mmrft.data.synthetic import SPLITS, TASKS, make_sample, write_split
from mmrft.data.synthetic.__main__ import main
from mmrft.data.synthetic.shapes import COLOURS

FIXTURE = Path(__file__).parents[2] / "datasets" / "shapes_grounding" / "fixture"


def _colour_box(pixels, colour, box):
    """Tight box of `colour` pixels within `box` grown by 1 px, and how many there are.

    Shapes sit at least 2 px apart, so the grown box holds only this shape's pixels, and a box
    too small on any side would leave coloured pixels on its 1 px border.
    """
    x1, y1, x2, y2 = box
    left, top = max(x1 - 1, 0), max(y1 - 1, 0)
    window = pixels[top : y2 + 1, left : x2 + 1]
    ys, xs = np.nonzero(np.all(window == COLOURS[colour], axis=-1))
    return [
        int(xs.min()) + left,
        int(ys.min()) + top,
        int(xs.max()) + left + 1,
        int(ys.max()) + top + 1,
    ], len(xs)


def _samples(task, split, n=40, seed=0):
    return [make_sample(task, split, i, seed)[0] for i in range(n)]


def test_same_seed_gives_byte_identical_files_and_other_seeds_differ(tmp_path):
    runs = {
        name: write_split("grounding", "train", tmp_path / name, 6, seed=seed)
        for name, seed in [("a", 3), ("b", 3), ("c", 4)]
    }
    assert runs["a"].read_bytes() == runs["b"].read_bytes()
    assert runs["a"].read_bytes() != runs["c"].read_bytes()
    for image in (tmp_path / "a" / "images").iterdir():
        assert image.read_bytes() == (tmp_path / "b" / "images" / image.name).read_bytes()


def test_splits_do_not_share_images_or_file_names(tmp_path):
    train = write_split("classification", "train", tmp_path, 30)
    heldout = write_split("classification", "heldout", tmp_path, 30)
    assert len(list((tmp_path / "images").iterdir())) == 60
    digests = {
        split.stem: {
            hashlib.sha256(open(s["messages"][0]["content"][0]["image"], "rb").read()).digest()
            for s in JsonlDataset(split)
        }
        for split in (train, heldout)
    }
    assert not digests["train"] & digests["heldout"]


@pytest.mark.parametrize(
    "task, split, counts",
    [
        ("grounding", "train", {1, 2, 3}),
        ("grounding", "heldout", {3, 4}),
        ("counting", "train", {1, 2, 3, 4}),
        ("counting", "heldout", {5}),
        ("classification", "train", {1}),
        ("classification", "heldout", {1}),
    ],
)
def test_shape_counts_follow_the_split(task, split, counts):
    seen = {len(s["meta"]["shapes"]) for s in _samples(task, split)}
    assert seen == counts
    if task == "counting":
        assert {s["solution"] for s in _samples(task, split)} == counts


def test_heldout_classification_sizes_lie_outside_the_train_range():
    def widths(split):
        return {
            s["meta"]["shapes"][0]["box"][2] - s["meta"]["shapes"][0]["box"][0]
            for s in _samples("classification", split, 80)
        }

    assert widths("train") <= set(range(18, 31))
    heldout = widths("heldout")
    assert heldout <= set(range(14, 18)) | set(range(31, 37))
    assert heldout & set(range(14, 18)) and heldout & set(range(31, 37))


@pytest.mark.parametrize("task, split", sorted(SPLITS))
def test_boxes_tightly_bound_each_shapes_pixels(task, split):
    for index in range(15):
        sample, image = make_sample(task, split, index, seed=1, image_size=(128, 112))
        pixels = np.asarray(image)
        assert image.size == (128, 112) and sample["image_size"] == [128, 112]
        shapes = sample["meta"]["shapes"]
        assert len({(s["colour"], s["shape"]) for s in shapes}) == len(shapes)
        found = dict.fromkeys(COLOURS, 0)
        for shape in shapes:
            x1, y1, x2, y2 = shape["box"]
            assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 112
            box, count = _colour_box(pixels, shape["colour"], shape["box"])
            assert box == shape["box"]
            found[shape["colour"]] += count
        for colour, rgb in COLOURS.items():  # no coloured pixel lies outside every box
            assert np.all(pixels == rgb, axis=-1).sum() == found[colour]
        if task == "grounding":
            target = shapes[sample["meta"]["target"]]
            assert sample["solution"] == target["box"]
            assert (
                f"Locate the {target['colour']} {target['shape']}."
                in sample["messages"][0]["content"][1]["text"]
            )


def test_grounding_solution_matches_pixels_of_the_written_png(tmp_path):
    for sample in JsonlDataset(write_split("grounding", "heldout", tmp_path, 10)):
        pixels = np.asarray(Image.open(sample["messages"][0]["content"][0]["image"]).convert("RGB"))
        target = sample["meta"]["shapes"][sample["meta"]["target"]]
        assert _colour_box(pixels, target["colour"], sample["solution"])[0] == sample["solution"]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_cli_writes_both_splits_that_pass_check_sample(tmp_path, task):
    main(["--task", task, "--out", str(tmp_path), "--train", "12", "--heldout", "6", "--seed", "2"])
    for split, n in (("train", 12), ("heldout", 6)):
        dataset = JsonlDataset(tmp_path / f"{split}.jsonl")
        assert len(dataset) == n
        for sample in dataset:
            check_sample(sample)
            assert sample["id"].startswith(f"shapes_{task}-{split}-")
            assert sample["messages"][0]["content"][1]["text"].endswith("</answer>.")


def test_unknown_task_or_split_lists_known_names():
    with pytest.raises(ValueError, match="known tasks: grounding, classification, counting"):
        make_sample("dance", "train", 0)
    with pytest.raises(ValueError, match="known splits: heldout, train"):
        make_sample("grounding", "test", 0)


def test_committed_fixture_matches_the_generator():
    for split in ("train", "heldout"):
        for line in (FIXTURE / f"{split}.jsonl").read_text().splitlines():
            committed = json.loads(line)
            index = int(committed["id"].rsplit("-", 1)[1])
            sample, image = make_sample("grounding", split, index, seed=0)
            assert committed == sample
            on_disk = Image.open(FIXTURE / sample["messages"][0]["content"][0]["image"]).convert(
                "RGB"
            )
            assert np.array_equal(np.asarray(on_disk), np.asarray(image))


def test_an_interrupted_split_leaves_no_jsonl_to_be_mistaken_for_data(tmp_path):
    from mmrft.data.synthetic.writer import write_samples

    def make(index):
        if index == 2:
            raise KeyboardInterrupt
        return make_sample("grounding", "train", index)

    with pytest.raises(KeyboardInterrupt):
        write_samples(tmp_path, "train", 5, make, lambda image, path: image.save(path))
    assert not (tmp_path / "train.jsonl").exists()
