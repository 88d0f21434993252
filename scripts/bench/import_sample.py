#!/usr/bin/env python3
"""Writes a sample historical import: ROWS gift rows over DONORS donors, with deliberate duplicates (a gift
repeated), bad rows (an amount that is no amount, or no surname) and refunds (half of an earlier gift), and prints
what each kind should come to as JSON on stderr's last line. Deterministic for a given seed.

    scripts/bench/import_sample.py ROWS DONORS SEED > sample.csv
"""
import datetime
import json
import random
import sys


def main() -> None:
    rows, donors, seed = (int(a) for a in sys.argv[1:4])
    rng = random.Random(seed)
    today = datetime.date.today()
    out = sys.stdout
    out.write("Supporter ID,Title,First Name,Surname,Email,Address 1,Postcode,Gift Ref,Amount,Date,Fund,Refund Of\n")
    gifts = []
    refunded = set()
    counts = {"rows": rows, "bad": 0, "duplicates": 0, "refunds": 0, "gifts": 0, "donors": donors}
    postcodes = ["SW1A 1AA", "LS1 4AP", "M1 1AE", "EH1 1YZ", "CF10 1AA", "B1 1AA"]
    for i in range(rows):
        # Every donor gives at least once: the first DONORS rows go one to each.
        d = i if i < donors else rng.randrange(donors)
        first, last = f"First{d}", f"Family{d % 997}"
        email = f"donor{d}@example.org"
        date = (today - datetime.timedelta(days=1 + rng.randrange(1500))).strftime("%d/%m/%Y")
        pence = 100 + rng.randrange(50_000)
        amount = f"{pence // 100}.{pence % 100:02d}"
        base = f"D{d},Mr,{first},{last},{email},{d % 200 + 1} High Street,{postcodes[d % len(postcodes)]}"
        kind = rng.random() if i >= donors else 1.0
        if kind < 0.02:
            counts["bad"] += 1
            if rng.random() < 0.5:
                out.write(f"{base},B{i},lots,{date},General,\n")
            else:
                out.write(f"D{d},Mr,{first},,{email},1 High Street,LS1 4AP,B{i},{amount},{date},General,\n")
        elif kind < 0.04 and gifts:
            counts["duplicates"] += 1
            ref, _ = gifts[rng.randrange(len(gifts))]
            out.write(f"{base},{ref},{amount},{date},General,\n")
        elif kind < 0.05 and gifts:
            candidates = [g for g in gifts[-200:] if g[0] not in refunded]
            if not candidates:
                candidates = [g for g in gifts if g[0] not in refunded]
            ref, gift_pence = candidates[rng.randrange(len(candidates))]
            refunded.add(ref)
            half = max(gift_pence // 2, 1)
            counts["refunds"] += 1
            out.write(f"{base},R{i},{half // 100}.{half % 100:02d},{today.isoformat()},General,{ref}\n")
        else:
            ref = f"G{i}"
            gifts.append((ref, pence))
            counts["gifts"] += 1
            out.write(f"{base},{ref},{amount},{date},General,\n")
    print(json.dumps(counts), file=sys.stderr)


if __name__ == "__main__":
    main()
