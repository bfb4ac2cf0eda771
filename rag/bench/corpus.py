"""Deterministic inputs: synthetic company-document chunks with a question each, and the sample corpus.

The chunks are built from sentence templates with varied slot values and lengths of 50-250 words,
because length buckets only pay off when chunk lengths vary the way real ingests do. Every chunk
carries a project code name that its question repeats, so each question has one right chunk and
top-1 agreement between two embedders is well posed (not a coin toss between near-duplicates).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"

OFFICES = (
    "Leipzig", "Hamburg", "Vienna", "Zurich", "Lyon", "Porto", "Krakow", "Tallinn", "Dublin", "Bologna",
    "Ghent", "Aarhus", "Brno", "Graz", "Malmo", "Utrecht", "Bilbao", "Tampere", "Cork", "Lille",
)  # fmt: skip
FIRST = ("Jana", "Tobias", "Miriam", "Lukas", "Aylin", "Henrik", "Sofia", "Mateo", "Ines", "Pavel", "Nora", "Kenji")
LAST = ("Vogel", "Reinhardt", "Novak", "Berger", "Okafor", "Lindqvist", "Moreau", "Santos", "Keller", "Tanaka")
ADJECTIVES = (
    "amber", "brisk", "cobalt", "dusty", "ember", "frosty", "golden", "hollow", "ivory", "jade", "keen", "lunar",
    "mossy", "nimble", "opal", "quiet", "rustic", "silver", "tidal", "umber", "velvet", "wild", "young", "zesty",
)  # fmt: skip
NOUNS = (
    "heron", "falcon", "badger", "otter", "lynx", "marten", "osprey", "ibex", "wren", "bison", "crane", "gecko",
    "jackal", "kestrel", "lemur", "magpie", "newt", "puffin", "raven", "stoat", "tapir", "vole", "walrus", "yak",
)  # fmt: skip
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
PRODUCTS = ("Brindlepost", "Ledgerly", "Quillstack", "Harborline", "Tessellate", "Copperleaf")

# (statement, question) pairs per topic; {code} is the chunk's project code name.
FACTS: dict[str, tuple[tuple[str, str], ...]] = {
    "IT operations": (
        ("The VPN gateway used by project {code} in {office} accepts connections on TCP port {port}.",
         "Which TCP port does the VPN gateway of project {code} use?"),
        ("Laptop backups for the {code} team are kept for {n} days and run every night at {time}.",
         "How long are laptop backups of the {code} team kept?"),
        ("The {code} build servers are patched every {day} at {time}; a reboot follows within {m} minutes.",
         "When are the {code} build servers patched?"),
        ("The IT Service Desk for project {code} is reached on internal extension {ext}.",
         "Which extension reaches the service desk for project {code}?"),
    ),
    "Security": (
        ("Passwords for {code} service accounts must be at least {n} characters long and are rotated every {m} days.",
         "How long must passwords of {code} service accounts be?"),
        ("A suspected incident in project {code} must be reported to {email} within {h} hours.",
         "Where are security incidents of project {code} reported?"),
        ("Visitors to the {code} lab receive a {color} lanyard and are escorted at all times.",
         "What colour of lanyard do visitors to the {code} lab get?"),
        ("Exceptions to the USB storage block for {code} require form SEC-{ext}, signed by {person}.",
         "Which form requests a USB exception for project {code}?"),
    ),
    "Facilities": (
        ("The {code} team sits in room {room} on floor {floor} of the {office} office.",
         "In which room does the {code} team sit?"),
        ("Hot food for the {code} offsite is served from {time} in the {office} canteen; "
         "the dish of the day costs {price} euros.",
         "How much does the dish of the day cost at the {code} offsite?"),
        ("Parking for project {code} visitors is in garage {floor}, open until {time} on weekdays.",
         "Until when is the garage for {code} visitors open?"),
        ("Meeting room {room} is reserved for the {code} stand-up every {day} at {time}.",
         "When is the {code} stand-up held?"),
    ),
    "Finance": (
        ("The {code} budget for {year} is {price} thousand euros, approved by {person} on {date}.",
         "What is the {year} budget of project {code}?"),
        ("Travel expenses for {code} are reimbursed within {n} days once receipts reach {email}.",
         "How fast are {code} travel expenses reimbursed?"),
        ("Purchases above {price} euros for {code} need a second signature from {person}.",
         "Above what amount do {code} purchases need a second signature?"),
    ),
    "People": (
        ("New members of the {code} team collect their badge in room {room} from {person} on their first {day}.",
         "Where do new {code} team members collect their badge?"),
        ("The {code} onboarding buddy programme lasts {n} weeks and ends with a review by {person}.",
         "How long is the {code} onboarding buddy programme?"),
        ("Remote work for the {code} team is allowed on up to {m} days a month after the probation period.",
         "On how many days a month may the {code} team work remotely?"),
    ),
    "Product": (
        ("{product} for project {code} listens on port {port} for its web interface and REST API.",
         "Which port does {product} use for project {code}?"),
        ("The {code} tier of {product} supports at most {n} users and costs {price} euros per year.",
         "How many users does the {code} tier of {product} support?"),
        ("{product} keeps application logs of the {code} installation for {m} days by default.",
         "How long does {product} keep logs for the {code} installation?"),
        ("The configuration file of the {code} deployment is /etc/{lower}/{code_slug}.toml.",
         "Where is the configuration file of the {code} deployment?"),
    ),
    "Release notes": (
        ("{product} {version} for the {code} customer was released on {date} and fixes CVE-{year}-{cve}.",
         "When was {product} {version} for the {code} customer released?"),
        ("The flag --legacy-{code_slug} is deprecated in {product} {version} and will be removed "
         "in the next major release.",
         "Which flag is deprecated in {product} {version}?"),
        ("Export jobs for {code} run {pct} percent faster since {product} {version}.",
         "How much faster are {code} export jobs since {product} {version}?"),
    ),
}  # fmt: skip

FILLER = (
    "Questions about this page go to {person}, who reviews it every quarter.",
    "Where this page and the group policy disagree, the group policy wins.",
    "The {office} office follows the same rules unless a local addendum says otherwise.",
    "Changes to this procedure are announced in the monthly all-hands meeting and on the intranet.",
    "Keep a copy of the confirmation email, since audits ask for it.",
    "Teams that cannot meet a deadline agree a new date with {person} in writing.",
    "The previous version of this page, revision {n}, is archived and no longer valid.",
    "Most requests are handled within one business day, urgent ones sooner.",
    "Contractors follow the same process but need their sponsor to approve each step.",
    "If something here is unclear, ask in the #help channel before opening a ticket.",
    "The checklist at the end of this section summarises the required steps.",
    "Exceptions are rare, documented, and reviewed again after {m} months.",
    "This applies to every location, including shared desks and the {office} co-working space.",
    "Please do not forward this page outside the company; it is marked internal.",
    "A short training on this topic is part of the onboarding week.",
)


@dataclass(frozen=True)
class Chunk:
    """One synthetic chunk and the question only it answers."""

    text: str
    question: str
    words: int


def _values(rng: random.Random, code: str) -> dict[str, Any]:
    product = rng.choice(PRODUCTS)
    return {
        "code": code,
        "code_slug": code.lower().replace(" ", "-"),
        "office": rng.choice(OFFICES),
        "person": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "port": rng.randint(1024, 65000),
        "n": rng.randint(2, 120),
        "m": rng.randint(2, 60),
        "h": rng.choice((4, 8, 12, 24, 48)),
        "time": f"{rng.randint(6, 20):02d}:{rng.choice((0, 15, 30, 45)):02d}",
        "day": rng.choice(DAYS),
        "ext": rng.randint(1000, 9999),
        "email": f"{code.split()[0].lower()}-{rng.choice(('desk', 'sec', 'ops', 'finance'))}@example.com",
        "color": rng.choice(("red", "green", "yellow", "orange", "purple", "blue")),
        "room": f"{rng.choice('ABCDE')}-{rng.randint(1, 499):03d}",
        "floor": rng.randint(1, 9),
        "price": rng.randint(5, 900),
        "year": rng.randint(2019, 2026),
        "date": f"{rng.randint(1, 28)} {rng.choice(('March', 'May', 'July', 'October'))} {rng.randint(2023, 2026)}",
        "product": product,
        "lower": product.lower(),
        "version": f"{rng.randint(2, 6)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
        "cve": rng.randint(1000, 49999),
        "pct": rng.randint(5, 70),
    }


def synthetic_chunks(count: int, seed: int = 2026) -> list[Chunk]:
    """``count`` distinct chunks of about 50-220 words, the same for the same seed on every machine."""
    rng = random.Random(seed)
    codes = [f"{a.title()} {n.title()}" for a in ADJECTIVES for n in NOUNS]
    rng.shuffle(codes)
    chunks = []
    for index in range(count):
        code = codes[index % len(codes)] + (f" {index // len(codes) + 1}" if index >= len(codes) else "")
        topic = rng.choice(sorted(FACTS))
        facts = list(FACTS[topic])
        rng.shuffle(facts)
        values = _values(rng, code)
        sentences = [facts[0][0].format(**values)]
        question = facts[0][1].format(**values)
        target = rng.randint(40, 190)  # sentences overshoot: 50-220 words, mostly within 256 tokens
        pool = [f[0] for f in facts[1:]] + list(FILLER)
        while sum(len(s.split()) for s in sentences) < target:
            values = {**_values(rng, code), "office": values["office"], "product": values["product"]}
            sentences.append(rng.choice(pool).format(**values))
        heading = f"{topic} - {values['office']} office, project {code}"
        text = heading + "\n\n" + " ".join(sentences)
        chunks.append(Chunk(text, question, len(text.split())))
    return chunks


def sample_questions() -> list[dict[str, Any]]:
    """The sample corpus's question set, answerable questions first (they reach the LLM)."""
    path = SAMPLE / "questions.jsonl"
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(items, key=lambda item: item.get("kind") == "unanswerable")


def sample_sections() -> list[tuple[str, str]]:
    """(heading, text) of the sample documents that have headings: sources for grounded LLM prompts."""
    from ingest.loaders import load_file

    out = []
    for name in ("it-handbook.md", "product-faq.docx", "release-notes.html"):
        for section in load_file(SAMPLE / name):
            if section.heading and len(section.text) >= 200:
                out.append((section.heading.split(" > ")[-1], section.text))
    return out
