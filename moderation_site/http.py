def wants_json(request) -> bool:
    """API paths always answer JSON; elsewhere the page scripts and API clients ask for it.

    Plain form posts and browsers get HTML.
    """
    path = getattr(request, "path_info", "") or ""
    if path == "/api" or path.startswith("/api/"):
        return True
    return "application/json" in request.headers.get("Accept", "")
