"""Temporal grounding annotations in their published formats -> mmrft samples.

- Charades-STA (Gao et al. 2017): one query a line, ``VIDEO_ID START END##sentence`` (seconds).
- ActivityNet Captions (Krishna et al. 2017), as used for grounding:
  ``{video_id: {"duration": s, "timestamps": [[s, e], ...], "sentences": [...]}}``.

Each query becomes one ``temporal_grounding`` sample: the video, the query, ``solution`` =
``[start, end]`` in seconds, and ``duration`` when the format gives it (the reward clips
predictions to it). Problems are counted by kind, never silently fixed: an end past the
video's duration is clipped to it (ActivityNet has such rows); a malformed or empty-span row,
one starting at or past the duration, and every sentence of a video whose timestamps and
sentences differ in number are dropped, each counted once.

    python -m mmrft.data.converters.temporal charades --annotations charades_sta_test.txt \
        --videos /data/Charades_v1_480 --out data/charades_sta/test.jsonl
    python -m mmrft.data.converters.temporal activitynet --annotations val.json \
        --videos /data/activitynet/videos --out data/activitynet/val.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

PROMPT = (
    "Find the moment in the video described by: {query} "
    "Answer with its start and end time in seconds as <answer>[start, end]</answer>."
)


def _sample(source: str, video_id: str, index: int, query: str, start: float, end: float, video: str, duration: float | None) -> dict:
    query = " ".join(query.split())
    sample = {
        "id": f"{source}-{video_id}-{index}",
        "task": "temporal_grounding",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "video", "video": video}, {"type": "text", "text": PROMPT.format(query=query)}],
            }
        ],
        "solution": [start, end],
        "meta": {"source": source, "video_id": video_id, "query": query},
    }
    if duration is not None:
        sample["duration"] = duration
    return sample


def charades_sta(lines: Iterable[str], video_dir: str, ext: str = "mp4", problems: Counter | None = None) -> Iterator[dict]:
    """Samples from Charades-STA lines; ``problems`` counts dropped lines by reason."""
    problems = Counter() if problems is None else problems
    per_video: Counter[str] = Counter()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        head, sep, query = line.partition("##")
        parts = head.split()
        if not sep or len(parts) != 3 or not query.strip():
            problems["malformed line"] += 1
            continue
        video_id = parts[0]
        try:
            start, end = float(parts[1]), float(parts[2])
        except ValueError:
            problems["malformed line"] += 1
            continue
        if not 0 <= start < end:
            problems["empty or negative span"] += 1
            continue
        yield _sample("charades_sta", video_id, per_video[video_id], query, start, end, f"{video_dir}/{video_id}.{ext}", None)
        per_video[video_id] += 1


CLIPPED = "end clipped to the duration"
"""The one problem that keeps its sample (clipped); every other reason counts dropped queries."""


def activitynet_captions(data: dict, video_dir: str, ext: str = "mp4", problems: Counter | None = None) -> Iterator[dict]:
    """Samples from the ActivityNet Captions JSON; ``problems`` counts each dropped sentence once,
    under one reason, and the kept ones whose end was clipped (`CLIPPED`)."""
    problems = Counter() if problems is None else problems
    for video_id, entry in data.items():
        duration = float(entry["duration"])
        timestamps, sentences = entry.get("timestamps", []), entry.get("sentences", [])
        if len(timestamps) != len(sentences):  # which time goes with which sentence is unknown
            problems["timestamps and sentences differ in number"] += len(sentences)
            continue
        for index, ((start, end), query) in enumerate(zip(timestamps, sentences, strict=True)):
            start, end = float(start), float(end)
            if start >= duration:
                problems["start at or past the duration"] += 1
                continue
            if not 0 <= start < end:
                problems["empty or negative span"] += 1
                continue
            if end > duration:
                problems[CLIPPED] += 1
                end = duration
            yield _sample("activitynet", video_id, index, query, start, end, f"{video_dir}/{video_id}.{ext}", duration)


def write_jsonl(samples: Iterable[dict], out: str | Path) -> int:
    """Write samples with their video paths made relative to ``out``'s directory; returns the count."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    base = out.parent.resolve()
    count = 0
    with open(out, "w", encoding="utf-8") as f:
        for sample in samples:
            item = sample["messages"][0]["content"][0]
            item["video"] = os.path.relpath(Path(item["video"]).resolve(), base)
            f.write(json.dumps(sample) + "\n")
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert temporal grounding annotations to mmrft JSONL.")
    parser.add_argument("format", choices=["charades", "activitynet"])
    parser.add_argument("--annotations", required=True, help="the published annotation file")
    parser.add_argument("--videos", required=True, help="directory holding VIDEO_ID.<ext>")
    parser.add_argument("--ext", default="mp4")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    problems: Counter[str] = Counter()
    with open(args.annotations, encoding="utf-8") as f:
        if args.format == "charades":
            samples = charades_sta(f.read().splitlines(), args.videos, args.ext, problems)
        else:
            samples = activitynet_captions(json.load(f), args.videos, args.ext, problems)
        count = write_jsonl(samples, args.out)
    print(f"wrote {count} samples to {args.out}; dropped {sum(n for r, n in problems.items() if r != CLIPPED)}")
    for reason, n in sorted(problems.items()):
        print(f"  {reason}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
