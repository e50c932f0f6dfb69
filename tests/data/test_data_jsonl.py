"""JsonlDataset: lazy line access, media path resolution, and errors for bad lines."""

import json

import pytest

from mmrft.data import JsonlDataset, SampleError


def _sample(sample_id: str, *media: dict) -> dict:
    content = [*media, {"type": "text", "text": "q"}]
    return {
        "id": sample_id,
        "task": "counting",
        "solution": 1,
        "messages": [{"role": "user", "content": content}],
    }


def _write(path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_len_skips_blank_lines_and_items_follow_file_order(tmp_path):
    path = tmp_path / "d.jsonl"
    _write(
        path,
        [json.dumps(_sample("a")), "", "   ", json.dumps(_sample("b")), json.dumps(_sample("c"))],
    )
    dataset = JsonlDataset(path)
    assert len(dataset) == 3
    assert [dataset[i]["id"] for i in range(3)] == ["a", "b", "c"]
    assert dataset[-1]["id"] == "c"
    with pytest.raises(IndexError):
        dataset[3]
    with pytest.raises(IndexError):
        dataset[-4]


def test_rows_are_read_on_access_not_at_construction(tmp_path):
    path = tmp_path / "d.jsonl"
    _write(path, [json.dumps(_sample("aaa")), json.dumps(_sample("bbb"))])
    dataset = JsonlDataset(path)
    # Rewrite the second line in place with the same length: a lazy reader sees the change.
    path.write_text(path.read_text().replace('"bbb"', '"zzz"'), encoding="utf-8")
    assert dataset[1]["id"] == "zzz"


def test_each_access_returns_a_fresh_dict(tmp_path):
    path = tmp_path / "d.jsonl"
    _write(path, [json.dumps(_sample("a"))])
    dataset = JsonlDataset(path)
    dataset[0]["id"] = "changed"
    assert dataset[0]["id"] == "a"


def test_media_paths_resolve_against_the_jsonl_directory(tmp_path, monkeypatch):
    sub = tmp_path / "sub"
    sub.mkdir()
    untouched = [
        "/abs/x.png",
        "http://h/x.png",
        "https://h/x.png",
        "file:///x.png",
        "data:image/png;base64,AA",
    ]
    sample = _sample(
        "a",
        {"type": "image", "image": "images/1.png"},
        {"type": "image", "image": "../up.png"},
        {"type": "video", "video": "clips/v.mp4", "fps": 2.0},
        {"type": "video", "video": ["f/0.jpg", "/abs/1.jpg"]},
        *({"type": "image", "image": p} for p in untouched),
    )
    path = sub / "d.jsonl"
    _write(path, [json.dumps(sample)])
    monkeypatch.chdir(tmp_path.parent)  # resolution must not depend on the working directory
    content = JsonlDataset(path)[0]["messages"][0]["content"]
    assert content[0]["image"] == str(sub / "images" / "1.png")
    assert content[1]["image"] == str(tmp_path / "up.png")
    assert content[2] == {"type": "video", "video": str(sub / "clips" / "v.mp4"), "fps": 2.0}
    assert content[3]["video"] == [str(sub / "f" / "0.jpg"), "/abs/1.jpg"]
    assert [item["image"] for item in content[4:9]] == untouched
    assert content[9] == {"type": "text", "text": "q"}


@pytest.mark.parametrize(
    "bad_line, reason",
    [('{"id": "x", "messages": [', "invalid JSON"), ("[1, 2]", "expected a JSON object, got list")],
)
def test_bad_line_raises_sample_error_naming_file_and_line(tmp_path, bad_line, reason):
    path = tmp_path / "d.jsonl"
    _write(path, [json.dumps(_sample("a")), "", bad_line, json.dumps(_sample("c"))])
    dataset = JsonlDataset(path)
    assert len(dataset) == 3
    with pytest.raises(SampleError) as info:
        dataset[1]
    assert info.value.sample_id == "d.jsonl:3"
    assert info.value.reason.startswith(reason)
    assert str(info.value).startswith("sample d.jsonl:3: ")
    assert dataset[2]["id"] == "c"
