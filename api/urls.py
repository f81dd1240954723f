from django.urls import path, re_path
from rest_framework.routers import SimpleRouter
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from . import views


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

urlpatterns = [
    re_path(r"^token/?$", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    re_path(r"^token/refresh/?$", TokenRefreshView.as_view(), name="token_refresh"),
    path("", views.ApiRootView.as_view(), name="api-root"),
    *router.urls,
    # Last: an unknown path under /api/ is a JSON 404, not Django's HTML page.
    re_path(r"^", views.ApiNotFoundView.as_view(), name="api-not-found"),
]
