from django.db import models


class Fingerprint(models.Model):
    """The hashes of an item. 64-bit hashes are stored signed (BigIntegerField), PDQ as hex."""

    item = models.OneToOneField(
        "uploads.MediaItem", primary_key=True, on_delete=models.CASCADE, related_name="fingerprint"
    )
    ahash = models.BigIntegerField(db_index=True)
    dhash = models.BigIntegerField(db_index=True)
    phash = models.BigIntegerField(db_index=True)
    mhash = models.BigIntegerField(db_index=True)
    pdq = models.CharField(max_length=64, db_index=True)
    pdq_quality = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def as_dict(self) -> dict:
        """Unsigned ints keyed by voter name, the shape hashing.algorithms produces."""
        from .algorithms import from_signed64, pdq_from_hex

        return {
            "ahash": from_signed64(self.ahash),
            "dhash": from_signed64(self.dhash),
            "phash": from_signed64(self.phash),
            "mhash": from_signed64(self.mhash),
            "pdq": pdq_from_hex(self.pdq),
            "pdq_quality": self.pdq_quality,
        }
