"""What each trial of a search really trained with, read off the trainer where it reports an evaluation."""

import optuna


def record_trials(monkeypatch) -> list[dict]:
    """Record, at each evaluation Trainer reports to Optuna: the trial, step, metrics, the trainer's own `beta` (DPO),
    and the shapes and scalings of the LoRA layers of the model being trained."""
    from transformers import Trainer

    records = []
    original = Trainer._report_to_hp_search

    def report(self, trial, step, metrics):
        if trial is not None:
            lora = [m for m in self.model.modules() if isinstance(getattr(m, "scaling", None), dict)]
            records.append(
                {
                    "trial": trial.number,
                    "step": step,
                    "metrics": dict(metrics),
                    "beta": getattr(self, "beta", None),
                    "learning_rate": self.args.learning_rate,
                    "lora_A": {tuple(p.shape) for n, p in self.model.named_parameters() if "lora_A" in n},
                    "lora_A_trained": all(p.requires_grad for n, p in self.model.named_parameters() if "lora_A" in n),
                    "lora_scaling": {m.scaling["default"] for m in lora},
                }
            )
        return original(self, trial, step, metrics)

    monkeypatch.setattr(Trainer, "_report_to_hp_search", report)
    return records


def load_study(output_dir, stage: str):
    """The stage's study read back from OUTPUT_DIR/hp_search.db, not from what the run returned."""
    return optuna.load_study(study_name=f"plumb-{stage}", storage=f"sqlite:///{output_dir.resolve()}/hp_search.db")


def complete(study) -> list:
    """The trials that ran to the end (not pruned)."""
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
