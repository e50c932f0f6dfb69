"""Turn samples (Qwen chat messages) into model inputs, with each unique visual input kept once.

A step's prompts are processed one sample at a time by the model's real processor (through
``qwen_vl_utils.process_vision_info``), then left-padded into one batch. Pixel values are not
repeated per prompt or per completion: they live in a :class:`VisualBank` keyed by the media
path, and every row of a batch refers to its visuals by index. The vision tower then encodes
each unique image once per step (see :func:`encode_visuals`), and the embeddings are gathered
for as many rows as need them, so gradients still flow into the tower.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from PIL import Image
from qwen_vl_utils import process_vision_info


@dataclass
class VisualBank:
    """Unique visual inputs of one step: pixel patches and grids, in insertion order."""

    keys: list[str] = field(default_factory=list)
    pixel_values: list[torch.Tensor] = field(default_factory=list)
    grid_thw: list[torch.Tensor] = field(default_factory=list)

    def add(self, key: str, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> int:
        """Index of ``key`` in the bank, adding it if it is new."""
        if key in self.keys:
            return self.keys.index(key)
        self.keys.append(key)
        self.pixel_values.append(pixel_values)
        self.grid_thw.append(grid_thw)
        return len(self.keys) - 1

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class PromptBatch:
    """P left-padded prompts and the visuals they refer to."""

    sample_ids: list[str]
    input_ids: torch.Tensor  # (P, L)
    attention_mask: torch.Tensor  # (P, L)
    mm_token_type_ids: torch.Tensor  # (P, L)
    position_ids: torch.Tensor  # (3, P, L), M-RoPE positions
    visuals: VisualBank
    visual_index: list[list[int]]  # per prompt, bank indices in the order the prompt uses them
    image_sizes: list[tuple[int, int] | None]  # original (w, h) of each prompt's first image
    input_sizes: list[tuple[int, int] | None]  # model-input (w, h) of that image

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def next_position(self) -> torch.Tensor:
        """(P,) the M-RoPE position of the first generated token of each prompt."""
        return self.position_ids.amax(dim=(0, 2)) + 1


def _image_items(messages: list[dict]) -> list[dict]:
    return [
        item
        for message in messages
        if isinstance(message.get("content"), list)
        for item in message["content"]
        if item.get("type") == "image"
    ]


def prompt_messages(sample: dict, image_pixels: dict[str, int] | None = None) -> list[dict]:
    """The sample's messages up to the first assistant turn, with the policy's pixel budget set."""
    messages = []
    for message in sample["messages"]:
        if message["role"] == "assistant":
            break
        message = copy.deepcopy(message)
        for item in _image_items([message]):
            for key, value in (image_pixels or {}).items():
                item.setdefault(key, value)
        messages.append(message)
    return messages


def build_prompt_batch(
    samples: list[dict],
    processor,
    model,
    image_pixels: dict[str, int] | None = None,
) -> PromptBatch:
    """Process ``samples`` into a left-padded :class:`PromptBatch` for ``model``."""
    bank = VisualBank()
    rows, visual_index, image_sizes, input_sizes = [], [], [], []
    patch = processor.image_processor.patch_size
    for sample in samples:
        messages = prompt_messages(sample, image_pixels)
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        images, _ = process_vision_info(messages, image_patch_size=patch)
        enc = processor(text=[text], images=images or None, return_tensors="pt")
        grids = enc.get("image_grid_thw")
        indices, offset = [], 0
        for k, item in enumerate(_image_items(messages)):
            n = int(grids[k].prod())
            indices.append(bank.add(str(item["image"]), enc["pixel_values"][offset : offset + n], grids[k]))
            offset += n
        visual_index.append(indices)
        first = _image_items(messages)[:1]
        if first:
            size = sample.get("image_size")
            if size is None:
                with Image.open(first[0]["image"]) as im:
                    size = im.size
            image_sizes.append((int(size[0]), int(size[1])))
            input_sizes.append((int(grids[0][2]) * patch, int(grids[0][1]) * patch))
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
    row_grids = torch.stack([bank.grid_thw[i] for idx in visual_index for i in idx]) if len(bank) else None
    position_ids, _ = model.model.get_rope_index(
        input_ids, mm_token_type_ids=mm_types, image_grid_thw=row_grids, attention_mask=attention_mask
    )
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
    )


def encode_visuals(model, bank: VisualBank):
    """Run the vision tower once over every unique visual in ``bank`` (None if the bank is empty)."""
    if not len(bank):
        return None
    return model.model.get_image_features(
        torch.cat(bank.pixel_values), torch.stack(bank.grid_thw), return_dict=True
    )


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
    """The sub-batch of ``prompts``, with a bank holding only the visuals they use."""
    bank, visual_index = VisualBank(), []
    for p in prompts:
        visual_index.append(
            [bank.add(batch.visuals.keys[i], batch.visuals.pixel_values[i], batch.visuals.grid_thw[i]) for i in batch.visual_index[p]]
        )
    return PromptBatch(
        sample_ids=[batch.sample_ids[p] for p in prompts],
        input_ids=batch.input_ids[prompts],
        attention_mask=batch.attention_mask[prompts],
        mm_token_type_ids=batch.mm_token_type_ids[prompts],
        position_ids=batch.position_ids[:, prompts],
        visuals=bank,
        visual_index=visual_index,
        image_sizes=[batch.image_sizes[p] for p in prompts],
        input_sizes=[batch.input_sizes[p] for p in prompts],
    )
