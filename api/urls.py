from django.urls import path, re_path
from rest_framework.routers import SimpleRouter
from rest_framework_simplejwt.views import (
    TokenBlacklistView,
    TokenObtainPairView,
    TokenRefreshView,
)

from . import throttles, views, views_import


# trailing_slash="/?": every route answers with and without the slash, as the seed uses both.
class OptionalSlashRouter(SimpleRouter):
    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("clients", views.ClientViewSet, basename="client")
router.register("campaigns", views.CampaignViewSet, basename="campaign")
router.register("newsletters", views.CampaignViewSet, basename="newsletter")
router.register("messages", views.MessageViewSet, basename="message")

per_address = [throttles.TokenAddressThrottle]
obtain = TokenObtainPairView.as_view(
    throttle_classes=[throttles.TokenAddressThrottle, throttles.TokenUsernameThrottle]
)

urlpatterns = [
    re_path(r"^token/?$", obtain, name="token_obtain_pair"),
    re_path(
        r"^token/refresh/?$",
        TokenRefreshView.as_view(throttle_classes=per_address),
        name="token_refresh",
    ),
    re_path(
        r"^token/blacklist/?$",
        TokenBlacklistView.as_view(throttle_classes=per_address),
        name="token_blacklist",
    ),
    path("", views.ApiRootView.as_view(), name="api-root"),
    # Bulk client import (issue 13); before the router, whose clients/<pk> would not match.
    re_path(
        r"^clients/import/?$", views_import.ClientCsvImportView.as_view(), name="client-import"
    ),
    re_path(r"^clients/bulk/?$", views_import.ClientBulkImportView.as_view(), name="client-bulk"),
    re_path(
        r"^imports/(?P<pk>\d+)/?$",
        views_import.ClientImportDetailView.as_view(),
        name="client-import-detail",
    ),
    *router.urls,
    # Last: an unknown path under /api/ is a JSON 404, not Django's HTML page.
    re_path(r"^", views.ApiNotFoundView.as_view(), name="api-not-found"),
]
