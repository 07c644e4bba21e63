"""The answering pipeline: question, follow-up, translation, retrieval, context, choice, refusal, citations."""
