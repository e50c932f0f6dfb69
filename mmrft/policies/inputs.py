"""Turn samples (Qwen chat messages) into model inputs, with each unique visual input kept once.

A step's prompts are processed one sample at a time by the model's real processor (images
through ``qwen_vl_utils.fetch_image``, videos through :func:`mmrft.data.video.decode_video`),
then left-padded into one batch. Pixel values are not repeated per prompt or per completion:
they live in a :class:`VisualBank` per modality, keyed by the media path (and, for a video, its
sampling), and every row of a batch refers to its visuals by index. Each unique video is decoded
once per batch; the vision tower then encodes each unique image and video once per step (see
:func:`encode_visuals`), and the embeddings are gathered for as many rows as need them, so
gradients still flow into the tower.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import torch
from PIL import Image
from qwen_vl_utils import fetch_image

from mmrft.data.video import DecodedVideo, decode_video

VIDEO_ITEM_KEYS = ("fps", "nframes", "video_start", "video_end", "min_pixels", "max_pixels")
"""Keys of a message's video item that set its sampling (qwen-vl-utils names); the rest come from the policy."""


@dataclass
class VisualBank:
    """Unique visual inputs of one step: pixel patches and grids, in insertion order."""

    keys: list[str] = field(default_factory=list)
    pixel_values: list[torch.Tensor] = field(default_factory=list)
    grid_thw: list[torch.Tensor] = field(default_factory=list)
    seconds_per_grid: list[float | None] = field(default_factory=list)
    """Videos: seconds spanned by one temporal grid step (Qwen2.5-VL's second_per_grid_ts)."""

    def add(self, key: str, pixel_values: torch.Tensor, grid_thw: torch.Tensor, seconds_per_grid: float | None = None) -> int:
        """Index of ``key`` in the bank, adding it if it is new."""
        if key in self.keys:
            return self.keys.index(key)
        self.keys.append(key)
        self.pixel_values.append(pixel_values)
        self.grid_thw.append(grid_thw)
        self.seconds_per_grid.append(seconds_per_grid)
        return len(self.keys) - 1

    def subset(self, indices: list[int], into: VisualBank) -> list[int]:
        """Add entries ``indices`` of this bank to ``into``; their indices there."""
        return [
            into.add(self.keys[i], self.pixel_values[i], self.grid_thw[i], self.seconds_per_grid[i]) for i in indices
        ]

    def __len__(self) -> int:
        return len(self.keys)

    def to(self, device: torch.device) -> VisualBank:
        pixels, grids = [p.to(device) for p in self.pixel_values], [g.to(device) for g in self.grid_thw]
        return VisualBank(list(self.keys), pixels, grids, list(self.seconds_per_grid))


@dataclass
class PromptBatch:
    """P left-padded prompts and the visuals they refer to."""

    sample_ids: list[str]
    input_ids: torch.Tensor  # (P, L)
    attention_mask: torch.Tensor  # (P, L)
    mm_token_type_ids: torch.Tensor  # (P, L)
    position_ids: torch.Tensor  # (3, P, L), M-RoPE positions
    visuals: VisualBank  # images
    visual_index: list[list[int]]  # per prompt, image bank indices in the order the prompt uses them
    image_sizes: list[tuple[int, int] | None]  # original (w, h) of each prompt's first image or video frame
    input_sizes: list[tuple[int, int] | None]  # model-input (w, h) of that image or frame
    videos: VisualBank = field(default_factory=VisualBank)
    video_index: list[list[int]] = field(default_factory=list)  # per prompt, video bank indices
    video_times: list[list[float] | None] = field(default_factory=list)  # seconds of each sampled frame of the first video
    parts: list[PromptParts] = field(default_factory=list)  # per prompt, its text and visuals before processing (a vLLM request's)

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def num_visuals(self) -> int:
        """Unique images and videos: what one vision-tower pass over the batch encodes."""
        return len(self.visuals) + len(self.videos)

    def to(self, device: torch.device) -> PromptBatch:
        """This batch with its tensors on ``device`` (itself when they are there already)."""
        if self.input_ids.device == device:
            return self
        return dataclasses.replace(
            self,
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            mm_token_type_ids=self.mm_token_type_ids.to(device),
            position_ids=self.position_ids.to(device),
            visuals=self.visuals.to(device),
            videos=self.videos.to(device),
        )

    @property
    def next_position(self) -> torch.Tensor:
        """(P,) the M-RoPE position of the first generated token of each prompt."""
        return self.position_ids.amax(dim=(0, 2)) + 1


