"""newsbot on Discord: a thin adapter over the answer service (see bot.discord.runner.run_bot)."""

from .client import NewsBot
from .runner import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_REJECTED, run_bot, serve

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "EXIT_REJECTED", "NewsBot", "run_bot", "serve"]
