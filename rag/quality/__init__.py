"""Quality measurement: evaluation and benchmarks (data only; bot.cli prints them)."""
