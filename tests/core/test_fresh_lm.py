"""tools/fresh_lm.py: a new language model of the asked width on the source's vision tower."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from fresh_lm import fresh_language_model  # noqa: E402


def test_fresh_language_model_keeps_the_vision_tower_and_takes_the_new_width(tiny_model_dir):
    from mmrft.policies.loading import load_model_and_processor

    model, processor = load_model_and_processor(str(tiny_model_dir("qwen2_5_vl")))
    wide = fresh_language_model(model, processor.tokenizer, hidden=192, layers=2)
    assert wide.config.text_config.hidden_size == wide.config.vision_config.out_hidden_size == 192
    assert wide.config.text_config.num_hidden_layers == 2
    source, new = model.state_dict(), wide.state_dict()
    vision = [key for key in source if ".visual." in key]
    kept = [key for key in vision if torch.equal(source[key], new[key])]
    assert set(vision) - set(kept) == {key for key in vision if ".merger.mlp.2." in key}  # the layer into the new width
    ids = torch.randint(0, 400, (1, 8), generator=torch.Generator().manual_seed(0))
    assert wide(input_ids=ids).logits.shape == (1, 8, len(processor.tokenizer))
