from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF's handler, plus our intake errors as 400s with a code and a message."""
    from uploads.urlfetch import FetchRefused
    from uploads.validation import RefusedUpload

    if isinstance(exc, (RefusedUpload, FetchRefused)):
        from rest_framework.response import Response

        return Response({"code": exc.code, "detail": exc.message}, status=400)
    return drf_exception_handler(exc, context)
