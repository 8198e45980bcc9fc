"""A mobile-first patient portal."""

import os

# Piccolo finds the database engine through this module (built from PORTAL_* settings).
os.environ.setdefault("PICCOLO_CONF", "app.piccolo_conf")
