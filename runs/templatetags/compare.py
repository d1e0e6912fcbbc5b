"""Template helpers of the compare page (runs/templates/runs/_compare_sections.html)."""

from django import template

register = template.Library()


@register.filter
def make_list_of_one(value) -> list:
    """``[value]``: one matched row shown with the partial that shows several."""
    return [value]


@register.filter
def at(values, index):
    """``values[index]`` (None past the end): a run's cell of a matched row."""
    try:
        return values[int(index)]
    except (IndexError, TypeError, ValueError):
        return None


@register.filter
def last_n(steps) -> str:
    """The number of an image series' last step (the slider starts there)."""
    return str(steps[-1]["n"]) if steps and steps[-1]["n"] is not None else ""
