"""Admin forms: write-only secrets, PEM clean-up and the station-creation form."""

from __future__ import annotations

from django import forms
from django.forms.models import BaseInlineFormSet

from .models import MAX_STATIONS_PER_BATCH, Connector, Station, StationTemplate

SECRET_FIELDS = ("password", "client_key")
PEM_FIELDS = ("ca_cert", "client_cert", "client_key")


def clear_field_name(secret: str) -> str:
    return f"clear_{secret}"


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders its value, for PEM private keys."""

    def get_context(self, name, value, attrs):
        return super().get_context(name, None, attrs)


class SecretFieldsForm(forms.ModelForm):
    """Keeps the password and private key out of the page.

    They are rendered empty; a blank submission keeps the stored value, and a "remove"
    checkbox clears it.
    """

    clear_password = forms.BooleanField(required=False, label="Remove the stored password")
    clear_client_key = forms.BooleanField(required=False, label="Remove the stored private key")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            field = self.fields.get(name)
            if field is None:
                continue
            # Dropping the initial value keeps it out of every rendering path, including
            # hidden "initial" inputs.
            self.initial.pop(name, None)
            field.required = False
            if name == "password":
                field.strip = False
                field.widget = forms.PasswordInput(render_value=False, attrs=field.widget.attrs)
            else:
                field.widget = WriteOnlyTextarea(attrs={"rows": 4, **field.widget.attrs})
            if getattr(self.instance, name, ""):
                field.help_text = f"Leave blank to keep the current one. {field.help_text}"
            else:
                field.help_text = f"Not set. {field.help_text}"

    def clean(self):
        cleaned = super().clean()
        for name in SECRET_FIELDS:
            if name not in self.fields or name in self.errors:
                continue
            if cleaned.get(clear_field_name(name)):
                cleaned[name] = ""
            elif not cleaned.get(name):
                cleaned[name] = getattr(self.instance, name, "")
        for name in PEM_FIELDS:
            # Browsers submit CRLF; OpenSSL and the ssl module are happiest with plain LF.
            value = cleaned.get(name)
            if value:
                cleaned[name] = value.replace("\r\n", "\n").strip() + "\n"
        return cleaned


class StationForm(SecretFieldsForm):
    class Meta:
        model = Station
        fields = "__all__"


class StationTemplateForm(SecretFieldsForm):
    class Meta:
        model = StationTemplate
        fields = "__all__"


class EvseInlineFormSet(BaseInlineFormSet):
    default_error_messages = {"too_few_forms": "A station needs at least one EVSE."}

    def save_new(self, form, commit=True):
        evse = super().save_new(form, commit=commit)
        if commit:
            # Every OCPP EVSE has a connector; its type is edited on the EVSE page.
            Connector.objects.create(evse=evse, connector_id=1)
        return evse


class ConnectorInlineFormSet(BaseInlineFormSet):
    default_error_messages = {"too_few_forms": "An EVSE needs at least one connector."}


class CreateStationsForm(forms.Form):
    count = forms.IntegerField(
        label="Number of stations",
        min_value=1,
        max_value=MAX_STATIONS_PER_BATCH,
        initial=10,
        help_text=f"1 to {MAX_STATIONS_PER_BATCH:,}.",
    )
    start = forms.IntegerField(
        label="First number",
        min_value=0,
        initial=1,
        help_text="The number {n} of the first station; the others follow consecutively.",
    )
