"""Generated test images shared by the Python tests (browser, Python package, Ray)."""
from PIL import Image


def pattern(w, h, seed):
    """An RGB image of stripes and checks that differs with the seed."""
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):
        for x in range(w):
            px[x, y] = ((x * (3 + seed) + y) % 256, (y * (5 + 2 * seed)) % 256, ((x // 8 + y // 8) % 2) * 200)
    return img
