"""A plugin reward that never returns, with no timeout configured, neither stops GRPO training nor piles up threads."""

import json
import math
import multiprocessing
import threading

from mmrft.rewards import safety
from mmrft.training.grpo import GRPOTrainer


def test_training_goes_on_past_a_reward_that_hangs_every_call(tmp_path, make_train_config, length_reward, monkeypatch):
    monkeypatch.setattr(safety, "DEFAULT_PLUGIN_TIMEOUT_S", 0.1)  # the config below sets no timeout_s
    path = tmp_path / "forever.py"
    # 5 s stands for forever (test_safety.py has one that is): on code without a default timeout
    # this test fails after 20 s instead of hanging
    path.write_text("import time\n\ndef forever(completions, **columns):\n    time.sleep(5)\n    return [1.0] * len(completions)\n")
    hangs = f"{path}:forever"
    config = make_train_config(tmp_path / "run", rewards=[{"name": length_reward, "timeout_s": 60}, {"name": hangs}], max_steps=4)
    GRPOTrainer(config).train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert [r[f"reward/{hangs}/errors"] for r in rows] == [2 * 4] * 4  # batch 2 x G 4, every call timed out
    assert all(math.isfinite(r["loss"]) and r[f"reward/{length_reward}/errors"] == 0 for r in rows)
    assert [t for t in threading.enumerate() if t.name.startswith("reward-")] == []  # no thread left behind per call
    assert [p for p in multiprocessing.active_children() if p.name == "reward-forever"] == []
