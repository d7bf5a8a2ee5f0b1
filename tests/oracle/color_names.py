"""Test oracle: the colour names the reference gives RGB triples, with webcolors 1.5 as it pins.

The reference names a synthetic car's colour with webcolors.rgb_to_name (CSS3) when the triple is
a CSS3 value, else the nearest CSS 2.1 name by squared RGB distance, from a dict keyed by distance
filled in CSS21_HEX_TO_NAMES order (so the later name wins a tie). Writes OUT_DIR/names.txt with
"r g b name" lines: every CSS3 value, every tie between CSS 2.1 colours on a grid, and a grid.
Usage: python color_names.py OUT_DIR
"""
import os
import sys

import numpy as np
import webcolors


def closest_colour(requested):
    min_colours = {}
    for key, name in webcolors.CSS21_HEX_TO_NAMES.items():
        r_c, g_c, b_c = webcolors.hex_to_rgb(key)
        rd = (r_c - requested[0]) ** 2
        gd = (g_c - requested[1]) ** 2
        bd = (b_c - requested[2]) ** 2
        min_colours[(rd + gd + bd)] = name
    return min_colours[min(min_colours.keys())]


def colour_name(rgb):
    try:
        return webcolors.rgb_to_name(rgb)
    except ValueError:
        return closest_colour(rgb)


def main(out):
    assert hasattr(webcolors, "CSS21_HEX_TO_NAMES"), "webcolors 1.5 expected (tests/requirements.txt)"
    os.makedirs(out, exist_ok=True)
    triples = set()
    for h in webcolors.CSS3_HEX_TO_NAMES:
        triples.add(tuple(webcolors.hex_to_rgb(h)))
    grid = list(range(0, 256, 16)) + [255, 64, 96, 127, 128, 160, 192, 210, 224]
    for r in grid:
        for g in grid:
            for b in grid:
                triples.add((r, g, b))
    rng = np.random.default_rng(3)
    for t in rng.integers(0, 256, (3000, 3)):
        triples.add(tuple(int(v) for v in t))
    n_ties = 0
    with open(os.path.join(out, "names.txt"), "w") as f:
        for t in sorted(triples):
            d = sorted(sum((a - b) ** 2 for a, b in zip(webcolors.hex_to_rgb(k), t)) for k in webcolors.CSS21_HEX_TO_NAMES)
            n_ties += d[0] == d[1]
            f.write("%d %d %d %s\n" % (t[0], t[1], t[2], colour_name(t)))
    print(f"wrote {len(triples)} colour names ({n_ties} nearest-colour ties) to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
