"""Test doubles shared by the suites: one scripted model, the fake answer service, the Discord API double."""
