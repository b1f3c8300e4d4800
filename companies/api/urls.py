from companies.api.activity import ActivityViewSet
from companies.api.companies import CompanyViewSet
from companies.api.dashboard import DashboardViewSet
from companies.api.users import UserViewSet
from paperclip.api.viewsets import ID, route

urlpatterns = [
    route("users/me", UserViewSet.as_view({"get": "me"}), name="user-me"),
    route("companies", CompanyViewSet.as_view({"get": "list", "post": "create"}), name="companies"),
    route(
        rf"companies/(?P<pk>{ID})",
        CompanyViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="company",
    ),
    route(
        rf"companies/(?P<pk>{ID})/budgets",
        CompanyViewSet.as_view({"patch": "budgets"}),
        name="company-budgets",
    ),
    route(
        rf"companies/(?P<company_pk>{ID})/dashboard",
        DashboardViewSet.as_view({"get": "retrieve"}),
        name="company-dashboard",
    ),
    route(
        rf"companies/(?P<company_pk>{ID})/activity",
        ActivityViewSet.as_view({"get": "list"}),
        name="company-activity",
    ),
]
