"""Chat: the four answer modes (llm, kb, search, agent), conversations, titles and feedback."""