def _items(messages: list[dict], kind: str) -> list[dict]:
    return [
        item
        for message in messages
        if isinstance(message.get("content"), list)
        for item in message["content"]
        if item.get("type") == kind
    ]


def prompt_messages(sample: dict, image_pixels: dict[str, int] | None = None) -> list[dict]:
    """The sample's messages up to the first assistant turn, with the policy's pixel budget set."""
    messages = []
    for message in sample["messages"]:
        if message["role"] == "assistant":
            break
        message = copy.deepcopy(message)
        for item in _items([message], "image"):
            for key, value in (image_pixels or {}).items():
                item.setdefault(key, value)
        messages.append(message)
    return messages


def _video_settings(item: dict, video_options: dict) -> dict:
    """decode_video keyword arguments for one video item: the item's own keys over the policy's."""
    settings = dict(video_options)
    own = {k: item[k] for k in VIDEO_ITEM_KEYS if item.get(k) is not None}
    if "fps" in own or "nframes" in own:  # the item's choice of sampling replaces the policy's
        settings.pop("fps", None)
        settings.pop("nframes", None)
    settings.update(own)
    settings["start"] = settings.pop("video_start", None)
    settings["end"] = settings.pop("video_end", None)
    return settings


def _video_key(path: str, settings: dict) -> str:
    return path + "|" + ",".join(f"{k}={settings[k]}" for k in sorted(settings))


@dataclass
class PromptParts:
    """One sample's prompt before tokenisation: the chat-templated text and its visuals, sized for the model."""

    text: str
    image_items: list[dict]
    images: list  # PIL images, resized by qwen-vl-utils to the pixel budget
    clips: list[DecodedVideo]
    video_keys: list[str]  # per clip, its path and decoding settings

    def video_kwargs(self) -> dict:
        """Processor keyword arguments for the decoded clips: frames as sampled, not re-sampled."""
        if not self.clips:
            return {}
        return {
            "videos": [c.frames for c in self.clips],
            # total_num_frames is the clipped span, so sampled_fps matches qwen-vl-utils' sample fps
            "video_metadata": [
                {"fps": c.info.fps, "frames_indices": c.indices, "total_num_frames": c.indices[-1] - c.indices[0] + 1}
                for c in self.clips
            ],
            "do_sample_frames": False,
            "videos_kwargs": {"do_resize": False, "cap_pixels_per_frame": True},  # frames come sized; silences a v5 warning
        }


def prompt_parts(
    sample: dict,
    processor,
    image_pixels: dict[str, int] | None = None,
    video_options: dict | None = None,
    decoded: dict[str, DecodedVideo] | None = None,
) -> PromptParts:
    """Template ``sample``'s prompt and load its images and videos (each unique video decoded once per ``decoded`` cache)."""
    decoded = {} if decoded is None else decoded
    patch = processor.image_processor.patch_size
    messages = prompt_messages(sample, image_pixels)
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    image_items, video_items = _items(messages, "image"), _items(messages, "video")
    images = [fetch_image(item, image_patch_size=patch) for item in image_items]
    clips, keys = [], []
    for item in video_items:
        settings = _video_settings(item, {"patch_size": patch, **(video_options or {})})
        key = _video_key(str(item["video"]), settings)
        if key not in decoded:
            decoded[key] = decode_video(item["video"], **settings)
        clips.append(decoded[key])
        keys.append(key)
    return PromptParts(text, image_items, images, clips, keys)


