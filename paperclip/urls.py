from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from paperclip.api.errors import api_not_found
from paperclip.api.views import health
from paperclip.v1.views import UnknownRoute
from paperclip.views import home

api_patterns = [
    path("health", health, name="health"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    path("", include("companies.api.urls")),
    path("", include("agents.api.urls")),
    path("", include("issues.api.urls")),
    re_path(r"^.*$", api_not_found),
]

v1_patterns = [
    path("", include("agents.v1.urls")),
    path("", include("issues.v1.urls")),
    re_path(r"^.*$", UnknownRoute.as_view()),
]

# What middleware refuses or raises outside a view answers JSON on /api (Django's pages elsewhere).
handler400 = "paperclip.api.errors.bad_request"
handler500 = "paperclip.api.errors.server_error"

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("v1", UnknownRoute.as_view()),  # no redirect to "v1/": a JSON answer, as any /v1 path
    path("v1/", include(v1_patterns)),
]
