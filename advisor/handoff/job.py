"""One fine-tune, resolved: the model, the run it came from, the data, the options, where it goes.

``finetune`` builds a :class:`FinetuneJob` once every input is checked; training
(:mod:`.finetune`) and the export of scripts for the user's own trainer (:mod:`.export`) both take
it, and both report through :meth:`FinetuneJob.result`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tlreg.registry import ModelRecord, Registry

from .inputs import Data, Options
from .result import FinetuneResult


@dataclass
class FinetuneJob:
    """One fine-tune's resolved inputs."""

    registry: Registry
    record: ModelRecord
    run_id: str | None
    data: Data
    opts: Options
    out: Path
    device: torch.device
    workers: int
    reporter: Any
    #: the command as typed, every option spelled out (``command.txt``)
    text: str = ""
    #: every item of the run's data rather than the run's sample
    full_data: bool = False

    def result(self, revision: str | None, **kwargs: Any) -> FinetuneResult:
        """The fine-tune's report, with what the job knows filled in."""
        ds = self.data
        return FinetuneResult(
            out=str(self.out),
            ref=self.record.ref,
            revision=revision,
            mode=self.opts.mode,
            run_id=self.run_id,
            data={
                "path": ds.path,
                "fingerprint": ds.fingerprint,
                "classes": ds.classes,
                "samples": len(ds.dataset),
                "modality": ds.dataset.modality,
            },
            options=self.opts.to_dict(),
            device=str(self.device),
            **kwargs,
        )
