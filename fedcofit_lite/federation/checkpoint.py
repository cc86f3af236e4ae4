"""Checkpoints of an in-process run: what a round leaves behind, so an interrupted run resumes to the same result.

Adapters are safetensors and the state is JSON: nothing in a run folder is ever unpickled. Only the
latest checkpoint is kept, and it is swapped in atomically. (On Flower each client keeps its own state.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import safetensors.numpy

from .cohort import LocalCohort

FOLDER = "checkpoint"  # in the run folder; `fed` below is a federation.loop.Federation (no import: no cycle)


def save(fed: Any, round_index: int) -> None:
    """Write what round ``round_index`` left behind: adapters, pseudo-labels, byte counts, accountants."""
    if not isinstance(fed.cohort, LocalCohort):
        return
    final, tmp, old = (fed.runlog.dir / name for name in (FOLDER, f".{FOLDER}.tmp", f".{FOLDER}.old"))
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "adapters").mkdir(parents=True)
    for adapter_id in fed.pool.client_models:
        path = tmp / "adapters" / f"{adapter_id}.safetensors"
        safetensors.numpy.save_file(fed.pool.get_tensors(adapter_id), str(path))
    state = {
        "round": round_index,
        "method": fed.method_name,
        "pseudo_labels": {c.client_id: c.state()["labels"] for c in fed.clients},
        "bytes_by_round": {str(k): v for k, v in fed.wire.bytes_by_round.items()},
        "messages_by_round": {str(k): v for k, v in fed.wire.messages_by_round.items()},
        "accountants": fed.cohort.privacy_state(),
        "vote_seed": fed.vote_seed,  # server side: never sent to a client
    }
    (tmp / "state.json").write_text(json.dumps(state, ensure_ascii=False))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)  # a crash leaves either the old or the new checkpoint, never half of one
    shutil.rmtree(old, ignore_errors=True)


def vote_seed(run_dir: Path) -> int | None:
    """The private vote's noise seed saved with the checkpoint of ``run_dir`` (None: no checkpoint or no vote)."""
    state = Path(run_dir) / FOLDER / "state.json"
    return json.loads(state.read_text()).get("vote_seed") if state.exists() else None


def load(fed: Any) -> int:
    """Restore the latest checkpoint of ``fed``'s run folder; return its round (-1 when there is none)."""
    folder = fed.runlog.dir / FOLDER
    if not (folder / "state.json").exists():
        return -1
    state = json.loads((folder / "state.json").read_text())
    if state["method"] != fed.method_name:
        raise ValueError(
            f"{folder} is a checkpoint of method {state['method']!r} but the run's config says "
            f"{fed.method_name!r}: set federation.method={state['method']} in {fed.runlog.dir / 'config.yaml'}."
        )
    for path in sorted((folder / "adapters").glob("*.safetensors")):
        if path.stem in fed.pool.client_models:
            fed.pool.set_tensors(path.stem, safetensors.numpy.load_file(str(path)))
    for c in fed.cohort.members():
        c.load_state(
            {"labels": state["pseudo_labels"].get(c.client_id, {}), "privacy": state["accountants"].get(c.client_id)}
        )
    for counts in ("bytes_by_round", "messages_by_round"):
        getattr(fed.wire, counts).update({int(k): dict(v) for k, v in state[counts].items()})
    return int(state["round"])
