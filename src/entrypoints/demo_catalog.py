"""The demo catalog: a category tree, 41 products (one uncategorised), reviews and favorites.

Everything goes through the use cases, so the counters (ratings, favorites) are what real
requests would have produced.
"""

from __future__ import annotations

from typing import Any

from application.identity import Principal
from domain.users import Role
from entrypoints.bundles import CatalogUseCases

# (category, parent) in creation order.
DEMO_CATEGORIES = [
    ("Electronics", None),
    ("Phones", "Electronics"),
    ("Laptops", "Electronics"),
    ("Audio", "Electronics"),
    ("Home", None),
    ("Kitchen", "Home"),
    ("Furniture", "Home"),
    ("Books", None),
    ("Fiction", "Books"),
    ("Cooking", "Books"),
    ("Sports", None),
    ("Cycling", "Sports"),
    ("Outdoor", "Sports"),
]
# (seller, category or None, name, price, stock, description)
DEMO_PRODUCTS = [
    (
        "alice",
        "Phones",
        "Pixel 8 128 GB, Obsidian",
        "499.00",
        3,
        "Unlocked, lightly used, with the original box and a USB-C cable.",
    ),
    (
        "alice",
        "Phones",
        "iPhone 13 mini",
        "389.00",
        1,
        "Battery health 88 %, no scratches on the screen, always kept in a case.",
    ),
    (
        "bob",
        "Phones",
        "Fairphone 5",
        "549.00",
        2,
        "Repairable phone with a swappable battery; five years of updates left.",
    ),
    (
        "carol",
        "Phones",
        "Rugged phone case",
        "19.99",
        25,
        "Shock-absorbing case with a raised lip that protects the camera.",
    ),
    (
        "bob",
        "Laptops",
        "ThinkPad X1 Carbon Gen 9",
        "899.00",
        1,
        "14-inch, 16 GB RAM, 512 GB SSD; a quiet keyboard and a matte screen.",
    ),
    (
        "alice",
        "Laptops",
        "MacBook Air M2",
        "949.00",
        2,
        "13.6-inch Liquid Retina display, 8 GB memory, midnight colour.",
    ),
    (
        "carol",
        "Laptops",
        "Laptop stand, aluminium",
        "34.50",
        12,
        "Raises the screen to eye level; folds flat for travel.",
    ),
    (
        "bob",
        "Audio",
        "Noise-cancelling headphones",
        "179.00",
        4,
        "Wireless over-ear headphones with 30 hours of battery.",
    ),
    (
        "carol",
        "Audio",
        "Bluetooth speaker, waterproof",
        "59.90",
        8,
        "Pocket-sized speaker with a strap; survives the shower and the beach.",
    ),
    (
        "alice",
        "Audio",
        "Turntable with built-in preamp",
        "229.00",
        1,
        "Belt-drive record player; plug it straight into powered speakers.",
    ),
    (
        "carol",
        "Kitchen",
        "Burr coffee grinder",
        "89.00",
        6,
        "Conical steel burrs and 40 grind settings, from espresso to French press.",
    ),
    (
        "bob",
        "Kitchen",
        "Cast-iron skillet, 26 cm",
        "39.00",
        10,
        "Pre-seasoned pan that goes from the stove into the oven.",
    ),
    (
        "alice",
        "Kitchen",
        "Gooseneck kettle",
        "54.00",
        5,
        "Electric kettle with temperature control for pour-over coffee and tea.",
    ),
    ("carol", "Kitchen", "Chef knife, 20 cm", "74.00", 7, "Hand-forged carbon steel knife with an oak handle."),
    ("bob", "Kitchen", "Stand mixer", "329.00", 2, "Five-litre bowl, dough hook, whisk and paddle; barely used."),
    (
        "alice",
        "Kitchen",
        "Glass food containers, set of 6",
        "27.50",
        20,
        "Oven-safe borosilicate glass with snap-lock lids.",
    ),
    ("carol", "Furniture", "Oak desk, 140 cm", "420.00", 1, "Solid oak top on steel legs; collection only."),
    ("bob", "Furniture", "Ergonomic office chair", "260.00", 2, "Adjustable lumbar support, armrests and seat depth."),
    (
        "alice",
        "Furniture",
        "Bookshelf, five shelves",
        "95.00",
        3,
        "White pine bookshelf, easy to assemble, fits a whole library.",
    ),
    (
        "carol",
        "Furniture",
        "Floor lamp with linen shade",
        "68.00",
        4,
        "Warm light for a reading corner; dimmable bulb included.",
    ),
    (
        "bob",
        "Fiction",
        "The Left Hand of Darkness",
        "9.50",
        3,
        "Ursula K. Le Guin's classic science fiction novel, paperback.",
    ),
    ("alice", "Fiction", "Piranesi", "11.00", 2, "Susanna Clarke's novel about a house of endless halls; like new."),
    (
        "carol",
        "Fiction",
        "One Hundred Years of Solitude",
        "8.75",
        5,
        "Gabriel García Márquez, paperback, a few pencil notes.",
    ),
    (
        "bob",
        "Fiction",
        "The Remains of the Day",
        "7.90",
        1,
        "Kazuo Ishiguro's quiet masterpiece about an English butler.",
    ),
    (
        "alice",
        "Cooking",
        "Salt, Fat, Acid, Heat",
        "24.00",
        4,
        "Samin Nosrat's guide to the four elements of good cooking.",
    ),
    ("carol", "Cooking", "The Food Lab", "35.00", 2, "J. Kenji López-Alt on the science of home cooking; hardcover."),
    (
        "bob",
        "Cooking",
        "Flour Water Salt Yeast",
        "21.00",
        3,
        "Ken Forkish's bread book: sourdough and pizza dough step by step.",
    ),
    ("alice", "Cooking", "Jerusalem", "19.50", 1, "Ottolenghi and Tamimi's cookbook, with a coffee stain on page 40."),
    ("carol", "Cycling", "Road bike helmet", "79.00", 6, "Lightweight helmet with MIPS protection, size M."),
    ("bob", "Cycling", "LED bicycle light set", "29.90", 15, "USB-rechargeable front and rear lights, 400 lumens."),
    (
        "alice",
        "Cycling",
        "Gravel bike, 54 cm",
        "1150.00",
        1,
        "Aluminium frame, carbon fork, 2x11 gears, tubeless-ready wheels.",
    ),
    (
        "carol",
        "Cycling",
        "Bike repair toolkit",
        "24.90",
        9,
        "Multi-tool, tyre levers, patches and a mini pump in a saddle bag.",
    ),
    ("bob", "Outdoor", "Two-person tent", "149.00", 2, "Freestanding backpacking tent, 2.1 kg, with footprint."),
    ("alice", "Outdoor", "Down sleeping bag", "189.00", 1, "Comfortable to -5 °C, packs down to the size of a melon."),
    ("carol", "Outdoor", "Trekking poles, pair", "45.00", 5, "Collapsible carbon poles with cork grips."),
    (
        "bob",
        "Outdoor",
        "Insulated water bottle, 1 l",
        "25.00",
        30,
        "Keeps drinks cold for a day and coffee hot for hours.",
    ),
    ("alice", "Outdoor", "Camping stove", "39.50", 4, "Compact gas stove that boils a litre of water in four minutes."),
    (
        "carol",
        "Audio",
        "Vinyl record cleaning kit",
        "18.00",
        11,
        "Brush, fluid and microfibre cloth for a crackle-free record.",
    ),
    (
        "bob",
        "Electronics",
        "USB-C charger, 65 W",
        "32.00",
        14,
        "Charges a laptop, phone and tablet at once with three ports.",
    ),
    (
        "alice",
        "Home",
        "Houseplant: monstera",
        "22.00",
        3,
        "Healthy 60 cm monstera in a nursery pot; pick up or local delivery.",
    ),
    (  # categories are optional: an uncategorised listing shows with category null
        "bob",
        None,
        "Box of assorted cables and adapters",
        "9.00",
        1,
        "USB, HDMI, a few power leads; everything tested, take the lot.",
    ),
]
# (reviewer, product index, rating, comment)
DEMO_REVIEWS = [
    ("bob", 0, 5, "Exactly as described, fast handover."),
    ("carol", 0, 4, "Great camera, the box was a bit dented."),
    ("alice", 4, 5, "Best keyboard I have typed on."),
    ("carol", 7, 4, "Good noise cancelling, tight at first."),
    ("alice", 10, 5, "Grinds evenly, my espresso improved overnight."),
    ("bob", 10, 4, "Solid, a little loud."),
    ("alice", 11, 5, "Perfect sear every time."),
    ("carol", 12, 3, "Works, but the lid rattles."),
    ("bob", 21, 5, "A beautiful, strange book."),
    ("carol", 24, 5, "Changed how I cook."),
    ("alice", 29, 4, "Bright enough for country roads."),
    ("bob", 30, 5, "Rides like a dream."),
    ("carol", 32, 4, "Roomy for two, packs small."),
    ("alice", 35, 5, "Coffee still warm after lunch."),
]
# (user, product index)
DEMO_FAVORITES = [
    ("bob", 0),
    ("carol", 0),
    ("bob", 5),
    ("carol", 4),
    ("alice", 7),
    ("alice", 10),
    ("bob", 10),
    ("carol", 11),
    ("bob", 21),
    ("alice", 26),
    ("carol", 30),
    ("bob", 30),
    ("alice", 32),
    ("carol", 35),
]


async def load_demo_catalog(catalog: CatalogUseCases, people: dict[str, Any], admin: Any) -> None:
    """A small, realistic catalog: a category tree, 41 products (one uncategorised), reviews, favorites."""

    def principal(user: Any) -> Principal:
        return Principal(id=user.id, role=user.role)

    admin_principal = Principal(id=admin.id, role=Role.ADMIN)
    categories: dict[str, Any] = {}
    for name, parent in DEMO_CATEGORIES:
        parent_id = categories[parent].id if parent else None
        categories[name] = await catalog.create_category.execute(admin_principal, name=name, parent_id=parent_id)
    products = []
    for seller, category, name, price, stock, description in DEMO_PRODUCTS:
        products.append(
            await catalog.create_product.execute(
                principal(people[seller]),
                name=name,
                description=description,
                price=price,
                category_id=categories[category].id if category else None,
                stock=stock,
            )
        )
    for reviewer, index, rating, comment in DEMO_REVIEWS:
        await catalog.create_review.execute(
            principal(people[reviewer]), products[index].id, rating=rating, comment=comment
        )
    for user, index in DEMO_FAVORITES:
        await catalog.add_favorite.execute(principal(people[user]), products[index].id)