def build_prompt_batch(
    samples: list[dict],
    processor,
    model,
    image_pixels: dict[str, int] | None = None,
    video_options: dict | None = None,
    keep_parts: bool = False,
) -> PromptBatch:
    """Process ``samples`` into a left-padded :class:`PromptBatch` for ``model``.

    ``keep_parts``: keep each prompt's text and loaded visuals on the batch (``parts``) for a
    vLLM request; otherwise they are dropped once processed.

    ``video_options`` are :func:`mmrft.data.video.decode_video` arguments (reader, fps or
    nframes, min/max pixels per frame, max_tokens, on_over_budget); a video item's own keys
    (fps, nframes, video_start, video_end, min_pixels, max_pixels) override them.
    """
    bank, videos = VisualBank(), VisualBank()
    decoded: dict[str, DecodedVideo] = {}  # each unique video decoded once per batch
    rows, visual_index, video_index, image_sizes, input_sizes, video_times, every_part = [], [], [], [], [], [], []
    patch = processor.image_processor.patch_size
    temporal = getattr(processor.video_processor, "temporal_patch_size", 2)
    for sample in samples:
        parts = prompt_parts(sample, processor, image_pixels, video_options, decoded)
        every_part.append(parts)
        image_items, clips, keys = parts.image_items, parts.clips, parts.video_keys
        enc = processor(text=[parts.text], images=parts.images or None, return_tensors="pt", **parts.video_kwargs())
        indices, offset = [], 0
        grids = enc.get("image_grid_thw")
        for k, item in enumerate(image_items):
            n = int(grids[k].prod())
            indices.append(bank.add(str(item["image"]), enc["pixel_values"][offset : offset + n], grids[k]))
            offset += n
        visual_index.append(indices)
        indices, offset = [], 0
        vgrids = enc.get("video_grid_thw")
        for k, clip in enumerate(clips):
            n = int(vgrids[k].prod())
            seconds = temporal / clip.sample_fps
            indices.append(videos.add(keys[k], enc["pixel_values_videos"][offset : offset + n], vgrids[k], seconds))
            offset += n
        video_index.append(indices)
        video_times.append(clips[0].timestamps if clips else None)
        if image_items:
            size = sample.get("image_size")
            if size is None:
                with Image.open(image_items[0]["image"]) as im:
                    size = im.size
            image_sizes.append((int(size[0]), int(size[1])))
            input_sizes.append((int(grids[0][2]) * patch, int(grids[0][1]) * patch))
        elif clips:
            image_sizes.append((clips[0].info.width, clips[0].info.height))
            input_sizes.append((int(clips[0].frames.shape[3]), int(clips[0].frames.shape[2])))
        else:
            image_sizes.append(None)
            input_sizes.append(None)
        rows.append((enc["input_ids"][0], enc["mm_token_type_ids"][0]))

    pad_id = processor.tokenizer.pad_token_id
    length = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    mm_types = torch.zeros((len(rows), length), dtype=torch.long)
    for r, (ids, types) in enumerate(rows):
        input_ids[r, length - len(ids) :] = ids
        attention_mask[r, length - len(ids) :] = 1
        mm_types[r, length - len(ids) :] = types
    position_ids = rope_positions(model, input_ids, mm_types, attention_mask, bank, visual_index, videos, video_index)
    return PromptBatch(
        sample_ids=[str(s.get("id")) for s in samples],
        input_ids=input_ids,
        attention_mask=attention_mask,
        mm_token_type_ids=mm_types,
        position_ids=position_ids,
        visuals=bank,
        visual_index=visual_index,
        image_sizes=image_sizes,
        input_sizes=input_sizes,
        videos=videos,
        video_index=video_index,
        video_times=video_times,
        parts=every_part if keep_parts else [],
    )


