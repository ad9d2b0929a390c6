"""Reference third-party plugins for toptune (plugin API v1); see docs/plugins.md in toptune's repository.

The package imports nothing heavy at import time: toptune lists plugins from entry-point metadata
alone and imports a module only when its plugin is used.
"""

__version__ = "0.1.0"
