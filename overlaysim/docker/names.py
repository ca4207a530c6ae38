"""Container names as ``docker run`` makes them up: ``<adjective>_<surname>``.

Docker draws both words at random (and retries on a clash, appending a digit after a few
tries); here they are picked from the container id, which is itself drawn from the world's
seed, so a given seed always names its containers the same way. The word lists are our own.
"""

from __future__ import annotations

import re

ADJECTIVES = (
    "admiring", "agitated", "amazing", "awesome", "blissful", "bold", "brave", "busy",
    "clever", "compassionate", "confident", "cool", "dazzling", "determined", "eager",
    "ecstatic", "elegant", "epic", "festive", "focused", "friendly", "gallant", "gifted",
    "goofy", "happy", "hopeful", "jolly", "keen", "kind", "laughing", "loving", "lucid",
    "modest", "musing", "nifty", "optimistic", "peaceful", "pensive", "quirky", "relaxed",
    "serene", "sharp", "silly", "stoic", "sweet", "tender", "trusting", "upbeat", "vibrant",
    "wizardly", "youthful", "zealous",
)  # fmt: skip
SURNAMES = (
    "agnesi", "babbage", "bardeen", "bell", "bohr", "boole", "cerf", "curie", "darwin",
    "dijkstra", "einstein", "euler", "faraday", "fermat", "feynman", "franklin", "galileo",
    "gauss", "goldberg", "hamilton", "hawking", "hopper", "hypatia", "kepler", "knuth",
    "lamport", "liskov", "lovelace", "maxwell", "meitner", "mirzakhani", "morse", "newton",
    "noether", "pasteur", "payne", "perlman", "ritchie", "shannon", "thompson", "torvalds",
    "turing", "volta", "wescoff", "wiles", "wozniak", "yalow",
)  # fmt: skip
_VALID = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def generate(container_id: str, attempt: int = 0) -> str:
    """A name for ``container_id``; ``attempt`` > 0 after a clash (Docker adds a digit)."""
    n = int(container_id[:16], 16)
    name = f"{ADJECTIVES[n % len(ADJECTIVES)]}_{SURNAMES[(n // len(ADJECTIVES)) % len(SURNAMES)]}"
    if attempt:
        name += str(attempt)
    return name


def valid(name: str) -> bool:
    """The daemon's rule for ``--name``: ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``."""
    return bool(_VALID.match(name))
