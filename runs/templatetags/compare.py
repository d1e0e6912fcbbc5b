"""Template helpers of the compare page (runs/templates/runs/_compare_sections.html)."""

from django import template

register = template.Library()


@register.filter
def make_list_of_one(value) -> list:
    """``[value]``: one matched row shown with the partial that shows several."""
    return [value]
