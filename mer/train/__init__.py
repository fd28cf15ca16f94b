"""Training and evaluation: subject-wise splits, metrics, losses, the fold engine."""
