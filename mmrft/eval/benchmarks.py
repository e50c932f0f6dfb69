"""Benchmarks in their published formats, loaded into mmrft samples that ``evaluate`` scores.

Each loader reads the files as the benchmark publishes them and yields samples of the JSONL
schema (image paths absolute), so the same scorers as training rewards score them:

- ``refcoco`` (RefCOCO / RefCOCO+ / RefCOCOg): refs as JSON (the released ``refs(*).p`` is a
  pickle; mmrft does not unpickle data files: ``python -c "import pickle, json; json.dump(pickle.load(open('refs(unc).p', 'rb')), open('refs.json', 'w'))"``
  converts it, if you trust the file) + COCO ``instances.json``; boxes xywh -> xyxy; one sample per
  referring sentence of the chosen split; task ``grounding`` (Acc@0.5, mean IoU).
- ``screenspot`` (v1 / v2): a JSON list of ``{img_filename, bbox: [x, y, w, h], instruction,
  data_type: text|icon}``; ``screenspot_pro``: ``bbox: [x1, y1, x2, y2]`` and ``img_size``, with
  ``ui_type``; task ``gui_grounding``: point-in-box accuracy (boundaries inclusive), also split
  by text / icon.
- ``vqav2``: questions JSON + annotations JSON (ten answers each); task ``vqa``: VQAv2 accuracy
  with the official answer normalisation.
- ``scienceqa``: ``problems.json`` (``{qid: {question, choices, answer (index), hint, image,
  split}}``) with images at ``images/<split>/<qid>/image.png``; task ``multiple_choice``;
  questions without an image are asked as text.
- ``mathvista``: ``testmini.json``-style ``{pid: {question, image, choices, answer,
  question_type, answer_type, precision, unit}}``; task ``mathvista``, scored after MathVista's
  own answer normalisation.
- ``image_folder``: a classification tree ``root/<class>/<image>``, or ``csv`` with ``image,
  label`` columns; task ``classification``.
- ``coco_detection``: COCO ``instances.json``; task ``detection``: per-image Visual-RFT scores and
  dataset-level COCO AP / AR as pycocotools' ``summarize()`` (crowd regions and the annotations'
  ``area`` for the small / medium / large splits honoured, as pycocotools does).
- ``charades_sta``, ``activitynet_captions``: through the converters of
  :mod:`mmrft.data.converters.temporal`; task ``temporal_grounding``.
- ``mmbench``: the TSV (``index, question, hint, A..D, answer, category, image`` with base64
  images); task ``multiple_choice``; with CircularEval each question is asked once per
  rotation of its options and counts as right only if every rotation is (``accuracy/circular``).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from mmrft.registry import Registry

BENCHMARKS = Registry("benchmark")
GUI_PROMPT = "Click on: {instruction} Answer with the point as <answer>(x, y)</answer>."
REF_PROMPT = "Locate {sentence} Answer with the box as <answer>[x1, y1, x2, y2]</answer>."
VQA_PROMPT = "{question} Answer with a single word or phrase as <answer>...</answer>."


def _user(image: Path | str, text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image", "image": str(image)}, {"type": "text", "text": text}]}]


@BENCHMARKS.register("refcoco")
def load_refcoco(refs: str | Path, instances: str | Path, images: str | Path, split: str = "val") -> Iterator[dict]:
    """One grounding sample per referring sentence of ``split`` (val, testA, testB, test)."""
    if str(refs).endswith(".p"):
        raise ValueError(f"{refs} is a pickle; convert it to JSON first (see mmrft.eval.benchmarks)")
    coco = json.loads(Path(instances).read_text())
    image_info = {img["id"]: img for img in coco["images"]}
    boxes = {ann["id"]: ann["bbox"] for ann in coco["annotations"]}
    for ref in json.loads(Path(refs).read_text()):
        if ref["split"] != split:
            continue
        x, y, w, h = boxes[ref["ann_id"]]
        info = image_info[ref["image_id"]]
        for k, sentence in enumerate(ref["sentences"]):
            yield {
                "id": f"refcoco-{ref['ref_id']}-{k}",
                "task": "grounding",
                "messages": _user(Path(images) / info["file_name"], REF_PROMPT.format(sentence=sentence["sent"].strip() + ".")),
                "solution": [x, y, x + w, y + h],
                "image_size": [info["width"], info["height"]],
                "meta": {"ref_id": ref["ref_id"], "ann_id": ref["ann_id"], "split": split},
            }


def _screenspot(entries: list[dict], images: Path, source: str, xyxy: bool) -> Iterator[dict]:
    for i, entry in enumerate(entries):
        x1, y1, a, b = entry["bbox"]
        box = [x1, y1, a, b] if xyxy else [x1, y1, x1 + a, y1 + b]
        sample = {
            "id": entry.get("id", f"{source}-{i}"),
            "task": "gui_grounding",
            "messages": _user(images / entry["img_filename"], GUI_PROMPT.format(instruction=entry["instruction"])),
            "solution": box,
            # "group" splits every metric by element type (text / icon) in eval.json
            "meta": {"group": entry.get("data_type") or entry.get("ui_type"), "platform": entry.get("data_source") or entry.get("platform")},
        }
        if "img_size" in entry:
            sample["image_size"] = list(entry["img_size"])
        yield sample


@BENCHMARKS.register("screenspot")
def load_screenspot(annotations: str | Path, images: str | Path) -> Iterator[dict]:
    """ScreenSpot / ScreenSpot-v2: bbox is [x, y, w, h] in image pixels."""
    yield from _screenspot(json.loads(Path(annotations).read_text()), Path(images), Path(annotations).stem, xyxy=False)


@BENCHMARKS.register("screenspot_pro")
def load_screenspot_pro(annotations: str | Path, images: str | Path) -> Iterator[dict]:
    """ScreenSpot-Pro: bbox is [x1, y1, x2, y2] with the image size given."""
    yield from _screenspot(json.loads(Path(annotations).read_text()), Path(images), Path(annotations).stem, xyxy=True)


@BENCHMARKS.register("vqav2")
def load_vqav2(questions: str | Path, annotations: str | Path, images: str | Path, prefix: str = "COCO_val2014_") -> Iterator[dict]:
    """One ``vqa`` sample per question, with its annotators' answers as the solution."""
    answers = {a["question_id"]: a for a in json.loads(Path(annotations).read_text())["annotations"]}
    for q in json.loads(Path(questions).read_text())["questions"]:
        ann = answers[q["question_id"]]
        yield {
            "id": f"vqav2-{q['question_id']}",
            "task": "vqa",
            "messages": _user(Path(images) / f"{prefix}{q['image_id']:012d}.jpg", VQA_PROMPT.format(question=q["question"])),
            "solution": [a["answer"] for a in ann["answers"]],
            "meta": {"question_id": q["question_id"], "answer_type": ann.get("answer_type")},
        }


