"""Query-string forms: every parameter a user can type is validated here (docs/portal.md)."""

from __future__ import annotations

from django import forms

from runs.selectors.runs_list import RUN_SORTS, RUN_STATUS_CHOICES, BadCursor, RunFilters, cursor_decode


class RunFilterForm(forms.Form):
    """The runs list's search, filters, sort and page (a keyset cursor: docs/portal.md#pages)."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "run or pipeline"}),
    )
    bucket = forms.CharField(required=False, max_length=63)
    namespace = forms.CharField(required=False, max_length=253)
    status = forms.ChoiceField(required=False, choices=[("", "any"), *RUN_STATUS_CHOICES])
    date_from = forms.DateField(
        required=False, label="Active from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(required=False, label="until", widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(required=False, choices=[(k, k.replace("_", " ")) for k in RUN_SORTS])
    # Sort by a metric column (KFP mlpipeline-metrics); overrides ``sort``.
    metric = forms.CharField(required=False, max_length=200)
    order = forms.ChoiceField(required=False, choices=[("desc", "highest first"), ("asc", "lowest first")])
    # The page: the runs after (or before) a place in the order, as the pager's links give it.
    after = forms.CharField(required=False, max_length=2000, label="Page link")
    before = forms.CharField(required=False, max_length=2000, label="Page link")
    # Numbered pages gave way to cursors; an old link's page=N gets an explanation.
    page = forms.IntegerField(required=False, min_value=1, max_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["page"].error_messages["max_value"] = (
            "Pages have no numbers any more: use the Next and Previous links."
        )

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The start date is after the end date.")
        if data.get("after") and data.get("before"):
            raise forms.ValidationError("A page link has either after or before, not both.")
        if self.errors:
            return data
        filters = self.filters()
        for name in ("after", "before"):
            token = data.get(name)
            data[f"{name}_cursor"] = None
            if token:
                try:
                    data[f"{name}_cursor"] = cursor_decode(token, filters=filters)
                except BadCursor as exc:
                    self.add_error(name, str(exc))
        return data

    def filters(self) -> RunFilters:
        d = self.cleaned_data
        return RunFilters(
            q=d["q"].strip(),
            bucket=d["bucket"].strip(),
            namespace=d["namespace"].strip(),
            status=d["status"],
            date_from=d["date_from"],
            date_to=d["date_to"],
            sort=d["sort"] or "recent",
            metric=d["metric"].strip(),
            metric_ascending=d["order"] == "asc",
        )


class StateQueryForm(forms.Form):
    """``?since=<seq>`` of the run-state API."""

    since = forms.IntegerField(required=False, min_value=0, max_value=2**62)


class RecipeForm(forms.Form):
    """A recipe's editable fields (docs/recipes.md); saved by runs.services.recipes.recipe_save."""

    name = forms.CharField(max_length=200)
    source = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "spellcheck": "false", "class": "code"}),
        max_length=200_000,
    )
    kinds = forms.CharField(required=False, max_length=2000, help_text="Artifact kinds, comma-separated.")
    name_patterns = forms.CharField(
        required=False, max_length=2000, help_text="Name patterns (fnmatch), comma-separated, e.g. *.csv"
    )
    groups = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    auto_buckets = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Run automatically on new artifacts of"
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, group_choices=(), bucket_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["groups"].choices = list(group_choices)
        self.fields["auto_buckets"].choices = list(bucket_choices)
