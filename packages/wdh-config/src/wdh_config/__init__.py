"""WorkDataHub configuration: one validated `Settings` object, read from the environment.

``get_settings()`` builds it on first use and caches it; nothing is read at import
time. Variable names are upper case (``DATABASE_URL``), attributes lower case
(``settings.database_url``).
"""

from wdh_config._cache import get_settings
from wdh_config._settings import Environment, Settings

__all__ = ["Environment", "Settings", "get_settings"]
