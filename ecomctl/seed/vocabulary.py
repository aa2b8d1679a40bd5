"""Curated catalogue vocabulary: departments, the product types sold in each (with a typical
price), and the words that make names and descriptions read like a shop's.

Faker supplies the locale-dependent words (people's names, brands, slogans); these lists are
English on purpose: a product type must stay meaningful in every locale.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProductType:
    name: str
    typical_price: int  # dollars; prices scatter around it (see generate._price_cents)


@dataclass(frozen=True)
class Department:
    slug: str
    name: str
    types: tuple[ProductType, ...]
    materials: tuple[str, ...]
    features: tuple[str, ...]  # verb phrases: "It <feature>"
    material_verb: str = "made of"  # "a compact kettle <material_verb> <material>"


def _types(*pairs: tuple[str, int]) -> tuple[ProductType, ...]:
    return tuple(ProductType(name, price) for name, price in pairs)


DEPARTMENTS: tuple[Department, ...] = (
    Department(
        "electronics", "Electronics",
        _types(("Headphones", 120), ("Earbuds", 80), ("Bluetooth Speaker", 70),
               ("Smartwatch", 250), ("Tablet", 400), ("Monitor", 300), ("Webcam", 60),
               ("Wi-Fi Router", 110)),
        ("aluminium", "matte polycarbonate", "recycled plastic", "brushed steel"),
        ("charges fully in under two hours", "pairs with two devices at once",
         "ships with a braided USB-C cable", "has a two-year warranty",
         "updates its firmware over the air"),
    ),
    Department(
        "computers", "Computers & Accessories",
        _types(("Laptop", 1100), ("Wireless Mouse", 35), ("Mechanical Keyboard", 95),
               ("USB-C Hub", 45), ("External SSD", 120), ("Docking Station", 180),
               ("Laptop Stand", 40), ("Memory Card", 25)),
        ("anodized aluminium", "ABS plastic", "magnesium alloy", "soft-touch rubber"),
        ("works with Windows, macOS and Linux", "needs no drivers",
         "folds flat for travel", "keeps cables tidy", "comes with a three-year warranty"),
    ),
    Department(
        "kitchen", "Kitchen & Dining",
        _types(("Chef's Knife", 70), ("Frying Pan", 45), ("Dutch Oven", 110),
               ("Coffee Grinder", 60), ("Cutting Board", 30), ("Blender", 90),
               ("Electric Kettle", 50), ("Mixing Bowl Set", 35)),
        ("stainless steel", "cast iron", "bamboo", "tempered glass", "enamelled steel"),
        ("is dishwasher safe", "works on induction hobs", "heats evenly",
         "stacks neatly in a drawer", "is free of PFAS coatings"),
    ),
    Department(
        "home-decor", "Home Decor",
        _types(("Table Lamp", 55), ("Throw Pillow", 25), ("Wall Mirror", 90), ("Vase", 35),
               ("Area Rug", 150), ("Scented Candle", 20), ("Picture Frame", 18),
               ("Wall Clock", 40)),
        ("linen", "ceramic", "rattan", "solid oak", "hand-blown glass"),
        ("brightens a small room", "is handmade by local artisans",
         "fits any Scandinavian interior", "comes gift-wrapped", "is easy to wipe clean"),
    ),
    Department(
        "furniture", "Furniture",
        _types(("Office Chair", 280), ("Bookshelf", 160), ("Coffee Table", 220),
               ("Standing Desk", 480), ("Nightstand", 120), ("Bar Stool", 90),
               ("Sofa", 900), ("Dining Chair", 110)),
        ("walnut veneer", "powder-coated steel", "solid pine", "velvet", "engineered wood"),
        ("assembles in under twenty minutes", "supports up to 150 kg",
         "has adjustable feet", "ships flat-packed", "resists scratches and stains"),
    ),
    Department(
        "garden", "Garden & Outdoor",
        _types(("Garden Hose", 40), ("Planter", 30), ("Pruning Shears", 25),
               ("Patio Umbrella", 130), ("Watering Can", 20), ("Bird Feeder", 28),
               ("Lawn Sprinkler", 35), ("Garden Gloves", 15)),
        ("UV-stabilised resin", "galvanised steel", "teak", "terracotta", "natural rubber"),
        ("survives frost and summer sun", "drains freely", "packs away for the winter",
         "is made from recycled materials", "attaches to any standard tap"),
    ),
    Department(
        "tools", "Tools & Home Improvement",
        _types(("Cordless Drill", 120), ("Screwdriver Set", 35), ("Tape Measure", 15),
               ("Socket Set", 60), ("Work Light", 45), ("Claw Hammer", 25),
               ("Spirit Level", 22), ("Tool Box", 50)),
        ("chrome vanadium steel", "fibreglass", "hardened steel", "impact-resistant nylon"),
        ("runs for hours on one charge", "comes with a lifetime warranty",
         "has a non-slip grip", "fits in a jacket pocket", "is rated for professional use"),
    ),
    Department(
        "sports", "Sports & Fitness",
        _types(("Yoga Mat", 35), ("Dumbbell Set", 90), ("Resistance Bands", 20),
               ("Jump Rope", 15), ("Foam Roller", 25), ("Kettlebell", 45),
               ("Exercise Bike", 450), ("Water Bottle", 22)),
        ("natural rubber", "neoprene", "cast iron", "TPE foam", "BPA-free plastic"),
        ("grips well even when wet", "folds away after a workout",
         "is suitable for beginners and athletes", "cleans with a damp cloth",
         "comes with a training plan"),
    ),
    Department(
        "outdoors", "Camping & Hiking",
        _types(("Tent", 220), ("Sleeping Bag", 120), ("Hiking Backpack", 140),
               ("Headlamp", 35), ("Trekking Poles", 70), ("Camp Stove", 60), ("Hammock", 45),
               ("Cooler", 80)),
        ("ripstop nylon", "aluminium alloy", "waterproof polyester", "carbon fibre"),
        ("weighs less than a kilogram", "sets up in two minutes",
         "keeps you dry in heavy rain", "packs down to the size of a bottle",
         "is rated for three seasons"),
    ),
    Department(
        "mens-clothing", "Men's Clothing",
        _types(("T-Shirt", 25), ("Hoodie", 55), ("Chinos", 60), ("Denim Jacket", 90),
               ("Oxford Shirt", 50), ("Merino Sweater", 95), ("Rain Jacket", 120),
               ("Polo Shirt", 40)),
        ("organic cotton", "merino wool", "recycled polyester", "stretch denim", "linen"),
        ("keeps its shape wash after wash", "has a relaxed fit",
         "is made in a fair-trade factory", "breathes on warm days",
         "comes in six colours"),
    ),
    Department(
        "womens-clothing", "Women's Clothing",
        _types(("Summer Dress", 70), ("Silk Blouse", 85), ("Cardigan", 65), ("Leggings", 40),
               ("Trench Coat", 180), ("Midi Skirt", 55), ("Jumpsuit", 90), ("Blazer", 130)),
        ("viscose", "organic cotton", "cashmere blend", "silk", "Tencel"),
        ("drapes beautifully", "has hidden side pockets", "is machine washable",
         "layers well in every season", "is cut from deadstock fabric"),
    ),
    Department(
        "shoes", "Shoes",
        _types(("Running Shoes", 120), ("Sneakers", 85), ("Hiking Boots", 150),
               ("Loafers", 110), ("Sandals", 45), ("Chelsea Boots", 160), ("Slippers", 30),
               ("Trail Runners", 130)),
        ("full-grain leather", "suede", "breathable mesh", "recycled rubber", "canvas"),
        ("cushions every step", "has a removable insole", "needs no breaking in",
         "grips on wet rock", "is resoleable"),
    ),
    Department(
        "beauty", "Beauty & Personal Care",
        _types(("Face Serum", 35), ("Moisturizer", 28), ("Shampoo", 12), ("Hair Dryer", 90),
               ("Lip Balm", 6), ("Sunscreen", 18), ("Electric Toothbrush", 70),
               ("Body Lotion", 15)),
        ("a recyclable glass bottle", "an aluminium tube", "a refillable pump bottle",
         "a compostable tin"),
        ("suits sensitive skin", "is fragrance free", "is dermatologically tested",
         "is never tested on animals", "lasts for months"),
        material_verb="in",
    ),
    Department(
        "toys", "Toys & Games",
        _types(("Building Blocks", 40), ("Board Game", 35), ("Jigsaw Puzzle", 20),
               ("Plush Toy", 18), ("Remote Control Car", 55), ("Card Game", 15),
               ("Doll House", 120), ("Science Kit", 35)),
        ("FSC-certified wood", "BPA-free plastic", "recycled cardboard", "soft cotton plush"),
        ("is fun for the whole family", "teaches problem solving",
         "has no small parts", "takes ten minutes to learn", "is safety tested in the EU"),
    ),
    Department(
        "books", "Books",
        _types(("Novel", 18), ("Cookbook", 30), ("Travel Guide", 22), ("Biography", 25),
               ("Notebook", 12), ("Picture Book", 15), ("Art Book", 45),
               ("Poetry Collection", 16)),
        ("a cloth hardcover", "a lay-flat binding", "acid-free pages", "deckled edges"),
        ("was a bestseller last year", "has a foreword by the author",
         "makes a thoughtful gift", "is printed with soy-based inks",
         "includes an illustrated index"),
        material_verb="with",
    ),
    Department(
        "pets", "Pet Supplies",
        _types(("Dog Bed", 60), ("Cat Tree", 90), ("Dog Leash", 20), ("Pet Bowl", 15),
               ("Litter Box", 35), ("Chew Toy", 10), ("Pet Carrier", 50),
               ("Aquarium Filter", 40)),
        ("machine-washable fleece", "stainless steel", "natural rubber", "sisal rope"),
        ("is loved by picky pets", "is vet approved", "resists chewing",
         "cleans up in seconds", "comes in three sizes"),
    ),
    Department(
        "office", "Office Supplies",
        _types(("Fountain Pen", 45), ("Desk Organizer", 25), ("Stapler", 15),
               ("Weekly Planner", 20), ("Label Maker", 40), ("Whiteboard", 60),
               ("Paper Shredder", 90), ("Desk Mat", 25)),
        ("brass", "recycled paper", "vegan leather", "powder-coated steel"),
        ("keeps a busy desk in order", "refills easily", "writes smoothly",
         "works quietly", "is built to last for years"),
    ),
    Department(
        "grocery", "Grocery & Gourmet",
        _types(("Coffee Beans", 16), ("Green Tea", 10), ("Olive Oil", 18),
               ("Dark Chocolate", 6), ("Raw Honey", 12), ("Artisan Pasta", 7),
               ("Hot Sauce", 8), ("Granola", 9)),
        ("a resealable pouch", "a glass jar", "a tin", "a paper bag"),
        ("is sourced from small farms", "is certified organic",
         "is roasted in small batches", "contains no added sugar",
         "is packed by hand"),
        material_verb="in",
    ),
    Department(
        "automotive", "Automotive",
        _types(("Dash Cam", 90), ("Car Vacuum", 50), ("Jump Starter", 80),
               ("Tire Inflator", 45), ("Phone Mount", 20), ("Seat Covers", 60),
               ("Floor Mats", 55), ("Car Wax", 18)),
        ("heat-resistant ABS", "all-weather rubber", "aluminium", "microfibre"),
        ("fits most cars", "installs without tools", "works from a 12 V socket",
         "survives hot summers and cold winters", "has a two-year warranty"),
    ),
    Department(
        "baby", "Baby",
        _types(("Stroller", 350), ("Baby Monitor", 120), ("High Chair", 150),
               ("Diaper Bag", 55), ("Baby Carrier", 110), ("Crib Mobile", 40),
               ("Bottle Set", 30), ("Play Mat", 60)),
        ("organic cotton", "food-grade silicone", "aluminium", "BPA-free plastic"),
        ("folds with one hand", "is easy to clean", "meets every EU safety standard",
         "grows with your child", "is gentle on delicate skin"),
    ),
    Department(
        "music", "Musical Instruments",
        _types(("Acoustic Guitar", 300), ("Digital Piano", 700), ("Ukulele", 80),
               ("Drum Pad", 150), ("Guitar Strings", 12), ("Condenser Microphone", 130),
               ("Audio Interface", 170), ("Violin", 400)),
        ("solid spruce", "mahogany", "maple", "die-cast zinc"),
        ("stays in tune", "sounds warm and rich", "is ready to play out of the box",
         "suits beginners and pros", "comes with a padded case"),
    ),
    Department(
        "jewelry", "Jewelry & Watches",
        _types(("Necklace", 120), ("Bracelet", 80), ("Earrings", 70), ("Ring", 150),
               ("Wristwatch", 250), ("Pendant", 90), ("Cufflinks", 60), ("Anklet", 40)),
        ("sterling silver", "18k gold plate", "surgical steel", "rose gold"),
        ("is hypoallergenic", "arrives in a gift box", "is handcrafted",
         "never tarnishes", "can be engraved"),
    ),
)

ADJECTIVES: tuple[str, ...] = (
    "Classic", "Compact", "Premium", "Essential", "Ultra", "Pro", "Lightweight", "Deluxe",
    "Modern", "Vintage", "Eco", "Smart", "Ergonomic", "Portable", "Heavy-Duty", "Slim",
    "Everyday", "Signature", "Nordic", "Urban", "Studio", "Travel", "Plus", "Max",
)

EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.net", "example.org")

# Each department contributes one category, and each product type one sub-category.
MAX_CATEGORIES = len(DEPARTMENTS) * (1 + min(len(d.types) for d in DEPARTMENTS))
