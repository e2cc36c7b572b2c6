"""Routes under /api/v1/ (the review API keeps /api/v1/review/)."""

from django.urls import path

from . import analyses, banks, compat, hashes, views

urlpatterns = [
    path("me", views.Me.as_view(), name="me"),
    # Hashes and banks (api.hashes, api.banks).
    path("hashes", hashes.Hashes.as_view(), name="hashes"),
    path("lookup", hashes.Lookup.as_view(), name="lookup"),
    path("banks", banks.Banks.as_view(), name="banks"),
    path("banks/<int:bank_id>", banks.BankDetail.as_view(), name="bank"),
    path("banks/<int:bank_id>/contents", banks.Contents.as_view(), name="bank-contents"),
    path(
        "banks/<int:bank_id>/contents/batch",
        banks.ContentsBatch.as_view(),
        name="bank-contents-batch",
    ),
    path(
        "banks/<int:bank_id>/contents/<int:content_id>",
        banks.ContentDetail.as_view(),
        name="bank-content",
    ),
    path(
        "banks/<int:bank_id>/entries/<int:entry_id>",
        banks.EntryDetail.as_view(),
        name="bank-entry",
    ),
    path("banks/<int:bank_id>/import", banks.Import.as_view(), name="bank-import"),
    path("banks/<int:bank_id>/export", banks.Export.as_view(), name="bank-export"),
    # Analyses (api.analyses) and the replaced API's endpoints (api.compat).
    path("analyses", analyses.Analyses.as_view(), name="analyses"),
    path("analyses/batch", analyses.AnalysesBatch.as_view(), name="analyses-batch"),
    path("analyses/<uuid:analysis_id>", analyses.AnalysisDetail.as_view(), name="analysis"),
    path("analyse/image", compat.AnalyseImage.as_view(), name="compat-image"),
    path("analyse/images/batch", compat.AnalyseImagesBatch.as_view(), name="compat-batch"),
    path("analyse/text", compat.AnalyseText.as_view(), name="compat-text"),
    path("analyse/video", compat.AnalyseVideo.as_view(), name="compat-video"),
]
