"""XPUShare's driver package: the ``xpushare`` command (``cli``), the local simulation that the demo and
the tests run (``simulation``), and the shared core beneath both components (``core``).

Layers, top to bottom (checked by import-linter): ``dra_driver.cli`` -> ``dra_driver.simulation`` ->
``kubeletplugin`` -> ``controller`` -> ``shim`` -> ``dra_driver.core`` -> ``api``.
"""

__version__ = "0.1.0"
