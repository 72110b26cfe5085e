from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from wellbeing import accounts, sso
from wellbeing import views as wellbeing_views

urlpatterns = [
    path("healthz", wellbeing_views.healthz, name="healthz"),
    path("readyz", wellbeing_views.readyz, name="readyz"),
    path("accounts/login/", sso.SignInView.as_view(), name="login"),
    path("accounts/oidc/start/", sso.SSOStartView.as_view(), name="oidc_start"),
    path("accounts/oidc/callback/", sso.SSOCallbackView.as_view(), name="oidc_callback"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", accounts.SignInLinkRequestView.as_view(), name="password_reset"),
    path(
        "accounts/password/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        accounts.SignInLinkConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("django-admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("config.api_urls")),
    path("checkin/", include("checkins.urls")),
    path("dashboards/", include("wellbeing.dashboard_urls")),
    path("notifications/", include("notifications.urls")),
    path("manage/checkins/", include("checkins.manage_urls")),
    path("manage/", include("wellbeing.manage_urls")),
    path("", include("wellbeing.urls")),
]

# Under /api/ these answer in the API's JSON error shape; elsewhere with the HTML pages.
handler404 = "wellbeing.api_errors.page_not_found"
handler500 = "wellbeing.api_errors.server_error"