MC_PROMPT = "{context}{question}\n{options}\nAnswer with the option's letter as <answer>X</answer>."
LETTERS = "ABCDEFGHI"


@BENCHMARKS.register("mmbench")
def load_mmbench(tsv: str | Path, circular: str | bool = True) -> Iterator[dict]:
    """MMBench rows as ``multiple_choice`` samples; with ``circular`` one sample per option rotation."""
    circular = str(circular).lower() not in ("false", "0", "no")
    csv.field_size_limit(sys.maxsize)  # base64 images are long fields
    with open(tsv, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    images = {row["index"]: row["image"] for row in rows if len(row.get("image", "")) > 64}
    for row in rows:
        # dev-set rows may name another row's image by its index instead of repeating it
        encoded = images.get(row["image"], row["image"]) if len(row.get("image", "")) <= 64 else row["image"]
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as im:
            size = list(im.size)
        options = [(letter, row[letter]) for letter in LETTERS if row.get(letter) not in (None, "", "nan")]
        hint = row.get("hint") or ""
        context = "" if hint in ("", "nan") else hint.strip() + "\n"
        for shift in range(len(options)) if circular else [0]:
            rotated = options[shift:] + options[:shift]
            listing = "\n".join(f"{LETTERS[i]}. {text}" for i, (_, text) in enumerate(rotated))
            answer = LETTERS[[letter for letter, _ in rotated].index(row["answer"].strip())]
            yield {
                "id": f"mmbench-{row['index']}-{shift}",
                "task": "multiple_choice",
                "messages": _user(
                    f"data:image/jpeg;base64,{encoded}",
                    MC_PROMPT.format(context=context, question=row["question"].strip(), options=listing),
                ),
                "solution": answer,
                "options": [text for _, text in rotated],
                "image_size": size,
                "meta": {"circular": row["index"], "category": row.get("category")},
            }


@BENCHMARKS.register("scienceqa")
def load_scienceqa(problems: str | Path, images: str | Path, split: str = "test") -> Iterator[dict]:
    """ScienceQA questions of ``split`` as lettered multiple choice (the answer index -> its letter)."""
    for qid, p in json.loads(Path(problems).read_text()).items():
        if p.get("split") != split:
            continue
        listing = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(p["choices"]))
        context = f"Context: {p['hint'].strip()}\n" if p.get("hint") else ""
        text = MC_PROMPT.format(context=context, question=p["question"].strip(), options=listing)
        content = [{"type": "text", "text": text}]
        if p.get("image"):
            content.insert(0, {"type": "image", "image": str(Path(images) / split / qid / p["image"])})
        yield {
            "id": f"scienceqa-{qid}",
            "task": "multiple_choice",
            "messages": [{"role": "user", "content": content}],
            "solution": LETTERS[int(p["answer"])],
            "options": list(p["choices"]),
            "meta": {"subject": p.get("subject"), "grade": p.get("grade")},
        }


