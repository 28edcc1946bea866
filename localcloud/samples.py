"""Sample contact files in the seed's format, reproducible from a seed."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

FIRST = ["David", "Sarah", "Maria", "James", "Wei", "Aisha", "Olga", "Juan", "Priya", "Tom", "Lena", "Kofi"]
LAST = ["Smith", "Garcia", "Chen", "Okafor", "Novak", "Patel", "Kim", "Müller", "Silva", "Brown", "Haddad"]
CITIES = [("San Diego", "CA", "92101"), ("Austin", "TX", "73301"), ("Boston", "MA", "02108"),
          ("Denver", "CO", "80202"), ("Seattle", "WA", "98101")]


def contact_line(index: int, seed: int = 7, domain: str = "example.com", tag_every: int = 200) -> str:
    """The same index always gives the same contact, so files made with overlapping ranges share contacts."""
    rng = random.Random(f"{seed}-{index}")  # reproducible sample data  # nosec B311
    tag = ""
    if tag_every and index % tag_every == tag_every - 1:
        tag = ("+bounce", "+blocked", "+blockedforever")[(index // tag_every) % 3]
    first, last = rng.choice(FIRST), rng.choice(LAST)
    city, state, zip_code = rng.choice(CITIES)
    email = f"{first.lower()}.{last.lower()}.{index}{tag}@{domain}"
    phone = f"{rng.randint(200, 999)}-555-{rng.randint(0, 9999):04d}"
    return f"{first} {last}, {email}, {phone}, {rng.randint(1, 99999)} Anywhere St, {city}, {state}, {zip_code}"


def sample_lines(rows: int, seed: int = 7, start: int = 0, duplicate_rate: float = 0.1,
                 invalid_every: int = 0, tag_every: int = 200) -> Iterator[str]:
    """`rows` lines of contacts start, start+1, ...: about duplicate_rate of the lines repeat an
    earlier contact; one contact in `tag_every` (200) is tagged +bounce, +blocked or +blockedforever; every
    invalid_every-th line is malformed."""
    rng = random.Random(f"{seed}-{start}-{rows}")  # reproducible sample data  # nosec B311
    index = start
    emitted: list[str] = []
    for n in range(rows):
        if invalid_every and n % invalid_every == invalid_every - 1:
            yield rng.choice(["Nobody, not-an-email, 555-555-5555", "Short Row", ", , , , , ,",
                              "No Email, , 555-555-5555, 1 St, Austin, TX, 73301"])
            continue
        if emitted and rng.random() < duplicate_rate:
            yield rng.choice(emitted)
            continue
        line = contact_line(index, seed, tag_every=tag_every)
        index += 1
        emitted.append(line)
        yield line


def write_sample(path: Path, rows: int, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for line in sample_lines(rows, **options):
            handle.write(line + "\n")
    return path
