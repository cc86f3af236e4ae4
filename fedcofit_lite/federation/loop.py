"""The federated loop of both engines: the stages of a run (``base``, ``local``, ``round_R``), evaluation and resume.

The loop only wires the clients (a :class:`~fedcofit_lite.federation.cohort.Cohort`, in this process or on Flower),
the wire and the run folder; each method owns its exchange (:mod:`fedcofit_lite.federation.methods`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import transformers

from ..config import RunConfig, load_config
from ..energy import EnergyMeter
from ..engine.embed import embed_texts
from ..engine.models import device_name, load_embedder
from ..progress import Timer
from ..protocol.messages import Wire
from ..protocol.server import ConsensusServer, build_consensus_server, draw_vote_seed
from ..runlog import MetricsRow, RunLog, format_table, summary_rows
from ..tasks.data import build_suite
from ..tasks.evaluate import mean_over_clients, score_predictions
from . import checkpoint
from .cohort import Cohort, LocalCohort
from .methods import Method, Round, RoundFailedError, check_names, make_method

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What :func:`run_federation` returns; everything is also in ``run_dir``."""

    run_dir: Path
    metrics: list[dict[str, Any]]
    table: str


class Federation:
    """One run's state: the clients (a cohort), the wire, the run folder, and the loop over stages.

    Build it with a config, then call :meth:`run` (or the stages one by one, as the notebooks do). A comparison or a
    sweep (:mod:`fedcofit_lite.experiments`) reuses one federation (one model load) for several methods through
    :meth:`start_method` and :meth:`reconfigure`. ``cohort`` picks the engine (default: :class:`LocalCohort`, every
    client in this process); ``answerers`` (client id -> callable) makes those in-process clients black-box answerers.
    """

    def __init__(
        self,
        cfg: RunConfig,
        runlog: RunLog | None = None,
        progress: bool = True,
        cohort: Cohort | None = None,
        answerers: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = check_names(cfg.validate())
        transformers.set_seed(cfg.seed)
        self.runlog = runlog or RunLog.create(cfg)
        self.runlog.write_config(cfg)
        self.suite = build_suite(cfg)
        self.embedder = load_embedder(cfg.consensus.embedder, device=cfg.model.device)
        # texts -> unit vectors: what the server embeds with, the clients' competence signals (the same public
        # embedder), and the evaluation's embedding similarity
        self.embed = functools.partial(embed_texts, self.embedder, progress=progress)
        self.cohort = cohort if cohort is not None else LocalCohort(cfg, self.suite, answerers, self.embed)
        self.runlog.write_json("partition.json", {i.client_id: i.record() for i in self.cohort.info.values()})
        self.public = {e.id: e for e in self.suite.public}
        self.hardware = {}  # what the models compute on, in every metrics row (unknown here for a remote cohort)
        if isinstance(self.cohort, LocalCohort):
            self.runlog.write_json("models.json", self.cohort.pool.architectures())
            self.hardware = {"hardware": device_name(cfg.model.device)}
        self.wire, self.metrics, self.method_name = Wire(), [], cfg.federation.method
        # private consensus: the server's noise seed (secret unless dp_seed names one)
        self.vote_seed: int | None = None
        self.ctx = self._round_context()
        self.meter = EnergyMeter(cfg.eval.energy, cfg.eval.watts_per_core)  # energy since the last metrics row

    # -- pieces -----------------------------------------------------------
    @property
    def clients(self) -> list:
        """The in-process clients (their data, labels and models)."""
        return self._local().clients

    @property
    def pool(self):
        """The in-process model pool."""
        return self._local().pool

    def _local(self) -> LocalCohort:
        if not isinstance(self.cohort, LocalCohort):
            raise AttributeError(
                "this federation runs on another engine: its clients and models live in their own processes."
            )
        return self.cohort

    def _round_context(self, hint: str | None = None) -> Round:
        """The run context the methods see, rebuilt when a piece changes (its hint and shared start carry over)."""
        old = getattr(self, "ctx", None)
        hint = hint or (old.resume_hint if old is not None else None)
        hint = hint or (
            f"Every earlier round is saved in {self.runlog.dir}; fix the cause (or lower federation.min_clients / "
            f"federation.dropout with --set) and continue with `python -m fedcofit_lite run --resume {self.runlog.dir}`."
        )
        parts = (self.cfg, self.cohort, self.wire, self.runlog, self.suite, self._consensus_server, hint)
        return Round(*parts, global_start=old.global_start if old is not None else None)

    def _consensus_server(self, rule: str | None = None) -> ConsensusServer:
        """The consensus server under ``rule`` (default ``consensus.rule``), with the run's embedder."""
        if self.cfg.consensus.dp_sigma > 0 and self.vote_seed is None:  # once per run; the checkpoint keeps it
            self.vote_seed = draw_vote_seed(self.cfg.consensus)
        return build_consensus_server(self.cfg, self.suite.public, self.embed, rule, self.vote_seed)

    def evaluate(
        self, stage: str, use_base: bool = False, adapters: list[str] | None = None, tag: str = ""
    ) -> tuple[dict, dict]:
        """Answer the test set with each model (default: every client's) or the base; return (mean, per-model) scores.

        The answers go to ``predictions/<stage><tag>.jsonl`` (``tag="_global"``: the server's global model).
        A client that does not reply (another engine) is left out of the mean.
        """
        adapters = adapters or self.cohort.ids
        answers, _failed = self.cohort.predict(adapters, self.suite.test, base=use_base, desc=f"eval {stage}")
        embed_fn = self.embed if self.cfg.eval.embedding_similarity else None
        answers = {a: answers[a] for a in adapters if a in answers}  # in the order asked
        per_adapter, records = score_predictions(answers, self.suite.test, embed_fn)
        self.runlog.write_predictions(stage + tag, records)
        if not per_adapter:
            raise RoundFailedError(f"evaluation of {stage}: no client answered the test set ({_failed}).")
        return mean_over_clients(list(per_adapter.values())), per_adapter

    # fmt: off
    def record(self, stage: str, round_index: int, row: dict[str, Any], use_base: bool = False,
               adapters: list[str] | None = None, global_adapter: str | None = None) -> MetricsRow:
        # fmt: on
        """Evaluate (the clients' models, and the server's global model when there is one), add bytes, write the row."""
        timer = Timer(row.pop("seconds", {}))
        global_scores = {}
        if self.cfg.eval.scores(round_index, self.cfg.federation.rounds):
            with timer("eval"):
                mean, per_adapter = self.evaluate(stage, use_base=use_base, adapters=adapters)
                if global_adapter is not None:
                    global_scores["test_global"] = self.evaluate(stage, adapters=[global_adapter], tag="_global")[0]
            per_adapter = {c: s["all"] for c, s in per_adapter.items()}
        else:
            mean, per_adapter = self.metrics[-1]["test"], self.metrics[-1]["test_per_client"]
        wire_bytes = self.wire.bytes_by_round.get(round_index, {"up": 0, "down": 0})
        spent = self.cohort.privacy_spent(self.cfg.train.dp_delta)  # DP-SGD's epsilon per model so far
        dp = {"dp_epsilon": spent, "dp_delta": self.cfg.train.dp_delta} if spent else {}
        full: MetricsRow = {
            "stage": stage, "round": round_index, "method": self.method_name, "test": mean,
            "test_per_client": per_adapter, **global_scores, "bytes_up": wire_bytes["up"],
            "bytes_down": wire_bytes["down"], **dp, **row, "seconds": timer.seconds, **self.meter.lap(),
            **self.hardware,
        }  # fmt: skip
        self.metrics.append(full)
        self.runlog.append_metrics(full)
        log.info("%s %s: test exact match %.3f", full["method"], stage, mean["all"]["exact_match"])
        return full

    # -- the whole protocol -----------------------------------------------
    def run_base(self) -> dict[str, Any]:
        """Score the untrained base model(s) (stage ``base``)."""
        return self.record("base", -1, {}, use_base=True)

    def run_local_stage(self, method: Method) -> dict[str, Any]:
        """Round 0 of ``method`` (stage ``local``)."""
        timer = Timer()
        with timer("train"):
            row = method.local_stage(self.ctx)
        return self.record("local", 0, {**row, "seconds": timer.seconds}, adapters=method.evaluated(self.ctx))

    def run_rounds(self, method: Method, start: int = 1, save: bool = False) -> None:
        """Rounds ``start``..R of ``method`` (stages ``round_R``), with a checkpoint after each if ``save``."""
        for r in range(start, self.cfg.federation.rounds + 1):
            log.info("%s round %d/%d", method.name, r, self.cfg.federation.rounds)
            row = method.round(self.ctx, r)
            evaluated, global_adapter = method.evaluated(self.ctx), method.global_adapter(self.ctx)
            self.record(f"round_{r}", r, row, adapters=evaluated, global_adapter=global_adapter)
            if save:
                checkpoint.save(self, r)

    def prepare(self, method: Method) -> None:
        """Let ``method`` check it can run here (refusals come before any training) and set up its server."""
        method.prepare(self.ctx)

    def run(self, method: str | Method | None = None) -> RunResult:
        """Run one method end to end (default ``federation.method``): base, local stage, rounds; a checkpoint after
        the local stage and after every round lets :meth:`resume` continue an interrupted run."""
        method = self._method(method)
        self.method_name = method.name
        if method.name != self.cfg.federation.method:  # the folder's config must say what ran, for --resume
            federation = dataclasses.replace(self.cfg.federation, method=method.name)
            self.cfg = dataclasses.replace(self.cfg, federation=federation)
            self.runlog.write_config(self.cfg)
            self.ctx = self._round_context()
        if self.runlog.read_metrics():
            d = self.runlog.dir
            raise FileExistsError(f"{d} already holds results (metrics.jsonl); continue it with `run --resume {d}` or choose a new --run-dir.")
        self.prepare(method)  # refuse early (e.g. FedAvg across architectures), before any training
        self.run_base()
        self.run_local_stage(method)
        checkpoint.save(self, 0)
        self.run_rounds(method, save=True)
        return self.finish()

    def resume(self) -> RunResult:
        """Continue this run folder from its last checkpoint; ends as the uninterrupted run would (metrics rows after
        the checkpoint, of a round evaluated but not yet checkpointed, are dropped and that round runs again)."""
        method = self._method(None)
        self.method_name = method.name
        self.vote_seed = checkpoint.vote_seed(self.runlog.dir)  # before prepare() builds the server
        self.prepare(method)
        done = checkpoint.load(self)
        if done < 0:  # interrupted before the local stage finished: start over
            log.info("no checkpoint in %s: running from the start", self.runlog.dir)
            (self.runlog.dir / "metrics.jsonl").unlink(missing_ok=True)
            return self.run(method)
        self.metrics = [m for m in self.runlog.read_metrics() if m["round"] <= done]
        self.runlog.rewrite_metrics(self.metrics)
        log.info("resuming %s after round %d", self.runlog.dir, done)
        self.run_rounds(method, start=done + 1, save=True)
        return self.finish()

    def _method(self, method: str | Method | None) -> Method:
        return method if isinstance(method, Method) else make_method(method or self.cfg.federation.method, self.cfg)

    def reconfigure(self, cfg: RunConfig) -> None:
        """Go on under ``cfg``, between methods: another public budget (``data.n_public``, the same draw) or
        other behaviours (``federation.behaviours``); the same clients, models, private and test data."""
        self.cfg = cfg.validate()
        self.suite = build_suite(self.cfg)  # the same train and test: only the public sample moves
        self.public = {e.id: e for e in self.suite.public}
        self._local().reconfigure(self.suite, self.cfg.federation.behaviours)
        self.ctx = self._round_context()

    # fmt: off
    def start_method(self, method: Method, runlog: RunLog, adapters: dict[str, dict] | None, shared: list[dict],
                     privacy: dict[str, list] | None = None) -> None:
        # fmt: on
        """Reset the per-method state for a comparison: wire, pseudo-labels, adapters, accountants, folder.

        ``adapters`` (client id -> tensors; e.g. after the shared local stage) and ``privacy`` (model id ->
        accountant history; None: empty) restore the clients; ``shared`` rows (base, local) start the metrics.
        """
        self._local().restore(adapters, privacy)
        self.method_name = method.name
        self.wire = Wire()
        self.runlog = runlog
        self.runlog.write_config(self.cfg)
        self.ctx = self._round_context("This comparison cannot be resumed: fix the cause and run it again into a new --run-dir.")
        self.metrics = [{**row, "method": method.name} for row in shared]
        for row in self.metrics:
            self.runlog.append_metrics(row)

    def finish(self) -> RunResult:
        rows = summary_rows(self.metrics)
        table = format_table(rows)
        self.runlog.write_json("summary.json", {"rows": rows, "bytes_total": self.wire.totals()})
        (self.runlog.dir / "summary.txt").write_text(table + "\n")
        return RunResult(self.runlog.dir, self.metrics, table)


def resume_federation(run_dir: str | Path, progress: bool = True, overrides: list[str] | None = None) -> RunResult:
    """Continue an interrupted run from its folder (config, partition and checkpoint are read from it).

    ``overrides`` (``["federation.min_clients=2"]``) change the saved config, e.g. to get past a round that
    failed for lack of clients; the folder's config.yaml is rewritten with them.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise FileNotFoundError(f"{run_dir} has no config.yaml: not a run folder written by `run`.")
    cfg = load_config(run_dir / "config.yaml", overrides, recorded=True)
    return Federation(cfg, runlog=RunLog(run_dir), progress=progress).resume()


def run_federation(
    cfg: RunConfig,
    run_dir: str | Path | None = None,
    progress: bool = True,
    method: str | None = None,
    answerers: dict[str, Any] | None = None,
) -> RunResult:
    """Run one method (default ``cfg.federation.method``) end to end and write the run folder.

    Examples
    --------
    >>> from fedcofit_lite.config import load_config
    >>> result = run_federation(load_config("ci"))  # doctest: +SKIP
    >>> print(result.table)  # doctest: +SKIP
    """
    runlog = RunLog(run_dir) if run_dir is not None else None
    return Federation(cfg, runlog=runlog, progress=progress, answerers=answerers).run(method)
