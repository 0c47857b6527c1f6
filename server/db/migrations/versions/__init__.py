"""Revisions of kbchat's schema, oldest first (r0001 is the schema before migrations existed)."""
