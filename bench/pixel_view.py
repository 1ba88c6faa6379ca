"""What the --pixels agent sees: a CartPole screen beside the observation made from it.

    python bench/pixel_view.py            # writes docs/pixel_view.png

Plays a few fixed steps from a seeded reset, then draws the last rendered screen (with the close-up's
window marked, and the row the track strip is made from) and the 4 stacked 21x41 frames that
beyond.pixels.PixelObservation returns with --preset pixels' view.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from beyond import pixels  # noqa: E402
from beyond.config import PRESETS  # noqa: E402


def main(path=ROOT / "docs" / "pixel_view.png"):
    track_strip = PRESETS["pixels"].get("track_strip", False)
    env = pixels.make_env("CartPole-v1", unwrapped=False, track_strip=track_strip)
    s, _ = env.reset(seed=4)
    for action in [1, 1, 0, 1, 1, 1]:  # a few pushes, mostly right: the pole leans, the cart moves
        s, _, terminated, *_ = env.step(action)
        assert not terminated
    screen = env.unwrapped.render()
    env.close()

    fig = plt.figure(figsize=(9, 6))
    grid = fig.add_gridspec(2, len(s), height_ratios=[2.2, 1])
    top = fig.add_subplot(grid[0, :])
    top.imshow(screen)
    rows = pixels.SCREEN_ROWS
    centre = np.flatnonzero(screen[pixels.CART_ROW, :, 2] < 50).mean()
    half = pixels.VIEW_WIDTH / 2
    top.add_patch(
        plt.Rectangle(
            (centre - half, rows.start), 2 * half, rows.stop - rows.start, fill=False, color="tab:red", lw=1.5
        )
    )
    title = "the screen as the env draws it (300x200); red: the close-up around the cart"
    if track_strip:
        top.axhline(pixels.CART_ROW, color="tab:blue", lw=1)
        title += ";\nblue: the row of the whole track that each frame's bottom two rows show"
    top.set_title(title, fontsize=9)
    top.axis("off")
    for i, frame in enumerate(s):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(frame, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"frame t-{2 * (len(s) - 1 - i)}" if i < len(s) - 1 else "frame t (newest)", fontsize=8)
        ax.axis("off")
    fig.suptitle("what --pixels feeds conv_q_net: 4 stacked 21x41 frames, 2 env steps apart", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
