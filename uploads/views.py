from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from moderation_site.http import wants_json

from . import services
from .models import MediaItem
from .renditions import public_file
from .urlfetch import FetchRefused
from .validation import RefusedUpload, check_size


def _limits() -> dict:
    return {
        "max_mb": settings.UPLOAD_MAX_BYTES // (1024 * 1024),
        "max_mpx": settings.UPLOAD_MAX_PIXELS // 1_000_000,
        "max_files": settings.UPLOAD_MAX_FILES,
    }


@login_required
@require_GET
def upload_page(request):
    recent = MediaItem.objects.filter(uploader=request.user).select_related("duplicate_of")[:30]
    return render(request, "uploads/upload.html", {"recent": recent, "limits": _limits()})


@login_required
@require_POST
def upload(request):
    """Accept files and/or a URL. JSON for the page's script; redirect with messages otherwise."""
    accepted, refused = [], []
    files = request.FILES.getlist("files")
    url = (request.POST.get("url") or "").strip()
    if len(files) > settings.UPLOAD_MAX_FILES:
        refused.append(
            {
                "name": "",
                "code": "too_many_files",
                "message": f"At most {settings.UPLOAD_MAX_FILES} files at once.",
            }
        )
        files = []
    if not files and not url and not refused:
        refused.append(
            {
                "name": "",
                "code": "empty",
                "message": "Choose at least one image or paste an image URL.",
            }
        )
    try:
        for f in files:
            try:
                check_size(f.size, settings.UPLOAD_MAX_BYTES)  # before reading it into memory
                item = services.ingest_bytes(
                    f.read(), name=f.name, source=MediaItem.Source.WEB, uploader=request.user
                )
                accepted.append(item)
            except RefusedUpload as exc:
                refused.append(_refusal(f.name, exc))
        if url:
            try:
                accepted.append(
                    services.ingest_url(url, source=MediaItem.Source.WEB, uploader=request.user)
                )
            except (RefusedUpload, FetchRefused) as exc:
                refused.append(_refusal(url[:200], exc))
    except services.AuthorBanned as exc:
        return _answer(request, [], [{"name": "", "code": "banned", "message": str(exc)}], 403)
    status = 200 if accepted else 400
    return _answer(request, accepted, refused, status)


def _refusal(name, exc) -> dict:
    return {"name": name, "code": exc.code, "message": exc.message}


def _answer(request, accepted, refused, status):
    if wants_json(request):
        # Re-read: with tasks in-process the analysis has already updated the rows.
        fresh = MediaItem.objects.select_related("duplicate_of").in_bulk([i.pk for i in accepted])
        items = [fresh[i.pk].as_status() for i in accepted]
        return JsonResponse({"items": items, "errors": refused}, status=status)
    for r in refused:
        messages.error(request, f"{r['name']}: {r['message']}" if r["name"] else r["message"])
    if accepted:
        messages.success(request, f"{len(accepted)} image(s) received.")
    return redirect("uploads:upload")


@login_required
@require_GET
def item_status(request, item_uuid):
    try:
        item = services.item_for_user(request.user, item_uuid)
    except MediaItem.DoesNotExist:
        return JsonResponse({"detail": "No such item."}, status=404)
    return JsonResponse(item.as_status())


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
        },
    )


@login_required
@require_GET
def original(request, item_uuid):
    """Stream an image after the permission check; never a public URL.

    Staff, moderators and the uploader get the original bytes; everyone else a rendition
    without metadata (no EXIF location reaches the community feed).
    """
    try:
        item = services.item_for_user(request.user, item_uuid, original=True)
    except MediaItem.DoesNotExist:
        raise Http404("No such item.") from None
    try:
        if services.can_view_exact_original(request.user, item):
            fh = item.file.open("rb")
        else:
            fh = public_file(item)
    except OSError:  # lost from storage: say so instead of failing
        raise Http404("The image file is no longer available.") from None
    response = FileResponse(fh, content_type=item.mime)
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
@require_GET
def feed(request):
    page = Paginator(services.feed_items(), 24).get_page(request.GET.get("page"))
    mine = MediaItem.objects.filter(uploader=request.user).exclude(status__in=MediaItem.VISIBLE)[
        :20
    ]
    return render(request, "uploads/feed.html", {"page": page, "mine": mine})
