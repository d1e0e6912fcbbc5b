"""What the console's model admins share: forms that write through a service."""

from django import forms


class ServiceForm(forms.ModelForm):
    """A model form whose ``apply()`` calls the service that writes the change.

    Django's admin shows only errors raised while a form validates, so the
    service runs at the end of validation (after the model's own checks): a
    refusal from the broker or the store becomes a form error, and since the
    services change nothing when they refuse, nothing is half-applied. The
    admin's ``save_model`` then has nothing left to save (``ServiceAdminMixin``).
    """

    service_errors: tuple[type[Exception], ...] = ()

    def apply(self):
        raise NotImplementedError

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        try:
            self.instance = self.apply()
        except self.service_errors as exc:
            self.add_error(None, str(exc))


class ServiceAdminMixin:
    """Model admins whose form already saved through a service."""

    def save_model(self, request, obj, form, change):
        pass  # ServiceForm.apply() saved it (through the service)
