"""kbchat server: knowledge bases, models, chat services and their APIs."""
