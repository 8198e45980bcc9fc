"""Piccolo's configuration module: the engine from the settings, and our one app."""

from piccolo.conf.apps import AppRegistry

from app.db import engine_for
from app.settings import get_settings

DB = engine_for(get_settings())

APP_REGISTRY = AppRegistry(apps=["app.piccolo_app"])
