"""ShopSim: a seeded synthetic e-commerce shop, for trying recdrill without data of your own.

``generator`` holds :class:`ShopSim`; the other modules each build one part of the shop.
"""

from recdrill.data.shopsim.config import DriftConfig, ShopSimConfig
from recdrill.data.shopsim.generator import ShopSim, ShopSimTruth

__all__ = ["DriftConfig", "ShopSim", "ShopSimConfig", "ShopSimTruth"]
