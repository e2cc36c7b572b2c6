import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from moderation_site.errors import json_error
from moderation_site.http import wants_json

from . import intake, services, tasks
from .models import MediaItem
from .serializers import item_payload
from .text import max_chars, text_submission
from .video import limits as video_limits
from .video import strip_file


def _limits() -> dict:
    return {
        "max_mb": settings.UPLOAD_MAX_BYTES // (1024 * 1024),
        "max_mpx": settings.UPLOAD_MAX_PIXELS // 1_000_000,
        "max_files": settings.UPLOAD_MAX_FILES,
        "video_mb": video_limits().max_bytes // (1024 * 1024),
        "video_minutes": round(video_limits().max_seconds / 60, 1),
        "max_text": max_chars(),
    }


@login_required
@require_GET
def upload_page(request):
    recent = MediaItem.objects.filter(uploader=request.user).select_related("duplicate_of")[:30]
    return render(request, "uploads/upload.html", {"recent": recent, "limits": _limits()})


@login_required
@require_POST
def upload(request):
    """Files and/or a URL through the one intake. JSON for the page's script (the items in
    the shape every surface uses); a redirect with messages otherwise."""
    submissions = [
        intake.Submission(name=f.name, size=f.size, read=f.read)
        for f in request.FILES.getlist("files")
    ]
    url = (request.POST.get("url") or "").strip()
    if url:
        submissions.append(intake.Submission(name=url[:200], url=url))
    body = request.POST.get("text") or ""
    if body:  # validated by the intake like any item (uploads.text)
        submissions.append(text_submission(body))
    result = intake.take(submissions, source=MediaItem.Source.WEB, uploader=request.user)
    if wants_json(request):
        return JsonResponse(_answer(result), status=result.status)
    for r in result.refused:
        messages.error(request, f"{r.name}: {r.detail}" if r.name else r.detail)
    if result.accepted:
        messages.success(request, f"{len(result.accepted)} item(s) received.")
    return redirect("uploads:upload")


def _answer(result: intake.IntakeResult) -> dict:
    # Re-read: with tasks in-process the analysis has already updated the rows.
    fresh = MediaItem.objects.select_related("duplicate_of").in_bulk(
        [i.pk for i in result.accepted]
    )
    body = {
        "items": [item_payload(fresh[i.pk]) for i in result.accepted],
        "errors": [r.as_dict() for r in result.refused],
    }
    if not result.accepted and result.refused:  # nothing taken: the error shape on top
        first = result.refused[0]
        body = {"code": first.code, "detail": first.detail, **body}
    return body


@login_required
@require_GET
def item_status(request, item_uuid):
    try:
        item = services.item_for_user(request.user, item_uuid)
    except MediaItem.DoesNotExist:
        return json_error(404, "not_found", "No such item.")
    return JsonResponse(item_payload(item))


@login_required
@require_GET
def item_detail(request, item_uuid):
    try:
        item = services.item_for_user(request.user, item_uuid)
    except MediaItem.DoesNotExist:
        raise Http404("No such item.") from None
    analyses = item.analyses.all()[:20] if request.user.has_perm("review.view_analysis") else []
    return render(
        request,
        "uploads/item.html",
        {
            "item": item,
            "analyses": analyses,
            "can_see_original": services.can_view_original(request.user, item),
            "source_url": services.shown_source_url(request.user, item),
        },
    )


@login_required
@require_GET
def original(request, item_uuid):
    """Stream an image after the permission check; never a public URL.

    Staff, moderators and the uploader get the original bytes; everyone else a rendition
    without metadata (no EXIF location reaches the community feed), made in the worker with
    the analysis and only streamed here.
    """
    try:
        item = services.item_for_user(request.user, item_uuid, original=True)
    except MediaItem.DoesNotExist:
        raise Http404("No such item.") from None
    try:
        if services.can_view_exact_original(request.user, item):
            fh = item.file.open("rb")
        else:
            fh = _public_copy(item)
    except OSError:  # lost from storage: say so instead of failing
        raise Http404("The image file is no longer available.") from None
    if fh is None:
        response = json_error(
            404,
            "not_ready",
            "The public copy of this image is still being made. Try again in a moment.",
        )
        response["Retry-After"] = "10"
        return response
    response = None
    if item.kind == "video":  # players seek with byte ranges
        response = _byte_range(request, fh, item.mime)
    if response is None:
        response = FileResponse(fh, content_type=item.mime)
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


def _byte_range(request, fh, content_type: str):
    """206 with one byte range of the file (what a video player asks for to seek), 416 for
    a range outside it, None without a Range header (the whole file)."""
    found = _RANGE.match(request.headers.get("Range", "").strip())
    if found is None:
        return None
    fh.seek(0, 2)
    size = fh.tell()
    first, last = found.groups()
    if first == "" and last == "":
        return None
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    if start > end or start >= size:
        fh.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response

    def chunks():
        try:
            fh.seek(start)
            left = end - start + 1
            while left > 0:
                block = fh.read(min(_CHUNK, left))
                if not block:
                    break
                left -= len(block)
                yield block
        finally:
            fh.close()

    response = StreamingHttpResponse(chunks(), status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response


@login_required
@require_GET
def frame(request, item_uuid, number: int):
    """One frame of a video's or an animation's review strip (uploads.video.save_strip), to
    those who may see its exact original (staff, moderators, the uploader); everyone else:
    not found."""
    try:
        item = services.item_for_user(request.user, item_uuid, original=True)
    except MediaItem.DoesNotExist:
        raise Http404("No such item.") from None
    has_strip = item.kind == "video" or bool((item.details or {}).get("animation"))
    if not has_strip or not services.can_view_exact_original(request.user, item):
        raise Http404("No such frame.")
    fh = strip_file(item, number)
    if fh is None:
        raise Http404("No such frame.")
    response = FileResponse(fh, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _public_copy(item: MediaItem):
    """The stored public copy; when there is none (an item from before renditions were made
    with the analysis, or one whose analysis failed), a worker is asked for it and None is
    answered meanwhile. Without a broker (embedded mode) tasks run in-process, so the copy
    is then made here, once."""
    fh = services.public_file(item)
    if fh is None:
        tasks.request_public_copy(item)
        fh = services.public_file(item)
    return fh


@login_required
@require_GET
def feed(request):
    page = Paginator(services.feed_items(), 24).get_page(request.GET.get("page"))
    mine = MediaItem.objects.filter(uploader=request.user).exclude(status__in=MediaItem.VISIBLE)[
        :20
    ]
    return render(request, "uploads/feed.html", {"page": page, "mine": mine})
