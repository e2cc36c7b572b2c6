from django.core.files.storage import FileSystemStorage


class PrivateFileSystemStorage(FileSystemStorage):
    """Local originals: there is no public URL, only the permission-checked view."""

    def url(self, name):
        raise ValueError("Originals have no public URL; serve them through uploads:original.")
