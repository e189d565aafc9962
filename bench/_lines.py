"""The fixed form every bench ends with, so that a reader or a script finds its figures."""


def ratio_line(name: str, value: float) -> str:
    """One figure: ``NAME: ratio R`` (``dispatch: ratio 1.52``)."""
    return f"{name}: ratio {value:.2f}\n"
