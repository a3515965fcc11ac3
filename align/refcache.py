"""Reference log-probs for DPO, computed once and kept on disk, keyed by what determines them.

TRL's own precompute cache is keyed on the dataset fingerprint, which (through a filter
closing over the whole DPOConfig) changes with the output directory, beta or the loss:
so a restart elsewhere or a sweep recomputes every reference forward pass. The
reference log-probs depend only on the reference weights and the tokenized pairs, so
that is the key here: the base weights (LoRA layers excluded: the reference runs with
the adapter disabled) and the token ids TRL produced.
"""

import hashlib
import json
import logging
from pathlib import Path

import torch
from trl import DPOTrainer

from plumb.paths import data_dir, write_whole

logger = logging.getLogger(__name__)
TOKEN_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")
REF_COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")


def reference_weights_hash(model) -> str:
    """Hash of the weights the reference forward pass uses: everything but LoRA layers (bf16/fp32 bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if "lora_" in name:
            continue
        digest.update(name.replace("base_model.model.", "").replace(".base_layer", "").encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(dtype=torch.uint8).numpy())
    return digest.hexdigest()[:24]


def tokens_hash(dataset) -> str:
    """Hash of a tokenized DPO dataset's prompt/chosen/rejected token ids, in row order."""
    digest = hashlib.sha256()
    for batch in dataset.select_columns(list(TOKEN_COLUMNS)).iter(batch_size=1024):
        digest.update(json.dumps([batch[c] for c in TOKEN_COLUMNS]).encode())
    return digest.hexdigest()[:24]


def cache_dir() -> Path:
    """Where reference log-probs are kept: PLUMB_HOME/ref_logps."""
    return data_dir() / "ref_logps"


class CachedRefDPOTrainer(DPOTrainer):
    """TRL's DPOTrainer, unchanged except that precomputed reference log-probs are read from and saved to disk."""

    def _precompute_ref_logps(self, dataset, name, batch_size):
        if not hasattr(self, "_plumb_weights_hash"):
            self._plumb_weights_hash = reference_weights_hash(self.ref_model or self.model)
        path = cache_dir() / f"{self._plumb_weights_hash}-{tokens_hash(dataset)}.json"
        if path.is_file():
            logger.info("Reference log-probs for the %s set reused from %s", name, path)
            saved = json.loads(path.read_text())
            for column in REF_COLUMNS:
                dataset = dataset.add_column(column, saved[column])
            return dataset
        dataset = super()._precompute_ref_logps(dataset, name, batch_size)
        if self.accelerator.is_main_process:
            write_whole(path, json.dumps(dataset.select_columns(list(REF_COLUMNS)).to_dict()))
            logger.info("Reference log-probs for the %s set cached at %s", name, path)
        return dataset
