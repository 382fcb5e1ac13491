"""What the console script's commands share: one-line failures with exit codes."""
