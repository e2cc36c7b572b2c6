from django import forms
from django.conf import settings

from .models import Bank
from .services import MAX_SAMPLES
from .textnorm import normalise


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """Several files from one input (Django's documented pattern)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if not data and not self.required:
            return []
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class ReferenceImagesForm(forms.Form):
    images = MultipleImageField(
        help_text="Reference pictures; each is hashed (five algorithms) and then discarded."
    )
    note = forms.CharField(max_length=500, required=False, help_text="Kept with every entry.")

    def clean_images(self):
        images = self.cleaned_data["images"]
        if len(images) > settings.UPLOAD_MAX_FILES * 5:
            raise forms.ValidationError(
                f"At most {settings.UPLOAD_MAX_FILES * 5} pictures at once; "
                "use the import_bank command with a hash list for more."
            )
        return images


class KnownMessagesForm(forms.Form):
    """Known bad messages, one per line (a scam, a harassment copypasta)."""

    MAX_MESSAGES = 500

    messages = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80}),
        max_length=200_000,
        help_text="One message per line. Each is normalised (confusables, leetspeak, "
        "spacing, repeated letters) and hashed (text_exact, text_minhash), so its variants "
        "match too; the text is kept as the content's note.",
    )

    def clean_messages(self):
        lines = [line.strip() for line in self.cleaned_data["messages"].splitlines()]
        texts = list(dict.fromkeys(line for line in lines if line))
        if not texts:
            raise forms.ValidationError("Give at least one message.")
        if len(texts) > self.MAX_MESSAGES:
            raise forms.ValidationError(
                f"At most {self.MAX_MESSAGES} messages at once (this has {len(texts)})."
            )
        empty = [t for t in texts if not normalise(t)]
        if empty:
            raise forms.ValidationError(
                f"These have no letters or digits to match: {', '.join(empty[:5])}."
            )
        return texts


class HashListForm(forms.Form):
    file = forms.FileField(
        label="Hash list (CSV)",
        help_text="hash_type,hash_value[,note[,content[,external_id]]] per line; hash_type is "
        "one of "
        "ahash (imagehash.average_hash), dhash, phash (imagehash.phash), phash_simple "
        "(imagehash.phash_simple), pdq. PDQ as 64 hex characters.",
    )
    samples = MultipleImageField(
        label="Check with sample images",
        required=False,
        help_text=f"Optional, at most {MAX_SAMPLES}: pictures the list is known to contain. "
        "Each is hashed with every algorithm and compared with the list, then discarded; "
        "an import whose labels do not fit them is refused, naming the label that does.",
    )


class AddToBankForm(forms.Form):
    bank = forms.ModelChoiceField(queryset=Bank.objects.order_by("name"))
    note = forms.CharField(max_length=500, required=False)
