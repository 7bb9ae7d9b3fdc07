"""/docs (Swagger UI) and /redoc from assets the service serves itself.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a machine
without internet they are blank. The same pages here load the scripts, style
and icon the `fastapi-offline` package ships (Swagger UI 5, ReDoc 2; pinned in
pyproject.toml), mounted under /docs-assets, with the online spec validator
and Google Fonts off. ReDoc's sidebar still names a logo on its CDN, so
both pages carry a Content-Security-Policy that lets them load from the
service alone: the browser refuses the rest before it leaves.
"Authorize" takes a bearer token (the HTTPBearer scheme of api/auth.py) and
keeps it across reloads.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"
# Inline scripts and styles are the pages' own (FastAPI's templates); ReDoc's search
# runs in a blob: worker; images may be data: URLs (Swagger UI's icons).
POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:;"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SWAGGER_PARAMETERS = {
    # Swagger UI would otherwise send the document to an online validator.
    "validatorUrl": None,
    "persistAuthorization": True,
    "displayRequestDuration": True,
}


def install(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets on `app` (made with docs_url=redoc_url=None)."""
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = POLICY
        return page
