#!/usr/bin/env python3
"""Generates demo/erp-export.csv: a fictional ERP export of 250 truck drivers.

Deterministic (fixed seed): running it again gives the same bytes, so the file in the
repository can always be checked against its generator:

    python3 demo/generate_erp_export.py            # rewrites demo/erp-export.csv
    python3 demo/generate_erp_export.py --check    # exit 1 when the file differs

Everybody in it is invented. Phone numbers are in +49 151 0xxxxxxx (German mobile numbers whose
subscriber part starts with 0 are not assigned to subscribers), e-mail addresses use
spedition-example.de. Only the Python standard library is used. See demo/README.md.
"""

import argparse
import csv
import io
import random
import sys
from pathlib import Path

SEED = 20240611
COUNT = 250

FIRST_NAMES = [
    "Andreas", "Michael", "Thomas", "Stefan", "Frank", "Jürgen", "Uwe", "Klaus", "Ralf",
    "Sven", "Jörg", "Dirk", "Markus", "Torsten", "Holger", "Matthias", "Christian", "Bernd",
    "Peter", "Wolfgang", "Oliver", "Carsten", "Jens", "Marco", "Daniel", "Tobias", "Dennis",
    "Sebastian", "Kai", "Heiko", "Lars", "Björn", "Mehmet", "Ahmet", "Piotr", "Tomasz",
    "Marek", "Dariusz", "Sergej", "Alexander", "Dmitri", "Goran", "Nikola", "Florian",
    "Patrick", "René", "Maik", "Sandra", "Nicole", "Petra", "Sabine", "Katrin", "Anja",
    "Melanie", "Jessica", "Agnieszka", "Jana", "Ayşe",
]

LAST_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder",
    "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange",
    "Schmitt", "Werner", "Schmitz", "Krause", "Meier", "Lehmann", "Schmid", "Schulze",
    "Maier", "Köhler", "Herrmann", "König", "Walter", "Mayer", "Huber", "Kaiser", "Fuchs",
    "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Vogel", "Friedrich",
    "Keller", "Günther", "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann",
    "Franke", "Albrecht", "Schuster", "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin",
    "Petersen", "Jansen", "Hansen", "Thomsen", "Nowak", "Kowalski", "Wiśniewski", "Yılmaz",
    "Kaya", "Popov", "Ivanović", "Brandt", "Dittmann", "Ohlsen", "Carstens", "Rademacher",
]

# Depot, its plate prefix and its weight (how many drivers work there).
DEPOTS = [
    ("Hamburg-Billbrook", "HH", 80),
    ("Bremen-Hemelingen", "HB", 50),
    ("Hannover-Lahe", "H", 45),
    ("Kiel-Wellsee", "KI", 40),
    ("Lübeck-Genin", "HL", 35),
]

DEPARTMENTS = [("Fernverkehr", 40), ("Nahverkehr", 35), ("Kühllogistik", 15), ("Gefahrgut", 10)]
SHIFTS = [("Frühschicht", 40), ("Spätschicht", 35), ("Nachtschicht", 15), ("Tagdienst", 10)]
EXTRA_TAGS = ["ersthelfer", "stapler", "kran", "englisch", "polnisch", "ausbilder"]

UMLAUTS = str.maketrans({
    "ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "ś": "s", "ı": "i", "ş": "s",
    "ć": "c", "Ä": "ae", "Ö": "oe", "Ü": "ue",
})

COLUMNS = [
    "employee_no", "first_name", "last_name", "depot", "department", "vehicle", "shift",
    "phone", "email", "active", "tags", "threema_id",
]

ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def weighted(rng, pairs):
    return rng.choices([p[0] for p in pairs], weights=[p[-1] for p in pairs])[0]


def ascii_local(first, last):
    return f"{first}.{last}".lower().translate(UMLAUTS)


def tags_for(rng, department):
    tags = []
    if department == "Fernverkehr":
        tags.append("fernverkehr")
    if department == "Nahverkehr":
        tags.append("nahverkehr")
    if department == "Kühllogistik" or rng.random() < 0.08:
        tags.append("kuehl")
    if department == "Gefahrgut" or rng.random() < 0.10:
        tags.append("adr")
    for t in EXTRA_TAGS:
        if rng.random() < 0.07:
            tags.append(t)
    return ";".join(tags)


def make_rows(rng):
    rows = []
    employee_no = 10000
    used_emails, used_phones, used_plates = set(), set(), set()
    depot_list = [d for d in DEPOTS for _ in range(d[2])]
    rng.shuffle(depot_list)
    for i in range(COUNT):
        employee_no += rng.randint(1, 9)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        depot, prefix, _ = depot_list[i]
        department = weighted(rng, DEPARTMENTS)
        vehicle = ""
        if rng.random() >= 0.1:  # about one in ten drives no fixed vehicle (pool, trainee)
            while True:
                plate = f"{prefix}-LS {rng.randint(100, 9999)}"
                if plate not in used_plates:
                    used_plates.add(plate)
                    vehicle = plate
                    break
        phone = ""
        if rng.random() >= 0.04:
            while True:
                phone = f"+491510{rng.randint(0, 9999999):07d}"
                if phone not in used_phones:
                    used_phones.add(phone)
                    break
        email = ""
        if rng.random() >= 0.12:
            local, n = ascii_local(first, last), 1
            while f"{local}@spedition-example.de" in used_emails:
                n += 1
                local = f"{ascii_local(first, last)}{n}"
            email = f"{local}@spedition-example.de"
            used_emails.add(email)
        rows.append({
            "employee_no": str(employee_no),
            "first_name": first,
            "last_name": last,
            "depot": depot,
            "department": department,
            "vehicle": vehicle,
            "shift": weighted(rng, SHIFTS),
            "phone": phone,
            "email": email,
            "active": "0" if rng.random() < 0.04 else "1",
            "tags": tags_for(rng, department),
            "threema_id": "",
        })
    # Some drivers' Threema IDs are known to the company already; a few do not use Threema.
    reachable = [r for r in rows if r["phone"] or r["email"]]
    for r in rng.sample(reachable, 8):
        r["threema_id"] = "none"
    for r in rng.sample([r for r in rows if r["threema_id"] == ""], 15):
        r["threema_id"] = "".join(rng.choice(ID_ALPHABET) for _ in range(8))
    return rows


def render(rows):
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    ap.add_argument("--out", default=str(Path(__file__).with_name("erp-export.csv")))
    args = ap.parse_args()
    text = render(make_rows(random.Random(SEED)))
    path = Path(args.out)
    if args.check:
        same = path.exists() and path.read_text(encoding="utf-8") == text
        print(f"{path}: {'up to date' if same else 'differs from the generator'}")
        return 0 if same else 1
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({COUNT} drivers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
