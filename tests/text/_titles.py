"""Item titles whose words say the category: kitchen, garden and music goods."""

from __future__ import annotations

NOUNS: dict[str, tuple[str, ...]] = {
    "kitchen": (
        "frying pan",
        "saucepan",
        "chef knife",
        "cutting board",
        "mixing bowl",
        "whisk",
        "spatula",
        "colander",
        "soup ladle",
        "rolling pin",
    ),
    "garden": (
        "garden hose",
        "shovel",
        "leaf rake",
        "pruning shears",
        "watering can",
        "wheelbarrow",
        "flower pot",
        "lawn mower",
        "hedge trimmer",
        "seed tray",
    ),
    "music": (
        "acoustic guitar",
        "drum kit",
        "piano keyboard",
        "guitar strings",
        "drumsticks",
        "microphone stand",
        "violin bow",
        "ukulele",
        "harmonica",
        "saxophone reed",
    ),
}
ADJECTIVES = ("classic", "deluxe")
CATEGORIES = tuple(NOUNS)


def titled_items(per_category: int) -> tuple[list[str], list[int]]:
    """``per_category`` titles per category (category-major order) and each item's category."""
    titles, cats = [], []
    for c, name in enumerate(CATEGORIES):
        for n in range(per_category):
            noun = NOUNS[name][n % len(NOUNS[name])]
            titles.append(f"{ADJECTIVES[(n // len(NOUNS[name])) % 2]} {noun} for {name}")
            cats.append(c)
    return titles, cats
