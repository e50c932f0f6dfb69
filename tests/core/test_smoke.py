"""Real shapes without the hub (issue 27, part 4): the shape table, ``shape:`` models, the memory
estimate and ``mmrft smoke``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers

from mmrft.config import load_train_config
from mmrft.policies.shapes import SHAPES, model_config, parse_shape, shape_of
from mmrft.policies.tiny import ARCHS

ROOT = Path(__file__).resolve().parents[2]
GPU_3B = ROOT / "configs" / "qwen2_5_vl_3b_grounding_gpu.yaml"

# Parameter counts the hub lists for each released model (its safetensors, in billions).
PUBLISHED_PARAMS_B = {
    "qwen2_vl_2b": 2.21,
    "qwen2_vl_7b": 8.29,
    "qwen2_5_vl_3b": 3.75,
    "qwen2_5_vl_7b": 8.29,
    "qwen3_vl_2b": 2.13,
    "qwen3_vl_4b": 4.44,
    "qwen3_vl_8b": 8.77,
}

# A few prompts, small groups, few tokens: the GPU config's precision and algorithm on CPU.
SMALL = [
    "batch_size=2",
    "optim.grad_accum=1",
    "generation.num_generations=4",
    "generation.max_new_tokens=8",
    "model.image_max_pixels=12544",
    "data.synthetic={task: grounding, train: 8, heldout: 4, seed: 0, image_size: 112}",
]


def meta_params(shape) -> int:
    with torch.device("meta"):
        model = getattr(transformers, ARCHS[shape.arch].model_cls)(model_config(shape))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS_B))
def test_shape_table_matches_published_sizes(name):
    assert meta_params(SHAPES[name]) / 1e9 == pytest.approx(PUBLISHED_PARAMS_B[name], rel=0.01)


def test_scaled_shapes_keep_head_dims_and_block_indexes_in_range():
    for name, shape in SHAPES.items():
        for k in (2, 3, 8):
            small = shape.scaled(k)
            assert small.hidden // small.heads == shape.head_dim
            assert small.heads % small.kv_heads == 0 and small.kv_heads >= 1
            assert small.vision_hidden // small.vision_heads == shape.vision_hidden // shape.vision_heads
            assert sum(small.mrope_section) == small.head_dim // 2
            assert all(0 <= i < small.vision_depth for i in small.fullatt_blocks + small.deepstack_blocks)
            meta_params(small)  # a valid transformers config
    small = SHAPES["qwen2_5_vl_3b"].scaled(8)
    assert (small.hidden, small.heads, small.kv_heads, small.layers, small.intermediate) == (256, 2, 1, 5, 1376)
    assert small.fullatt_blocks == (0, 1, 2, 3) and small.vision_depth == 4
    assert shape_of("Qwen/Qwen2.5-VL-3B-Instruct") == SHAPES["qwen2_5_vl_3b"] == shape_of("Qwen/Qwen2.5-VL-3B")
    with pytest.raises(ValueError, match="known: qwen2_vl_2b"):
        parse_shape("qwen9_vl")


@pytest.mark.parametrize("name", ["qwen2_vl_2b", "qwen2_5_vl_3b", "qwen3_vl_8b"])
def test_layer_activation_count_matches_saved_tensors(name):
    """decoder_layer_bytes against what autograd saves in one decoder layer under bf16 autocast
    with float32 weights (the GPU configs' precision), per token: the difference of two lengths."""
    from mmrft.training.memory import decoder_layer_bytes

    shape = SHAPES[name].scaled(8)
    config = model_config(shape)
    config.text_config.num_hidden_layers, config.text_config.vocab_size = 1, 1024
    torch.manual_seed(0)
    lm = getattr(transformers, ARCHS[shape.arch].model_cls)(config).model.language_model
    weight_shapes = {tuple(p.shape) for p in lm.parameters()}  # autocast's weight copies are counted apart

    def saved_bytes(tokens: int, rows: int = 3) -> int:
        storages = {}

        def pack(t):
            if not isinstance(t, torch.nn.Parameter) and tuple(t.shape) not in weight_shapes:
                storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        mask = torch.ones(rows, tokens, dtype=torch.long)
        mask[1, :3] = 0  # padding, as in a batch of prompts
        inputs = dict(
            inputs_embeds=torch.randn(rows, tokens, shape.hidden, requires_grad=True),
            attention_mask=mask,
            position_ids=torch.arange(tokens).view(1, 1, -1).expand(3, rows, -1),
        )
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            lm(**inputs)
        return sum(storages.values())

    measured = (saved_bytes(200) - saved_bytes(100)) / (3 * 100)
    q_dim, kv_dim = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    formula = decoder_layer_bytes(shape.hidden, shape.intermediate, q_dim, kv_dim, compute=2, residual=4, autocast=True)
    assert formula == pytest.approx(measured, rel=0.15)


def test_shape_spec_builds_a_loadable_model_of_the_scaled_shape():
    from mmrft.policies.loading import ModelLoadError, load_model_and_processor

    model, processor = load_model_and_processor("shape:qwen2_5_vl_3b/8", "float32")
    text = model.config.text_config
    assert (text.hidden_size, text.num_hidden_layers, text.vocab_size) == (256, 5, 151936)
    assert model.dtype == torch.float32  # saved in bfloat16, loaded in the dtype asked for
    assert sum(p.numel() for p in model.parameters()) == meta_params(SHAPES["qwen2_5_vl_3b"].scaled(8))
    assert processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") == model.config.image_token_id
    with pytest.raises(ModelLoadError, match="unknown shape"):
        load_model_and_processor("shape:qwen2_5_vl_4b")


def test_estimate_of_the_shipped_3b_config_counts_the_real_model():
    from mmrft.training.memory import estimate_memory

    config = load_train_config(str(GPU_3B))
    est = estimate_memory(config, "cuda")  # the hub id maps to the shape table: no hub access
    assert est["params"] / 1e9 == pytest.approx(3.755, rel=0.001)
    trainable = est["trainable_params"]
    assert trainable < est["params"]  # freeze_vision: the vision blocks stay
    assert est["weights"] == 4 * est["params"]  # float32 master weights
    assert est["gradients"] == 4 * trainable and est["optimizer_state"] == 8 * trainable
    assert est["peak"] == max(v for k, v in est.items() if k.startswith("phase/"))
    lora = estimate_memory(load_train_config(str(GPU_3B), ["model.dtype=bfloat16", "model.lora_rank=16"]), "cuda")
    assert lora["trainable_params"] < 0.02 * lora["params"] and lora["peak"] < est["peak"]


def test_smoke_estimate_is_within_30_percent_of_measured_peak_on_cpu(tmp_path):
    """``mmrft smoke`` at a scaled-down real shape with the GPU config's precision (fresh process:
    peak RSS cannot be reset)."""
    out = tmp_path / "smoke.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "mmrft", "smoke", str(GPU_3B), "--shape", "qwen2_5_vl_3b/8", "--steps", "2", "--out", str(out), *SMALL]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.index("estimated memory") < result.stdout.index("step 1:")  # estimate first
    for line in ("measured peak memory", "generate", "new tokens per second", "trainable entries moved"):
        assert line in result.stdout
    report = json.loads(out.read_text())
    measured = report["measured"]
    assert report["model"] == "shape:qwen2_5_vl_3b/8" and len(measured["steps"]) == 2
    assert all(s["generate_s"] > 0 and s["update_s"] > 0 and s["new_tokens"] > 0 for s in measured["steps"])
    assert 0 < measured["moved_frac"] <= 1
    assert report["estimate"]["peak"] == pytest.approx(measured["peak_bytes"], rel=0.3)
