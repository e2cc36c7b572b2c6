def wants_json(request) -> bool:
    """The page scripts and API clients ask for JSON; plain form posts get HTML."""
    return "application/json" in request.headers.get("Accept", "")
