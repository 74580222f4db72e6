"""The interactive docs page at /docs, served entirely from this process (no CDN).

Swagger UI's files come from the ``swagger-ui-bundle-v2`` package and are served under
/docs/assets; the page reads /schema/openapi.json and logs in through /api/auth/token.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

ASSETS = Path(swagger_ui_path)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Marketplace API — docs</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/schema/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
    });
  </script>
</body>
</html>
"""


@get(
    "/docs",
    operation_id="docsPage",
    summary="Interactive API docs (offline)",
    include_in_schema=False,
    exclude_from_auth=True,
    media_type="text/html",
    sync_to_thread=False,
)
def docs_page() -> Response[str]:
    return Response(
        PAGE,
        media_type="text/html",
        headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'"
        },
    )


docs_assets = create_static_files_router(
    path="/docs/assets",
    directories=[ASSETS],
    include_in_schema=False,
    opt={"exclude_from_auth": True},
    name="docs-assets",
)
