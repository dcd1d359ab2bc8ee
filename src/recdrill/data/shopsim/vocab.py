"""Words the synthetic shop builds its catalogue, titles and search queries from.

Each top category brings its leaf subcategories (each with the product nouns sold there), the
adjectives and variants its titles use, and a typical price. Titles read
``"{brand} {adjective} {noun} {variant}"`` and queries reuse the same words, so search relevance
can be decided from the words alone.

The vocabulary keeps three properties the search judgements rely on (the tests check them): nouns
are unique across the whole shop, no noun's words are a subset of another noun's in the same leaf,
and adjectives are single words.

Example:
    >>> TOP_CATEGORIES[0].name, TOP_CATEGORIES[0].leaves[0]
    ('Beauty', ('Makeup', ('Lipstick', 'Mascara', 'Foundation')))
    >>> MAX_SUBCATEGORIES, MAX_BRANDS
    (6, 3600)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopCategoryVocab:
    """The words of one top category.

    Attributes:
        name: the category's display name.
        median_price: typical price in the shop's currency; leaf prices scatter around it.
        leaves: ``(leaf name, nouns sold in that leaf)`` pairs.
        adjectives: one-word adjectives for titles and queries.
        variants: the last part of a title (size, colour, pack).
    """

    name: str
    median_price: float
    leaves: tuple[tuple[str, tuple[str, ...]], ...]
    adjectives: tuple[str, ...]
    variants: tuple[str, ...]


def _top(
    name: str, price: float, leaves: tuple[str, ...], adjectives: str, variants: str
) -> TopCategoryVocab:
    # Compact source form, "Leaf: Noun, Noun, Noun", keeps the table readable.
    parsed = tuple(
        (leaf.split(":")[0].strip(), tuple(noun.strip() for noun in leaf.split(":")[1].split(",")))
        for leaf in leaves
    )
    return TopCategoryVocab(name, price, parsed, tuple(adjectives.split()), tuple(variants.split(",")))


TOP_CATEGORIES: tuple[TopCategoryVocab, ...] = (
    _top(
        "Beauty", 18.0,
        (
            "Makeup: Lipstick, Mascara, Foundation",
            "Skincare: Serum, Moisturizer, Cleanser",
            "Haircare: Shampoo, Conditioner, Hair Mask",
            "Fragrance: Eau de Parfum, Body Mist, Cologne",
            "Nail Care: Nail Polish, Cuticle Oil, Nail File",
            "Bath & Body: Body Lotion, Shower Gel, Bath Salts",
        ),
        "Matte Hydrating Radiant Gentle Vegan Long-Lasting Nourishing Sheer",
        "30ml,50ml,100ml,Travel Size,Set of 2,Refill",
    ),
    _top(
        "Toys", 25.0,
        (
            "Building Sets: Block Set, Construction Kit, Marble Run",
            "Dolls: Doll, Dollhouse, Pram",
            "Board Games: Board Game, Card Game, Puzzle",
            "Outdoor Play: Kite, Water Blaster, Sandbox",
            "Plush: Teddy Bear, Plush Dragon, Plush Bunny",
            "Vehicles: Toy Car, Train Set, RC Truck",
        ),
        "Wooden Educational Classic Deluxe Mini Interactive Colorful Magnetic",
        "Ages 3+,Ages 6+,Ages 8+,Starter Pack,Family Edition,Pack of 4",
    ),
    _top(
        "Kitchen", 30.0,
        (
            "Cookware: Frying Pan, Saucepan, Dutch Oven",
            "Cutlery: Chef Knife, Knife Block, Steak Knives",
            "Small Appliances: Blender, Toaster, Kettle",
            "Bakeware: Baking Tray, Cake Tin, Muffin Pan",
            "Food Storage: Food Container, Spice Rack, Bread Bin",
            "Tableware: Dinner Plate, Mug, Serving Bowl",
        ),
        "Stainless Nonstick Cast-Iron Ceramic Compact Professional Bamboo Glass",
        "20cm,24cm,28cm,1L,Set of 3,Set of 6",
    ),
    _top(
        "Garden", 35.0,
        (
            "Garden Tools: Pruning Shears, Trowel, Rake",
            "Planters: Plant Pot, Raised Bed, Window Box",
            "Watering: Garden Hose, Watering Can, Sprinkler",
            "Outdoor Lighting: String Lights, Path Light, Lantern",
            "Seeds & Soil: Potting Soil, Seed Kit, Fertilizer",
            "Outdoor Furniture: Garden Chair, Patio Table, Hammock",
        ),
        "Weatherproof Galvanized Ergonomic Heavy-Duty Solar Foldable Terracotta Organic",
        "Small,Medium,Large,5L,10m,Pack of 2",
    ),
    _top(
        "Electronics", 90.0,
        (
            "Audio: Headphones, Earbuds, Speaker",
            "Computer Accessories: Keyboard, Mouse, USB Hub",
            "Phone Accessories: Phone Case, Charger, Power Bank",
            "Wearables: Smartwatch, Fitness Tracker, Smart Ring",
            "Cameras: Action Camera, Webcam, Dashcam",
            "Smart Home: Smart Plug, Smart Bulb, Video Doorbell",
        ),
        "Wireless Portable Compact Waterproof Ultra-Slim Rechargeable Noise-Cancelling Pro",
        "32GB,64GB,128GB,Black,White,2-Pack",
    ),
    _top(
        "Sports", 40.0,
        (
            "Fitness: Yoga Mat, Dumbbell, Resistance Band",
            "Running: Running Shoes, Running Belt, Sports Socks",
            "Cycling: Bike Helmet, Bike Light, Cycling Gloves",
            "Team Sports: Football, Basketball, Shin Guards",
            "Camping: Tent, Sleeping Bag, Camping Stove",
            "Swimming: Swim Goggles, Swim Cap, Kickboard",
        ),
        "Lightweight Breathable Adjustable Durable Quick-Dry Padded Foldable Reflective",
        "Size S,Size M,Size L,1kg,5kg,Pair",
    ),
    _top(
        "Fashion", 45.0,
        (
            "Tops: T-Shirt, Blouse, Sweater",
            "Bottoms: Jeans, Chinos, Skirt",
            "Outerwear: Rain Jacket, Parka, Blazer",
            "Shoes: Sneakers, Ankle Boots, Sandals",
            "Accessories: Scarf, Belt, Beanie",
            "Bags: Backpack, Tote Bag, Crossbody Bag",
        ),
        "Slim-Fit Oversized Linen Cotton Vintage Knitted Waterproof Classic",
        "XS,S,M,L,XL,One Size",
    ),
    _top(
        "Books", 15.0,
        (
            "Fiction: Novel, Short Stories, Thriller",
            "Children's Books: Picture Book, Bedtime Stories, Activity Book",
            "Cookbooks: Cookbook, Baking Book, Recipe Journal",
            "Travel Guides: City Guide, Road Atlas, Phrasebook",
            "Science: Astronomy Guide, Biology Primer, Physics Textbook",
            "Comics: Comic Book, Manga, Superhero Annual",
        ),
        "Illustrated Hardcover Paperback Bestselling Annotated Pocket Collector's Revised",
        "1st Edition,2nd Edition,Vol. 1,Vol. 2,Box Set,Large Print",
    ),
    _top(
        "Home", 40.0,
        (
            "Bedding: Duvet Cover, Pillow, Fitted Sheet",
            "Decor: Vase, Wall Art, Photo Frame",
            "Lighting: Table Lamp, Floor Lamp, Ceiling Light",
            "Rugs: Area Rug, Runner Rug, Doormat",
            "Organizers: Storage Basket, Shoe Rack, Drawer Organizer",
            "Curtains: Drapes, Blackout Blind, Curtain Rod",
        ),
        "Cozy Minimalist Handwoven Scandinavian Velvet Rustic Modern Recycled",
        "Grey,Beige,Navy,Small,Large,Set of 2",
    ),
    _top(
        "Pets", 25.0,
        (
            "Dog Food: Dry Dog Food, Wet Dog Food, Dog Treats",
            "Cat Supplies: Cat Litter, Scratching Post, Cat Tree",
            "Pet Toys: Chew Toy, Cat Wand, Fetch Ball",
            "Pet Beds: Dog Bed, Cat Bed, Pet Blanket",
            "Walking: Dog Leash, Dog Harness, Collar",
            "Aquarium: Fish Tank, Aquarium Filter, Fish Flakes",
        ),
        "Grain-Free Chewable Orthopedic Reflective Natural Durable Washable Interactive",
        "Small,Medium,Large,2kg,10kg,Pack of 6",
    ),
    _top(
        "Grocery", 8.0,
        (
            "Coffee & Tea: Ground Coffee, Green Tea, Coffee Beans",
            "Snacks: Trail Mix, Granola Bar, Potato Chips",
            "Pantry: Pasta, Olive Oil, Basmati Rice",
            "Breakfast: Cereal, Oatmeal, Peanut Butter",
            "Beverages: Sparkling Water, Fruit Juice, Energy Drink",
            "Sweets: Dark Chocolate, Gummy Bears, Cookies",
        ),
        "Organic Roasted Gluten-Free Wholegrain Spicy Unsweetened Fair-Trade Artisan",
        "250g,500g,1kg,6-Pack,12-Pack,Family Pack",
    ),
    _top(
        "Office", 20.0,
        (
            "Writing: Ballpoint Pen, Fountain Pen, Highlighter",
            "Paper: Notebook, Sticky Notes, Printer Paper",
            "Desk: Desk Organizer, Monitor Stand, Desk Lamp",
            "Filing: File Folder, Binder, Label Maker",
            "Office Furniture: Office Chair, Standing Desk, Footrest",
            "Planning: Planner, Wall Calendar, Whiteboard",
        ),
        "Ergonomic Refillable Recycled Adjustable Magnetic Premium Compact Waterproof",
        "A4,A5,Pack of 10,Pack of 50,Black,Blue",
    ),
)  # fmt: skip

# Brand names are three syllables: onset + middle + ending, 20 * 15 * 12 = 3,600 distinct names.
BRAND_ONSETS = (
    "Lu", "Ve", "Ka", "No", "Zi", "Ba", "Ori", "Sa", "Te", "Mi",
    "Quo", "Fe", "Ar", "Eli", "Da", "Po", "Xa", "Ru", "Ty", "Ho",
)  # fmt: skip
BRAND_MIDDLES = ("mo", "ra", "li", "ve", "na", "do", "ri", "ka", "so", "le", "ta", "vi", "ne", "lo", "ze")
BRAND_ENDINGS = ("ra", "x", "on", "ia", "ly", "eo", "is", "um", "a", "en", "ix", "o")

MAX_TOP_CATEGORIES = len(TOP_CATEGORIES)
MAX_SUBCATEGORIES = min(len(top.leaves) for top in TOP_CATEGORIES)
MAX_BRANDS = len(BRAND_ONSETS) * len(BRAND_MIDDLES) * len(BRAND_ENDINGS)


def brand_name(code: int) -> str:
    """The brand name with number ``code`` in ``[0, MAX_BRANDS)``.

    Example:
        >>> brand_name(0), brand_name(MAX_BRANDS - 1)
        ('Lumora', 'Hozeo')
    """
    onset, rest = divmod(code, len(BRAND_MIDDLES) * len(BRAND_ENDINGS))
    middle, ending = divmod(rest, len(BRAND_ENDINGS))
    return BRAND_ONSETS[onset] + BRAND_MIDDLES[middle] + BRAND_ENDINGS[ending]
