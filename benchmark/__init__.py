"""egat-bench: benchmark harness for Explanation-Guided Adversarial Training and its baselines."""
