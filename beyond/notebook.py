"""What shows a run inside a notebook: its videos and figures as the page's own elements.

The notebooks built from dqn.py (notebooks/build.py) call these; the command line never does.
"""

import io
from pathlib import Path


def embedded(path):
    """What plays path inside a notebook: an MP4 as a <video> in the page, a GIF as an image."""
    from IPython.display import Image, Video

    if Path(path).suffix.lower() == ".gif":
        return Image(filename=str(path))
    return Video(str(path), embed=True, html_attributes="controls loop")


def shown(figure):
    """What shows a matplotlib figure inside a notebook whatever the backend: its PNG, as an image.

    A notebook shows figures by itself only with the inline backend; with MPLBACKEND=Agg
    set, it would show nothing. The figure is closed, so the inline backend does not show it twice.
    """
    import matplotlib.pyplot as plt
    from IPython import display

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return display.Image(data=buffer.getvalue(), format="png")
