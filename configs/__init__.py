"""kbchat configuration: settings models, settings.yaml and prompt templates."""

from configs.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
