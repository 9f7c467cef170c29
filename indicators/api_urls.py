"""Indicator API, mounted at /api/v1/organizations/<org_slug>/."""

from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.register("indicator-templates", api.TemplateViewSet, basename="api-indicator-template")
router.register("indicator-definitions", api.DefinitionViewSet, basename="api-indicator-definition")
router.register("indicator-results", api.ResultViewSet, basename="api-indicator-result")
router.register("indicator-imports", api.ImportViewSet, basename="api-indicator-import")
router.register(
    "indicator-result-imports", api.ResultImportViewSet, basename="api-indicator-result-import"
)
router.register(
    "indicator-action-plans", api.ActionPlanViewSet, basename="api-indicator-action-plan"
)
router.register("indicator-incentive", api.IncentiveViewSet, basename="api-indicator-incentive")

urlpatterns = router.urls