@BENCHMARKS.register("mathvista")
def load_mathvista(annotations: str | Path, images: str | Path) -> Iterator[dict]:
    """MathVista problems; the answer and its type travel with the sample for the scorer."""
    for pid, p in json.loads(Path(annotations).read_text()).items():
        choices = p.get("choices") or None
        question = p["question"].strip()
        if choices:
            question += "\nChoices:\n" + "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))
        unit = f" (unit: {p['unit']})" if p.get("unit") else ""
        yield {
            "id": f"mathvista-{pid}",
            "task": "mathvista",
            "messages": _user(Path(images) / p["image"], f"{question}{unit}\nAnswer in <answer></answer>."),
            "solution": str(p["answer"]),
            "choices": choices,
            "answer_type": p.get("answer_type", "text"),
            "precision": p.get("precision"),
            "meta": {"question_type": p.get("question_type")},
        }


@BENCHMARKS.register("image_folder")
def load_image_folder(root: str | Path = "", csv_file: str | Path = "", extensions: str = ".jpg,.jpeg,.png,.bmp,.webp") -> Iterator[dict]:
    """Classification samples from ``root/<class>/<image>`` or from a CSV with ``image,label`` columns
    (image paths relative to the CSV)."""
    prompt = "What is in the image? Answer with one word as <answer>...</answer>."
    if csv_file:
        base = Path(csv_file).parent
        with open(csv_file, encoding="utf-8", newline="") as f:
            items = [(base / row["image"], row["label"]) for row in csv.DictReader(f)]
    else:
        allowed = {e.strip().lower() for e in extensions.split(",")}
        items = [
            (path, class_dir.name)
            for class_dir in sorted(p for p in Path(root).iterdir() if p.is_dir())
            for path in sorted(class_dir.iterdir())
            if path.suffix.lower() in allowed
        ]
    for i, (path, label) in enumerate(items):
        yield {"id": f"{Path(path).parent.name}/{Path(path).name}" if not csv_file else f"row-{i}", "task": "classification",
               "messages": _user(Path(path), prompt), "solution": label}


@BENCHMARKS.register("charades_sta")
def load_charades_sta(annotations: str | Path, videos: str | Path, ext: str = "mp4") -> Iterator[dict]:
    """Charades-STA ``VIDEO_ID START END##sentence`` lines; task ``temporal_grounding`` (R1@{0.3,0.5,0.7}, mIoU)."""
    from mmrft.data.converters.temporal import charades_sta

    yield from charades_sta(Path(annotations).read_text().splitlines(), str(videos), ext)


@BENCHMARKS.register("activitynet_captions")
def load_activitynet_captions(annotations: str | Path, videos: str | Path, ext: str = "mp4") -> Iterator[dict]:
    """ActivityNet Captions JSON; task ``temporal_grounding``, ends past the duration clipped to it."""
    from mmrft.data.converters.temporal import activitynet_captions

    yield from activitynet_captions(json.loads(Path(annotations).read_text()), str(videos), ext)


@BENCHMARKS.register("coco_detection")
def load_coco_detection(instances: str | Path, images: str | Path, categories: str = "") -> Iterator[dict]:
    """One ``detection`` sample per image of a COCO ``instances.json`` (boxes xywh -> xyxy); crowd
    flags and areas travel as ``meta.crowd`` and ``meta.area`` for COCO AP (an annotation without
    ``area`` gets its box's). ``categories`` (comma-separated names) restricts the classes asked
    for (default: every category)."""
    coco = json.loads(Path(instances).read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    wanted = {n.strip() for n in categories.split(",") if n.strip()} or set(names.values())
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        if names[ann["category_id"]] in wanted:
            by_image.setdefault(ann["image_id"], []).append(ann)
    listed = ", ".join(sorted(wanted))
    for info in coco["images"]:
        anns = by_image.get(info["id"], [])
        prompt = (
            f"Detect every {listed} in the image. Answer with a JSON list of "
            '{"bbox_2d": [x1, y1, x2, y2], "label": name} in <answer></answer>.'
        )
        yield {
            "id": f"coco-{info['id']}",
            "task": "detection",
            "messages": _user(Path(images) / info["file_name"], prompt),
            "solution": [
                {"bbox": [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]], "label": names[a["category_id"]]}
                for a in anns
            ],
            "image_size": [info["width"], info["height"]],
            "meta": {
                "crowd": [bool(a.get("iscrowd", 0)) for a in anns],
                "area": [float(a.get("area", a["bbox"][2] * a["bbox"][3])) for a in anns],
            },
        }