def rope_positions(model, input_ids, mm_types, attention_mask, images, image_index, videos, video_index) -> torch.Tensor:
    """(3, P, L) M-RoPE positions: the model's own ``get_rope_index`` over the rows' images and videos.

    Videos carry their time: Qwen2.5-VL spaces temporal positions by ``second_per_grid_ts``;
    Qwen3-VL's timestamps are text tokens the processor already wrote into the prompt.
    """
    image_rows = [i for idx in image_index for i in idx]
    video_rows = [i for idx in video_index for i in idx]
    kwargs = {}
    if image_rows:
        kwargs["image_grid_thw"] = torch.stack([images.grid_thw[i] for i in image_rows])
    if video_rows:
        kwargs["video_grid_thw"] = torch.stack([videos.grid_thw[i] for i in video_rows])
        kwargs["second_per_grid_ts"] = torch.tensor([videos.seconds_per_grid[i] for i in video_rows])
    position_ids, _ = model.model.get_rope_index(input_ids, mm_token_type_ids=mm_types, attention_mask=attention_mask, **kwargs)
    return position_ids


def encode_visuals(model, batch: PromptBatch) -> dict:
    """Run the vision tower once over every unique image and video of ``batch``: {"image": ..., "video": ...}."""
    encoded = {}
    if len(batch.visuals):
        encoded["image"] = model.model.get_image_features(
            torch.cat(batch.visuals.pixel_values), torch.stack(batch.visuals.grid_thw), return_dict=True
        )
    if len(batch.videos):
        encoded["video"] = model.model.get_video_features(
            torch.cat(batch.videos.pixel_values), torch.stack(batch.videos.grid_thw), return_dict=True
        )
    return encoded


def gather_for_rows(encoded: dict, batch: PromptBatch, rows: list[int]) -> dict | None:
    """``mm_encoder_outputs`` for a forward whose rows continue prompts ``rows`` (None without visuals)."""
    out = {}
    if "image" in encoded:
        out["image"] = gather_visuals(encoded["image"], [batch.visual_index[p] for p in rows])
    if "video" in encoded:
        out["video"] = gather_visuals(encoded["video"], [batch.video_index[p] for p in rows])
    return out or None


def gather_visuals(encoded, rows: list[list[int]]):
    """The encoder output re-indexed for a batch whose row ``r`` uses bank entries ``rows[r]``.

    The per-image tensors are selected, not recomputed, so all rows that share an image share
    its embeddings (and their gradients add up in the tower).
    """
    if encoded is None:
        return None
    order = [i for row in rows for i in row]
    out = copy.copy(encoded)
    out.pooler_output = tuple(encoded.pooler_output[i] for i in order)
    if getattr(encoded, "deepstack_features", None) is not None:
        out.deepstack_features = [tuple(layer[i] for i in order) for layer in encoded.deepstack_features]
    return out


def select_prompts(batch: PromptBatch, prompts: list[int]) -> PromptBatch:
    """The sub-batch of ``prompts``, with banks holding only the visuals they use and without
    the (left) padding columns none of them needs."""
    images, videos = VisualBank(), VisualBank()
    used = batch.attention_mask[prompts].any(0).nonzero()
    start = int(used[0]) if len(used) else 0
    return PromptBatch(
        sample_ids=[batch.sample_ids[p] for p in prompts],
        input_ids=batch.input_ids[prompts, start:],
        attention_mask=batch.attention_mask[prompts, start:],
        mm_token_type_ids=batch.mm_token_type_ids[prompts, start:],
        position_ids=batch.position_ids[:, prompts, start:],
        visuals=images,
        visual_index=[batch.visuals.subset(batch.visual_index[p], images) for p in prompts],
        image_sizes=[batch.image_sizes[p] for p in prompts],
        input_sizes=[batch.input_sizes[p] for p in prompts],
        videos=videos,
        video_index=[batch.videos.subset(batch.video_index[p], videos) for p in prompts] if batch.video_index else [],
        video_times=[batch.video_times[p] for p in prompts] if batch.video_times else [],
        parts=[batch.parts[p] for p in prompts] if batch.parts else [],
    )
