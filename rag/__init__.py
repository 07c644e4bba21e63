"""newsbot's engine: ingest and index articles, answer questions with cited quotes. No UI here."""
