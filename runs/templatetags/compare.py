"""Template helpers of the compare page (runs/templates/runs/_compare_sections.html): the
repeated header row and side-by-side rows, built in Python (runs/views/compare_html.py)."""

from django import template

from runs.views.compare_html import head_html, rows_html

register = template.Library()


@register.filter
def compare_head(comparison, head: str):
    """The runs' header row of a section's table, ``head`` over the row names."""
    return head_html(comparison, head)


@register.filter
def compare_rows(comparison, rows):
    """Matched rows side by side, a cell per run (or a line saying there are none)."""
    return rows_html(comparison, rows)


@register.filter
def compare_row(comparison, row):
    """One matched row side by side."""
    return rows_html(comparison, [row])
