"""tools/deepen_lm.py: the deeper model computes what the original did, and its new layers can learn."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from deepen_lm import deepen  # noqa: E402


def test_deeper_model_has_the_same_logits_and_trainable_new_layers(tiny_model_dir):
    from mmrft.policies.loading import load_model_and_processor

    model, _ = load_model_and_processor(str(tiny_model_dir("qwen2_5_vl")))
    deeper = deepen(model, 3)
    layers = model.config.text_config.num_hidden_layers
    assert deeper.config.text_config.num_hidden_layers == len(deeper.config.text_config.layer_types) == 3 * layers
    ids = torch.randint(0, 400, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(deeper(input_ids=ids).logits, model(input_ids=ids).logits, rtol=1e-5, atol=1e-5)

    deeper(input_ids=ids).logits.logsumexp(-1).sum().backward()
    new_layer = deeper.model.language_model.layers[1]  # the first copy: zero output projections
    assert new_layer.self_attn.o_proj.weight.abs().sum() == 0
    assert new_layer.self_attn.o_proj.weight.grad.abs().sum() > 0 and new_layer.mlp.down_proj.weight.grad.abs().sum() > 0
