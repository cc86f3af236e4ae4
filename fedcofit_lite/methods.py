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
from .messages import AdapterMessage

if TYPE_CHECKING:
    from .client import Client
    from .federation import Federation

CENTRAL = "central"  # adapter id of the centralized baseline's model


class Method:
    """Base class: the local stage and evaluation shared by the client-based methods."""

    name = "method"
    shares_local_stage = True  # the compare command runs the local stage once for these

    def prepare(self, fed: Federation) -> None:
        """Check the method can run on this federation (before any training); may add adapters."""

    def evaluated(self, fed: Federation) -> list[str]:
        """Adapter ids whose test answers are scored (default: every client's)."""
        return [c.client_id for c in fed.clients]

    def local_stage(self, fed: Federation) -> dict[str, Any]:
        """Round 0: every client fine-tunes on its private data."""
        return {"train_loss": fed.train_clients(0, fed.cfg.train.epochs)}

    def round(self, fed: Federation, r: int) -> dict[str, Any]:
        """Exchange, then train; return this round's metrics row (without test scores)."""
        raise NotImplementedError


class Consensus(Method):
    name = "consensus"

    def round(self, fed: Federation, r: int) -> dict[str, Any]:
        return fed.consensus_round(r)


class Local(Method):
    name = "local"

    def round(self, fed: Federation, r: int) -> dict[str, Any]:
        timer = fed.timer()
        with timer("train"):
            losses = fed.train_clients(r, fed.cfg.train.round_epochs)
        return {"train_loss": losses, "seconds": timer.seconds}


class FedAvg(Method):
    """FedAvg over LoRA adapters; ``prox_mu > 0`` makes it FedProx."""

    def __init__(self, prox_mu: float = 0.0, name: str | None = None) -> None:
        self.prox_mu = prox_mu
        self.name = name or ("fedprox" if prox_mu > 0 else "fedavg")
        self.server = FedAvgServer()

    def _upload(self, fed: Federation, client: Client, r: int) -> AdapterMessage:
        """The client's adapter message; a simulated bad client sends its parameter fault instead."""
        tensors = fed.pool.get_tensors(client.client_id)
        fault = PARAMETER_OF[fed.behaviours.get(client.client_id, "honest")]
        tensors = corrupt_tensors(fault, tensors, fed.cfg.seed, r, client.client_id)
        return AdapterMessage(r, client.client_id, len(client.private), tensors)

    def prepare(self, fed: Federation) -> None:
        shapes = {c.client_id: shapes_of(fed.pool.get_tensors(c.client_id)) for c in fed.clients}
        why = incompatibility(shapes, {c.client_id: c.model_name for c in fed.clients})
        if why:
            raise IncompatibleAdaptersError(why)

    def round(self, fed: Federation, r: int) -> dict[str, Any]:
        timer = fed.timer()
        active, dropped = fed.active_clients(r)
        with timer("exchange"):
            received = [fed.wire.send(self._upload(fed, c, r), "up") for c in active]
            try:
                update, report = self.server.aggregate(r, received)
            except RuntimeError:  # every adapter rejected
                fed.require_clients(r, [], dropped)
                raise
            fed.require_clients(r, report.clients, {**dropped, **report.rejected})
            for c in active:
                fed.pool.set_tensors(c.client_id, fed.wire.send(update, "down").tensors)
        with timer("train"):
            losses = fed.train_clients(r, fed.cfg.train.round_epochs, prox_mu=self.prox_mu, clients=active)
        return {
            "train_loss": losses,
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

    def _train(self, fed: Federation, r: int, epochs: int) -> dict[str, float]:
        pooled = [TrainRecord(e.instruction, e.context, e.response) for c in fed.clients for e in c.private]
        steps = fed.pool.train(
            CENTRAL, pooled, fed.cfg.train, epochs, seed=fed.seed_of(r, len(fed.clients)), accountant=fed.accountant_of(CENTRAL)
        )
        return {CENTRAL: last_epoch_loss(steps, epochs)}

    def local_stage(self, fed: Federation) -> dict[str, Any]:
        return {"train_loss": self._train(fed, 0, fed.cfg.train.epochs)}

    def round(self, fed: Federation, r: int) -> dict[str, Any]:
        timer = fed.timer()
        with timer("train"):
            losses = self._train(fed, r, fed.cfg.train.round_epochs)
        return {"train_loss": losses, "seconds": timer.seconds}


def make_method(name: str, prox_mu: float = 0.0) -> Method:
    """A method by its config name (``federation.method`` / ``compare.methods``)."""
    if name == "consensus":
        return Consensus()
    if name == "fedavg":
        return FedAvg()
    if name == "fedprox":
        return FedAvg(prox_mu=prox_mu, name="fedprox")
    if name == "local":
        return Local()
    if name == "centralized":
        return Centralized()
    raise ValueError(
        f"unknown method {name!r} (federation.method, compare.methods or --method): "
        f"choose one of consensus, fedavg, fedprox, local, centralized."
    )
