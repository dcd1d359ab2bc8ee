"""Recommenders sharing one protocol: ``fit``, ``score``/``recommend``, ``save`` and ``load_model``."""

from recdrill.models.base import BaseRecommender, Recommendations, Recommender
from recdrill.models.factory import MODEL_KINDS, load_model, make_model, model_class
from recdrill.models.itemknn import ItemKNNRecommender
from recdrill.models.popularity import CategoryPopularityRecommender, PopularityRecommender

__all__ = [
    "MODEL_KINDS",
    "BaseRecommender",
    "CategoryPopularityRecommender",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "Recommendations",
    "Recommender",
    "load_model",
    "make_model",
    "model_class",
]
