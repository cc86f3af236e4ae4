"""FedAvg/FedProx pieces: adapter messages, weighted averaging, validation, pool tensors, proximal term."""

from __future__ import annotations

import numpy as np
import pytest

from fedcofit_lite.analysis import costmodel
from fedcofit_lite.config import load_config
from fedcofit_lite.engine.batching import TrainRecord
from fedcofit_lite.protocol.fedavg import FedAvgServer, incompatibility, shapes_of, weighted_average
from fedcofit_lite.protocol.messages import (
    AdapterMessage,
    AnswersMessage,
    GlobalAdapterMessage,
    MessageError,
    Wire,
    decode,
    encode,
    safetensors_overhead,
)


def adapter(value: float, shape=(2, 3)) -> dict[str, np.ndarray]:
    return {
        "layer.lora_A.weight": np.full(shape, value, np.float32),
        "layer.lora_B.weight": np.full((3, 2), -value, np.float32),
    }


def test_weighted_average_matches_hand_arithmetic():
    avg = weighted_average([adapter(1.0), adapter(4.0)], [30, 10])  # (30*1 + 10*4) / 40 = 1.75
    assert avg["layer.lora_A.weight"].dtype == np.float32
    np.testing.assert_allclose(avg["layer.lora_A.weight"], 1.75)
    np.testing.assert_allclose(avg["layer.lora_B.weight"], -1.75)


def test_adapter_message_round_trips_as_safetensors_and_counts_its_bytes():
    msg = AdapterMessage(round=2, client_id="client1", n_examples=48, tensors=adapter(0.5))
    data = encode(msg)
    payload = 2 * 6 * 4  # two 6-element float32 tensors
    assert len(data) == payload + safetensors_overhead(data)
    back = decode(data)
    assert isinstance(back, AdapterMessage) and (back.round, back.client_id, back.n_examples) == (2, "client1", 48)
    np.testing.assert_array_equal(back.tensors["layer.lora_A.weight"], msg.tensors["layer.lora_A.weight"])
    assert encode(back) == data  # canonical: the same message gives the same bytes
    wire = Wire()
    got = wire.send(GlobalAdapterMessage(round=3, tensors=adapter(1.0)), "down")
    assert isinstance(got, GlobalAdapterMessage) and wire.bytes_by_round[3]["down"] == len(encode(got))
    # JSON messages still decode as JSON next to tensor messages
    assert isinstance(decode(encode(AnswersMessage(1, "c", ["p"], ["a"]))), AnswersMessage)


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}", "safetensors"),
        (b"\x00" * 32, "JSON"),
    ],
)
def test_malformed_tensor_bytes_are_a_message_error(data, fragment):
    with pytest.raises(MessageError, match=fragment):
        decode(data)


def test_tensor_message_with_wrong_metadata_is_rejected():
    import safetensors.numpy

    meta = {"message": '{"client_id":"c","n_examples":3,"round":"x","type":"adapter"}'}
    with pytest.raises(MessageError, match="'round' must be int"):
        decode(safetensors.numpy.save(adapter(1.0), metadata=meta))
    data = safetensors.numpy.save(adapter(1.0), metadata={"type": "weights"})
    with pytest.raises(MessageError, match="must be one of"):
        decode(data)


def test_fedavg_server_weights_by_examples_and_sets_bad_messages_aside():
    server = FedAvgServer()
    msgs = [
        AdapterMessage(1, "a", 30, adapter(1.0)),
        AdapterMessage(1, "b", 10, adapter(4.0)),
        AdapterMessage(0, "late", 10, adapter(9.0)),  # wrong round
        AdapterMessage(1, "odd", 10, adapter(9.0, shape=(4, 3))),  # other shape
        AdapterMessage(1, "nan", 10, {**adapter(1.0), "layer.lora_A.weight": np.full((2, 3), np.nan, np.float32)}),
        AdapterMessage(1, "huge", 10, adapter(1e9)),
        AdapterMessage(1, "empty", 0, adapter(1.0)),
    ]
    update, report = server.aggregate(1, msgs)
    np.testing.assert_allclose(update.tensors["layer.lora_A.weight"], 1.75)
    assert report.clients == ["a", "b"] and report.weights == {"a": 0.75, "b": 0.25}
    assert set(report.rejected) == {"late", "odd", "nan", "huge", "empty"}
    assert "round 0" in report.rejected["late"] and "(2, 3) vs (4, 3)" in report.rejected["odd"]
    assert "non-finite" in report.rejected["nan"] and "n_examples" in report.rejected["empty"]
    with pytest.raises(RuntimeError, match="no acceptable adapters"):
        server.aggregate(2, [AdapterMessage(1, "a", 1, adapter(1.0))])


