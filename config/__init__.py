"""Typed settings from the environment."""

from config.errors import ConfigError
from config.settings import SETTINGS, Settings, describe, get_settings, load_settings, reset_settings_cache

__all__ = ["SETTINGS", "ConfigError", "Settings", "describe", "get_settings", "load_settings", "reset_settings_cache"]
