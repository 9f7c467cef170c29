from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash=True)
router.register("savings-opportunities", api.OpportunityViewSet, basename="savings-opportunity")
router.register("savings-imports", api.DataImportViewSet, basename="savings-import")
router.register("item-imports", api.ItemImportViewSet, basename="item-import")
router.register("items", api.ItemViewSet, basename="item")
router.register("savings-calculations", api.CalculationViewSet, basename="savings-calculation")

urlpatterns = router.urls
