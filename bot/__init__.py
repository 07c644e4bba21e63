"""The faces of newsbot: the `newsbot` command (cli), the console chat (console) and the Discord bot (discord)."""
