"""The whole RLHF loop, round after round: the stages, simulated raters, the gold judge and the report."""
