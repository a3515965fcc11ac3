"""Supervised fine-tuning of a policy on conversations (TRL SFTTrainer, PEFT)."""
