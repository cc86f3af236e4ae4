"""Model registry on local files only: tiny-random, save/load round trip, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedcofit_lite.engine.models import ModelNotFoundError, format_prompt, load_embedder, load_model


def test_tiny_random_is_small_and_pads_left(tiny):
    model, tok = tiny
    n_params = sum(p.numel() for p in model.parameters())
    assert 1e6 < n_params < 5e6
    assert tok.padding_side == "left" and tok.pad_token is not None
    assert not model.training


def test_tiny_random_is_deterministic_per_seed():
    a, _ = load_model("tiny-random", device="cpu", seed=1)
    b, _ = load_model("tiny-random", device="cpu", seed=1)
    c, _ = load_model("tiny-random", device="cpu", seed=2)
    wa, wb, wc = (m.model.layers[0].self_attn.q_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_hub_loading_path_on_a_local_folder_of_the_same_format(tiny, tmp_path):
    """The code path a hub id takes (from_pretrained on save_pretrained files), offline."""
    model, tok = tiny
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, loaded_tok = load_model(str(tmp_path), device="cpu")
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(**ids).logits, loaded(**ids).logits, atol=1e-6)
    assert loaded_tok.padding_side == "left"


def test_uncached_hub_id_offline_names_the_model_and_the_fix():
    with pytest.raises(ModelNotFoundError) as err:
        load_model("some-org/not-a-real-model-xyz", device="cpu")
    text = str(err.value)
    assert "some-org/not-a-real-model-xyz" in text
    assert "save_pretrained" in text and "smollm2-135m" in text


def test_prompt_uses_chat_template_when_present_plain_otherwise(tiny):
    _, tok = tiny
    chat = format_prompt(tok, "What is 2 + 2?")
    assert "<|im_start|>user\nWhat is 2 + 2?<|im_end|>" in chat and chat.endswith("<|im_start|>assistant\n")
    template, tok.chat_template = tok.chat_template, None
    try:
        plain = format_prompt(tok, "What is 2 + 2?", context="numbers")
    finally:
        tok.chat_template = template
    assert plain == "### Instruction:\nWhat is 2 + 2?\n### Input:\nnumbers\n### Response:\n"


def test_packaged_embedder_puts_paraphrases_closer(embedder):
    from fedcofit_lite.engine.embed import embed_texts

    x = embed_texts(
        embedder, ["The capital of France is Paris.", "Paris is France's capital.", "Seven plus five is twelve."]
    )
    assert x.shape == (3, 384)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2] + 0.3


def test_unknown_embedder_offline_is_a_clear_error():
    with pytest.raises(ModelNotFoundError, match="no-such/embedder"):
        load_embedder("no-such/embedder", device="cpu")


def test_loading_the_embedder_draws_no_progress_bar(capfd):
    # nobody asked for a bar: a sub-second load must not print one (issue #15), and the library's setting is restored
    from transformers.utils import logging as hf_logging

    load_embedder(device="cpu")
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()


def test_the_command_line_prints_the_message_of_an_unknown_model_without_a_traceback(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cmd = [
        sys.executable,
        "-m",
        "fedcofit_lite",
        "run",
        "--config",
        "ci",
        "--quiet",
        "--run-dir",
        str(tmp_path / "r"),
        "--set",
        "model.name=org/does-not-exist",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "org/does-not-exist" in done.stderr and "Fix:" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr[:2000]
