#!/usr/bin/env python3
"""Writes nfc-data.txt, the canonical decomposition and composition data CanonicalComposition.cs reads.

Run once per Unicode version (the file records Python's unicodedata version); the library itself needs
no Python. Lines: "d CP CCC [D1 D2]" (a code point's canonical combining class and its one-level
canonical decomposition, when it has one) and "c A B C" (A followed by B composes to C under NFC).
Hangul syllables are left out: they are composed algorithmically.
"""
import sys
import unicodedata

out = [f"# Unicode {unicodedata.unidata_version}, from Python {sys.version.split()[0]} unicodedata by generate-nfc-data.py"]
for cp in range(0x110000):
    if 0xAC00 <= cp <= 0xD7A3 or 0xD800 <= cp <= 0xDFFF:
        continue
    ch = chr(cp)
    ccc = unicodedata.combining(ch)
    decomposition = unicodedata.decomposition(ch)
    canonical = [] if not decomposition or decomposition.startswith("<") else [int(x, 16) for x in decomposition.split()]
    if ccc or canonical:
        out.append("d %X %d%s" % (cp, ccc, "".join(" %X" % c for c in canonical)))
    if len(canonical) == 2 and unicodedata.normalize("NFC", unicodedata.normalize("NFD", ch)) == ch:
        out.append("c %X %X %X" % (canonical[0], canonical[1], cp))
with open(sys.argv[1] if len(sys.argv) > 1 else "nfc-data.txt", "w", encoding="ascii") as f:
    f.write("\n".join(out) + "\n")
