"""biostation's device drivers, one module per device family, registered by entry point.

Installed as the package ``biostation_drivers``. No driver imports another driver; shared
protocol code of a family goes in ``<family>_proto.py``. ``simulated/`` holds the simulated
scanner, camera and card reader: product code, selected with ``BIOSTATION_DEVICES=simulated``
and automatically for any device class with no hardware attached.
"""