def test_incompatibility_names_both_models_and_the_fix():
    why = incompatibility(
        {"c0": shapes_of(adapter(1.0)), "c1": shapes_of(adapter(1.0, shape=(5, 3)))}, {"c0": "m-small", "c1": "m-big"}
    )
    assert "c0 (m-small)" in why and "c1 (m-big)" in why and "consensus" in why
    assert incompatibility({"c0": shapes_of(adapter(1.0)), "c1": shapes_of(adapter(2.0))}) is None


@pytest.fixture(scope="module")
def pool():
    from fedcofit_lite.engine.pool import ModelPool

    cfg = load_config("ci")
    return ModelPool({"client0": "tiny-random", "client1": "tiny-random"}, cfg.model, cfg.lora, seed=0)


def test_pool_tensors_round_trip_and_match_the_analytic_parameter_count(pool):
    t0, t1 = pool.get_tensors("client0"), pool.get_tensors("client1")
    cfg = load_config("ci")
    arch = costmodel.Architecture.from_hf_config(pool.architectures()["tiny-random"], name="tiny-random")
    assert sum(v.size for v in t0.values()) == costmodel.lora_parameters(arch, cfg.lora.r, cfg.lora.target_modules)
    mixed = {k: v + 0.25 for k, v in t1.items()}
    pool.set_tensors("client0", mixed)
    back = pool.get_tensors("client0")
    assert all(np.array_equal(back[k], mixed[k]) for k in mixed)
    with pytest.raises(ValueError, match="tensor names"):
        pool.set_tensors("client0", {"nope": np.zeros(1, np.float32)})
    pool.set_tensors("client0", t0)


def test_fedprox_term_keeps_the_adapter_near_its_start(pool):
    cfg = load_config("ci")
    records = [TrainRecord(f"Say {i}", "", f"word{i}") for i in range(16)]
    start = pool.get_tensors("client0")

    def drift(mu: float) -> float:
        pool.set_tensors("client0", start)
        pool.train("client0", records, cfg.train, epochs=2, seed=0, prox_mu=mu)
        end = pool.get_tensors("client0")
        return float(sum(np.sum((end[k] - start[k]) ** 2) for k in start))

    free, prox = drift(0.0), drift(1e4)
    pool.set_tensors("client0", start)
    assert prox < 0.5 * free, (prox, free)


def test_safetensors_header_is_under_one_percent_for_the_embedded_model():
    # The documented overhead, on SmolLM2-135M's real adapter names and shapes (cpu preset: r16 q,k,v,o).
    arch = costmodel.get_architecture("smollm2-135m")
    shapes = arch.module_shapes()
    tensors = {}
    for layer in range(arch.num_layers):
        for m in ["q_proj", "k_proj", "v_proj", "o_proj"]:
            d_in, d_out = shapes[m]
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{m}"
            tensors[f"{prefix}.lora_A.weight"] = np.zeros((16, d_in), np.float32)
            tensors[f"{prefix}.lora_B.weight"] = np.zeros((d_out, 16), np.float32)
    data = encode(AdapterMessage(1, "client0", 48, tensors))
    payload = 4 * costmodel.lora_parameters(arch, 16, ["q_proj", "k_proj", "v_proj", "o_proj"])
    assert payload == 4 * 1_843_200
    assert len(data) - payload == safetensors_overhead(data)
    assert 0 < safetensors_overhead(data) / payload < 0.01
