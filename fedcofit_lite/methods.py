"""What clients exchange each round: the method under study and its baselines.

Every method runs the same schedule on the same clients, partition and seed:
a local stage (round 0: each client fine-tunes on its private data for
``train.epochs``), then ``federation.rounds`` rounds of *exchange, then train
``train.round_epochs``*, then evaluation of the models the clients hold. The
methods differ only in what is exchanged before training:

``consensus``
    answers to the public prompts up, consensus pseudo-labels down
    (:class:`~fedcofit_lite.server.ConsensusServer`); clients then train on
    private data + pseudo-labels.
``fedavg`` / ``fedprox``
    LoRA adapter tensors up, their example-weighted average down
    (:class:`~fedcofit_lite.fedavg.FedAvgServer`); clients load the average
    and train on private data (fedprox adds the proximal term ``train.prox_mu``).
    Every client starts from the same adapter (the server's initial global
    model, broadcast once; counted in round 1's bytes down), as in FedIT.
``ffa``
    FFA-LoRA (Sun et al., 2024): the A factors stay frozen at the shared start
    and only the B factors are trained, sent and averaged, so the average of
    the clients' updates is exactly the update of the averaged adapter, at
    about half FedAvg-LoRA's bytes. It trains only B from round 0, so its local
    stage is its own.
``local``
    nothing: each client trains alone (the lower reference).
``centralized``
    one adapter trained on the union of all private data, with the same
    epochs (the upper reference; it needs the data itself to move).

A method only wires the federation's pieces; the compute lives in the pool,
the servers and the trainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .adversary import PARAMETER_OF, corrupt_tensors
from .evaluate import last_epoch_loss
from .fedavg import FedAvgServer, IncompatibleAdaptersError, incompatibility, shapes_of
from .finetune import TrainRecord
from .messages import AdapterMessage, GlobalAdapterMessage

if TYPE_CHECKING:
    from .client import Client
    from .federation import Federation

CENTRAL = "central"  # adapter id of the centralized baseline's model
GLOBAL = "global"  # adapter id of the FedAvg server's global model


class Method:
    """Base class: the local stage and evaluation shared by the client-based methods."""

    name = "method"
    shares_local_stage = True  # the compare command runs the local stage once for these

    def prepare(self, fed: Federation) -> None:
        """Check the method can run on this federation (before any training); may add adapters."""

    def evaluated(self, fed: Federation) -> list[str]:
        """Adapter ids whose test answers are scored (default: every client's)."""
        return [c.client_id for c in fed.clients]

    def global_adapter(self, fed: Federation) -> str | None:
        """Adapter id of the server's global model, scored beside the clients' (parameter methods only)."""
        return None

    def local_stage(self, fed: Federation) -> dict[str, Any]:
        """Round 0: every client fine-tunes on its private data."""
        return fed.train_clients(0, fed.cfg.train.epochs)

    def round(self, fed: Federation, r: int) -> dict[str, Any]:
        """Exchange, then train; return this round's metrics row (without test scores)."""
        raise NotImplementedError


class Consensus(Method):
    """Semantic consensus under ``consensus.rule``, or under ``rule`` (method name ``consensus@RULE``)."""

    def __init__(self, rule: str | None = None) -> None:
        self.rule = rule
        self.name = f"consensus@{rule}" if rule else "consensus"

    def prepare(self, fed: Federation) -> None:
        if self.rule:  # this method's own rule; the federation's server follows the config otherwise
            fed.server = fed._consensus_server(self.rule)

    def round(self, fed: Federation, r: int) -> dict[str, Any]:
        return fed.consensus_round(r)


class Local(Method):
    name = "local"

    def round(self, fed: Federation, r: int) -> dict[str, Any]:
        timer = fed.timer()
        with timer("train"):
            trained = fed.train_clients(r, fed.cfg.train.round_epochs)
        return {**trained, "seconds": timer.seconds}


class FedAvg(Method):
    """FedAvg over LoRA adapters (FedIT); ``prox_mu > 0`` makes it FedProx, ``ffa`` FFA-LoRA.

    The server keeps its global model as an adapter of its own (``GLOBAL``):
    the example-weighted average it sends down each round, scored on the
    test set beside the clients' personalized models (the average plus one
    more epoch of local training).
    """

    def __init__(self, prox_mu: float = 0.0, ffa: bool = False, name: str | None = None) -> None:
        self.prox_mu = prox_mu
        self.ffa = ffa
        self.name = name or ("ffa" if ffa else "fedprox" if prox_mu > 0 else "fedavg")
        self.shares_local_stage = not ffa  # FFA-LoRA trains only B from the start
        self.server = FedAvgServer()

    def _shared(self, tensors: dict) -> dict:
        """What travels: every LoRA tensor, or only the B factors for FFA-LoRA."""
        return {k: v for k, v in tensors.items() if "lora_B" in k} if self.ffa else tensors

    def _upload(self, fed: Federation, client: Client, r: int) -> AdapterMessage:
        """The client's adapter message; a simulated bad client sends its parameter fault instead."""
        tensors = self._shared(fed.pool.get_tensors(client.client_id))
        fault = PARAMETER_OF[fed.behaviours.get(client.client_id, "honest")]
        tensors = corrupt_tensors(fault, tensors, fed.cfg.seed, r, client.client_id)
        return AdapterMessage(r, client.client_id, len(client.private), tensors)

    def prepare(self, fed: Federation) -> None:
        shapes = {c.client_id: shapes_of(fed.pool.get_tensors(c.client_id)) for c in fed.clients}
        why = incompatibility(shapes, {c.client_id: c.model_name for c in fed.clients})
        if why:
            raise IncompatibleAdaptersError(why)
        if GLOBAL not in fed.pool.client_models:  # the server's model, at the clients' shared start
            fed.pool.add_adapter(GLOBAL, fed.clients[0].model_name)
            fed.global_start = fed.pool.get_tensors(GLOBAL)
        fed.pool.set_tensors(GLOBAL, fed.global_start)
        self.server = FedAvgServer()  # a fresh server per run (its reference shapes)

    def global_adapter(self, fed: Federation) -> str | None:
        return GLOBAL

    def local_stage(self, fed: Federation) -> dict[str, Any]:
        return fed.train_clients(0, fed.cfg.train.epochs, freeze_a=self.ffa)

    def round(self, fed: Federation, r: int) -> dict[str, Any]:
        timer = fed.timer()
        active, dropped = fed.active_clients(r)
        with timer("exchange"):
            if r == 1:  # the shared start every client began from, broadcast once (counted here, in round 1)
                start = GlobalAdapterMessage(r, self._shared(fed.global_start))
                for _ in fed.clients:
                    fed.wire.send(start, "down")
            received = [fed.wire.send(self._upload(fed, c, r), "up") for c in active]
            try:
                update, report = self.server.aggregate(r, received)
            except RuntimeError:  # every adapter rejected
                fed.require_clients(r, [], dropped)
                raise
            fed.require_clients(r, report.clients, {**dropped, **report.rejected})
            fed.pool.set_tensors(GLOBAL, update.tensors, partial=self.ffa)
            for c in active:
                fed.pool.set_tensors(c.client_id, fed.wire.send(update, "down").tensors, partial=self.ffa)
        with timer("train"):
            trained = fed.train_clients(r, fed.cfg.train.round_epochs, prox_mu=self.prox_mu, clients=active, freeze_a=self.ffa)
        return {
            **trained,
            "rejected_clients": report.rejected,
            "dropped_clients": dropped,
            "fedavg_weights": report.weights,
            "seconds": timer.seconds,
        }


class Centralized(Method):
    """One adapter on the pooled private data of all clients (data leaves the clients)."""

    name = "centralized"
    shares_local_stage = False

    def prepare(self, fed: Federation) -> None:
        """Add the pooled-data adapter once; later calls reset it to its initial weights."""
        if CENTRAL not in fed.pool.client_models:
            fed.pool.add_adapter(CENTRAL, fed.clients[0].model_name)
            self.initial = fed.pool.get_tensors(CENTRAL)
        elif getattr(self, "initial", None) is not None:
            fed.pool.set_tensors(CENTRAL, self.initial)

    def evaluated(self, fed: Federation) -> list[str]:
        return [CENTRAL]

    def _train(self, fed: Federation, r: int, epochs: int) -> dict[str, Any]:
        pooled = [TrainRecord(e.instruction, e.context, e.response) for c in fed.clients for e in c.private]
        steps = fed.pool.train(
            CENTRAL, pooled, fed.cfg.train, epochs, seed=fed.seed_of(r, len(fed.clients)), accountant=fed.accountant_of(CENTRAL)
        )
        return {"train_loss": {CENTRAL: last_epoch_loss(steps, epochs)}, "train_steps": {CENTRAL: len(steps)}}

    def local_stage(self, fed: Federation) -> dict[str, Any]:
        return self._train(fed, 0, fed.cfg.train.epochs)

    def round(self, fed: Federation, r: int) -> dict[str, Any]:
        timer = fed.timer()
        with timer("train"):
            trained = self._train(fed, r, fed.cfg.train.round_epochs)
        return {**trained, "seconds": timer.seconds}


def make_method(name: str, prox_mu: float = 0.0) -> Method:
    """A method by its config name (``federation.method`` / ``compare.methods``)."""
    if name == "consensus":
        return Consensus()
    if name.startswith("consensus@"):
        from .consensus import RULES

        rule = name.partition("@")[2]
        if rule not in RULES:
            raise ValueError(f"unknown consensus rule {rule!r} in method {name!r}: choose from {list(RULES)}.")
        return Consensus(rule)
    if name == "fedavg":
        return FedAvg()
    if name == "fedprox":
        return FedAvg(prox_mu=prox_mu, name="fedprox")
    if name == "ffa":
        return FedAvg(ffa=True)
    if name == "local":
        return Local()
    if name == "centralized":
        return Centralized()
    raise ValueError(
        f"unknown method {name!r} (federation.method, compare.methods or --method): "
        f"choose one of consensus, fedavg, fedprox, ffa, local, centralized, or consensus@RULE."
    )
